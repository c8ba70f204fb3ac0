"""The sources of a pretraining stream: WebDataset shards on disk or corpus records held in memory.

A source is cut into *parts* that the stream deals to its lanes (:mod:`xfm_pipeline.training.streams`):
a shard source's parts are its tar shards; a source in memory (a small JSON-lines corpus) is dealt into
one part per lane (records ``l, l + L, l + 2L, ...``). Reading part ``i`` from sample ``start`` yields
:class:`Item` s: the parsed record, its image bytes (shards) or ``None`` (the record names a file under the
source's image root), its index over the whole stream, and where it came from (for error messages).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xfm_pipeline.data.shards import ShardSet, iter_shard, open_shards


@dataclass(frozen=True)
class Item:
    """One sample of a source, before its transforms."""

    record: Any  # parsed corpus record (data.formats.pretrain)
    image: bytes | None  # encoded image (shard member or image file); None: no image, or base64 data in the record
    index: int  # unique over the sources of the stream (the sample's "image_idx")
    where: str  # "<shard>.tar sample 000000123" or "<file> record 17"


@dataclass
class StreamSource:
    """One source of a stream: a shard directory or records in memory, with its mixing weight.

    Build with :meth:`from_shards` or :meth:`from_records`.
    """

    name: str  # for messages
    corpus: str  # image_text | region_text | image_only | text_only
    weight: float  # relative share of the stream's samples
    image_root: str | None = None  # root of the records' `image` paths (records in memory)
    shards: ShardSet | None = None  # the shard directory's index, or None
    records: Sequence[Any] = field(default_factory=list)  # parsed records (in memory), or empty
    first_index: int = 0  # stream-wide index of the source's first sample (set by the stream)

    @classmethod
    def from_shards(cls, name: str, corpus: str, path: str | Path, weight: float = 1.0) -> StreamSource:
        """A shard directory (ours or an img2dataset download; images travel inside the shards)."""
        shard_set = open_shards(path)
        if shard_set.corpus is not None and shard_set.corpus != corpus:
            raise ValueError(f"source {name!r}: {path} holds a {shard_set.corpus!r} corpus, not {corpus!r}")
        if shard_set.layout == "img2dataset" and corpus not in ("image_text", "image_only"):
            raise ValueError(f"source {name!r}: an img2dataset download ({path}) is an image_text or image_only corpus, not {corpus!r}")
        return cls(name, corpus, weight, shards=shard_set)

    @classmethod
    def from_records(cls, name: str, corpus: str, records: Sequence[Any], image_root: str | None, weight: float = 1.0) -> StreamSource:
        """Parsed records in memory (a small JSON-lines corpus) whose images are files under ``image_root``."""
        return cls(name, corpus, weight, image_root=image_root, records=records)

    @property
    def size(self) -> int:
        """Samples in the source."""
        return self.shards.samples if self.shards is not None else len(self.records)

    def part_sizes(self, lanes: int) -> list[int]:
        """Samples in each part (shards; or ``lanes`` parts of the records in memory)."""
        if self.shards is not None:
            return [s.samples for s in self.shards.shards]
        n = len(self.records)
        return [len(range(lane, n, lanes)) for lane in range(lanes)]

    def part_starts(self, lanes: int) -> list[int]:
        """Index (within the source) of each part's first sample (shards: cumulative counts)."""
        starts, total = [], 0
        for size in self.part_sizes(lanes):
            starts.append(total)
            total += size
        return starts

    def read(self, part: int, start: int, lanes: int, part_start: int) -> Iterator[Item]:
        """The items of ``part`` from its sample ``start`` on (``part_start``: see :meth:`part_starts`)."""
        if self.shards is None:
            for i in range(part + start * lanes, len(self.records), lanes):
                record, where = self.records[i], f"{self.name} record {i}"
                yield Item(record, self._file_bytes(record, where), self.first_index + i, where)
            return
        from xfm_pipeline.data.formats.pretrain import parse_sample

        path = str(self.shards.path(part))
        for offset, sample in enumerate(iter_shard(self.shards, part, start), start=start):
            where = f"{path} sample {sample.key}"
            record = parse_sample(sample.record, self.corpus, path, sample.key, has_image=sample.image is not None)
            yield Item(record, sample.image, self.first_index + part_start + offset, where)

    def _file_bytes(self, record: Any, where: str) -> bytes | None:
        """The bytes of the image file a record names (None: no path; base64 data stays in the record)."""
        from xfm_pipeline.data.images import ImageLoadError
        from xfm_pipeline.data.paths import resolve_under_root

        relative = getattr(record, "image", None)
        if relative is None:
            return None
        if self.image_root is None:
            raise ImageLoadError(f"image {relative!r} is a path but source {self.name!r} has no image root ({where})")
        path = resolve_under_root(self.image_root, relative)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ImageLoadError(f"cannot read image {path} ({where}): {exc}") from exc

    def fingerprint(self) -> str:
        """What identifies the data (for run keys): the shard index's hash, or the records' count."""
        return self.shards.fingerprint() if self.shards is not None else f"{len(self.records)} records"
