"""A Kedro dataset of a pretraining corpus stored as WebDataset tar shards (:mod:`xfm_pipeline.data.shards`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


class WebDatasetShards(AbstractDataset):
    """Saving :class:`~xfm_pipeline.data.shards.ShardSamples` writes ``path/shard-*.tar`` + ``index.json``
    atomically (the old directory is replaced whole); loading returns the stream's sources: this directory
    with ``weight``, then every ``mixed_with`` source, as ``[{"name", "path", "weight", "image_root"?}]``.
    ``path`` may also be an img2dataset download (``*.tar`` without ``index.json``), read as it is.

    ``mixed_with`` adds sources read alongside (never written): ``{name: {path, weight, image_root?}}``
    where ``path`` is another shard directory (e.g. an img2dataset download) or a JSON-lines file of
    records whose ``image`` paths are under ``image_root`` (held in memory: small corpora only).
    The pretraining job mixes a stream's sources by weight (:mod:`xfm_pipeline.training.streams`).
    """

    def __init__(self, path: str, weight: float = 1.0, mixed_with: dict[str, dict[str, Any]] | None = None, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self._weight = float(weight)
        self._mixed = dict(mixed_with or {})
        for name, source in self._mixed.items():
            unknown = sorted(set(source) - {"path", "weight", "image_root"})
            if "path" not in source or unknown:
                raise ValueError(f"mixed_with.{name}: needs 'path' and may have 'weight', 'image_root' (unknown: {unknown})")
        self.metadata = metadata

    def _load(self) -> list[dict[str, Any]]:
        if not self._exists():
            raise FileNotFoundError(f"no shards at {self._path} (neither index.json nor *.tar): run the pipeline that writes them first")
        sources = [{"name": self._path.name, "path": str(self._path), "weight": self._weight}]
        for name, source in self._mixed.items():
            sources.append({"name": name, "path": str(source["path"]), "weight": float(source.get("weight", 1.0)), "image_root": source.get("image_root")})
        return sources

    def _save(self, data: Any) -> None:
        from xfm_pipeline.data.shards import ShardSamples
        from xfm_pipeline.model.checkpoint import atomic_directory_write

        if not isinstance(data, ShardSamples):
            raise TypeError(f"{self._path}: expected ShardSamples to write as shards, got {type(data).__name__}")
        atomic_directory_write(self._path, data.write)

    def _exists(self) -> bool:
        from xfm_pipeline.data.shards import INDEX

        return (self._path / INDEX).is_file() or any(self._path.glob("*.tar"))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "weight": self._weight, "mixed_with": sorted(self._mixed)}
