"""The headline metric of a pipeline (its task's checkpoint-selection metric), on one percent scale.

The metric name and whether it is stored as a fraction come from the task spec (``tasks.spec.TaskSpec``);
GLUE and ImageNet store fractions, the other tasks percentages (CIDEr x100): :func:`headline` puts them
all in percent for one bar chart.
"""

from __future__ import annotations

from typing import Any

SPLIT_PREFERENCE = ("test", "val")  # the first split that has the metric is shown


def headline(metric: str | None, metrics: dict[str, Any] | None, fraction: bool = False, in_percent: bool = False) -> tuple[str, float] | None:
    """``("<split>/<metric>", value in percent)`` of ``metric`` in a pipeline's flat ``metrics``, or None.

    The split is ``test`` when present, else ``val``, else the first (sorted) split that has it.
    ``fraction``: the task stores fractions (x100 unless ``in_percent``: already percent, as the
    results-table rows are).
    """
    if not metric or not metrics:
        return None
    found = {k.split("/", 1)[0]: v for k, v in metrics.items() if "/" in k and k.split("/", 1)[1] == metric}
    found = {s: v for s, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not found:
        return None
    split = next((s for s in SPLIT_PREFERENCE if s in found), sorted(found)[0])
    value = float(found[split]) * (100.0 if fraction and not in_percent else 1.0)
    return f"{split}/{metric}", value
