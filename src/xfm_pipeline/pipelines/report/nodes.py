"""Nodes of the report pipeline."""

from __future__ import annotations

from typing import Any


def build_results_table(pretrain: dict[str, Any], **metrics: dict[str, float]) -> tuple[str, dict[str, Any]]:
    """Markdown and JSON results of every fine-tune/eval pipeline, with the pretraining loss summary."""
    from xfm_pipeline.reporting.table import results_markdown, results_rows

    rows = results_rows(metrics)
    markdown = results_markdown(rows)
    losses = pretrain.get("losses", {})
    if losses:
        markdown += "\n## Pretraining losses (first / last 50-step means)\n\n| objective | first | last |\n|---|---:|---:|\n"
        markdown += "".join(f"| {k} | {v['first']:.4f} | {v['last']:.4f} |\n" for k, v in sorted(losses.items()))
    return markdown, {"rows": rows, "pretrain": pretrain}
