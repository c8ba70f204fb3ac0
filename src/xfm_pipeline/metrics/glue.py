"""GLUE metrics as the Hugging Face ``glue`` metric computes them (X-FM's ``load_metric('glue', task)``,
docs/xfm.md#glue-metrics), plus the means the paper reports.

Per task (values are fractions, as HF returns them; multiply by 100 for the paper's tables):

============================  ==========================================================  =============
task                          metrics                                                     headline
============================  ==========================================================  =============
cola                          ``matthews_correlation``                                     MCC
sst2, qnli, rte, wnli,        ``accuracy``                                                 accuracy
mnli, mnli_matched,
mnli_mismatched
mrpc                          ``accuracy``, ``f1`` (positive class 1), ``acc_and_f1``       ``acc_and_f1``
qqp                           ``accuracy``, ``f1`` (positive class 1), ``acc_and_f1``       accuracy
stsb                          ``pearson``, ``spearmanr``, ``pearson_and_spearman``         Pearson
============================  ==========================================================  =============

``acc_and_f1`` and ``pearson_and_spearman`` are the plain means of the two numbers. The paper's MNLI
number is the mean of the matched and mismatched accuracies: :func:`glue_summary` forms it.

Edge cases follow scikit-learn / SciPy: MCC is 0 when a class is never predicted (or never true);
F1 is 0 when there is no positive prediction and no positive label; Pearson and Spearman are NaN when
the predictions or the labels are constant (a correlation is undefined there).

SciPy and scikit-learn are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from xfm_pipeline.metrics.classification import accuracy

GLUE_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "mnli_matched", "mnli_mismatched", "qnli", "rte", "wnli")
GLUE_REGRESSION_TASKS = frozenset({"stsb"})
# The metric each task is reported by in the paper (Table 2 of arXiv 2301.05065).
GLUE_MAIN_METRIC = {
    "cola": "matthews_correlation",
    "sst2": "accuracy",
    "mrpc": "acc_and_f1",
    "qqp": "accuracy",
    "stsb": "pearson",
    "mnli": "accuracy",
    "mnli_matched": "accuracy",
    "mnli_mismatched": "accuracy",
    "qnli": "accuracy",
    "rte": "accuracy",
    "wnli": "accuracy",
}
_ALIASES = {
    "sst_2": "sst2",
    "sts_b": "stsb",
    "mnli_m": "mnli_matched",
    "mnli_mm": "mnli_mismatched",
    "mnli_match": "mnli_matched",
    "mnli_mismatch": "mnli_mismatched",
}


def canonical_task(task: str) -> str:
    """``'SST-2'`` -> ``'sst2'``, ``'MNLI-mm'`` -> ``'mnli_mismatched'``; raises ``ValueError`` if unknown."""
    name = task.strip().lower().replace("-", "_")
    name = _ALIASES.get(name, name)
    if name not in GLUE_MAIN_METRIC:
        raise ValueError(f"unknown GLUE task {task!r}; known: {', '.join(GLUE_TASKS)}")
    return name


def _pair(predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    preds, gold = np.asarray(predictions), np.asarray(labels)
    if preds.ndim != 1 or gold.ndim != 1:
        raise ValueError(f"predictions and labels must be 1-D, got shapes {preds.shape} and {gold.shape}")
    if len(preds) != len(gold):
        raise ValueError(f"{len(preds)} predictions for {len(gold)} labels")
    if len(preds) == 0:
        raise ValueError("no examples to score")
    return preds, gold


def matthews_corr(predictions, labels) -> float:
    """Matthews correlation coefficient (CoLA), via ``sklearn.metrics.matthews_corrcoef``."""
    from sklearn.metrics import matthews_corrcoef

    preds, gold = _pair(predictions, labels)
    return float(matthews_corrcoef(gold, preds))


def binary_f1(predictions, labels, positive=1) -> float:
    """F1 of the positive class (MRPC/QQP: 1 = paraphrase/duplicate); 0 when undefined."""
    from sklearn.metrics import f1_score

    preds, gold = _pair(predictions, labels)
    return float(f1_score(gold, preds, pos_label=positive, average="binary", zero_division=0))


def acc_and_f1(predictions, labels) -> dict[str, float]:
    """MRPC / QQP: ``accuracy``, ``f1`` (positive class 1) and their mean ``acc_and_f1``."""
    acc, f1 = accuracy(predictions, labels), binary_f1(predictions, labels)
    return {"accuracy": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2.0}


def pearson_and_spearman(predictions, labels) -> dict[str, float]:
    """STS-B: ``pearson``, ``spearmanr`` and their mean ``pearson_and_spearman`` (NaN if an input is constant)."""
    import warnings

    from scipy.stats import pearsonr, spearmanr

    preds, gold = _pair(predictions, labels)
    preds, gold = preds.astype(np.float64), gold.astype(np.float64)
    if len(preds) < 2 or np.ptp(preds) == 0 or np.ptp(gold) == 0:
        pearson = spearman = float("nan")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pearson = float(pearsonr(preds, gold)[0])
            spearman = float(spearmanr(preds, gold)[0])
    return {"pearson": pearson, "spearmanr": spearman, "pearson_and_spearman": (pearson + spearman) / 2.0}


def _to_predictions(task: str, predictions) -> np.ndarray:
    """Logits (N, C) -> argmax class ids; STS-B (N, 1) -> (N,). 1-D inputs pass through."""
    preds = np.asarray(predictions)
    if task in GLUE_REGRESSION_TASKS:
        if preds.ndim == 2 and preds.shape[1] == 1:
            preds = preds[:, 0]
        return preds
    if preds.ndim == 2:
        preds = preds.argmax(axis=1)
    return preds


def glue_metrics(task: str, predictions, labels) -> dict[str, float]:
    """All metrics of one GLUE task (table in the module doc).

    Args:
        task: a GLUE task name (``'cola'``, ``'SST-2'``, ``'mnli-mm'``, ...; see :func:`canonical_task`).
        predictions: class ids (N,) or logits (N, C), argmax-ed here; for STS-B, scores (N,) or (N, 1).
        labels: gold class ids (N,), or gold similarity scores for STS-B.
    """
    name = canonical_task(task)
    preds = _to_predictions(name, predictions)
    if name == "cola":
        return {"matthews_correlation": matthews_corr(preds, labels)}
    if name in ("mrpc", "qqp"):
        return acc_and_f1(preds, labels)
    if name == "stsb":
        return pearson_and_spearman(preds, labels)
    return {"accuracy": accuracy(preds, labels)}


def glue_main_metric(task: str, metrics: Mapping[str, float]) -> float:
    """The headline number of ``task`` (``GLUE_MAIN_METRIC``) from its :func:`glue_metrics` output."""
    return float(metrics[GLUE_MAIN_METRIC[canonical_task(task)]])


def glue_summary(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Headline number per task, as in the paper's GLUE table, and their ``average``.

    ``results`` maps task names to :func:`glue_metrics` outputs. When both ``mnli_matched`` and
    ``mnli_mismatched`` are present they are replaced by ``mnli`` = the mean of the two accuracies
    (the paper's "m/mm average"); a plain ``mnli`` entry is used as is otherwise.
    """
    headline = {canonical_task(task): glue_main_metric(task, metrics) for task, metrics in results.items()}
    if "mnli_matched" in headline and "mnli_mismatched" in headline:
        headline["mnli"] = (headline.pop("mnli_matched") + headline.pop("mnli_mismatched")) / 2.0
    if not headline:
        raise ValueError("no GLUE results to summarise")
    ordered = {task: headline[task] for task in GLUE_TASKS if task in headline}
    ordered["average"] = sum(ordered.values()) / len(ordered)
    return ordered
