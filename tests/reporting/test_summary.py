"""The summary row of a task: headline metric, blind baselines of its split, gain from pretraining, paper."""

from __future__ import annotations

import json

import pytest

from xfm_pipeline.reporting.headline import paper_number
from xfm_pipeline.reporting.scores import dvc_scores
from xfm_pipeline.reporting.summary import summary_markdown, summary_rows
from xfm_pipeline.tasks.registry import PIPELINES


def test_retrieval_paper_r_mean_is_the_mean_of_its_six_recalls():
    coco = paper_number(PIPELINES["finetune_retrieval_coco"][1].paper, "test/r_mean")
    assert coco.x4m == pytest.approx((81.8 + 96.0 + 98.3 + 64.7 + 86.1 + 91.6) / 6)
    assert coco.what == "COCO 5K mean of TR/IR@1,5,10"
    assert paper_number(PIPELINES["eval_retrieval_zeroshot"][1].paper, "test/r_mean") is None  # only R@1 published
    assert paper_number(PIPELINES["finetune_vqa"][1].paper, "test/vqa_acc").x4m == 79.1


def test_rows_for_a_run_a_not_run_and_a_run_without_headline_metric():
    rows = [
        {"pipeline": "finetune_grounding", "metric": "val/grounding_acc", "value": 44.0},
        {"pipeline": "finetune_grounding", "metric": "testA/grounding_acc", "value": 50.0},
        {"pipeline": "finetune_nlvr", "metric": "val/other", "value": 1.0},
    ]
    tasks = {name: (PIPELINES[name][0].headline_metric, PIPELINES[name][1].paper) for name in ("finetune_grounding", "finetune_nlvr", "finetune_vqa")}
    blind = {"finetune_grounding": {"val": [{"name": "mean training box", "value": 0.0}], "testA": [{"name": "mean training box", "value": 1.0}]}}
    summary = summary_rows(rows, tasks, blind, None)
    assert summary_markdown(summary).splitlines()[2:] == [
        "| finetune_grounding | val/grounding_acc | 44.00 | 0.00 mean training box | run `kedro run --pipeline ablation` | 84.80 / 86.10 (RefCOCO+ val) |",
        "| finetune_nlvr | nlvr_acc | no headline metric | — | run `kedro run --pipeline ablation` | 86.50 / 88.40 (NLVR2 test-P) |",
        "| finetune_vqa | vqa_acc | not run | — | run `kedro run --pipeline ablation` | 79.10 / 80.50 (VQAv2 test-dev) |",
    ]


def test_dvc_scores_hold_the_headline_per_split_and_the_final_loss_per_corpus():
    rows = [
        {"pipeline": "finetune_grounding", "metric": "val/grounding_acc", "value": 44.254},
        {"pipeline": "finetune_grounding", "metric": "testA/grounding_acc", "value": 50.0},
        {"pipeline": "finetune_grounding", "metric": "testA/other", "value": 3.0},
    ]
    summary = [
        {"pipeline": "finetune_grounding", "metric": "val/grounding_acc", "value": 44.254},
        {"pipeline": "finetune_vqa", "metric": "vqa_acc", "value": None},
    ]
    pretrain = {"losses": {"image_text/loss": {"first": 9.0, "last": 6.79274}, "image_text/loss_itc": {"first": 2.0, "last": 1.5}}}
    files = dvc_scores(summary, rows, {"pretrain": pretrain, "pretrain_vision": {"step": 0, "resumed_from": None, "losses": {}}})
    assert {name: json.loads(text) for name, text in files.items()} == {
        "pretrain.json": {"image_text": 6.7927},
        "finetune_grounding.json": {"val": 44.25, "testA": 50.0},
    }
