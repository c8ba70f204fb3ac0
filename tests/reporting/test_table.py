"""The results table puts our metrics beside the paper's where the task is the paper's."""

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
        finetune_nlvr={"test/nlvr_acc": 71.25},
    )
    assert "| finetune_nlvr | test/nlvr_acc | 71.25 | 86.50 | 88.40 | NLVR2 test-P |" in md
    assert "| image_text/loss_itc | 2.0000 | 1.0000 |" in md
    assert js["rows"][0]["value"] == 71.25


def test_fraction_metrics_are_shown_in_percent_like_the_paper():
    rows = results_rows({"finetune_glue_cola": {"val/matthews_correlation": 0.413}, "finetune_vqa": {"test/vqa_acc": 61.5}}, {"finetune_glue_cola"})
    by_key = {(r["pipeline"], r["metric"]): r["value"] for r in rows}
    assert by_key[("finetune_glue_cola", "val/matthews_correlation")] == 41.3
    assert by_key[("finetune_vqa", "test/vqa_acc")] == 61.5
    md, _ = build_results_table({}, finetune_glue_sst2={"val/accuracy": 0.9725})
    assert "| finetune_glue_sst2 | val/accuracy | 97.25 | 95.00 | 94.60 | SST-2 acc |" in md
