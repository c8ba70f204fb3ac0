"""A Kedro dataset that stores a directory produced elsewhere (e.g. a selected checkpoint) at its own path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


def copy_model_files(source: Path, target: Path) -> None:
    """Copy the model files of checkpoint directory ``source`` (config, weights, tokenizer) into ``target``
    atomically: a training run's optimizer state and other scratch files stay behind. The weights are
    hard-linked when both sides are on one filesystem (checkpoint files are written once, never changed in
    place, so the run directory and the catalog share one copy on disk), and copied otherwise.

    Raises:
        NotADirectoryError: ``source`` is not a directory.
    """
    from xfm_pipeline.model.checkpoint import CONFIG_NAME, TOKENIZER_DIR, WEIGHTS_NAME, atomic_directory_write

    if not source.is_dir():
        raise NotADirectoryError(f"cannot save {source}: not a directory")

    def write(tmp: Path) -> None:
        for name in (CONFIG_NAME, WEIGHTS_NAME, TOKENIZER_DIR):
            path = source / name
            if path.is_dir():
                shutil.copytree(path, tmp / name)
            elif name == WEIGHTS_NAME and path.is_file():
                _link_or_copy(path, tmp / name)
            elif path.is_file():
                shutil.copy2(path, tmp / name)

    atomic_directory_write(target, write)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not supported
        shutil.copy2(source, target)


class DirectoryDataset(AbstractDataset):
    """Saving a checkpoint directory's path copies its model files here atomically; loading returns this path."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def _load(self) -> str:
        if not self._path.is_dir():
            raise FileNotFoundError(f"{self._path} does not exist")
        return str(self._path)

    def _save(self, data: str) -> None:
        copy_model_files(Path(data), self._path)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
