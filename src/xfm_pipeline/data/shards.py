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

Writing uses the ``webdataset`` library (``ShardWriter``). Reading parses the tar headers here (ustar,
GNU long names, pax ``path``/``size``), with webdataset's rules: regular files only, ``__meta__``
names skipped, the key is the name up to the first dot of its base name and the extension the rest,
lower-cased; consecutive members of one key form a sample. (webdataset's reader, on Python's
``tarfile``, took four times as long per sample: about 85 µs, as much as decoding a small JPEG.)
Reading from sample ``start`` of a shard seeks to that sample's first tar header (found by reading
headers only), so resuming never reads the skipped images.
"""

from __future__ import annotations

import hashlib
import json
import re
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


_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_REGULAR = (b"0", b"\0", b"7")  # tar type flags of regular files (7: contiguous file)
_EXTENDED = (b"x", b"g", b"L", b"K")  # pax (per member, global) and GNU long name / link name headers
_META = re.compile(r"__[^/]*__($|/)")  # webdataset's skip_meta: such members are not sample files
_KEY_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # webdataset's base_plus_ext


def _tar_number(field: bytes) -> int:
    """A numeric tar header field: NUL/space-terminated octal, or GNU base-256 (first byte 0x80 / 0xff)."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[:1] == b"\xff" else value
    digits = field.split(b"\0", 1)[0].strip()
    return int(digits, 8) if digits else 0


def _pax_fields(data: bytes) -> dict[bytes, bytes]:
    """The ``length key=value\\n`` records of a pax extended header."""
    fields, pos = {}, 0
    while pos < len(data) and data[pos : pos + 1] != b"\0":
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        fields[key] = value
        pos += length
    return fields


def _tar_files(fh: Any, where: str, read_data: bool = True) -> Iterator[tuple[str, str, int, bytes | None]]:
    """``(key, extension, header offset, data)`` of the sample files of the tar stream ``fh`` from its
    current position (a header) on: regular members whose names webdataset keeps, ``data`` None unless
    ``read_data``. The offset is that of the member's first header block (its pax or GNU long-name
    header when it has one), as ``tarfile`` reports it: reading from there yields the member first.

    Raises:
        ShardError: a header with a bad checksum (not an uncompressed tar, or a corrupt one) or a truncated member.
    """
    start, long_name, pax = fh.tell(), None, {}
    while True:
        header = fh.read(_BLOCK)
        if len(header) < _BLOCK or header == _ZERO_BLOCK:
            if header.strip(b"\0"):
                raise ShardError(f"{where}: truncated tar header at byte {fh.tell() - len(header)}")
            return  # end of archive (or of the file)
        try:
            stored = _tar_number(header[148:156])
        except ValueError:
            stored = -1  # not even a number: not a tar header
        if stored != 256 + sum(header[:148]) + sum(header[156:]) and stored != 256 + sum(b - 256 if b > 127 else b for b in header[:148] + header[156:]):
            raise ShardError(f"{where}: bad tar header checksum at byte {fh.tell() - _BLOCK} (not an uncompressed tar file, or a corrupt one)")
        kind = header[156:157]
        extended = kind in _EXTENDED
        size = int(pax[b"size"]) if b"size" in pax and not extended else _tar_number(header[124:136])
        if extended or (kind in _REGULAR and read_data):
            data = fh.read(size)
            if len(data) < size:
                raise ShardError(f"{where}: the member whose header is at byte {start} is truncated ({len(data)} of {size} bytes)")
            fh.seek(-size % _BLOCK, 1)
        else:
            data = None
            fh.seek(size + -size % _BLOCK, 1)
        if kind == b"x":
            try:
                pax = _pax_fields(data)
                int(pax.get(b"size", 0))
            except ValueError as exc:
                raise ShardError(f"{where}: malformed pax header at byte {start}: {exc}") from exc
        elif kind == b"L":
            long_name = data.split(b"\0", 1)[0]
        elif kind == b"g":  # global pax header: nothing a sample's name depends on
            start = fh.tell()
        if extended:  # K: a long link name, of no use here
            continue
        if b"path" in pax:
            raw = pax[b"path"]
        elif long_name is not None:
            raw = long_name
        else:
            raw, prefix = header[:100].split(b"\0", 1)[0], header[345:500].split(b"\0", 1)[0]
            raw = prefix + b"/" + raw if prefix else raw
        offset, start, long_name, pax = start, fh.tell(), None, {}
        name = raw.decode("utf-8", "surrogateescape")
        if kind not in _REGULAR or (kind == b"\0" and name.endswith("/")):  # old tars mark directories by the slash
            continue
        if ("/" not in name and name.startswith("__") and name.endswith("__")) or _META.match(name):
            continue
        match = _KEY_EXT.match(name)
        if match is None:  # no extension: not a sample file
            continue
        yield match.group(1), match.group(2).lower(), offset, data


def _keys_and_offsets(path: Path) -> list[tuple[str, int]]:
    """(key, offset of its first tar header) of every sample of a tar, from the headers alone."""
    out: list[tuple[str, int]] = []
    with open(path, "rb") as fh:
        for key, _, offset, _ in _tar_files(fh, str(path), read_data=False):
            if not out or out[-1][0] != key:
                out.append((key, offset))
    return out


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


def _samples_of(files: Iterator[tuple[str, str, int, bytes | None]], where: str) -> Iterator[dict[str, Any]]:
    """Consecutive files of one key as ``{"__key__": key, extension: data, ...}``."""
    members: dict[str, Any] | None = None
    for key, ext, _, data in files:
        if members is None or members["__key__"] != key:
            if members is not None:
                yield members
            members = {"__key__": key}
        if ext in members:
            raise ShardError(f"{where}: sample {key!r} has two .{ext} members")
        members[ext] = data
    if members is not None:
        yield members


def iter_shard(shard_set: ShardSet, shard: int, start: int = 0) -> Iterator[Sample]:
    """The samples of shard number ``shard`` from sample ``start`` on (earlier images are not read)."""
    path = shard_set.path(shard)
    where = str(path)
    with open(path, "rb") as fh:
        if start:
            offsets = _keys_and_offsets(path)
            if start >= len(offsets):
                return
            fh.seek(offsets[start][1])
        for members in _samples_of(_tar_files(fh, where), where):
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
