"""Top-k and plain accuracy on hand-made scores (ImageNet / NLVR2, docs/xfm.md#classification-accuracy)."""

from __future__ import annotations

import numpy as np
import pytest

from xfm_pipeline.metrics.classification import accuracy, topk_accuracy

SCORES = np.array(
    [
        [0.1, 0.5, 0.3, 0.1],  # label 1: rank 0
        [0.4, 0.3, 0.2, 0.1],  # label 2: rank 2
        [0.9, 0.05, 0.03, 0.02],  # label 3: rank 3
    ]
)
LABELS = [1, 2, 3]


def test_topk_hand_computed():
    assert topk_accuracy(SCORES, LABELS, ks=(1, 2, 3, 4)) == pytest.approx({1: 1 / 3, 2: 1 / 3, 3: 2 / 3, 4: 1.0})
    assert topk_accuracy(SCORES, LABELS) == pytest.approx({1: 1 / 3, 5: 1.0})  # default (1, 5); 5 > 4 classes


def test_k_larger_than_number_of_classes_is_clamped():
    scores = np.array([[0.2, 0.8], [0.9, 0.1]])
    assert topk_accuracy(scores, [0, 0], ks=(1, 5, 1000)) == {1: 0.5, 5: 1.0, 1000: 1.0}


def test_topk_ties_are_pessimistic():
    scores = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0]])
    # row 0: label 0 ties with class 1 -> rank 1; row 1: label 2 ties with both others -> rank 2
    assert topk_accuracy(scores, [0, 2], ks=(1, 2, 3)) == {1: 0.0, 2: 0.5, 3: 1.0}


def test_topk_matches_argsort_without_ties():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(500, 10))
    labels = rng.integers(0, 10, size=500)
    order = np.argsort(-scores, axis=1)
    for k in (1, 2, 5):
        expected = np.mean([labels[i] in order[i, :k] for i in range(500)])
        assert topk_accuracy(scores, labels, ks=(k,))[k] == pytest.approx(expected)
    assert topk_accuracy(scores, labels, ks=(1,))[1] == pytest.approx(accuracy(scores.argmax(1), labels))


def test_accuracy():
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75
    assert accuracy(np.array(["True", "False"]), np.array(["True", "True"])) == 0.5


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: accuracy([0, 1], [0]), "must both be"),
        (lambda: accuracy([], []), "no examples"),
        (lambda: topk_accuracy(SCORES, [0, 1]), r"\(N, C\)"),
        (lambda: topk_accuracy(SCORES, [0, 1, 4]), r"\[0, 4\)"),
        (lambda: topk_accuracy(SCORES, LABELS, ks=(0,)), "positive"),
        (lambda: topk_accuracy(np.full((1, 2), np.nan), [0]), "NaN"),
    ],
)
def test_invalid_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
