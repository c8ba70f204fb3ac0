"""Pretraining corpora: files written by the generator read back, shards, DataFrames, bad records."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from xfm_pipeline.data.formats import (
    ImageOnlyRecord,
    ImageTextRecord,
    RecordError,
    RegionTextRecord,
    TextOnlyRecord,
    iter_corpus,
    parse_corpus,
    read_corpus,
)
from xfm_pipeline.data.images import load_record_image


def test_generated_corpora_round_trip(tiny_world, tiny_root):
    kinds = {"image_text": ImageTextRecord, "region_text": RegionTextRecord, "image_only": ImageOnlyRecord, "text_only": TextOnlyRecord}
    for corpus, cls in kinds.items():
        records = read_corpus(tiny_root / "pretrain" / f"{corpus}.jsonl", corpus)
        assert len(records) == len(tiny_world.pretrain[corpus]) > 0
        assert all(isinstance(r, cls) for r in records)
    image_text = read_corpus(tiny_root / "pretrain" / "image_text.jsonl", "image_text")
    assert all(r.desc and all(d.strip() for d in r.desc) for r in image_text)
    region = read_corpus(tiny_root / "pretrain" / "region_text.jsonl", "region_text")
    for r in region:
        assert r.image and r.elems
        for e in r.elems:
            x, y, w, h = e.bb
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96
            assert e.attributes in (("small",), ("large",))


def test_every_image_of_the_corpora_loads(tiny_root):
    image_root = tiny_root / "images"
    records = read_corpus(tiny_root / "pretrain" / "image_text.jsonl", "image_text")
    binaries = [r for r in records if r.binary]
    paths = [r for r in records if r.image]
    assert paths, "expected path records"
    for r in records:
        img = load_record_image(r.image, r.binary[0] if r.binary else None, image_root)
        assert img.size == (96, 96)
    assert len(binaries) + len(paths) == len(records)


def test_base64_binary_records(tmp_path):
    from PIL import Image

    from xfm_pipeline.data.images import encode_base64_image

    b64 = encode_base64_image(Image.new("RGB", (20, 10), (0, 0, 255)))
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"binary": b64, "desc": "a blue picture"}) + "\n" + json.dumps({"binary": [b64, b64], "desc": ["x", "y"]}) + "\n")
    first, second = read_corpus(path, "image_text")
    assert first.image is None and first.binary == (b64,) and first.desc == ("a blue picture",)
    assert len(second.binary) == 2
    assert load_record_image(None, first.binary[0], None).getpixel((5, 5))[2] > 200


def test_directory_of_shards_is_read_in_name_order(tmp_path):
    shards = tmp_path / "corpus"
    shards.mkdir()
    for k in (2, 0, 1):
        (shards / f"part-{k:05d}.jsonl").write_text(json.dumps({"desc": f"text {k}"}) + "\n\n")
    (shards / "_SUCCESS").write_text("")
    texts = [r.desc[0] for r in iter_corpus(shards, "text_only")]
    assert texts == ["text 0", "text 1", "text 2"]


def test_dataframe_nulls_mean_absent(tmp_path):
    # what the pandas.JSONDataset catalog entry loads: the union of keys, nulls where a key was absent
    lines = [{"image": "train/000001.jpg", "desc": ["a", "b"]}, {"binary": "aGVsbG8=", "desc": "c"}]
    path = tmp_path / "x.jsonl"
    pd.DataFrame.from_records(lines).to_json(path, orient="records", lines=True)
    assert "null" in path.read_text()
    frame = pd.read_json(path, lines=True, orient="records", dtype=False)
    first, second = parse_corpus(frame, "image_text")
    assert first == ImageTextRecord(desc=("a", "b"), image="train/000001.jpg")
    assert second == ImageTextRecord(desc=("c",), binary=("aGVsbG8=",))


GOOD = {
    "image_text": {"image": "ok.jpg", "desc": "fine"},
    "region_text": {"image": "a.jpg", "elems": [{"bb": [0, 0, 1, 1], "caption": "ok"}]},
    "text_only": {"desc": "ok"},
}


@pytest.mark.parametrize(
    ("corpus", "line", "problem"),
    [
        ("image_text", {"desc": "no image"}, "exactly one of 'image'"),
        ("image_text", {"image": "a.jpg", "binary": "eA==", "desc": "x"}, "exactly one of 'image'"),
        ("image_text", {"image": "a.jpg", "desc": ""}, "item 0 must be a non-empty string"),
        ("image_text", {"image": "a.jpg", "desc": []}, "empty list"),
        ("image_text", {"image": "../a.jpg", "desc": "x"}, "contains '..'"),
        ("image_text", {"image": "/abs/a.jpg", "desc": "x"}, "absolute path"),
        ("region_text", {"image": "a.jpg", "elems": []}, "non-empty list"),
        ("region_text", {"image": "a.jpg", "elems": [{"bb": [0, 0, 0, 5], "caption": "x"}]}, "non-positive"),
        ("region_text", {"image": "a.jpg", "elems": [{"bb": [0, 0, 5], "caption": "x"}]}, "list \\[x, y, w, h\\]"),
        ("region_text", {"image": "a.jpg", "elems": [{"bb": [0, 0, 5, 5]}]}, "missing field 'caption'"),
        ("text_only", {"text": "wrong key"}, "missing field 'desc'"),
    ],
)
def test_bad_records_name_file_line_and_problem(tmp_path, corpus, line, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD[corpus]) + "\n" + json.dumps(line) + "\n")  # line 1 is fine
    with pytest.raises(RecordError, match=problem) as info:
        read_corpus(path, corpus)
    assert str(path) in str(info.value) and "line 2" in str(info.value)


def test_invalid_json_line_and_missing_corpus(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"desc": "ok"}\n{"desc": \n')
    with pytest.raises(RecordError, match="line 2: invalid JSON"):
        read_corpus(path, "text_only")
    with pytest.raises(FileNotFoundError):
        read_corpus(tmp_path / "missing.jsonl", "text_only")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \*\.jsonl"):
        read_corpus(empty, "text_only")
    with pytest.raises(ValueError, match="unknown pretraining corpus"):
        read_corpus(path, "video_text")
