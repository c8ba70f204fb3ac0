"""Retrieval, VQA, NLVR2, grounding and captioning readers on generated files and on bad records."""

from __future__ import annotations

import json

import pytest

from xfm_pipeline.data.formats import (
    GROUNDING_SPLITS,
    NLVRRecord,
    RecordError,
    VQARecord,
    answer_weights,
    parse_nlvr,
    parse_vqa,
    read_answer_list,
    read_caption_eval,
    read_caption_train,
    read_coco_caption_gt,
    read_grounding,
    read_nlvr,
    read_retrieval_eval,
    read_retrieval_train,
    read_vqa,
)
from xfm_pipeline.data.formats.captioning import image_id_from_filename, parse_coco_caption_gt
from xfm_pipeline.data.images import load_image


def test_retrieval_round_trip(tiny_world, tiny_root):
    cfg = tiny_world.config
    train = read_retrieval_train(tiny_root / "retrieval" / "train.json")
    assert len(train) == cfg.images.train * cfg.train_captions_per_image
    assert len({r.image_id for r in train}) == cfg.images.train
    for split in ("val", "test"):
        records = read_retrieval_eval(tiny_root / "retrieval" / f"{split}.json")
        assert len(records) == getattr(cfg.images, split)
        assert all(len(r.caption) == cfg.captions_per_image for r in records)
        load_image(tiny_root / "images", records[0].image)


def test_vqa_round_trip(tiny_world, tiny_root):
    for split in ("train", "val", "test"):
        records = read_vqa(tiny_root / "vqa" / f"{split}.json", require_answers=True)
        assert len(records) == len(tiny_world.json_files[f"vqa/{split}"]) == getattr(tiny_world.config.images, split) * 3
        for r in records:
            assert len(r.answer) == 10 and r.answer_type in ("yes/no", "number", "other") and r.question_type
            assert r.question.endswith("?")
        assert len({r.question_id for r in records}) == len(records)
    answers = read_answer_list(tiny_root / "vqa" / "answer_list.json")
    assert {"yes", "no", "0", "1", "red", "circle"} <= set(answers)


def test_vqa_answer_weights_count_over_len():
    r = VQARecord(image="a.jpg", question="q?", answer=("2",) * 6 + ("two",) * 3 + ("3",))
    answers, weights = answer_weights(r)
    assert answers == ("2", "two", "3") and weights == pytest.approx((0.6, 0.3, 0.1))
    vg = VQARecord(image="a.jpg", question="q?", answer=("dog",), dataset="vg")
    assert answer_weights(vg) == (("dog",), (0.5,))
    with pytest.raises(ValueError):
        answer_weights(VQARecord(image="a.jpg", question="q?", answer=()))


def test_vqa_variants_and_errors():
    records = parse_vqa(
        [
            {"question_id": 1, "image": "x.jpg", "question": "what?", "answer": "dog", "dataset": "vg"},
            {"question_id": 2, "image": "x.jpg", "question": "what?"},  # test-dev style, no answers
        ]
    )
    assert records[0].answer == ("dog",) and records[1].answer == ()
    with pytest.raises(RecordError, match=r"vqa\.json: record 1: missing field 'answer'"):
        parse_vqa([{"image": "x.jpg", "question": "q", "answer": ["a"]}, {"image": "x.jpg", "question": "q"}], require_answers=True)
    with pytest.raises(RecordError, match="answer_type"):
        parse_vqa([{"image": "x.jpg", "question": "q", "answer": ["a"], "answer_type": "colour"}])
    with pytest.raises(RecordError, match="record 0: field 'question_id' must be an integer"):
        parse_vqa([{"image": "x.jpg", "question": "q", "question_id": "7a"}])


def test_nlvr_round_trip_and_errors(tiny_world, tiny_root):
    for split in ("train", "dev", "test"):
        records = read_nlvr(tiny_root / "nlvr" / f"{split}.json")
        assert len(records) == getattr(tiny_world.config.nlvr, split)
        assert all(isinstance(r, NLVRRecord) and len(r.images) == 2 and r.images[0] != r.images[1] for r in records)
    assert parse_nlvr([{"images": ["a.jpg", "b.jpg"], "sentence": "s", "label": "False"}])[0].label is False
    with pytest.raises(RecordError, match="record 0: field 'label'"):
        parse_nlvr([{"images": ["a.jpg", "b.jpg"], "sentence": "s", "label": "yes"}])
    with pytest.raises(RecordError, match="exactly two"):
        parse_nlvr([{"images": ["a.jpg"], "sentence": "s", "label": "True"}])


def test_grounding_round_trip(tiny_world, tiny_root, tmp_path):
    path = tiny_root / "grounding" / "refcoco+.json"
    records = read_grounding(path)
    assert len(records) == len(tiny_world.json_files["grounding/refcoco+"])
    assert {r.split for r in records} <= set(GROUNDING_SPLITS)
    assert sum(len(read_grounding(path, s)) for s in GROUNDING_SPLITS) == len(records)
    for r in records:
        x, y, w, h = r.bbox
        assert 0 <= x and 0 <= y and x + w <= 96 and y + h <= 96
    bad = tmp_path / "bad_grounding.json"  # the shared world stays as generated
    bad.write_text(json.dumps([{"image": "a.jpg", "text": "t", "bbox": [1, 2, 3, 4], "ref_id": 1, "split": "testC"}]))
    with pytest.raises(RecordError, match="split"):
        read_grounding(bad)


def test_captioning_round_trip(tiny_world, tiny_root):
    cfg = tiny_world.config
    train = read_caption_train(tiny_root / "captioning" / "train.json")
    assert len(train) == cfg.images.train * cfg.train_captions_per_image
    for split in ("val", "test"):
        records = read_caption_eval(tiny_root / "captioning" / f"{split}.json")
        gt = read_coco_caption_gt(tiny_root / "captioning" / f"{split}_gt.json")
        assert {r.image_id for r in records} == set(gt.refs)
        assert all(len(c) == cfg.captions_per_image for c in gt.refs.values())
        assert all(image_id_from_filename(r.image) == r.image_id for r in records)


def test_caption_image_id_from_karpathy_filename(tmp_path):
    path = tmp_path / "coco_karpathy_val.json"
    path.write_text(json.dumps([{"image": "val2014/COCO_val2014_000000184613.jpg", "caption": ["a", "b"]}]))
    (record,) = read_caption_eval(path)
    assert record.image_id == 184613 and record.caption == ("a", "b")
    path.write_text(json.dumps([{"image": "val2014/no_digits.jpg"}]))
    with pytest.raises(RecordError, match="no 'image_id'"):
        read_caption_eval(path)


def test_coco_gt_errors():
    with pytest.raises(RecordError, match="not listed"):
        parse_coco_caption_gt({"images": [{"id": 1}], "annotations": [{"image_id": 2, "id": 1, "caption": "x"}]})
    with pytest.raises(RecordError, match="without reference captions"):
        parse_coco_caption_gt({"images": [{"id": 1}, {"id": 3}], "annotations": [{"image_id": 1, "id": 1, "caption": "x"}]})
    with pytest.raises(RecordError, match="'images' and 'annotations'"):
        parse_coco_caption_gt([])


def test_json_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("[{]")
    with pytest.raises(RecordError, match=r"broken\.json.*invalid JSON at line 1"):
        read_vqa(path)
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(RecordError, match="expected a list of records"):
        read_nlvr(path)
