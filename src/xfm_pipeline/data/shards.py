"""WebDataset tar shards of pretraining corpora: writing, indexing and reading (with a start offset).

A shard directory holds ``shard-000000.tar, shard-000001.tar, ...`` and ``index.json``. Every sample is
one key with a ``.json`` member (the corpus record of docs/data_formats.md without its ``image`` /
``binary`` field) and, when the record has an image, the image file's bytes as ``.jpg`` (or ``.png``,
``.webp``, its own format). The index lists each shard's file, sample count, size and SHA-256::

    {"format": "xfm-webdataset", "version": 1, "corpus": "image_text", "layout": "xfm", "samples": 1700,
     "shards": [{"file": "shard-000000.tar", "samples": 500, "bytes": 2785280, "sha256": "..."}, ...]}

Directories that img2dataset writes (``00000.tar`` with ``<key>.jpg`` + ``<key>.txt`` and/or
``<key>.json`` per sample, ``00000_stats.json`` beside each tar) read as image-text (or image-only)
corpora as they are: the caption is the ``.txt`` member (else the ``caption`` of the ``.json`` one).
Without an ``index.json`` the sample counts come from the ``_stats.json`` files or from the tar headers.

Writing and reading use the ``webdataset`` library (``ShardWriter``, ``tar_file_iterator``,
``group_by_keys``). Reading from sample ``start`` of a shard seeks to that sample's first tar header
(found by reading headers only), so resuming never reads the skipped images.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX = "index.json"
FORMAT = "xfm-webdataset"
SHARD_PATTERN = "shard-%06d.tar"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
LAYOUTS = ("xfm", "img2dataset")
KEY_DIGITS = 9  # sample keys: the sample's position in the corpus, zero-padded


class ShardError(ValueError):
    """A shard directory, shard or sample is not what the readers expect."""


@dataclass(frozen=True)
class ShardInfo:
    """One tar shard of a corpus."""

    file: str  # path relative to the shard directory
    samples: int  # samples (keys) in the shard
    bytes: int = 0  # file size
    sha256: str | None = None  # of the file bytes (None: not recorded, e.g. an img2dataset download)


@dataclass(frozen=True)
class ShardSet:
    """A shard directory as its index describes it."""

    root: str  # the directory
    layout: str  # "xfm" (written here) | "img2dataset"
    corpus: str | None  # corpus of the records (None: not recorded)
    shards: tuple[ShardInfo, ...]

    @property
    def samples(self) -> int:
        """Samples over all shards."""
        return sum(s.samples for s in self.shards)

    def path(self, shard: int) -> Path:
        """The tar file of shard number ``shard``."""
        return Path(self.root) / self.shards[shard].file

    def fingerprint(self) -> str:
        """A hash of the index (file names, counts, sizes and SHA-256s): what a run key needs of the data."""
        rows = [[s.file, s.samples, s.bytes, s.sha256] for s in self.shards]
        return hashlib.sha256(json.dumps([self.layout, self.corpus, rows]).encode()).hexdigest()


@dataclass(frozen=True)
class Sample:
    """One sample as read from a shard: its key, its corpus record and its image bytes (if any)."""

    key: str
    record: dict[str, Any]  # the corpus record without its image source
    image: bytes | None  # encoded image file (JPEG, PNG, ...)


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _image_extension(data: bytes) -> str:
    """The member extension of encoded image ``data`` (its format as Pillow identifies it)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    raise ShardError(f"image bytes are neither JPEG, PNG nor WebP (starts {data[:8]!r})")


