"""Build the results table (markdown + JSON) from the metrics of every pipeline."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

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


def results_markdown(rows: list[dict[str, Any]], title: str = "X-FM results") -> str:
    """A markdown table of ``rows`` (every value in percent, see :func:`results_rows`)."""

    def fmt(x):
        return "" if x is None else f"{x:.2f}"

    lines = [
        f"# {title}",
        "",
        "Paper columns: X-FM base (327M) as published, for the real datasets; the demo (shapes world,",
        "tiny preset) is not comparable to them. All values in percent (GLUE correlations x 100).",
        "",
        "| pipeline | metric | value | paper 4M | paper 1.3B | paper setting |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['pipeline']} | {r['metric']} | {fmt(r['value'])} | {fmt(r['paper_4m'])} | {fmt(r['paper_1.3b'])} | {r['paper_setting'] or ''} |")
    return "\n".join(lines) + "\n"
