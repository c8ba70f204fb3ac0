"""The report page: one HTML file with the summary (one row per task), the ablation, the plots, the example
pictures, and every metric of every split collapsed at the end.

Pictures are referenced by paths relative to the page (``plots/*.png``, ``examples/*.png``); the page
and its pictures are written together as one directory, so the references always resolve. Every text
from data files is HTML-escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from typing import Any

from xfm_pipeline.reporting.summary import SUMMARY_HEADER, summary_cells
from xfm_pipeline.reporting.table import INTRO

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
.missing { background: #fff4e5; border-left: 4px solid #e69500; padding: 0.6em 1em; margin: 1em 0; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; }
figure.plot img { max-width: 100%; }
figcaption { font-size: 0.8em; color: #555; max-width: 480px; }
details > summary { cursor: pointer; font-weight: 600; margin: 1em 0; }
"""


@dataclass
class Picture:
    """A PNG of the report (``file`` relative to the page) and its caption."""

    file: str
    caption: str


@dataclass
class Section:
    """A titled group of pictures with notes (what is missing and why) and an optional HTML body (already
    escaped, e.g. a table) shown before the pictures."""

    title: str
    pictures: list[Picture] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plot: bool = False  # full-width figures (plots) rather than a gallery of examples
    body: str = ""  # HTML shown between the notes and the pictures


def _fmt(x: Any) -> str:
    return "" if x is None else f"{x:.2f}" if isinstance(x, (int, float)) else escape(str(x))


def results_table_html(rows: list[dict[str, Any]]) -> str:
    """The results rows (``reporting.table.results_rows``) as an HTML table."""
    head = "<tr><th>pipeline</th><th>metric</th><th>value</th><th>paper 4M</th><th>paper 1.3B</th><th>paper setting</th></tr>"
    body = "".join(
        f"<tr><td>{escape(r['pipeline'])}</td><td>{escape(r['metric'])}</td><td class=num>{_fmt(r['value'])}</td>"
        f"<td class=num>{_fmt(r.get('paper_4m'))}</td><td class=num>{_fmt(r.get('paper_1.3b'))}</td><td>{_fmt(r.get('paper_setting'))}</td></tr>"
        for r in rows
    )
    return f"<table>{head}{body}</table>"


def summary_table_html(summary: list[dict[str, Any]]) -> str:
    """The summary rows (:func:`xfm_pipeline.reporting.summary.summary_rows`) as an HTML table; a gain
    cell's ``code`` (the ablation command) is set as code."""
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in SUMMARY_HEADER) + "</tr>"
    body = ""
    for row in summary:
        cells = [escape(c) for c in summary_cells(row)]
        cells[4] = re.sub(r"`([^`]+)`", r"<code>\1</code>", cells[4])
        body += "<tr>" + "".join(f"<td class=num>{c}</td>" if i == 2 else f"<td>{c}</td>" for i, c in enumerate(cells)) + "</tr>"
    return f"<table>{head}{body}</table>"


def pretrain_losses_html(losses: dict[str, dict[str, float]]) -> str:
    """The pretraining loss summary (first / last 50-step means per objective) as an HTML table."""
    if not losses:
        return "<p>No pretraining loss summary.</p>"
    body = "".join(
        f"<tr><td>{escape(k)}</td><td class=num>{v.get('first', float('nan')):.4f}</td><td class=num>{v.get('last', float('nan')):.4f}</td></tr>"
        for k, v in sorted(losses.items())
    )
    return f"<table><tr><th>objective</th><th>first</th><th>last</th></tr>{body}</table>"


def _section_html(section: Section) -> str:
    parts = [f"<h2>{escape(section.title)}</h2>"]
    if section.notes:
        parts.append('<div class="missing"><ul>' + "".join(f"<li>{escape(n)}</li>" for n in section.notes) + "</ul></div>")
    cls = "plot" if section.plot else "example"
    figures = "".join(
        f'<figure class="{cls}"><img src="{escape(p.file, quote=True)}" alt="{escape(p.caption, quote=True)}">'
        f"<figcaption>{escape(p.caption)}</figcaption></figure>"
        for p in section.pictures
    )
    if section.body:
        parts.append(section.body)
    if figures:
        parts.append(figures if section.plot else f'<div class="gallery">{figures}</div>')
    return "\n".join(parts)


def report_html(results: dict[str, Any], not_run: list[str], sections: list[Section], title: str = "X-FM report", lead: Section | None = None) -> str:
    """The whole page: pipelines not run, the summary, ``lead`` (the ablation), the pretraining losses, then
    ``sections``, then every results row in a collapsed ``<details>``.

    Args:
        results: ``{"summary": [...], "rows": [...], "pretrain": {"losses": {...}}}`` (the ``results_json`` dataset).
        not_run: pipelines whose outputs were absent; listed at the top, never dropped silently.
        sections: plots and example galleries, in page order.
        lead: a section shown right after the summary (the gain from pretraining).
    """
    missing = ""
    if not_run:
        missing = (
            '<div class="missing"><b>Pipelines not run</b> (no metrics saved; run them with '
            "<code>kedro run --pipelines &lt;name&gt;</code>): " + ", ".join(f"<code>{escape(n)}</code>" for n in not_run) + "</div>"
        )
    pretrain = results.get("pretrain") or {}
    rows = results.get("rows", [])
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(INTRO)}</p>",
        missing,
        "<h2>Summary: headline metric per task</h2>",
        summary_table_html(results.get("summary", [])),
        _section_html(lead) if lead else "",
        "<h2>Pretraining losses (first / last 50-step means)</h2>",
        pretrain_losses_html(pretrain.get("losses", {})),
        *(_section_html(s) for s in sections),
        "<h2>All metrics</h2>",
        f"<details><summary>Every metric of every split ({len(rows)} rows)</summary>{results_table_html(rows)}</details>",
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(b for b in body if b) + "\n</body></html>\n"
    )
