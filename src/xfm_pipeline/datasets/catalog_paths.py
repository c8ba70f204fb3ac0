"""Where a catalog entry lives on disk."""

from __future__ import annotations

from pathlib import Path


def dataset_path(catalog, name: str) -> Path | None:
    """The file or directory of catalog entry ``name`` (dataset factories resolved), or None for an entry with
    no path (parameters, memory datasets) or an unknown name."""
    try:
        dataset = catalog.get(name) if hasattr(catalog, "get") else catalog._get_dataset(name)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - params and memory datasets have no path
        return None
    for attr in ("_filepath", "_path"):
        value = getattr(dataset, attr, None)
        if value is not None:
            return Path(str(value))
    return None
