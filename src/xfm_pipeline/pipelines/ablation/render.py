"""The ablation table as a reader sees it: markdown next to the results table, a grouped bar chart."""

from __future__ import annotations

from typing import Any


def render(table: dict[str, Any]):
    """``ablation_table`` -> (markdown, matplotlib figure of mean ± std per task and start)."""
    from xfm_pipeline.reporting.ablation import ablation_figure, ablation_markdown

    return ablation_markdown(table), ablation_figure(table)