def write_shards(samples: Iterable[Sample], directory: str | Path, corpus: str, max_samples: int = 10000, max_bytes: float = 1e9) -> ShardSet:
    """Write ``samples`` as tar shards of at most ``max_samples`` samples and about ``max_bytes`` bytes
    (a shard is closed once it reaches either) into the existing empty ``directory``, then ``index.json``.

    Shards are byte-identical for the same samples (fixed mtime, owner and mode).
    """
    import webdataset as wds

    if max_samples < 1 or max_bytes <= 0:
        raise ValueError(f"shard size needs max_samples >= 1 and max_bytes > 0, got {max_samples} and {max_bytes}")
    directory = Path(directory)
    counts: dict[str, int] = {}
    # an integer mtime: a float one makes tarfile add a PAX header to every member, doubling the headers readers parse
    writer = wds.ShardWriter(str(directory / SHARD_PATTERN), maxcount=max_samples, maxsize=max_bytes, verbose=0, mtime=0)
    try:
        for sample in samples:
            member = {"__key__": sample.key, "json": json.dumps(sample.record, ensure_ascii=False).encode("utf-8")}
            if sample.image is not None:
                member[_image_extension(sample.image)] = sample.image
            writer.write(member)
            name = Path(writer.fname).name
            counts[name] = counts.get(name, 0) + 1
    finally:
        writer.close()
    for tar in directory.glob("shard-*.tar"):  # ShardWriter opens its first shard before any sample
        if tar.name not in counts:
            tar.unlink()
    shards = tuple(ShardInfo(name, n, (directory / name).stat().st_size, sha256_file(directory / name)) for name, n in sorted(counts.items()))
    shard_set = ShardSet(str(directory), "xfm", corpus, shards)
    write_index(shard_set)
    return shard_set


def write_index(shard_set: ShardSet) -> Path:
    """Write ``index.json`` of ``shard_set`` into its directory."""
    body = {
        "format": FORMAT,
        "version": 1,
        "corpus": shard_set.corpus,
        "layout": shard_set.layout,
        "samples": shard_set.samples,
        "shards": [{"file": s.file, "samples": s.samples, "bytes": s.bytes, "sha256": s.sha256} for s in shard_set.shards],
    }
    path = Path(shard_set.root) / INDEX
    path.write_text(json.dumps(body, indent=1) + "\n")
    return path


def _keys_and_offsets(path: Path) -> list[tuple[str, int]]:
    """(key, offset of its first tar header) of every sample of a tar, from the headers alone."""
    out: list[tuple[str, int]] = []
    with tarfile.open(path, "r:") as tar:
        for info in tar:
            if not info.isreg():
                continue
            key = _split_name(info.name)[0]
            if not out or out[-1][0] != key:
                out.append((key, info.offset))
    return out


def _split_name(name: str) -> tuple[str, str]:
    """``dir/000123.jpg`` -> (``dir/000123``, ``jpg``): webdataset's key and extension rule."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    return (name, "") if dot < 0 else (name[:dot], name[dot + 1 :].lower())


def _img2dataset_count(tar: Path) -> int:
    stats = tar.with_name(f"{tar.stem}_stats.json")
    if stats.is_file():
        successes = json.loads(stats.read_text()).get("successes")
        if isinstance(successes, int):
            return successes
    return len(_keys_and_offsets(tar))


def open_shards(directory: str | Path) -> ShardSet:
    """The shard set of ``directory``: its ``index.json``, or (an img2dataset download) its ``*.tar`` files.

    Raises:
        ShardError: no such directory, no shards, or an index that is not ours.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ShardError(f"shard directory {directory} does not exist")
    index = directory / INDEX
    if index.is_file():
        body = json.loads(index.read_text())
        if body.get("format") != FORMAT or body.get("layout") not in LAYOUTS:
            raise ShardError(f"{index}: not an {FORMAT} index (format {body.get('format')!r}, layout {body.get('layout')!r})")
        shards = tuple(ShardInfo(s["file"], int(s["samples"]), int(s.get("bytes", 0)), s.get("sha256")) for s in body["shards"])
        missing = [s.file for s in shards if not (directory / s.file).is_file()]
        if missing:
            raise ShardError(f"{index} lists shards that are missing: {missing[:5]}")
        return ShardSet(str(directory), body["layout"], body.get("corpus"), shards)
    tars = sorted(directory.glob("*.tar"))
    if not tars:
        raise ShardError(f"{directory} holds neither {INDEX} nor *.tar shards")
    return ShardSet(str(directory), "img2dataset", None, tuple(ShardInfo(t.name, _img2dataset_count(t), t.stat().st_size) for t in tars))


