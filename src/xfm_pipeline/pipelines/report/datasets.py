"""Datasets of the report pipeline: tolerant JSON inputs and an atomically written report directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class OptionalJSONDataset(AbstractDataset[None, Any]):
    """A local JSON file read by the report: ``load()`` gives None when the file does not exist.

    The report lists what is None as "not run" instead of failing on the first pipeline that has not
    been run. Read-only: the pipelines that produce the file save it through their own catalog entry.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> Any:
        if not self._filepath.is_file():
            return None
        with open(self._filepath, encoding="utf-8") as fh:
            return json.load(fh)

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._filepath}: OptionalJSONDataset is read-only (the producing pipeline saves it)")

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "missing_ok": True}


class ReportDirectoryDataset(AbstractDataset[dict[str, Any], dict[str, bytes]]):
    """A directory of report files, saved as ``{relative path: bytes or str}`` all at once.

    The files are written into a temporary sibling directory that is renamed into place
    (:func:`xfm_pipeline.model.checkpoint.atomic_directory_write`): after a crash the previous report is
    intact, never half replaced, and files of an older report do not linger. Relative paths may not
    escape the directory. ``load()`` returns ``{relative path: bytes}``.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, bytes]:
        if not self._path.is_dir():
            raise DatasetError(f"{self._path} does not exist")
        return {f.relative_to(self._path).as_posix(): f.read_bytes() for f in sorted(self._path.rglob("*")) if f.is_file()}

    def save(self, data: dict[str, Any]) -> None:
        from xfm_pipeline.data.paths import UnsafePathError, resolve_under_root
        from xfm_pipeline.model.checkpoint import atomic_directory_write

        if not isinstance(data, dict) or not data:
            raise DatasetError(f"{self._path}: expected a non-empty dict of relative path -> bytes/str")

        def write(tmp: Path) -> None:
            for name, content in data.items():
                try:
                    target = resolve_under_root(tmp, name)
                except UnsafePathError as exc:
                    raise DatasetError(f"{self._path}: file name {name!r} escapes the report directory") from exc
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, str):
                    target.write_text(content, encoding="utf-8")
                elif isinstance(content, (bytes, bytearray)):
                    target.write_bytes(bytes(content))
                else:
                    raise DatasetError(f"{self._path}/{name}: expected bytes or str, got {type(content).__name__}")

        atomic_directory_write(self._path, write)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
