"""Report plots: PNGs of the expected size showing the given data (the matplotlib figure each function draws is
inspected: panels, lines, bars, labels); the headline metric is each task's selection metric."""

from __future__ import annotations

import io

import pytest
from matplotlib.colors import to_hex
from PIL import Image

from xfm_pipeline.reporting import plots
from xfm_pipeline.reporting.headline import headline
from xfm_pipeline.reporting.plots import finetune_loss_curves, metric_bars, pretrain_loss_curves, pretrain_objectives, smooth


@pytest.fixture
def figures(monkeypatch) -> list:
    """The matplotlib figures the plotting functions draw, captured where they are turned into PNG bytes."""
    drawn = []
    to_png = plots.png

    def capture(fig) -> bytes:
        drawn.append(fig)
        return to_png(fig)

    monkeypatch.setattr(plots, "png", capture)
    return drawn


def panels(fig) -> dict:
    """{title: axes} of the figure's visible panels, in drawing order."""
    return {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}


def lines(ax) -> dict:
    """{legend label: (x, y)} of the panel's labelled lines (matplotlib's own ``_child`` labels left out)."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines() if not line.get_label().startswith("_")}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).size


def pretrain_history(steps: int = 30) -> list[dict]:
    return [
        {
            "image_text/loss_itc": 2.0 / s,
            "image_text/loss_mlm": 10.0 / s,
            "image_text/loss": 12.0 / s,
            "region_text/loss_itc": 2.1 / s,
            "region_text/loss_bbox": 0.8,
            "text_only/loss_text_mlm": 11.0 / s,
            "grad_norm": 5.0,
            "lr": 1e-4,
            "step": s,
        }  # fmt: skip
        for s in range(1, steps + 1)
    ]


def test_pretrain_objectives_group_corpora_by_objective_total_last():
    groups = pretrain_objectives(pretrain_history(2))
    assert groups["loss_itc"] == ["image_text/loss_itc", "region_text/loss_itc"]
    assert list(groups)[-1] == "loss" and "grad_norm" not in groups and "lr" not in groups
    assert set(groups) == {"loss_itc", "loss_mlm", "loss_bbox", "loss_text_mlm", "loss"}


def test_pretrain_loss_curves_one_panel_per_objective_one_line_per_corpus(figures):
    width, height = png_size(pretrain_loss_curves(pretrain_history()))
    assert (width, height) == (4 * 360, 2 * 280)  # 5 objectives -> 4 columns x 2 rows at 100 dpi
    shown = panels(figures[-1])
    assert list(shown) == ["loss_bbox", "loss_itc", "loss_mlm", "loss_text_mlm", "loss (weighted total)"]
    steps = [float(s) for s in range(1, 31)]
    itc = lines(shown["loss_itc"])  # 30 points: the moving average over 30 // 15 = 2 points, labelled by corpus
    assert list(itc) == ["image_text", "region_text"]
    assert itc["image_text"] == (steps, pytest.approx(smooth([2.0 / s for s in range(1, 31)], 2)))
    assert itc["region_text"] == (steps, pytest.approx(smooth([2.1 / s for s in range(1, 31)], 2)))
    raw = [line for line in shown["loss_itc"].get_lines() if line.get_label().startswith("_")]  # the faint raw series
    assert [list(line.get_ydata()) for line in raw] == [pytest.approx([2.0 / s for s in range(1, 31)]), pytest.approx([2.1 / s for s in range(1, 31)])]
    assert lines(shown["loss (weighted total)"])["image_text"][1] == pytest.approx(smooth([12.0 / s for s in range(1, 31)], 2))
    assert list(lines(shown["loss_bbox"])) == ["region_text"] and list(lines(shown["loss_text_mlm"])) == ["text_only"]
    assert pretrain_loss_curves(None) is None and pretrain_loss_curves([{"lr": 1.0, "step": 1}]) is None
    assert len(figures) == 1  # nothing drawn for histories without a loss


def test_a_warm_up_phase_comes_first_on_the_step_axis(figures):
    warm = [{"warmup/region_text/loss_pointer": 4.0 / s, "warmup/region_text/loss": 5.0 / s, "step": s} for s in range(1, 4)]
    main = [{"region_text/loss_pointer": 1.0, "image_text/loss_itc": 2.0, "region_text/loss": 3.0, "step": s} for s in range(1, 3)]
    history = warm + main  # as pipelines.pretrain.nodes returns it: the warm-up's rows (steps 1-3), then the stage's
    assert pretrain_objectives(history)["loss_pointer"] == ["region_text/loss_pointer", "warmup/region_text/loss_pointer"]
    pretrain_loss_curves(history)
    shown = panels(figures[-1])
    pointer = lines(shown["loss_pointer"])
    assert pointer["warmup/region_text"] == ([1.0, 2.0, 3.0], pytest.approx([4.0, 2.0, 4.0 / 3]))
    assert pointer["region_text"][0] == [4.0, 5.0]  # the stage's steps 1-2 after the warm-up's 3
    assert lines(shown["loss_itc"])["image_text"][0] == [4.0, 5.0]
    boundary = [line for line in shown["loss_pointer"].get_lines() if line.get_linestyle() == "--"]
    assert [list(line.get_xdata()) for line in boundary] == [[3.0, 3.0]]
    assert shown["loss_pointer"].get_xlabel() == "step (warm-up phase first)"


def test_finetune_loss_curves_skip_pipelines_without_training_loss(figures):
    history = [{"train/loss": 1.0 / s, "train/loss_itc": 0.5 / s, "lr": 1e-4, "step": s} for s in range(1, 20)]
    other = [{"train/loss": 3.0, "step": s} for s in range(1, 4)]
    width, height = png_size(finetune_loss_curves({"b": other, "a": history, "not_run": None, "eval_only": []}))
    assert (width, height) == (2 * 360, 260)  # two panels
    shown = panels(figures[-1])
    assert list(shown) == ["a", "b"]  # sorted by pipeline; the not-run and evaluation-only ones get none
    steps = [float(s) for s in range(1, 20)]
    assert lines(shown["a"]) == {
        "loss": (steps, pytest.approx([1.0 / s for s in range(1, 20)])),
        "loss_itc": (steps, pytest.approx([0.5 / s for s in range(1, 20)])),
    }
    assert lines(shown["b"]) == {"loss": ([1.0, 2.0, 3.0], [3.0, 3.0, 3.0])}
    assert shown["a"].get_legend() is not None and shown["b"].get_legend() is None  # a legend only for several lines
    assert finetune_loss_curves({"not_run": None, "eval_only": []}) is None


def test_metric_bars_draw_values_and_not_run_rows(figures):
    entries = [("finetune_vqa", None, None), ("finetune_nlvr", "test/nlvr_acc", 55.0), ("finetune_glue_cola", "val/matthews_correlation", -12.5)]
    width, height = png_size(metric_bars(entries))
    assert width == 850 and height == round((1.3 + 0.32 * 3) * 100)
    (ax,) = figures[-1].axes
    assert [bar.get_width() for bar in ax.patches] == [0.0, 55.0, -12.5]
    assert [to_hex(bar.get_facecolor()) for bar in ax.patches] == ["#ffffff", "#4c72b0", "#4c72b0"]  # a not-run row shows no bar
    assert [label.get_text() for label in ax.get_yticklabels()] == [
        "finetune_vqa",
        "finetune_nlvr  (test/nlvr_acc)",
        "finetune_glue_cola  (val/matthews_correlation)",
    ]
    assert [text.get_text() for text in ax.texts] == ["not run", "55.00", "-12.50"]
    assert ax.yaxis_inverted()  # the first entry on top
    assert ax.get_xlim() == pytest.approx((-12.5 * 1.1, 55.0 * 1.15))
    assert not ax.lines and [t.get_text() for t in ax.get_legend().get_texts()] == ["ours (headline metric)"]


def test_metric_bars_mark_each_blind_baseline_across_its_bar(figures):
    entries = [("finetune_vqa", "test/vqa_acc", 45.5), ("finetune_nlvr", "test/nlvr_acc", 60.0), ("finetune_glue_stsb", "val/pearson", 70.0)]
    metric_bars(entries, blind=[40.6, 50.15, None])
    (ax,) = figures[-1].axes
    marks = [(*line.get_xdata(), *line.get_ydata()) for line in ax.lines]  # (x0, x1, y0, y1): across bars 0 and 1
    assert marks == [pytest.approx((40.6, 40.6, -0.42, 0.42)), pytest.approx((50.15, 50.15, 0.58, 1.42))]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ours (headline metric)", "strongest blind baseline"]
    with pytest.raises(ValueError, match="2 blind baselines for 3 bars"):
        metric_bars(entries, blind=[1.0, 2.0])


def test_smooth_is_a_trailing_mean():
    assert smooth([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert smooth([1.0, 2.0], 1) == [1.0, 2.0]


def test_headline_prefers_test_and_puts_fractions_in_percent():
    assert headline("nlvr_acc", {"val/nlvr_acc": 60.0, "test/nlvr_acc": 55.0}) == ("test/nlvr_acc", 55.0)
    assert headline("grounding_acc", {"val/grounding_acc": 2.0, "testA/grounding_acc": 1.0}) == ("val/grounding_acc", 2.0)
    assert headline("matthews_correlation", {"val/matthews_correlation": 0.4}, fraction=True) == ("val/matthews_correlation", pytest.approx(40.0))
    assert headline("top1", {"test/top1": 0.43, "test/top5": 0.9}, fraction=True) == ("test/top1", pytest.approx(43.0))
    assert headline("top1", {"test/top1": 43.0}, fraction=True, in_percent=True) == ("test/top1", pytest.approx(43.0))  # table rows
    assert headline("vqa_acc", None) is None and headline("vqa_acc", {"test/other": 1.0}) is None and headline(None, {"test/x": 1}) is None


def test_every_registered_task_leads_with_its_selection_metric_on_the_right_scale():
    from xfm_pipeline.tasks.registry import TASKS

    for name, spec in TASKS.items():
        assert spec.headline_metric == spec.task.selection_metric != "", name
        assert spec.fraction == (name.startswith("glue_") or name.startswith("imagenet")), name
