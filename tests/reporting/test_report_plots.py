"""Report plots are PNGs of the expected size; the headline metric is each task's selection metric."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from xfm_pipeline.reporting.headline import headline
from xfm_pipeline.reporting.plots import finetune_loss_curves, metric_bars, pretrain_loss_curves, pretrain_objectives, smooth


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).size


def pretrain_history(steps: int = 30) -> list[dict]:
    return [
        {
            "image_text/loss_itc": 2.0 / s, "image_text/loss_mlm": 10.0 / s, "image_text/loss": 12.0 / s,
            "region_text/loss_itc": 2.1 / s, "region_text/loss_bbox": 0.8, "text_only/loss_text_mlm": 11.0 / s,
            "grad_norm": 5.0, "lr": 1e-4, "step": s,
        }  # fmt: skip
        for s in range(1, steps + 1)
    ]


def test_pretrain_objectives_group_corpora_by_objective_total_last():
    groups = pretrain_objectives(pretrain_history(2))
    assert groups["loss_itc"] == ["image_text/loss_itc", "region_text/loss_itc"]
    assert list(groups)[-1] == "loss" and "grad_norm" not in groups and "lr" not in groups
    assert set(groups) == {"loss_itc", "loss_mlm", "loss_bbox", "loss_text_mlm", "loss"}


def test_pretrain_loss_curves_png_one_panel_per_objective():
    width, height = png_size(pretrain_loss_curves(pretrain_history()))
    assert (width, height) == (4 * 360, 2 * 280)  # 5 objectives -> 4 columns x 2 rows at 100 dpi
    assert pretrain_loss_curves(None) is None and pretrain_loss_curves([{"lr": 1.0, "step": 1}]) is None


def test_finetune_loss_curves_skip_pipelines_without_training_loss():
    history = [{"train/loss": 1.0 / s, "train/loss_itc": 0.5 / s, "lr": 1e-4, "step": s} for s in range(1, 20)]
    width, height = png_size(finetune_loss_curves({"a": history, "b": history, "not_run": None, "eval_only": []}))
    assert (width, height) == (2 * 360, 260)  # two panels
    assert finetune_loss_curves({"not_run": None, "eval_only": []}) is None


def test_metric_bars_draw_not_run_rows():
    width, height = png_size(metric_bars([("finetune_vqa", None, None), ("finetune_nlvr", "test/nlvr_acc", 55.0)]))
    assert width == 850 and height == round((0.9 + 0.32 * 2) * 100)


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
