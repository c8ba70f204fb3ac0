"""VQA accuracy per question type and per answer type, as ``vqaEval.py`` reports them (docs/xfm.md#vqa-accuracy)."""

from __future__ import annotations

import pytest

from xfm_pipeline.metrics.vqa import vqa_accuracy, vqa_accuracy_breakdown

PREDICTIONS = ["yes", "two", "red", "blue"]
ANSWERS = [
    ["yes"] * 10,  # 1.0
    ["2"] * 3 + ["3"] * 7,  # "two" -> "2": 3 matches -> 0.9
    ["red"] * 2 + ["green"] * 8,  # 2 matches -> 0.6
    ["green"] * 10,  # 0.0
]
QUESTION_TYPES = ["is the", "how many", "what color is the", "what color is the"]
ANSWER_TYPES = ["yes/no", "number", "other", "other"]


def test_breakdown_hand_computed():
    out = vqa_accuracy_breakdown(PREDICTIONS, ANSWERS, QUESTION_TYPES, ANSWER_TYPES)
    assert out["overall"] == pytest.approx((1.0 + 0.9 + 0.6 + 0.0) / 4)
    assert out["overall"] == pytest.approx(vqa_accuracy(PREDICTIONS, ANSWERS))
    assert out["per_question_type"] == pytest.approx({"how many": 0.9, "is the": 1.0, "what color is the": 0.3})
    assert out["per_answer_type"] == pytest.approx({"number": 0.9, "other": 0.3, "yes/no": 1.0})
    assert list(out["per_answer_type"]) == ["number", "other", "yes/no"]


def test_breakdown_only_for_given_types():
    assert set(vqa_accuracy_breakdown(PREDICTIONS, ANSWERS)) == {"overall"}
    assert set(vqa_accuracy_breakdown(PREDICTIONS, ANSWERS, answer_types=ANSWER_TYPES)) == {"overall", "per_answer_type"}


def test_breakdown_invalid_inputs():
    with pytest.raises(ValueError, match="question_types"):
        vqa_accuracy_breakdown(PREDICTIONS, ANSWERS, question_types=QUESTION_TYPES[:2])
    with pytest.raises(ValueError):
        vqa_accuracy_breakdown(PREDICTIONS[:1], ANSWERS)
    with pytest.raises(ValueError):
        vqa_accuracy_breakdown([], [])
