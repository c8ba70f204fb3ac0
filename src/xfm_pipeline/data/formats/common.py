"""Shared plumbing of the format readers: record errors, JSON/JSON-lines files, typed field access.

Every reader turns raw objects (what ``json.load`` or a Kedro dataset returns) into frozen dataclasses,
and every problem raises :class:`RecordError` naming the source (file or catalog entry), the record
index (0-based position, or the 1-based line of a JSON-lines/TSV file) and the problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any


class RecordError(ValueError):
    """A record of a dataset file is malformed."""

    def __init__(self, source: str, index: int | str | None, problem: str):
        self.source = str(source)
        self.index = index
        self.problem = problem
        where = f"{self.source}: record {index}" if index is not None else self.source
        super().__init__(f"{where}: {problem}")


def load_json(path: str | Path) -> Any:
    """Read a JSON file; a decoding error names the file, line and column."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise RecordError(str(path), None, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc


def jsonl_files(path: str | Path) -> list[Path]:
    """The JSON-lines files of a corpus: ``path`` itself, or the sorted ``*.jsonl`` shards of a directory.

    Raises:
        FileNotFoundError: the path does not exist or a directory holds no ``*.jsonl`` file.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
        if not files:
            raise FileNotFoundError(f"no *.jsonl shards in directory {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"JSON-lines corpus {path} does not exist")
    return [path]


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Yield ``(file, line number, object)`` for every non-blank line of a file or directory of shards."""
    for file in jsonl_files(path):
        with file.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RecordError(str(file), f"line {line_no}", f"invalid JSON: {exc.msg}") from exc
                yield str(file), line_no, obj


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_objects(data: Any, source: str) -> list[dict[str, Any]]:
    """Raw records as a list of dicts, from a JSON list or a pandas DataFrame (JSON-lines catalog entries).

    DataFrame cells that are null (``None``/``NaN``, i.e. the field was absent in that line) are dropped,
    so a record read through pandas looks like the line it came from.
    """
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        rows = data.to_dict(orient="records")
        return [{k: v for k, v in row.items() if not _is_null(v)} for row in rows]
    if isinstance(data, dict):
        raise RecordError(source, None, "expected a list of records, got a JSON object")
    if not isinstance(data, (list, tuple)):
        raise RecordError(source, None, f"expected a list of records, got {type(data).__name__}")
    return list(data)


class Fields:
    """Typed, error-reporting access to the fields of one raw record."""

    def __init__(self, obj: Any, source: str, index: int | str):
        self.source = source
        self.index = index
        if not isinstance(obj, dict):
            raise self.error(f"expected a JSON object, got {type(obj).__name__}")
        self.obj = obj

    def error(self, problem: str) -> RecordError:
        """A :class:`RecordError` for this record."""
        return RecordError(self.source, self.index, problem)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present and not null."""
        return not _is_null(self.obj.get(key))

    def _get(self, key: str, optional: bool) -> Any:
        if not self.has(key):
            if optional:
                return None
            raise self.error(f"missing field {key!r}")
        return self.obj[key]

    def string(self, key: str, optional: bool = False, allow_empty: bool = False) -> str | None:
        """A string field (non-empty unless ``allow_empty``)."""
        value = self._get(key, optional)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"field {key!r} must be a string, got {type(value).__name__}: {value!r}")
        if not allow_empty and not value.strip():
            raise self.error(f"field {key!r} is empty")
        return value

    def texts(self, key: str, optional: bool = False) -> tuple[str, ...]:
        """A text field that may be a string, a list of strings or a ``{lang: str}`` object; never empty."""
        value = self._get(key, optional)
        if value is None:
            return ()
        if isinstance(value, str):
            items = [value]
        elif isinstance(value, dict):
            items = [value[k] for k in sorted(value)]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise self.error(f"field {key!r} must be a string or a list of strings, got {type(value).__name__}")
        if not items:
            raise self.error(f"field {key!r} is an empty list")
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"field {key!r} item {i} must be a non-empty string, got {item!r}")
        return tuple(items)

    def integer(self, key: str, optional: bool = False) -> int | None:
        """An integer field (JSON numbers with an integral value are accepted)."""
        value = self._get(key, optional)
        if value is None:
            return None
        if isinstance(value, bool):
            raise self.error(f"field {key!r} must be an integer, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise self.error(f"field {key!r} must be an integer, got {type(value).__name__}: {value!r}")
        return value

    def identifier(self, key: str, optional: bool = False) -> int | str | None:
        """An identifier field: an integer or a non-empty string."""
        value = self._get(key, optional)
        if value is None:
            return None
        if isinstance(value, str):
            return self.string(key)
        return self.integer(key)

    def path(self, key: str, optional: bool = False) -> str | None:
        """A relative image path (absolute paths and ``..`` components are refused here already)."""
        value = self.string(key, optional)
        if value is None:
            return None
        return self.check_path(value, key)

    def check_path(self, value: str, key: str) -> str:
        """Refuse absolute paths and ``..`` in an annotation path (see ``data.paths.resolve_under_root``)."""
        pure = PurePosixPath(value.replace("\\", "/"))
        if pure.is_absolute() or (len(value) > 1 and value[1] == ":"):
            raise self.error(f"field {key!r}: absolute path {value!r}; image paths are relative to the image root")
        if ".." in pure.parts:
            raise self.error(f"field {key!r}: path {value!r} contains '..'")
        return value

    def box(self, key: str) -> tuple[float, float, float, float]:
        """A box ``[x, y, w, h]`` in pixels with finite values, ``w > 0`` and ``h > 0``."""
        value = self._get(key, optional=False)
        if not isinstance(value, (list, tuple)) or len(value) != 4:
            raise self.error(f"field {key!r} must be a list [x, y, w, h], got {value!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value):
            raise self.error(f"field {key!r} must hold 4 finite numbers, got {value!r}")
        x, y, w, h = (float(v) for v in value)
        if w <= 0 or h <= 0:
            raise self.error(f"field {key!r} has a non-positive width or height: {value!r}")
        return (x, y, w, h)


def parse_all(objects: Iterable[Any], source: str, parse_one) -> list:
    """Apply ``parse_one(Fields)`` to every object of a list, numbering records from 0."""
    return [parse_one(Fields(obj, source, i)) for i, obj in enumerate(objects)]
