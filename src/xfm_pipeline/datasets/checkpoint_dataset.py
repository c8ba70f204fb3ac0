"""A Kedro dataset for X-FM checkpoint directories (``model.safetensors`` + ``config.json`` + tokenizer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


class XFMCheckpointDataset(AbstractDataset):
    """Loads and saves :class:`xfm_pipeline.model.checkpoint.Checkpoint` objects as directories.

    Example catalog entry::

        init_checkpoint:
          type: xfm_pipeline.datasets.XFMCheckpointDataset
          path: data/06_models/init
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def _load(self):
        from xfm_pipeline.model.checkpoint import Checkpoint, load_checkpoint_tokenizer, load_pretrained, read_checkpoint_config

        meta = read_checkpoint_config(self._path)
        tokenizer = load_checkpoint_tokenizer(self._path) if (self._path / "tokenizer").is_dir() else None
        return Checkpoint(model=load_pretrained(self._path), tokenizer=tokenizer, extra=meta.get("extra", {}))

    def _save(self, data) -> None:
        from xfm_pipeline.model.checkpoint import save_pretrained

        save_pretrained(data.model, self._path, tokenizer=data.tokenizer, extra=data.extra)

    def _exists(self) -> bool:
        return (self._path / "config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
