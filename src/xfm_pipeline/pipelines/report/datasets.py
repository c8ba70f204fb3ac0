"""The report pipeline's output dataset: an atomically written report directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError


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
