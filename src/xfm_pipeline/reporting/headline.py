"""The headline metric of each task (its checkpoint-selection metric), on one percent scale.

``HEADLINE_METRIC`` mirrors each registered task's ``selection_metric`` (a test checks they agree) so
the report never imports the task modules (and torch). GLUE and ImageNet store fractions, the other
tasks percentages (CIDEr x100): :func:`headline` puts them all in percent for one bar chart.
"""

from __future__ import annotations

from typing import Any

from xfm_pipeline.metrics.glue import GLUE_MAIN_METRIC

# registered task name -> metric name (without the split prefix); glue_<t> tasks use GLUE_MAIN_METRIC[t]
HEADLINE_METRIC: dict[str, str] = {
    "vqa": "vqa_acc",
    "captioning": "cider",
    "retrieval": "r_mean",
    "nlvr": "nlvr_acc",
    "grounding": "grounding_acc",
    "imagenet": "top1",
    "imagenet_linear_probe": "top1",
}
FRACTION_TASKS = frozenset({"imagenet", "imagenet_linear_probe"})  # and every glue_<t> task
SPLIT_PREFERENCE = ("test", "val")  # the first split that has the metric is shown


def headline_metric(task: str) -> str | None:
    """The headline metric name of a registered task, None for an unknown one."""
    if task.startswith("glue_"):
        return GLUE_MAIN_METRIC.get(task.removeprefix("glue_"))
    return HEADLINE_METRIC.get(task)


def is_fraction(task: str) -> bool:
    """Whether ``task`` stores its metrics as fractions (GLUE, ImageNet) rather than percentages."""
    return task.startswith("glue_") or task in FRACTION_TASKS


def headline(task: str, metrics: dict[str, Any] | None, in_percent: bool = False) -> tuple[str, float] | None:
    """``("<split>/<metric>", value in percent)`` of ``task``'s headline metric, or None when absent.

    The split is ``test`` when present, else ``val``, else the first (sorted) split that has it.
    ``in_percent``: ``metrics`` are already in percent (the results-table rows), not as stored.
    """
    name = headline_metric(task)
    if not name or not metrics:
        return None
    found = {k.split("/", 1)[0]: v for k, v in metrics.items() if "/" in k and k.split("/", 1)[1] == name}
    found = {s: v for s, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not found:
        return None
    split = next((s for s in SPLIT_PREFERENCE if s in found), sorted(found)[0])
    value = float(found[split]) * (100.0 if is_fraction(task) and not in_percent else 1.0)
    return f"{split}/{name}", value
