"""A Kedro dataset for X-FM checkpoint directories (``model.safetensors`` + ``config.json`` + tokenizer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


class XFMCheckpointDataset(AbstractDataset):
    """An X-FM checkpoint directory, passed between nodes by path.

    ``load()`` checks the directory is an X-FM checkpoint and returns its path (a node or job that needs
    the model calls ``model.checkpoint.load_pretrained`` on it, so the weights are read once, where they
    are used). ``save()`` takes either a :class:`~xfm_pipeline.model.checkpoint.Checkpoint` (written) or
    the path of a checkpoint directory written elsewhere, e.g. a training run's final checkpoint (its model
    files copied, not the optimizer state):
    in both cases the weights are written once, atomically.

    Example catalog entry::

        init_checkpoint:
          type: xfm_pipeline.datasets.XFMCheckpointDataset
          path: data/06_models/init
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def _load(self) -> str:
        from xfm_pipeline.model.checkpoint import read_checkpoint_config

        read_checkpoint_config(self._path)  # raises CheckpointError naming the directory when it is not one
        return str(self._path)

    def _save(self, data) -> None:
        from xfm_pipeline.datasets.directory_dataset import copy_model_files
        from xfm_pipeline.model.checkpoint import Checkpoint, read_checkpoint_config, save_pretrained

        if isinstance(data, Checkpoint):
            save_pretrained(data.model, self._path, tokenizer=data.tokenizer, extra=data.extra)
            return
        source = Path(data)
        read_checkpoint_config(source)
        if source.resolve() != self._path.resolve():
            copy_model_files(source, self._path)

    def _exists(self) -> bool:
        return (self._path / "config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
