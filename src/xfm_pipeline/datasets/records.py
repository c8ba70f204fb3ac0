"""Conversions of catalog-loaded record collections (DataFrames or lists of dicts) to JSON-lines files."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def as_record_list(data: Any) -> list[dict[str, Any]]:
    """A pandas DataFrame (JSON-lines dataset) or a list of dicts -> list of dicts without NaN fillers."""
    if hasattr(data, "to_dict"):
        rows = data.to_dict(orient="records")
        return [{k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))} for row in rows]
    return list(data)


def records_to_jsonl(data: Any, path: str | Path) -> Path:
    """Write records as JSON lines atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as fh:
        for record in as_record_list(data):
            fh.write(json.dumps(record, default=_jsonable) + "\n")
    os.replace(tmp, path)
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
