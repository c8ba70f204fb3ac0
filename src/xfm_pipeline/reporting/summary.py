"""The report's opening table: one row per task pipeline with its headline metric, its blind baselines, the
gain from pretraining (the ablation) and the paper's number.

Every value is in percent, like the results rows (:func:`xfm_pipeline.reporting.table.results_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xfm_pipeline.reporting.headline import SPLIT_PREFERENCE, headline, paper_number, preferred_split
from xfm_pipeline.tasks.spec import PaperResult

RUN_ABLATION = "run `kedro run --pipeline ablation`"
NOT_IN_ABLATION = "not in the ablation"


def summary_rows(
    rows: list[dict[str, Any]],
    tasks: Mapping[str, tuple[str, Mapping[str, PaperResult]]],
    blind: Mapping[str, Mapping[str, list[dict[str, Any]]]],
    ablation: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """One row per pipeline of ``tasks``, in its order.

    Args:
        rows: the results rows (``{"pipeline", "metric": "<split>/<name>", "value"}``, percent).
        tasks: pipeline -> (headline metric name, the paper's numbers ``"<split>/<metric>" -> PaperResult``).
        blind: pipeline -> split -> blind baselines ``[{"name", "value"}]`` (:mod:`~xfm_pipeline.reporting.blind`).
        ablation: the checked ablation table, or None when the ablation has not been run.

    Returns:
        ``{"pipeline", "ran", "metric", "value", "blind", "gain_over_init", "gain_over_warmup", "ablation", "paper_4m",
        "paper_1.3b", "paper_setting"}``: ``metric`` is ``"<split>/<name>"`` (the test split when the pipeline
        has one, else validation) or the bare name when the pipeline has not run (``value`` None); ``blind``
        lists the baselines of that split; ``ablation`` is ``"ok"``, :data:`NOT_IN_ABLATION` or
        :data:`RUN_ABLATION`.
    """
    metrics: dict[str, dict[str, float]] = {}
    for row in rows:
        metrics.setdefault(row["pipeline"], {})[row["metric"]] = row["value"]
    by_pipeline = {t["pipeline"]: t for t in (ablation or {}).get("tasks", [])}
    out = []
    for name, (metric, paper) in tasks.items():
        found = headline(metric, metrics.get(name), in_percent=True)
        baselines = blind.get(name, {})
        if found:
            key, value = found
            split = key.split("/", 1)[0]
        else:
            value = None
            split = preferred_split(baselines) if baselines else SPLIT_PREFERENCE[0]
            key = metric
        ref = paper_number(paper, f"{split}/{metric}")
        task = by_pipeline.get(name)
        out.append(
            {
                "pipeline": name,
                "ran": name in metrics,
                "metric": key,
                "value": value,
                "blind": list(baselines.get(split, [])),
                "gain_over_init": task.get("gain_over_init") if task else None,
                "gain_over_warmup": task.get("gain_over_warmup") if task else None,
                "ablation": RUN_ABLATION if ablation is None else "ok" if task else NOT_IN_ABLATION,
                "paper_4m": ref.x4m if ref else None,
                "paper_1.3b": ref.x1b if ref else None,
                "paper_setting": ref.what if ref else None,
            }
        )
    return out


def strongest_blind(row: Mapping[str, Any]) -> float | None:
    """The highest blind baseline of a summary row, or None."""
    values = [b["value"] for b in row["blind"]]
    return max(values) if values else None


def blind_text(row: Mapping[str, Any]) -> str:
    """``"38.00 text-only answer prior per question type; 40.62 question lookup"``, or ``"—"``."""
    return "; ".join(f"{b['value']:.2f} {b['name']}" for b in row["blind"]) or "—"


def gain_text(row: Mapping[str, Any]) -> str:
    """The gain cell: ``"+5.00 vs init; +2.00 vs warm-up"``, or why there is none."""
    if row["ablation"] != "ok":
        return row["ablation"]
    parts = [f"{row[key]:+.2f} vs {label}" for key, label in (("gain_over_init", "init"), ("gain_over_warmup", "warm-up")) if row[key] is not None]
    return "; ".join(parts) or "—"


def paper_text(row: Mapping[str, Any]) -> str:
    """``"79.10 / 80.50 (VQAv2 test-dev)"`` (4M / 1.3B images), or ``"—"``."""
    if row["paper_4m"] is None:
        return "—"
    return f"{row['paper_4m']:.2f} / {row['paper_1.3b']:.2f} ({row['paper_setting']})"


SUMMARY_HEADER = ("pipeline", "headline metric", "ours", "blind baselines", "gain from pretraining", "paper: 4M / 1.3B images")


def summary_cells(row: Mapping[str, Any]) -> list[str]:
    """The cells of one summary row, in :data:`SUMMARY_HEADER` order (plain text, not escaped)."""
    value = f"{row['value']:.2f}" if row["value"] is not None else "no headline metric" if row["ran"] else "not run"
    return [row["pipeline"], row["metric"], value, blind_text(row), gain_text(row), paper_text(row)]


def summary_markdown(summary: list[dict[str, Any]]) -> str:
    """The summary rows as a markdown table (``|`` in a cell escaped)."""
    lines = ["| " + " | ".join(SUMMARY_HEADER) + " |", "|---|---|---:|---|---|---|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in summary_cells(row)) + " |" for row in summary]
    return "\n".join(lines) + "\n"
