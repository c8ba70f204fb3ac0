"""A check table: per-record derived columns of one dataset plus the expectations asserted on them.

Great Expectations validates a pandas frame column by column. Record-level facts it cannot compute
itself (a field's JSON type, whether an image file decodes, where a box ends relative to the image)
are computed here first, one column per fact, and each :class:`Check` becomes one GX expectation on
one column. Conventions for the derived columns:

* ``<field>__type``: the JSON type name of a field ("string", "integer", "array of strings",
  "missing", ...), asserted with ``expect_column_values_to_be_in_set``;
* ``<thing>__<problem>`` error columns: None when fine, else a message saying what is wrong,
  asserted with ``expect_column_values_to_be_null``;
* value columns (ids, labels, lengths, box geometry) hold a value only when the field has the right
  type, None otherwise, so a wrong type is reported once (GX skips nulls in value checks).

The frame's index is the record index, so GX's ``unexpected_index_list`` names records directly.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Expectations a Check may use: map expectations (per record) and the one table expectation.
MAP_EXPECTATIONS = (
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_null",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_unique",
)
TABLE_EXPECTATIONS = ("expect_table_row_count_to_be_between",)


class _Missing:
    """Marks a field absent from its record (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Check:
    """One expectation on one derived column, with the words a user reads when it fails."""

    expectation: str  # GX expectation type, e.g. "expect_column_values_to_be_null"
    column: str | None  # derived column; None for table expectations
    description: str  # what must hold, e.g. "image file decodes fully"
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra GX arguments (value_set, min_value, ...)
    context: str | None = None  # optional column quoted in per-record reasons (e.g. the box and image size)

    def __post_init__(self) -> None:
        if self.expectation not in MAP_EXPECTATIONS + TABLE_EXPECTATIONS:
            raise ValueError(f"unsupported expectation {self.expectation!r}")
        if (self.column is None) != (self.expectation in TABLE_EXPECTATIONS):
            raise ValueError(f"{self.expectation} needs {'no' if self.column is None else 'a'} column")

    @property
    def label(self) -> str:
        """``expectation(column)``, how a failed expectation is named in messages."""
        return f"{self.expectation}({self.column})" if self.column else self.expectation


class CheckTable:
    """Derived columns and checks of one dataset (one validation unit)."""

    def __init__(self, suite: str, n_records: int):
        self.suite = suite  # expectation-suite name: the format, e.g. "vqa"
        self.n_records = n_records
        self.columns: dict[str, list[Any]] = {}
        self.checks: list[Check] = []
        # Per record: identities of the images it uses ("path:/abs/x.jpg", "sha256:...").
        self.image_keys: list[set[str]] = [set() for _ in range(n_records)]
        # Per record: its split (None when the dataset has no splits or the record's split is invalid).
        self.splits: list[str | None] = [None] * n_records

    def add_column(self, name: str, values: Sequence[Any]) -> None:
        """Add a derived column (one value per record)."""
        if len(values) != self.n_records:
            raise ValueError(f"column {name!r} has {len(values)} values for {self.n_records} records")
        if name in self.columns:
            raise ValueError(f"column {name!r} added twice to suite {self.suite!r}")
        self.columns[name] = list(values)

    def check(self, expectation: str, column: str | None, description: str, *, context: str | None = None, **kwargs: Any) -> None:
        """Add one check (a future GX expectation) on an existing column."""
        if column is not None and column not in self.columns:
            raise ValueError(f"check on unknown column {column!r}")
        if context is not None and context not in self.columns:
            raise ValueError(f"context column {context!r} unknown")
        new = Check(expectation, column, description, dict(kwargs), context)
        if any(c.expectation == new.expectation and c.column == new.column for c in self.checks):
            raise ValueError(f"duplicate check {new.label} in suite {self.suite!r}")
        self.checks.append(new)

    def add(
        self,
        name: str,
        values: Sequence[Any],
        expectation: str,
        description: str,
        *,
        context: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Add a derived column and one check on it."""
        self.add_column(name, values)
        self.check(expectation, name, description, context=context, **kwargs)

    def frame(self):
        """The derived columns as a pandas frame indexed by record index (what GX validates)."""
        import pandas as pd

        numeric = {c.column for c in self.checks if c.expectation == "expect_column_values_to_be_between"}
        data = {}
        for name, values in self.columns.items():
            if name in numeric:  # range checks compare floats; None -> NaN, which GX skips
                data[name] = pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
            else:  # ids, labels, type names, messages: compared as Python objects
                data[name] = pd.Series(values, dtype="object")
        return pd.DataFrame(data, index=pd.RangeIndex(self.n_records))


# ---------------------------------------------------------------------------------------------
# Field access and JSON types


def get(record: Any, key: str) -> Any:
    """``record[key]``, or MISSING when ``record`` is not an object or lacks the key."""
    if isinstance(record, dict):
        return record.get(key, MISSING)
    return MISSING


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not _is_nan(value)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def is_int(value: Any) -> bool:
    """A JSON integer (bool excluded)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def json_type(value: Any) -> str:
    """The JSON type name of ``value`` ("missing" for an absent field, "null" for None)."""
    if value is MISSING:
        return "missing"
    if value is None or _is_nan(value):
        return "null"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "boolean"
    if is_int(value):
        return "integer"
    if isinstance(value, numbers.Real):
        return "number" if math.isfinite(value) else "non-finite number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object of strings" if value and all(isinstance(v, str) for v in value.values()) else "object"
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        items = list(value)
        if not items:
            return "empty array"
        if all(isinstance(v, str) for v in items):
            return "array of strings"
        if all(_is_real(v) for v in items):
            return "array of numbers"
        return "array"
    return type(value).__name__


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "a list",
    "array of strings": "a list of strings",
    "array of numbers": "a list of numbers",
    "object": "an object",
    "object of strings": "a {key: string} object",
}


def require_type(table: CheckTable, records: Sequence[Any], key: str, allowed: Iterable[str], *, optional: bool = False) -> list[Any]:
    """Check that field ``key`` is present (unless ``optional``) with a JSON type in ``allowed``.

    Records that are not objects get None (their ``record__type`` check reports them once).

    Returns:
        The field values of records whose field has an allowed type, None elsewhere.
    """
    allowed = sorted(set(allowed) | ({"missing"} if optional else set()))
    types = [json_type(get(r, key)) if isinstance(r, dict) else None for r in records]
    what = " or ".join(_TYPE_WORDS.get(a, a) for a in allowed if a != "missing")
    desc = f"field '{key}' is {'absent or ' if optional else 'present and '}{what}"
    table.add(f"{_col(key)}__type", types, "expect_column_values_to_be_in_set", desc, value_set=allowed)
    return [get(r, key) if t in allowed and t != "missing" else None for r, t in zip(records, types)]


def require_object(table: CheckTable, records: Sequence[Any]) -> None:
    """Check that every record is a JSON object."""
    types = ["object" if isinstance(r, dict) else json_type(r) for r in records]
    table.add("record__type", types, "expect_column_values_to_be_in_set", "record is a JSON object", value_set=["object"])


def _col(key: str) -> str:
    """A GX-friendly column stem for a field name ("#1 String" -> "1_string")."""
    out = "".join(ch.lower() if ch.isalnum() else "_" for ch in key).strip("_")
    while "__" in out:
        out = out.replace("__", "_")
    return out or "field"


column_stem = _col


# ---------------------------------------------------------------------------------------------
# Generic checks


def check_text(table: CheckTable, key: str, values: Sequence[Any], min_chars: int, max_chars: int, *, many: bool = False) -> None:
    """Texts are non-blank with ``min_chars``..``max_chars`` characters (after stripping whitespace).

    ``values`` holds type-checked values (None: skipped). With ``many`` a value may be a list of
    texts (a single string counts as a list of one): the checks become "at least one text",
    "shortest text long enough" and "longest text short enough".
    """
    stem = _col(key)
    if not many:
        lengths = [len(v.strip()) if isinstance(v, str) else None for v in values]
        table.add(
            f"{stem}__chars",
            lengths,
            "expect_column_values_to_be_between",
            f"'{key}' has {min_chars} to {max_chars} non-blank characters",
            min_value=min_chars,
            max_value=max_chars,
        )
        return
    texts = [text_items(v) if v is not None else None for v in values]
    table.add(
        f"{stem}__count",
        [len(t) if t is not None else None for t in texts],
        "expect_column_values_to_be_between",
        f"'{key}' holds at least one text",
        min_value=1,
    )
    shortest = [min((len(s.strip()) for s in t), default=None) if t is not None else None for t in texts]
    longest = [max((len(s.strip()) for s in t), default=None) if t is not None else None for t in texts]
    table.add(
        f"{stem}__shortest_chars",
        shortest,
        "expect_column_values_to_be_between",
        f"every text in '{key}' has at least {min_chars} non-blank characters",
        min_value=min_chars,
    )
    table.add(
        f"{stem}__longest_chars",
        longest,
        "expect_column_values_to_be_between",
        f"every text in '{key}' has at most {max_chars} characters",
        max_value=max_chars,
    )


# A text field of the readers' ``Fields.texts``: a string, a list of strings or {language: string}.
TEXTS = ("string", "array of strings", "object of strings")


def text_items(value: Any) -> list[str]:
    """The texts of a ``TEXTS`` value (strings of a list, values of an object in key order)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [value[k] for k in sorted(value) if isinstance(value[k], str)]
    return [v for v in value if isinstance(v, str)]


def check_unique(table: CheckTable, key: str, values: Sequence[Any], what: str | None = None) -> None:
    """Values (already type-checked; None skipped) are unique within the dataset."""
    keys = [v if isinstance(v, (str, int)) and not isinstance(v, bool) else None for v in values]
    keys = [int(v) if is_int(v) else v for v in keys]
    table.add(
        f"{_col(key)}__key",
        keys,
        "expect_column_values_to_be_unique",
        f"{what or repr(key)} is unique within the dataset",
    )


def check_in_set(table: CheckTable, key: str, values: Sequence[Any], allowed: Iterable[Any], what: str | None = None) -> None:
    """Values (already type-checked; None skipped) are in ``allowed``."""
    allowed = list(allowed)
    shown = ", ".join(repr(a) for a in allowed)
    table.add(
        f"{_col(key)}__value",
        list(values),
        "expect_column_values_to_be_in_set",
        f"{what or repr(key)} is one of {shown}",
        value_set=allowed,
    )


def check_count(table: CheckTable, key: str, values: Sequence[Any], low: int, high: int | None = None) -> None:
    """Arrays (already type-checked) hold ``low``..``high`` items."""
    span = f"exactly {low}" if high == low else f"at least {low}" if high is None else f"{low} to {high}"
    table.add(
        f"{_col(key)}__count",
        [len(v) if v is not None else None for v in values],
        "expect_column_values_to_be_between",
        f"'{key}' holds {span} items",
        min_value=low,
        max_value=high,
    )


def check_no_errors(table: CheckTable, column: str, errors: Sequence[str | None], description: str, *, context: str | None = None) -> None:
    """An error column: None where ``description`` holds, the reason elsewhere."""
    table.add(column, list(errors), "expect_column_values_to_be_null", description, context=context)


def check_row_count(table: CheckTable, minimum: int = 1) -> None:
    """The dataset holds at least ``minimum`` records (a dataset-level expectation)."""
    description = f"the dataset holds at least {minimum} record(s)"
    table.check("expect_table_row_count_to_be_between", None, description, min_value=minimum)


def finite_box(value: Any) -> tuple[float, float, float, float] | None:
    """``[x, y, w, h]`` as four finite floats, or None."""
    if isinstance(value, (list, tuple)) and len(value) == 4 and all(_is_real(v) and math.isfinite(v) for v in value):
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    return None
