"""The results rows (every metric of every split, beside the paper's numbers) and ``results.md``."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from xfm_pipeline.reporting.ablation import ablation_markdown
from xfm_pipeline.reporting.summary import RUN_ABLATION, summary_markdown
from xfm_pipeline.tasks.spec import PaperResult


def results_rows(
    metrics: dict[str, dict[str, float]], fraction_pipelines: Collection[str] = (), paper: Mapping[str, Mapping[str, PaperResult]] | None = None
) -> list[dict[str, Any]]:
    """One row per (pipeline, metric): our value, and the paper's when ``paper[pipeline]`` reports the metric.

    Every value is in percent, as the paper prints them: the metrics of ``fraction_pipelines`` (GLUE,
    ImageNet: stored as fractions, e.g. MCC 0.41) are multiplied by 100. ``paper``: the published
    numbers per pipeline (``TaskPipeline.paper``).
    """
    rows = []
    for pipeline in sorted(metrics):
        published = (paper or {}).get(pipeline, {})
        scale = 100.0 if pipeline in fraction_pipelines else 1.0
        for metric in sorted(metrics[pipeline]):
            value = metrics[pipeline][metric]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            ref = published.get(metric)
            rows.append(
                {
                    "pipeline": pipeline,
                    "metric": metric,
                    "value": float(value) * scale,
                    "paper_4m": ref.x4m if ref else None,
                    "paper_1.3b": ref.x1b if ref else None,
                    "paper_setting": ref.what if ref else None,
                }
            )
    return rows


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def results_markdown(rows: list[dict[str, Any]]) -> str:
    """A markdown table of every results row (every value in percent, see :func:`results_rows`)."""
    lines = ["| pipeline | metric | value | paper 4M | paper 1.3B | paper setting |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['pipeline']} | {r['metric']} | {_fmt(r['value'])} | {_fmt(r['paper_4m'])} | {_fmt(r['paper_1.3b'])} | {r['paper_setting'] or ''} |")
    return "\n".join(lines) + "\n"


INTRO = (
    "All values in percent, as the paper prints them: GLUE and ImageNet metrics (stored as fractions) and the GLUE "
    "correlations are shown x100, CIDEr x100. Paper columns: X-FM base as published (4M / 1.3B pretraining images), "
    "on the real datasets; the demo (shapes world, tiny preset) is not comparable to them. A blind baseline predicts "
    "without one of the task's inputs (the image, or the text); the model must beat it clearly."
)


def report_markdown(
    summary: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    ablation: dict[str, Any] | None,
    not_run: list[str],
    losses: dict[str, dict[str, float]],
    title: str = "X-FM results",
) -> str:
    """``results.md``: the summary (one row per task), the ablation (or how to run it), the pipelines not run,
    the pretraining losses, then every metric of every split in a collapsed ``<details>`` block."""
    parts = [f"# {title}\n", INTRO + "\n", "## Summary: headline metric per task\n", summary_markdown(summary)]
    parts.append("## Gain from pretraining (ablation)\n")
    parts.append(ablation_markdown(ablation) if ablation is not None else f"Not run: {RUN_ABLATION}.\n")
    if not_run:
        parts.append("## Pipelines not run (no metrics saved)\n")
        parts.append("".join(f"- {name}\n" for name in not_run))
    if losses:
        parts.append("## Pretraining losses (first / last 50-step means)\n")
        parts.append(
            "| objective | first | last |\n|---|---:|---:|\n" + "".join(f"| {k} | {v['first']:.4f} | {v['last']:.4f} |\n" for k, v in sorted(losses.items()))
        )
    parts.append("## All metrics\n")
    parts.append(f"<details><summary>Every metric of every split ({len(rows)} rows)</summary>\n\n{results_markdown(rows)}\n</details>\n")
    return "\n".join(parts)
