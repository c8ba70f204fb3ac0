"""The ablation table (what each starting checkpoint is worth) as markdown, HTML and a grouped bar chart
(:func:`ablation_figure`, :func:`ablation_png`, :func:`ablation_plot`).

The table is the ``ablation_table`` dataset the ``ablation`` pipeline writes::

    {"tasks": [{"pipeline": "finetune_vqa", "task": "vqa", "metric": "test/vqa_acc", "higher_is_better": true,
                "starts": {"init": {"values": [...], "seeds": [...], "mean": m, "std": s}, "pretrain": {...}, ...},
                "gain_over_init": g1, "gain_over_warmup": g2}],
     "budget": "...", "seeds": [...]}

Values are in the results table's units (percent); a gain is ``mean(pretrain) - mean(start)`` (None when a
start is missing). :func:`check_ablation` rejects anything else with the record and the problem named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

START_ORDER = ("init", "pretrain_vision", "pretrain", "pretrain_bbox")  # columns first in this order, others after
GAINS = (("gain_over_init", "gain vs init"), ("gain_over_warmup", "gain vs warm-up"))
SOURCE = "ablation_table (data/08_reporting/ablation.json)"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_ablation(table: Any) -> dict[str, Any]:
    """``table`` itself when it has the documented layout.

    Raises:
        ValueError: the first problem, naming the task record (index and pipeline) and the field.
    """
    if not isinstance(table, Mapping) or not isinstance(table.get("tasks"), list):
        raise ValueError(f"{SOURCE}: expected an object with a 'tasks' list, got {type(table).__name__}")
    for i, task in enumerate(table["tasks"]):
        where = f"{SOURCE}: tasks[{i}]"
        if not isinstance(task, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(task).__name__}")
        where += f" ({task.get('pipeline')})"
        for key in ("pipeline", "metric"):
            if not isinstance(task.get(key), str) or not task[key]:
                raise ValueError(f"{where}: '{key}' must be a non-empty string, got {task.get(key)!r}")
        starts = task.get("starts")
        if not isinstance(starts, Mapping) or not starts:
            raise ValueError(f"{where}: 'starts' must be a non-empty object of start -> results")
        for start, result in starts.items():
            if not isinstance(result, Mapping) or not all(_number(result.get(k)) for k in ("mean", "std")):
                raise ValueError(f"{where}: start {start!r} needs numeric 'mean' and 'std', got {result!r}")
        for key, _ in GAINS:
            if task.get(key) is not None and not _number(task[key]):
                raise ValueError(f"{where}: '{key}' must be a number or null, got {task[key]!r}")
    return dict(table)


def start_columns(table: Mapping[str, Any]) -> list[str]:
    """Every start of the table: those of :data:`START_ORDER` first, in that order, then the others sorted."""
    seen = {start for task in table["tasks"] for start in task["starts"]}
    return [s for s in START_ORDER if s in seen] + sorted(seen - set(START_ORDER))


def _cell(result: Mapping[str, Any] | None) -> str:
    return "—" if result is None else f"{result['mean']:.2f} ± {result['std']:.2f}"


def _gain(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}"


def _rows(table: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and body cells shared by the markdown and HTML tables."""
    starts = start_columns(table)
    header = ["pipeline", "metric", *starts, *(label for _, label in GAINS)]
    body = [
        [task["pipeline"], task["metric"], *(_cell(task["starts"].get(s)) for s in starts), *(_gain(task.get(key)) for key, _ in GAINS)]
        for task in table["tasks"]
    ]
    return header, body


def _caption(table: Mapping[str, Any]) -> str:
    seeds = ", ".join(str(s) for s in table.get("seeds") or []) or "not given"
    caption = (
        f"Mean ± standard deviation over seeds ({seeds}); budget: {table.get('budget') or 'not given'}. Gains: mean from `pretrain` minus mean from the start."
    )
    not_run = table.get("not_run") or []
    return caption + (f" Not run yet: {', '.join(not_run)}." if not_run else "")


def ablation_markdown(table: Mapping[str, Any]) -> str:
    """The ablation as a markdown table: one row per task, one ``mean ± std`` column per start, then the gains
    of pretraining over the initial model and over the vision warm-up (signed, in the metric's units).

    Raises:
        ValueError: ``table`` is not an ablation table (:func:`check_ablation`).
    """
    header, body = _rows(check_ablation(table))
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|---|" + "---:|" * (len(header) - 2),
        *("| " + " | ".join(row) + " |" for row in body),
    ]
    return _caption(table) + "\n\n" + "\n".join(lines) + "\n"


def ablation_html(table: Mapping[str, Any]) -> str:
    """The ablation table of :func:`ablation_markdown` as HTML (escaped)."""
    header, body = _rows(check_ablation(table))
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" if i < 2 else f"<td class=num>{escape(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in body
    )
    caption = escape(_caption(table)).replace("`pretrain`", "<code>pretrain</code>")
    return f"<p>{caption}</p><table>{head}{rows}</table>"


def ablation_figure(table: Mapping[str, Any]):
    """Grouped bars as a matplotlib ``Figure`` (Agg canvas): one group per task, one bar per start (its mean),
    the standard deviation as an error bar.

    Raises:
        ValueError: ``table`` is not an ablation table, or it has no task.
    """
    from xfm_pipeline.reporting.plots import figure

    check_ablation(table)
    tasks: Sequence[Mapping[str, Any]] = table["tasks"]
    if not tasks:
        raise ValueError(f"{SOURCE}: no task to plot")
    starts = start_columns(table)
    width = 0.8 / len(starts)
    fig, (ax,) = figure(1, 1, max(6.0, 1.1 * len(tasks) + 2.0), 3.8)
    for j, start in enumerate(starts):
        xs, means, stds = [], [], []
        for i, task in enumerate(tasks):
            result = task["starts"].get(start)
            if result is not None:
                xs.append(i - 0.4 + width * (j + 0.5))
                means.append(result["mean"])
                stds.append(result["std"])
        ax.bar(xs, means, width=width * 0.95, yerr=stds, capsize=2, label=start, error_kw={"elinewidth": 0.8})
    ax.set_xticks(range(len(tasks)), [f"{t['pipeline']}\n{t['metric']}" for t in tasks], fontsize=7, rotation=20, ha="right")
    ax.set_ylabel("value (percent; CIDEr x100)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="start", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Fine-tuned from each start: mean ± std over seeds", fontsize=10)
    return fig


def ablation_png(table: Mapping[str, Any]) -> bytes:
    """:func:`ablation_figure` as PNG bytes (the report's ``plots/ablation.png``)."""
    from xfm_pipeline.reporting.plots import png

    return png(ablation_figure(table))


def ablation_plot(table: Mapping[str, Any], path: str | Path) -> Path:
    """Write :func:`ablation_png` of ``table`` to ``path`` (parent directories created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ablation_png(table))
    return path
