"""Official VQA accuracy on hand-made cases with known answers (docs/xfm.md#vqa-accuracy)."""

from __future__ import annotations

import pytest

from xfm_pipeline.metrics.vqa import normalize_answer, process_digit_article, process_punctuation, vqa_accuracy, vqa_question_accuracy


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two", "2"),
        ("a dog", "dog"),
        ("The Dog", "dog"),
        ("yes.", "yes"),
        ("dont", "don't"),
        ("none", "0"),
        ("an apple", "apple"),
        ("  red\tand\nblue ", "red and blue"),
        ("3.5", "3.5"),  # a period between digits stays
        ("1,000", "1000"),  # digit-comma-digit: punctuation removed without a space
        ("black/white", "black white"),
        ("hello ,world", "hello world"),  # punctuation next to a space is deleted
        ("mr. smith", "mr smith"),
        ("isnt it", "isn't it"),
    ],
)
def test_normalization(raw, expected):
    assert normalize_answer(raw) == expected


def test_process_functions_separately():
    assert process_punctuation("yes!") == "yes "
    assert process_punctuation("yes !") == "yes "
    assert process_digit_article("The TWO dogs") == "2 dogs"


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("2", ["2"] * 10, 1.0),
        ("Two", ["2"] * 10, 1.0),
        ("dog", ["a dog"] * 10, 0.0),  # identical GT answers are not normalised at all
        ("a dog", ["dog"] * 10, 1.0),
        ("yes", ["yes."] * 9 + ["no"], 1.0),  # differing GT answers get processPunctuation
        ("yes.", ["yes"] * 10, 1.0),
        ("dont", ["don't"] * 10, 1.0),
        ("dog", ["dog"] * 4 + ["cat"] * 6, 1.0),  # 4 matches: every leave-one-out subset has >= 3
        ("dog", ["dog"] * 3 + ["cat"] * 7, 0.9),  # (7 * 1 + 3 * 2/3) / 10
        ("dog", ["dog"] * 2 + ["cat"] * 8, 0.6),  # (8 * 2/3 + 2 * 1/3) / 10
        ("dog", ["dog"] + ["cat"] * 9, 0.3),  # (9 * 1/3 + 0) / 10
        ("bird", ["dog"] * 5 + ["cat"] * 5, 0.0),
        ("2", ["two"] * 5 + ["2"] * 5, 1.0),  # GT "two" is not digit-normalised: 5 matches of "2"
    ],
)
def test_question_accuracy(prediction, answers, expected):
    assert vqa_question_accuracy(prediction, answers) == pytest.approx(expected)


def test_overall_accuracy_is_the_mean():
    assert vqa_accuracy(["2", "cat"], [["2"] * 10, ["dog"] * 10]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        vqa_accuracy(["a"], [])
    with pytest.raises(ValueError):
        vqa_accuracy([], [])
    with pytest.raises(ValueError):
        vqa_question_accuracy("a", [])
