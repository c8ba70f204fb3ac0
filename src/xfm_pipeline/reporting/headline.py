"""The headline metric of a pipeline (its task's checkpoint-selection metric), on one percent scale.

The metric name and whether it is stored as a fraction come from the task spec (``tasks.spec.TaskSpec``);
GLUE and ImageNet store fractions, the other tasks percentages (CIDEr x100): :func:`headline` puts them
all in percent for one bar chart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from xfm_pipeline.tasks.spec import PaperResult

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
    split = preferred_split(found)
    value = float(found[split]) * (100.0 if fraction and not in_percent else 1.0)
    return f"{split}/{metric}", value


def preferred_split(splits: Iterable[str]) -> str:
    """The split a headline is read from: ``test``, else ``val``, else the first in sorted order.

    Raises:
        ValueError: no split at all.
    """
    splits = sorted(splits)
    if not splits:
        raise ValueError("no split to choose from")
    return next((s for s in SPLIT_PREFERENCE if s in splits), splits[0])


def paper_number(paper: Mapping[str, PaperResult], key: str) -> PaperResult | None:
    """The published number of ``"<split>/<metric>"`` in a pipeline's ``paper`` table, or None.

    ``r_mean`` (retrieval's headline) is not printed in the paper: it is the mean of the six recalls
    ``txt_r1/5/10`` and ``img_r1/5/10`` when the table has all of them.
    """
    if key in paper:
        return paper[key]
    split, _, metric = key.rpartition("/")
    if metric != "r_mean":
        return None
    parts = [paper.get(f"{split}/{side}_r{k}") for side in ("txt", "img") for k in (1, 5, 10)]
    if any(p is None for p in parts):
        return None
    benchmark = parts[0].what.rsplit(" ", 1)[0]  # "COCO 5K TR@1" -> "COCO 5K"
    return PaperResult(sum(p.x4m for p in parts) / 6, sum(p.x1b for p in parts) / 6, f"{benchmark} mean of TR/IR@1,5,10")
