"""From GX results to per-record verdicts, and the quarantine policy applied to them.

GX's result is the source of truth: a record is bad exactly when it is in the
``unexpected_index_list`` of at least one failed expectation, and each such expectation becomes one
reason naming the expectation, the rule in words and the record's offending value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from xfm_pipeline.data.validation.suites import CheckResult
from xfm_pipeline.data.validation.table import CheckTable


class DataValidationError(RuntimeError):
    """Data violates its expectations under the ``fail`` policy (or cannot be validated at all)."""


@dataclass
class UnitOutcome:
    """Validation result of one unit (a dataset, or one GLUE partition)."""

    unit: str  # "vqa_train", "glue/CoLA/train"
    dataset: str  # owner of the policy, quarantine file and validated output: "vqa_train", "glue"
    catalog_entry: str
    source: str
    suite: str
    policy: str
    n_records: int
    locations: list[str]
    records: list[Any]
    reasons: dict[int, list[str]] = field(default_factory=dict)  # record index -> reasons (bad records only)
    expectations: list[dict[str, Any]] = field(default_factory=list)  # per expectation: success, counts
    dataset_errors: list[str] = field(default_factory=list)  # problems not attributable to a record
    seconds: float = 0.0
    data: Any = field(default=None, repr=False)  # the validated unit (containers.Unit): rebuilds the output

    @property
    def bad_indices(self) -> list[int]:
        """Indices of records that failed at least one expectation."""
        return sorted(self.reasons)

    @property
    def valid_indices(self) -> list[int]:
        """Indices of records that passed every expectation."""
        return [i for i in range(self.n_records) if i not in self.reasons]

    @property
    def blocking(self) -> bool:
        """The pipeline must stop: a dataset-level problem, or bad records under ``fail``."""
        return bool(self.dataset_errors) or (self.policy == "fail" and bool(self.reasons))

    def check_invariant(self) -> None:
        """Valid and bad records partition the input: nothing is dropped or duplicated."""
        valid, bad = self.valid_indices, self.bad_indices
        out_of_range = any(not 0 <= i < self.n_records for i in bad)
        if len(valid) + len(bad) != self.n_records or set(valid) & set(bad) or out_of_range:
            raise AssertionError(f"{self.unit}: {len(valid)} valid + {len(bad)} quarantined != {self.n_records} input records")

    def listing(self, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` bad records: index, location and reasons."""
        return [{"index": i, "location": self.locations[i], "reasons": self.reasons[i]} for i in self.bad_indices[:limit]]


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def judge(table: CheckTable, results: Sequence[CheckResult]) -> tuple[dict[int, list[str]], list[dict[str, Any]], list[str]]:
    """Per-record reasons, per-expectation summaries and dataset-level errors from GX results."""
    reasons: dict[int, list[str]] = {}
    summaries: list[dict[str, Any]] = []
    dataset_errors: list[str] = []
    for res in results:
        check = res.check
        summaries.append(
            {
                "expectation": check.expectation,
                "column": check.column,
                "description": check.description,
                "success": res.success,
                "element_count": res.element_count,
                "unexpected_count": res.unexpected_count,
                **({"observed_value": res.observed} if check.column is None else {}),
            }
        )
        if res.exception:
            dataset_errors.append(f"{check.label} could not be evaluated: {res.exception}")
            continue
        if res.success:
            continue
        if check.column is None:
            dataset_errors.append(f"{check.label}: {check.description} (observed {res.observed})")
            continue
        if len(res.unexpected_index) != res.unexpected_count:
            raise RuntimeError(f"{check.label}: GX listed {len(res.unexpected_index)} of {res.unexpected_count} failing records")
        values = table.columns[check.column]
        duplicates: dict[Any, list[int]] = {}
        if check.expectation == "expect_column_values_to_be_unique":
            for i in res.unexpected_index:
                duplicates.setdefault(values[i], []).append(i)
        for i in res.unexpected_index:
            value = values[i]
            if check.expectation == "expect_column_values_to_be_null":
                text = f"{check.label}: {check.description}: {value}"
            elif check.expectation == "expect_column_values_to_be_unique":
                others = [j for j in duplicates[value] if j != i]
                also = ", ".join(map(str, others[:5])) + (" ..." if len(others) > 5 else "")
                text = f"{check.label}: {check.description}; {_show(value)} is also used by record(s) {also}"
            else:
                text = f"{check.label}: {check.description}; got {_show(value)}"
            if check.context and table.columns[check.context][i] is not None:
                text += f" ({table.columns[check.context][i]})"
            reasons.setdefault(i, []).append(text)
    return reasons, summaries, dataset_errors


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def quarantine_lines(outcomes: Sequence[UnitOutcome]) -> str:
    """JSON lines of the bad records of ``outcomes``: unit, record index, location, record, reasons."""
    lines = []
    for outcome in outcomes:
        for i in outcome.bad_indices:
            entry = {
                "dataset": outcome.dataset,
                **({"unit": outcome.unit} if outcome.unit != outcome.dataset else {}),
                "index": i,
                "location": outcome.locations[i],
                "record": outcome.records[i],
                "reasons": outcome.reasons[i],
            }
            lines.append(json.dumps(entry, ensure_ascii=False, default=_jsonable))
    return "".join(line + "\n" for line in lines)
