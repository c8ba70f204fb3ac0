"""GLUE metrics against hand computation from the confusion matrix / definitions (docs/xfm.md#glue-metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xfm_pipeline.metrics.glue import (
    GLUE_MAIN_METRIC,
    GLUE_TASKS,
    acc_and_f1,
    binary_f1,
    canonical_task,
    glue_main_metric,
    glue_metrics,
    glue_summary,
    matthews_corr,
    pearson_and_spearman,
)

PREDS = [1, 1, 0, 0, 1, 0, 1, 1]
LABELS = [1, 0, 0, 1, 1, 0, 1, 0]
# confusion matrix (positive class 1): TP = 3 (idx 0, 4, 6), FP = 2 (1, 7), FN = 1 (3), TN = 2 (2, 5)
TP, FP, FN, TN = 3, 2, 1, 2


def test_matthews_correlation_by_formula():
    expected = (TP * TN - FP * FN) / math.sqrt((TP + FP) * (TP + FN) * (TN + FP) * (TN + FN))  # 4 / sqrt(240)
    assert matthews_corr(PREDS, LABELS) == pytest.approx(expected)
    assert glue_metrics("cola", PREDS, LABELS) == pytest.approx({"matthews_correlation": expected})
    assert matthews_corr(LABELS, LABELS) == pytest.approx(1.0)
    assert matthews_corr([1 - x for x in LABELS], LABELS) == pytest.approx(-1.0)
    assert matthews_corr([1] * 8, LABELS) == 0.0  # a constant prediction: undefined, reported as 0


def test_mrpc_qqp_accuracy_f1_and_mean():
    acc = (TP + TN) / 8
    precision, recall = TP / (TP + FP), TP / (TP + FN)
    f1 = 2 * precision * recall / (precision + recall)
    expected = {"accuracy": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}
    assert glue_metrics("mrpc", PREDS, LABELS) == pytest.approx(expected)
    assert glue_metrics("QQP", PREDS, LABELS) == pytest.approx(expected)
    assert acc_and_f1(PREDS, LABELS) == pytest.approx(expected)
    # F1 is that of class 1: scoring class 0 instead (TP'=TN=2, FP'=FN=1, FN'=FP=2) gives another number
    assert binary_f1(PREDS, LABELS, positive=0) == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert binary_f1([0, 0], [0, 0]) == 0.0  # no positives anywhere: 0, no warning


def test_stsb_pearson_spearman_and_mean():
    preds = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    labels = preds**2  # monotone but not linear: Spearman 1, Pearson < 1
    dx, dy = preds - preds.mean(), labels - labels.mean()
    pearson = float((dx * dy).sum() / math.sqrt((dx**2).sum() * (dy**2).sum()))
    out = glue_metrics("sts-b", preds[:, None], labels)  # (N, 1) regression outputs are squeezed
    assert out == pytest.approx({"pearson": pearson, "spearmanr": 1.0, "pearson_and_spearman": (pearson + 1) / 2})
    assert pearson < 0.99
    # Spearman by hand with a swap: ranks [1,2,3,5,4] vs [1..5]: 1 - 6*sum(d^2)/(n(n^2-1)) = 1 - 12/120
    assert pearson_and_spearman([1, 2, 3, 5, 4], [1, 2, 3, 4, 5])["spearmanr"] == pytest.approx(0.9)
    constant = pearson_and_spearman([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert all(math.isnan(v) for v in constant.values())


def test_accuracy_tasks_and_logits_are_argmaxed():
    logits = np.array([[2.0, 0.1, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 2.0, 0.0]])  # argmax 0, 1, 2, 1
    labels = [0, 1, 2, 2]
    for task in ("mnli", "mnli-m", "MNLI-mm", "qnli", "rte", "sst-2", "wnli"):
        assert glue_metrics(task, logits, labels) == {"accuracy": 0.75}
    assert glue_metrics("sst2", [1, 0, 1, 1], [1, 0, 0, 1]) == {"accuracy": 0.75}


def test_task_names_and_main_metric_table():
    assert canonical_task("SST-2") == "sst2"
    assert canonical_task("mnli-mm") == "mnli_mismatched"
    assert canonical_task("MNLI_m") == "mnli_matched"
    with pytest.raises(ValueError, match="unknown GLUE task"):
        canonical_task("squad")
    assert set(GLUE_MAIN_METRIC) == set(GLUE_TASKS)
    assert GLUE_MAIN_METRIC["mrpc"] == "acc_and_f1" and GLUE_MAIN_METRIC["qqp"] == "accuracy"
    assert GLUE_MAIN_METRIC["stsb"] == "pearson" and GLUE_MAIN_METRIC["cola"] == "matthews_correlation"
    # every task's headline key is produced by glue_metrics
    for task in GLUE_TASKS:
        labels = [0.5, 1.0, 3.0, 2.0] if task == "stsb" else [0, 1, 1, 0]
        metrics = glue_metrics(task, [0.4, 1.5, 2.5, 2.0] if task == "stsb" else [0, 1, 0, 0], labels)
        assert math.isfinite(glue_main_metric(task, metrics))


def test_glue_summary_averages_mnli_matched_and_mismatched():
    results = {
        "mnli_matched": {"accuracy": 0.80},
        "mnli_mismatched": {"accuracy": 0.90},
        "cola": {"matthews_correlation": 0.5},
        "mrpc": {"accuracy": 0.8, "f1": 0.9, "acc_and_f1": 0.85},
    }
    summary = glue_summary(results)
    assert summary == pytest.approx({"cola": 0.5, "mrpc": 0.85, "mnli": 0.85, "average": (0.5 + 0.85 + 0.85) / 3})
    assert list(summary) == ["cola", "mrpc", "mnli", "average"]
    with pytest.raises(ValueError):
        glue_summary({})


def test_invalid_inputs():
    with pytest.raises(ValueError, match="labels"):
        glue_metrics("rte", [0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="no examples"):
        glue_metrics("cola", [], [])
