"""The DVC metrics of the project: the few numbers a reader compares across runs, one small JSON per stage.

``dvc metrics show`` prints one table whose rows are metric files and whose columns are the union of their
(flattened) keys, so files with different keys make it wide. Every file here has few keys shared with the
others:

* ``<pipeline>.json`` (a fine-tune/eval pipeline): ``{split: headline metric}`` in percent, e.g.
  ``finetune_vqa.json`` = ``{"val": 47.33, "test": 45.53}`` (columns: the task splits);
* ``<stage>.json`` (a pretraining stage): ``{corpus: final loss}``, the last 50-step mean of each corpus'
  weighted total loss, e.g. ``pretrain.json`` = ``{"image_text": 6.79, "region_text": 7.36, ...}``.

Every metric of every split stays in ``data/08_reporting/metrics/<pipeline>.json`` (and ``results.json``);
:func:`dvc_scores` only picks from them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

METRIC_DIGITS = 2  # percent, as the report prints them
LOSS_DIGITS = 4


def task_scores(summary: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """pipeline -> ``{split: value}`` of its headline metric (every split that has it), for the pipelines of
    ``summary`` that ran and have one."""
    out: dict[str, dict[str, float]] = {}
    for entry in summary:
        if entry["value"] is None:
            continue
        name = entry["metric"].split("/", 1)[1]
        splits = {r["metric"].split("/", 1)[0]: r["value"] for r in rows if r["pipeline"] == entry["pipeline"] and r["metric"].split("/", 1)[-1] == name}
        out[entry["pipeline"]] = {split: round(value, METRIC_DIGITS) for split, value in splits.items()}
    return out


def final_losses(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """``{corpus: last}`` of the ``"<corpus>/loss"`` entries of a pretraining stage's ``losses`` summary."""
    losses = (metrics or {}).get("losses") or {}
    return {key.split("/", 1)[0]: round(value["last"], LOSS_DIGITS) for key, value in sorted(losses.items()) if key.endswith("/loss") and "last" in value}


def dvc_scores(summary: list[dict[str, Any]], rows: list[dict[str, Any]], pretraining: Mapping[str, Mapping[str, Any] | None]) -> dict[str, str]:
    """``{file name: JSON text}`` of the DVC metrics directory.

    Args:
        summary: the report's summary rows (:func:`xfm_pipeline.reporting.summary.summary_rows`).
        rows: the results rows (every metric of every split, percent).
        pretraining: stage name -> its metrics (``{"losses": {"<corpus>/loss": {"last": x}, ...}}``); a stage
            without losses gets no file.
    """
    files = {f"{stage}.json": final_losses(metrics) for stage, metrics in pretraining.items()}
    files.update({f"{name}.json": scores for name, scores in task_scores(summary, rows).items()})
    return {name: json.dumps(values, indent=2) + "\n" for name, values in files.items() if values}