def index_img2dataset(directory: str | Path, corpus: str = "image_text") -> ShardSet:
    """Count and hash the shards of an img2dataset download once and write its ``index.json``
    (so that a run key covers the shard bytes and no reader scans tar headers again)."""
    directory = Path(directory)
    tars = sorted(directory.glob("*.tar"))
    if not tars:
        raise ShardError(f"no *.tar shards in {directory}")
    shards = tuple(ShardInfo(t.name, len(_keys_and_offsets(t)), t.stat().st_size, sha256_file(t)) for t in tars)
    shard_set = ShardSet(str(directory), "img2dataset", corpus, shards)
    write_index(shard_set)
    return shard_set


def _image_member(members: dict[str, Any]) -> bytes | None:
    for ext in IMAGE_EXTENSIONS:
        if ext in members:
            return members[ext]
    return None


def _to_sample(members: dict[str, Any], layout: str, where: str) -> Sample:
    key = members["__key__"]
    image = _image_member(members)
    if layout == "xfm":
        if "json" not in members:
            raise ShardError(f"{where}: sample {key!r} has no .json member")
        return Sample(key, json.loads(members["json"]), image)
    if image is None:  # img2dataset: only successful downloads are written, each with its image
        raise ShardError(f"{where}: sample {key!r} has no image member ({', '.join(IMAGE_EXTENSIONS)})")
    meta = json.loads(members["json"]) if "json" in members else {}
    caption = members["txt"].decode("utf-8") if "txt" in members else meta.get("caption")
    return Sample(key, {"desc": caption} if caption is not None else {}, image)


def iter_shard(shard_set: ShardSet, shard: int, start: int = 0) -> Iterator[Sample]:
    """The samples of shard number ``shard`` from sample ``start`` on (earlier images are not read)."""
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    path = shard_set.path(shard)
    where = str(path)
    with open(path, "rb") as fh:
        if start:
            offsets = _keys_and_offsets(path)
            if start >= len(offsets):
                return
            fh.seek(offsets[start][1])
        files = ({**member, "__url__": where} for member in tar_file_iterator(fh))
        for members in group_by_keys(files):
            yield _to_sample(members, shard_set.layout, where)


def iter_samples(shard_set: ShardSet) -> Iterator[Sample]:
    """Every sample of every shard, in index order."""
    for shard in range(len(shard_set.shards)):
        yield from iter_shard(shard_set, shard)


def samples_from_records(records: Iterable[dict[str, Any]], image_root: str | Path | None, where: str) -> Iterator[Sample]:
    """Shard samples of corpus records: an ``image`` path's file bytes or a single base64 ``binary``
    become the image member (records holding several base64 images keep them in their JSON).

    Raises:
        ShardError: an image path with no image root, or an image file that cannot be read.
    """
    import base64

    from xfm_pipeline.data.paths import resolve_under_root

    for i, record in enumerate(records):
        record = {k: v for k, v in record.items() if v is not None}
        image = None
        if "image" in record:
            if image_root is None:
                raise ShardError(f"{where} record {i}: image {record['image']!r} is a path but no image root was given")
            path = resolve_under_root(image_root, record.pop("image"))
            try:
                image = path.read_bytes()
            except OSError as exc:
                raise ShardError(f"{where} record {i}: cannot read image {path}: {exc}") from exc
        elif isinstance(record.get("binary"), str) or (isinstance(record.get("binary"), list) and len(record["binary"]) == 1):
            blob = record.pop("binary")
            image = base64.b64decode(blob if isinstance(blob, str) else blob[0], validate=True)
        yield Sample(f"{i:0{KEY_DIGITS}d}", record, image)


@dataclass
class ShardSamples:
    """Samples on their way to a shard directory: what a node hands the catalog's shard dataset to write."""

    corpus: str
    samples: Iterable[Sample]  # read lazily while the shards are written
    max_samples: int = 10000  # samples per shard at most
    max_bytes: float = 1e9  # a shard is closed once it reaches this size
    count: int | None = None  # samples that ``samples`` will yield, when known beforehand

    def write(self, directory: str | Path) -> ShardSet:
        """Write the shards and ``index.json`` into the existing empty ``directory``."""
        return write_shards(self.samples, directory, self.corpus, self.max_samples, self.max_bytes)
