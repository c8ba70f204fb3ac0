"""Input-blind baselines: the text-only VQA prior and the majority class."""

from __future__ import annotations

import pytest

from xfm_pipeline.metrics.baselines import answer_prior, answer_prior_accuracy, majority_accuracy, most_frequent


def test_most_frequent_is_deterministic_on_ties():
    assert most_frequent(["b", "a", "b", "a"]) == "a"
    assert most_frequent([2, 1, 1]) == 1
    with pytest.raises(ValueError):
        most_frequent([])


def test_answer_prior_uses_normalised_answers_per_type():
    train = [("count", ["two"] * 6 + ["3"] * 4), ("count", ["2"] * 10), ("colour", ["Red"] * 10)]
    assert answer_prior(train) == {"colour": "red", "count": "2"}


def test_answer_prior_accuracy():
    train = [("yes/no", ["yes"] * 10), ("yes/no", ["yes"] * 10), ("yes/no", ["no"] * 10), ("colour", ["red"] * 10)]
    test = [("yes/no", ["yes"] * 10), ("yes/no", ["no"] * 10), ("colour", ["blue"] * 10), ("other", ["yes"] * 10)]
    acc = answer_prior_accuracy(train, test)
    assert acc["yes/no"] == pytest.approx(0.5)
    assert acc["colour"] == 0.0
    assert acc["other"] == 1.0  # unseen type: the overall most frequent training answer ("yes")
    assert acc["overall"] == pytest.approx(0.5)


def test_majority_accuracy():
    assert majority_accuracy(["True", "True", "False"], ["True", "False", "False", "False"]) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        majority_accuracy(["a"], [])
