"""Report plots as PNG bytes: pretraining loss per objective, fine-tune training loss, headline metrics.

Pure functions on the histories and metrics the pipelines save (lists of ``{"step", "<name>": x}``
records; flat ``{"<split>/<metric>": x}`` dicts). Figures are drawn with matplotlib's object API on the
Agg canvas (``matplotlib.figure.Figure`` + ``FigureCanvasAgg``): no pyplot global state, no display.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

from xfm_pipeline.jobs.pretrain import WARMUP_PREFIX

# "image_text/loss_itc"; "warmup/region_text/loss_pointer" in a stage's warm-up phase (pipelines.pretrain.nodes)
_PRETRAIN_KEY = re.compile(rf"^(?:{re.escape(WARMUP_PREFIX)})?(?:(?P<corpus>[^/]+)/)?(?P<objective>loss(?:_\w+)?)$")
_COLUMNS = 4


def figure(rows: int, cols: int, width: float, height: float):
    """A ``width`` x ``height`` inch figure on the Agg canvas and its ``rows x cols`` axes, as a flat list."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def png(fig) -> bytes:
    """The figure as PNG bytes (no software tag: the same figure gives the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` points (shorter at the start); ``window <= 1`` copies."""
    if window <= 1:
        return list(values)
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` over the history records that carry a finite number for it."""
    steps, values = [], []
    for i, record in enumerate(history):
        v = record.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            steps.append(float(record.get("step", i + 1)))
            values.append(float(v))
    return steps, values


def _plot_line(ax, steps: list[float], values: list[float], label: str, color=None) -> None:
    """The raw series faint and its moving average on top (window ~ 1/15 of the run)."""
    window = max(1, len(values) // 15)
    if window > 1:
        (raw,) = ax.plot(steps, values, alpha=0.25, linewidth=0.8, color=color)
        ax.plot(steps, smooth(values, window), label=label, linewidth=1.6, color=raw.get_color())
    else:
        ax.plot(steps, values, label=label, linewidth=1.6, marker="." if len(values) < 30 else None, color=color)


def pretrain_objectives(history: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """``{objective: [history keys]}``: ``loss_itc`` -> ``["image_text/loss_itc", "region_text/loss_itc"]``.

    The weighted per-corpus total ``<corpus>/loss`` is the objective ``loss``; a warm-up phase's keys
    (``warmup/<corpus>/loss_<name>``) join their objective.
    """
    keys = sorted({k for record in history for k in record})
    out: dict[str, list[str]] = {}
    for key in keys:
        m = _PRETRAIN_KEY.match(key)
        if m:
            out.setdefault(m["objective"], []).append(key)
    return dict(sorted(out.items(), key=lambda kv: (kv[0] == "loss", kv[0])))  # the total last


def pretrain_loss_curves(history: Sequence[dict[str, Any]] | None) -> bytes | None:
    """One panel per pretraining objective (``loss_itc``, ``loss_mlm``, ...), one line per corpus.

    A stage's warm-up phase (keys ``warmup/...``, steps 1..W) comes first on the step axis: its lines are
    labelled ``warmup/<corpus>``, the stage's own steps are drawn at W + step, and a dashed line marks W.
    Returns None when the history has no loss at all.
    """
    objectives = pretrain_objectives(history or [])
    if not objectives:
        return None
    warm_steps = [float(r.get("step", i + 1)) for i, r in enumerate(history) if any(k.startswith(WARMUP_PREFIX) for k in r)]
    offset = max(warm_steps, default=0.0)  # W: the stage's step s is drawn at W + s
    cols = min(_COLUMNS, len(objectives))
    rows = math.ceil(len(objectives) / cols)
    fig, axes = figure(rows, cols, 3.6 * cols, 2.8 * rows)
    for ax, (objective, keys) in zip(axes, objectives.items()):
        for key in keys:
            corpus = key.rsplit("/", 1)[0] if "/" in key else "all"
            steps, values = _series(history, key)
            shift = 0.0 if key.startswith(WARMUP_PREFIX) else offset
            _plot_line(ax, [s + shift for s in steps], values, label=corpus)
        if offset:
            ax.axvline(offset, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(objective if objective != "loss" else "loss (weighted total)", fontsize=10)
        ax.set_xlabel("step (warm-up phase first)" if offset else "step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(objectives) :]:
        ax.set_visible(False)
    fig.suptitle("Pretraining loss per objective (faint: raw; solid: moving average)", fontsize=11)
    return png(fig)


def finetune_loss_curves(histories: dict[str, Sequence[dict[str, Any]] | None]) -> bytes | None:
    """One panel per pipeline with a non-empty history: ``train/loss`` and its components.

    Pipelines without history (not run, or evaluation only) are left to the caller to list.
    Returns None when no pipeline has a training loss.
    """
    panels = {}
    for name in sorted(histories):
        history = histories[name] or []
        keys = sorted({k for r in history for k in r if k.startswith("train/loss")}, key=lambda k: (k != "train/loss", k))
        if keys:
            panels[name] = (history, keys)
    if not panels:
        return None
    cols = min(_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = figure(rows, cols, 3.6 * cols, 2.6 * rows)
    for ax, (name, (history, keys)) in zip(axes, panels.items()):
        for key in keys:
            _plot_line(ax, *_series(history, key), label=key.removeprefix("train/"))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=6)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle("Fine-tuning training loss per pipeline", fontsize=11)
    return png(fig)


def metric_bars(
    entries: Sequence[tuple[str, str | None, float | None]],
    blind: Sequence[float | None] | None = None,
    title: str = "Headline metric per pipeline",
) -> bytes:
    """Horizontal bars ``(pipeline, metric label, value)``; a ``None`` value is drawn as "not run" text.

    ``blind``: per entry, the strongest blind baseline (same units) or None; each is marked by a vertical
    line across its bar, with a legend.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    blind = list(blind) if blind is not None else [None] * len(entries)
    if len(blind) != len(entries):
        raise ValueError(f"{len(blind)} blind baselines for {len(entries)} bars")
    n = max(1, len(entries))
    fig, (ax,) = figure(1, 1, 8.5, 1.3 + 0.32 * n)
    labels = [f"{p}  ({m})" if m else p for p, m, _ in entries]
    values = [v if v is not None else 0.0 for _, _, v in entries]
    y = list(range(len(entries)))
    colors = ["#4C72B0" if v is not None else "#FFFFFF" for _, _, v in entries]
    ax.barh(y, values, color=colors, height=0.7)
    for yi, b in zip(y, blind):
        if b is not None:
            ax.plot([b, b], [yi - 0.42, yi + 0.42], color="#C44E52", linewidth=2.2, solid_capstyle="butt", zorder=3, clip_on=False)
    top = max([abs(v) for v in values] + [b for b in blind if b is not None] + [1.0])
    for yi, (_, _, v), b in zip(y, entries, blind):
        text = f"{v:.2f}" if v is not None else "not run"
        ax.text(max(v or 0.0, b or 0.0, 0.0) + 0.01 * top, yi, text, va="center", fontsize=7, color="#333333" if v is not None else "#B00020")
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(min(0.0, min(values + [b for b in blind if b is not None] or [0.0])) * 1.1, top * 1.15)
    ax.set_xlabel("value (percent; CIDEr x100)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color="#4C72B0", label="ours (headline metric)")]
    if any(b is not None for b in blind):
        handles.append(Line2D([], [], color="#C44E52", linewidth=2.2, label="strongest blind baseline"))
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    return png(fig)
