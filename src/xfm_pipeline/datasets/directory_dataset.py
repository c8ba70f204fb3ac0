"""A Kedro dataset that stores a directory produced elsewhere (e.g. a selected checkpoint) at its own path."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


class DirectoryDataset(AbstractDataset):
    """Saving a directory path copies that directory here atomically; loading returns this path."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def _load(self) -> str:
        if not self._path.is_dir():
            raise FileNotFoundError(f"{self._path} does not exist")
        return str(self._path)

    def _save(self, data: str) -> None:
        from xfm_pipeline.model.checkpoint import atomic_directory_write

        source = Path(data)
        if not source.is_dir():
            raise NotADirectoryError(f"cannot save {source}: not a directory")
        atomic_directory_write(self._path, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True))

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
