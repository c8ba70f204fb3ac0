"""Great Expectations: check tables become expectation suites, validated on a pandas batch.

GX 1.x flow: an ephemeral context, a pandas data source with one dataframe asset and a
whole-dataframe batch definition (created once per process and reused), then
``batch.validate(suite, result_format=COMPLETE)``. COMPLETE results carry
``unexpected_index_list``: the frame index, i.e. the record index, of every failing record.
GX is imported inside functions: importing it takes seconds.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from xfm_pipeline.data.validation.table import Check, CheckTable

_GX_LOCK = threading.Lock()  # one validation at a time (GX's context is not thread-safe)
_INIT_LOCK = threading.Lock()
_GX_STATE: dict[str, Any] = {}


@dataclass
class CheckResult:
    """GX's verdict on one check."""

    check: Check
    success: bool
    element_count: int | None  # records evaluated (None for table expectations)
    unexpected_count: int
    unexpected_index: list[int] = field(default_factory=list)  # record indices that failed
    observed: Any = None  # table expectations: the observed value
    exception: str | None = None  # GX could not evaluate the expectation


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (the report is JSON)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, dict, str)) else value


def _class_name(expectation_type: str) -> str:
    return "".join(part.capitalize() for part in expectation_type.split("_"))


def build_suite(table: CheckTable):
    """The GX expectation suite of ``table``: one expectation per check, ``meta.check`` = its position."""
    _batch_definition()  # suites need an active data context
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=table.suite)
    for position, check in enumerate(table.checks):
        cls = getattr(gxe, _class_name(check.expectation))
        kwargs = dict(check.kwargs)
        if check.column is not None:
            kwargs["column"] = check.column
        suite.add_expectation(cls(**kwargs, meta={"check": position, "description": check.description}))
    if len(suite.expectations) != len(table.checks):  # GX merges identical expectations
        raise RuntimeError(f"suite {table.suite!r}: {len(table.checks)} checks became {len(suite.expectations)} expectations")
    return suite


def _batch_definition():
    """The process-wide ephemeral context's whole-dataframe batch definition (created once)."""
    with _INIT_LOCK:
        return _init_batch_definition()


def _init_batch_definition():
    if "batch_definition" not in _GX_STATE:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        asset = context.data_sources.add_pandas("xfm_validation").add_dataframe_asset("records")
        _GX_STATE["context"] = context
        _GX_STATE["batch_definition"] = asset.add_batch_definition_whole_dataframe("all_records")
    return _GX_STATE["batch_definition"]


def run_checks(table: CheckTable) -> list[CheckResult]:
    """Validate ``table`` with GX; one result per check, in check order."""
    frame = table.frame()
    with _GX_LOCK:
        suite = build_suite(table)
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    results: list[CheckResult | None] = [None] * len(table.checks)
    for res in outcome.results:
        position = res.expectation_config.meta["check"]
        info = res.result or {}
        exc = res.exception_info or {}
        message = exc.get("exception_message") if exc.get("raised_exception") else None
        results[position] = CheckResult(
            check=table.checks[position],
            success=bool(res.success),
            element_count=info.get("element_count"),
            unexpected_count=int(info.get("unexpected_count") or 0),
            unexpected_index=[int(i) for i in info.get("unexpected_index_list") or []],
            observed=_plain(info.get("observed_value")),
            exception=message,
        )
    missing = [table.checks[i].label for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"GX returned no result for {missing} of suite {table.suite!r}")
    return results  # type: ignore[return-value]
