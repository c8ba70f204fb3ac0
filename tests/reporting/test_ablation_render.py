"""The ablation renderers: known means and gains give known cells; the plot has one bar per (task, start)."""

from __future__ import annotations

import copy

import pytest
from ablation_fixture import TABLE
from PIL import Image

from xfm_pipeline.reporting.ablation import ablation_figure, ablation_html, ablation_markdown, ablation_plot, check_ablation, start_columns


def test_markdown_has_one_row_per_task_one_column_per_start_and_the_signed_gains():
    md = ablation_markdown(TABLE)
    assert "| pipeline | metric | init | pretrain_vision | pretrain | pretrain_bbox | gain vs init | gain vs warm-up |" in md
    assert "| finetune_vqa | test/vqa_acc | 40.00 ± 1.00 | 43.00 ± 0.50 | 45.00 ± 1.00 | 44.00 ± 0.00 | +5.00 | +2.00 |" in md
    assert "| finetune_glue_sst2 | val/accuracy | 80.00 ± 0.00 | — | 90.50 ± 0.00 | — | +10.50 | — |" in md  # missing starts
    assert "seeds (0, 1, 2); budget: each row's own fine-tune parameters" in md


def test_start_columns_follow_the_pipeline_order_then_unknown_starts_sorted():
    table = copy.deepcopy(TABLE)
    table["tasks"][1]["starts"]["zz_custom"] = {"mean": 1.0, "std": 0.0}
    assert start_columns(table) == ["init", "pretrain_vision", "pretrain", "pretrain_bbox", "zz_custom"]


def test_html_escapes_and_right_aligns_the_numbers():
    html = ablation_html(TABLE)
    assert "<tr><td>finetune_vqa</td><td>test/vqa_acc</td><td class=num>40.00 ± 1.00</td>" in html
    assert "<td class=num>+10.50</td><td class=num>—</td></tr>" in html
    assert "<code>pretrain</code>" in html


def test_plot_writes_a_png_with_one_bar_and_error_bar_per_task_and_start(tmp_path, monkeypatch):
    from xfm_pipeline.reporting import plots

    drawn, to_png = [], plots.png
    monkeypatch.setattr(plots, "png", lambda fig: drawn.append(fig) or to_png(fig))
    path = ablation_plot(TABLE, tmp_path / "sub" / "ablation.png")
    assert path.is_file() and Image.open(path).format == "PNG"
    (ax,) = drawn[-1].axes
    assert sorted(bar.get_height() for bar in ax.patches) == [40.0, 43.0, 44.0, 45.0, 80.0, 90.5]  # 4 starts for VQA, 2 for SST-2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["init", "pretrain_vision", "pretrain", "pretrain_bbox"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["finetune_vqa\ntest/vqa_acc", "finetune_glue_sst2\nval/accuracy"]
    assert [round(bar.get_height(), 2) for bar in ablation_figure(TABLE).axes[0].patches] == [40.0, 80.0, 43.0, 45.0, 90.5, 44.0]  # start by start


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.pop("tasks"), "expected an object with a 'tasks' list"),
        (lambda t: t["tasks"][1].pop("metric"), r"tasks\[1\] \(finetune_glue_sst2\): 'metric' must be a non-empty string"),
        (lambda t: t["tasks"][0]["starts"]["init"].pop("std"), r"tasks\[0\] \(finetune_vqa\): start 'init' needs numeric 'mean' and 'std'"),
        (lambda t: t["tasks"][0].update(gain_over_init="5"), r"'gain_over_init' must be a number or null"),
    ],
)
def test_a_malformed_table_is_rejected_naming_the_record_and_field(change, message):
    table = copy.deepcopy(TABLE)
    change(table)
    with pytest.raises(ValueError, match=message):
        check_ablation(table)
    with pytest.raises(ValueError, match=r"ablation_table \(data/08_reporting/ablation.json\)"):
        ablation_markdown(table)
