"""The results table puts our metrics beside the paper's where the task is the paper's; results.md opens with
the summary and keeps every metric below, collapsed."""

from xfm_pipeline.pipelines.report.nodes import build_results_table
from xfm_pipeline.reporting.table import results_rows
from xfm_pipeline.tasks.spec import PaperResult


def test_rows_pair_our_metric_with_the_paper():
    paper = {"finetune_vqa": {"test/vqa_acc": PaperResult(79.1, 80.5, "VQAv2 test-dev")}}
    rows = results_rows({"finetune_vqa": {"test/vqa_acc": 61.5, "val/vqa_acc": 60.0}, "custom": {"test/x": 1.0, "note": "skip"}}, paper=paper)
    by_key = {(r["pipeline"], r["metric"]): r for r in rows}
    assert by_key[("finetune_vqa", "test/vqa_acc")]["paper_4m"] == 79.1
    assert by_key[("finetune_vqa", "test/vqa_acc")]["paper_1.3b"] == 80.5
    assert by_key[("finetune_vqa", "val/vqa_acc")]["paper_4m"] is None
    assert ("custom", "note") not in by_key and by_key[("custom", "test/x")]["value"] == 1.0


def test_markdown_lists_every_metric_and_the_pretraining_losses():
    md, js = build_results_table(
        {"losses": {"image_text/loss_itc": {"first": 2.0, "last": 1.0}}},
        {"finetune_nlvr": {"test": [{"name": "majority label", "value": 50.15}, {"name": "statement lookup", "value": 50.2}]}},
        None,
        finetune_nlvr={"test/nlvr_acc": 71.25},
    )
    assert "| finetune_nlvr | test/nlvr_acc | 71.25 | 86.50 | 88.40 | NLVR2 test-P |" in md
    assert "| image_text/loss_itc | 2.0000 | 1.0000 |" in md
    assert js["rows"][0]["value"] == 71.25
    summary = "| finetune_nlvr | test/nlvr_acc | 71.25 | 50.15 majority label; 50.20 statement lookup | run `kedro run --pipeline ablation` | 86.50 / 88.40 (NLVR2 test-P) |"
    assert summary in md
    assert md.index(summary) < md.index("## Gain from pretraining") < md.index("<details><summary>Every metric of every split (1 rows)</summary>")
    assert "Not run: run `kedro run --pipeline ablation`." in md


def test_markdown_shows_the_ablation_and_the_gains_in_the_summary():
    from ablation_fixture import TABLE

    md, js = build_results_table({}, {}, TABLE, finetune_vqa={"test/vqa_acc": 45.5}, finetune_glue_sst2={"val/accuracy": 0.9}, finetune_nlvr=None)
    assert "| finetune_vqa | test/vqa_acc | 45.50 | — | +5.00 vs init; +2.00 vs warm-up | 79.10 / 80.50 (VQAv2 test-dev) |" in md
    assert "| finetune_glue_sst2 | val/accuracy | 90.00 | — | +10.50 vs init | 95.00 / 94.60 (SST-2 acc) |" in md
    assert "| finetune_nlvr | nlvr_acc | not run | — | not in the ablation | 86.50 / 88.40 (NLVR2 test-P) |" in md
    assert "| finetune_vqa | test/vqa_acc | 40.00 ± 1.00 | 43.00 ± 0.50 | 45.00 ± 1.00 | 44.00 ± 0.00 | +5.00 | +2.00 |" in md
    assert js["ablation"] == TABLE


def test_fraction_metrics_are_shown_in_percent_like_the_paper():
    rows = results_rows({"finetune_glue_cola": {"val/matthews_correlation": 0.413}, "finetune_vqa": {"test/vqa_acc": 61.5}}, {"finetune_glue_cola"})
    by_key = {(r["pipeline"], r["metric"]): r["value"] for r in rows}
    assert by_key[("finetune_glue_cola", "val/matthews_correlation")] == 41.3
    assert by_key[("finetune_vqa", "test/vqa_acc")] == 61.5
    md, _ = build_results_table({}, {}, None, finetune_glue_sst2={"val/accuracy": 0.9725})
    assert "| finetune_glue_sst2 | val/accuracy | 97.25 | 95.00 | 94.60 | SST-2 acc |" in md
