"""Resolution of paths read from annotation files: they never escape their declared root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class UnsafePathError(ValueError):
    """An annotation path is absolute or escapes its declared root."""


def resolve_under_root(root: str | Path, relative: str) -> Path:
    """Join ``relative`` (from an annotation file) to ``root`` and check it stays inside ``root``.

    Raises:
        UnsafePathError: ``relative`` is empty, absolute, contains ``..`` or resolves (through
            symlinks too) outside ``root``.
    """
    if not isinstance(relative, str) or not relative.strip():
        raise UnsafePathError(f"empty or non-string path {relative!r}")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or (len(relative) > 1 and relative[1] == ":"):
        raise UnsafePathError(f"absolute path {relative!r} is not allowed; paths are relative to the image root {root}")
    if ".." in pure.parts:
        raise UnsafePathError(f"path {relative!r} contains '..' and could escape the image root {root}")
    root_resolved = Path(root).resolve()
    candidate = (root_resolved / Path(*pure.parts)).resolve()
    if root_resolved != candidate and root_resolved not in candidate.parents:
        raise UnsafePathError(f"path {relative!r} resolves to {candidate}, outside the image root {root_resolved}")
    return candidate
