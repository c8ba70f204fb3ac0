"""Data validation with Great Expectations: one expectation suite per record format.

Flow for one task (``validate.validate_task``): raw catalog data -> units (``containers``) ->
per-record derived columns and checks (``formats``, ``image_checks``, ``table``) -> cross-dataset
checks (``crosschecks``) -> GX suite validated on the derived frame (``suites``) -> per-record
reasons and the fail/quarantine policy (``outcome``) -> report and gate (``report``) -> validated
outputs and quarantine files (``validate.publish_task``). No Kedro or MLflow imports here.
"""

from xfm_pipeline.data.validation.config import TextLimits, ValidationParams
from xfm_pipeline.data.validation.outcome import DataValidationError, UnitOutcome
from xfm_pipeline.data.validation.registry import DATASETS, TASKS, DatasetSpec, evaluation_datasets, task_datasets
from xfm_pipeline.data.validation.report import build_report, enforce_policies, failure_message, render_html
from xfm_pipeline.data.validation.validate import index_evaluation_images, publish_task, validate_task

__all__ = [
    "DATASETS",
    "TASKS",
    "DataValidationError",
    "DatasetSpec",
    "TextLimits",
    "UnitOutcome",
    "ValidationParams",
    "build_report",
    "enforce_policies",
    "evaluation_datasets",
    "failure_message",
    "index_evaluation_images",
    "publish_task",
    "render_html",
    "task_datasets",
    "validate_task",
]
