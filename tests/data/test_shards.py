"""WebDataset shards: sizes by samples and bytes, the index, byte-identical rewrites, reading from an offset,
records with their images, and img2dataset downloads read as they are."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from PIL import Image

from xfm_pipeline.data.formats.pretrain import parse_sample
from xfm_pipeline.data.shards import Sample, ShardError, iter_samples, iter_shard, open_shards, samples_from_records, write_shards

pytestmark = pytest.mark.unit


def _jpeg(colour, size=(16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _samples(n: int) -> list[Sample]:
    return [Sample(f"{i:09d}", {"desc": [f"caption {i}"]}, _jpeg((i * 20 % 256, 0, 0))) for i in range(n)]


def test_shards_hold_at_most_max_samples_and_the_index_counts_and_hashes_them(tmp_path):
    written = write_shards(_samples(7), tmp_path, "image_text", max_samples=3)
    index = json.loads((tmp_path / "index.json").read_text())
    assert [s["samples"] for s in index["shards"]] == [3, 3, 1] and index["samples"] == 7
    assert index["shards"][0]["sha256"] == hashlib.sha256((tmp_path / "shard-000000.tar").read_bytes()).hexdigest()
    assert open_shards(tmp_path) == written
    with tarfile.open(tmp_path / "shard-000000.tar") as tar:
        assert tar.getnames() == ["000000000.jpg", "000000000.json", "000000001.jpg", "000000001.json", "000000002.jpg", "000000002.json"]


def test_a_byte_limit_closes_a_shard_and_the_same_samples_give_the_same_bytes(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    one = write_shards(_samples(6), tmp_path / "a", "image_text", max_samples=100, max_bytes=2500)
    two = write_shards(_samples(6), tmp_path / "b", "image_text", max_samples=100, max_bytes=2500)
    assert len(one.shards) > 1 and sum(s.samples for s in one.shards) == 6
    assert [s.sha256 for s in one.shards] == [s.sha256 for s in two.shards]  # fixed mtime and owner: reproducible


def test_reading_from_an_offset_skips_exactly_the_earlier_samples(tmp_path):
    shards = write_shards(_samples(5), tmp_path, "image_text", max_samples=5)
    everything = list(iter_shard(shards, 0))
    assert [s.key for s in iter_shard(shards, 0, start=3)] == ["000000003", "000000004"]
    assert list(iter_shard(shards, 0, start=3)) == everything[3:]
    assert list(iter_shard(shards, 0, start=5)) == []


def test_records_become_samples_with_their_image_files_or_base64_bytes(tmp_path):
    import base64

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(_jpeg((1, 2, 3)))
    blob = _jpeg((9, 9, 9))
    records = [
        {"image": "a.jpg", "desc": "from a file", "binary": None},
        {"binary": base64.b64encode(blob).decode(), "desc": "from base64"},
        {"binary": ["eA==", "eQ=="], "desc": "several images stay in the record"},
    ]
    samples = list(samples_from_records(records, tmp_path / "images", "test"))
    assert samples[0] == Sample("000000000", {"desc": "from a file"}, (tmp_path / "images" / "a.jpg").read_bytes())
    assert samples[1] == Sample("000000001", {"desc": "from base64"}, blob)
    assert samples[2] == Sample("000000002", records[2], None)
    (tmp_path / "shards").mkdir()
    back = list(iter_samples(write_shards(samples, tmp_path / "shards", "image_text")))
    assert back == samples
    record = parse_sample(back[0].record, "image_text", "x.tar", back[0].key, has_image=True)
    assert record.desc == ("from a file",) and record.image is None
    with pytest.raises(ValueError, match=r"x.tar: record sample 000000009: has an image member in its shard and an 'image'"):
        parse_sample({"image": "a.jpg", "desc": "d"}, "image_text", "x.tar", "000000009", has_image=True)
    with pytest.raises(ShardError, match="image 'missing.jpg'|cannot read image"):
        list(samples_from_records([{"image": "missing.jpg", "desc": "d"}], tmp_path / "images", "test"))


def _img2dataset_tar(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_an_img2dataset_download_reads_as_an_image_text_corpus(tmp_path):
    jpg = _jpeg((0, 0, 200))
    _img2dataset_tar(tmp_path / "00000.tar", {"000000001.jpg": jpg, "000000001.txt": b"a blue box", "000000001.json": b'{"url": "u", "caption": "x"}'})
    _img2dataset_tar(
        tmp_path / "00001.tar", {"000010000.jpg": jpg, "000010000.json": b'{"caption": "only in json"}', "000010002.jpg": jpg, "000010002.txt": b"t"}
    )
    (tmp_path / "00001_stats.json").write_text(json.dumps({"count": 3, "successes": 2}))
    shards = open_shards(tmp_path)
    assert shards.layout == "img2dataset" and [s.samples for s in shards.shards] == [1, 2]
    assert [(s.key, s.record, s.image == jpg) for s in iter_samples(shards)] == [
        ("000000001", {"desc": "a blue box"}, True),
        ("000010000", {"desc": "only in json"}, True),
        ("000010002", {"desc": "t"}, True),
    ]


def test_a_directory_without_shards_is_refused_with_its_path(tmp_path):
    with pytest.raises(ShardError, match=f"{tmp_path} holds neither index.json nor"):
        open_shards(tmp_path)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tars_with_long_names_links_and_meta_members_read_as_webdataset_reads_them_from_any_sample(tmp_path, fmt):
    """GNU long-name and pax headers, directories, links, ``__meta__`` and extension-less members: the
    reader keeps what webdataset's ``tar_file_iterator`` + ``group_by_keys`` keep, and a read from sample
    ``k`` yields exactly the samples from ``k`` on."""
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    long = "d/" + "x" * 150  # too long for a ustar name: a GNU long-name or pax path header
    jpg = _jpeg((0, 90, 0))
    members = [
        ("a.jpg", jpg), ("a.txt", b"first"), ("dir/", None), ("__meta__", b"m"), ("noext", b"n"), ("B.JPG", jpg), ("B.txt", b"second"),
        (long + ".jpg", jpg), (long + ".txt", b"third"), ("link.jpg", "y" * 200), ("\u00e9.jpg", jpg), ("\u00e9.seg.png", b"p"), ("\u00e9.txt", b"fourth"),
    ]  # fmt: skip
    with tarfile.open(tmp_path / "00000.tar", "w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data  # a link name too long for ustar
            else:
                info.size, info.mtime = len(data), 1.5  # a float mtime: a pax header per member in PAX format
            tar.addfile(info, io.BytesIO(data) if isinstance(data, bytes) else None)
    shards = open_shards(tmp_path)
    assert [s.samples for s in shards.shards] == [4]
    samples = list(iter_shard(shards, 0))
    assert [(s.key, s.record, s.image == jpg) for s in samples] == [
        ("a", {"desc": "first"}, True),
        ("B", {"desc": "second"}, True),
        (long, {"desc": "third"}, True),
        ("\u00e9", {"desc": "fourth"}, True),
    ]
    with open(tmp_path / "00000.tar", "rb") as fh:
        reference = list(group_by_keys({**f, "__url__": ""} for f in tar_file_iterator(fh)))
    assert [(m["__key__"], sorted(k for k in m if not k.startswith("__"))) for m in reference] == [
        ("a", ["jpg", "txt"]), ("B", ["jpg", "txt"]), (long, ["jpg", "txt"]), ("\u00e9", ["jpg", "seg.png", "txt"])
    ]  # fmt: skip
    for start in range(5):
        assert list(iter_shard(shards, 0, start=start)) == samples[start:]


def test_a_compressed_truncated_or_corrupt_shard_is_refused_with_its_path_and_place(tmp_path):
    import gzip

    shards = write_shards(_samples(3), tmp_path, "image_text", max_samples=3)
    tar = shards.path(0)
    good = tar.read_bytes()
    tar.write_bytes(gzip.compress(good))
    with pytest.raises(ShardError, match=rf"{tar}: bad tar header checksum at byte 0 \(not an uncompressed tar"):
        list(iter_shard(shards, 0))
    tar.write_bytes(good[: 512 + len(_samples(1)[0].image) // 2])  # inside the first image
    with pytest.raises(ShardError, match=rf"{tar}: the member whose header is at byte 0 is truncated"):
        list(iter_shard(shards, 0))
    first = 512 + -(-len(_samples(1)[0].image) // 512) * 512  # the second member's header: after the first's header and data
    corrupt = bytearray(good)
    corrupt[first + 10] ^= 0xFF
    tar.write_bytes(bytes(corrupt))
    with pytest.raises(ShardError, match=rf"bad tar header checksum at byte {first}"):
        list(iter_shard(shards, 0))
