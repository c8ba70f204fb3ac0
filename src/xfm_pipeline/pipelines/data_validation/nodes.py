"""Nodes of the data_validation pipeline: parameter parsing and calls into ``xfm_pipeline.data.validation``."""

from __future__ import annotations

from typing import Any

from xfm_pipeline.config import from_dict
from xfm_pipeline.data.validation import (
    UnitOutcome,
    ValidationParams,
    build_report,
    enforce_policies,
    render_html,
)
from xfm_pipeline.data.validation import index_evaluation_images as _index_evaluation_images
from xfm_pipeline.data.validation import publish_task as _publish_task
from xfm_pipeline.data.validation import validate_task as _validate_task


def _params(params: dict[str, Any] | ValidationParams) -> ValidationParams:
    return from_dict(ValidationParams, params, path="data_validation")


def index_evaluation_images(params: dict[str, Any], images: Any = None, **raw: Any) -> dict[str, str]:  # noqa: ARG001
    """Identity (resolved path, content hash) of every evaluation image -> the first record using it.

    Args:
        params: ``params:data_validation``.
        images: the ``shapes_world_images`` listing. Image files are read from ``params.image_root``;
            this input only makes Kedro run the node after the images are written.
        **raw: the raw evaluation datasets by short name (``vqa_test=...``).
    """
    return _index_evaluation_images(raw, _params(params))


def validate_task(
    task: str,
    params: dict[str, Any],
    evaluation_index: dict[str, str] | None = None,
    images: Any = None,  # noqa: ARG001 - orders the node after the image files (see index_evaluation_images)
    **raw: Any,
) -> list[UnitOutcome]:
    """Validate the raw datasets of ``task`` (keyword arguments by short name); one outcome per unit."""
    return _validate_task(task, raw, _params(params), evaluation_index)


def report_validation(params: dict[str, Any], **outcomes: list[UnitOutcome]) -> tuple[dict[str, Any], str]:
    """The validation report as JSON and as an HTML page (written before the policy gate can stop the run)."""
    p = _params(params)
    report = build_report([o for task in outcomes.values() for o in task], p.max_listed_records)
    return report, render_html(report)


def enforce_validation_policies(report: dict[str, Any]) -> dict[str, Any]:
    """Stop the run with one message naming every bad record of every ``fail``-policy dataset.

    Returns:
        The report summary: the token that lets the publishing nodes run.
    """
    return enforce_policies(report)


def publish_task(task: str, gate: dict[str, Any], outcomes: list[UnitOutcome]) -> dict[str, Any]:  # noqa: ARG001
    """Validated outputs (raw format, valid records only) and quarantine files of ``task``.

    ``gate`` (the policy gate's summary) is not used: it makes Kedro publish only after the gate passed.
    """
    return _publish_task(task, outcomes)
