"""Input-blind baselines: the text-only VQA prior and the majority class."""

from __future__ import annotations

import pytest

from xfm_pipeline.metrics.baselines import (
    answer_prior,
    answer_prior_accuracy,
    majority_accuracy,
    most_frequent,
    question_prior_accuracy,
    statement_prior_accuracy,
)


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


def test_question_prior_reads_answers_from_the_wording():
    # the type prior says "yes" for every existence question; the wording says more
    train = [
        ("Is there a red circle?", "existence", ["no"] * 10),
        ("is there a red circle?", "existence", ["no"] * 8 + ["yes"] * 2),
        ("are there any circles?", "existence", ["yes"] * 10),
        ("are there any stars?", "existence", ["yes"] * 10),
        ("what colour is the star?", "colour", ["red"] * 10),
    ]
    test = [
        ("is  there a red circle?", "existence", ["no"] * 10),  # same question, other spacing: "no"
        ("are there any stars?", "existence", ["yes"] * 9 + ["no"]),
        ("is there a blue star?", "existence", ["no"] * 10),  # unseen: type prior "yes"
        ("what colour is the circle?", "colour", ["red"] * 2 + ["blue"] * 8),  # unseen: type prior "red"
        ("how many stars?", "count", ["yes"] * 10),  # unseen type: overall most frequent answer
    ]
    acc = question_prior_accuracy(train, test)
    assert acc["existence"] == pytest.approx(2 / 3)
    assert acc["colour"] == pytest.approx(0.6)  # 2 of 10 match: (2 * 1/3 + 8 * 2/3) / 10 leave-one-out
    assert acc["count"] == 1.0
    assert acc["overall"] == pytest.approx((1 + 1 + 0 + 0.6 + 1) / 5)
    assert answer_prior_accuracy([t[1:] for t in train], [t[1:] for t in test])["existence"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        question_prior_accuracy(train, [])


def test_statement_prior_reads_labels_from_the_wording():
    train = [
        ("There are four stars in total", "False"),
        ("there are four stars  in total", "False"),
        ("there are four stars in total", "True"),
        ("both images contain a star", "True"),
        ("both images contain a circle", "True"),
        ("both images contain a circle", "False"),  # a tie: the smaller label, "False"
    ]
    test = [
        ("there are four stars in total", "False"),  # looked up: "False" (2 of 3)
        ("both images contain a star", "False"),  # looked up: "True", wrong
        ("both images contain a circle", "False"),  # tie -> "False"
        ("one image contains a cross and the other does not", "True"),  # unseen: majority "False"
    ]
    assert statement_prior_accuracy(train, test) == pytest.approx(2 / 4)
    assert statement_prior_accuracy(train, test[:1]) == 1.0
    with pytest.raises(ValueError):
        statement_prior_accuracy(train, [])


def test_majority_accuracy():
    assert majority_accuracy(["True", "True", "False"], ["True", "False", "False", "False"]) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        majority_accuracy(["a"], [])


def test_mean_box_accuracy_predicts_the_mean_training_box():
    from xfm_pipeline.metrics.baselines import mean_box_accuracy

    train = [[0, 0, 10, 10], [20, 20, 10, 10]]  # mean box (10, 10, 10, 10)
    assert mean_box_accuracy(train, [[10, 10, 10, 10], [11, 10, 10, 10]]) == 1.0  # IoU 1 and 0.82
    assert mean_box_accuracy(train, [[10, 10, 10, 10], [15, 10, 10, 10], [40, 40, 10, 10]]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="non-empty"):
        mean_box_accuracy([], [[0, 0, 1, 1]])


def test_frequent_captions_normalise_and_rank_by_count():
    from xfm_pipeline.metrics.baselines import frequent_captions

    train = ["A red circle.", "a red circle", "two shapes", "a blue square ", "two shapes.", "a red circle"]
    assert frequent_captions(train, 2) == ["a red circle", "two shapes"]
    assert frequent_captions(train, 5) == ["a red circle", "two shapes", "a blue square"]
    with pytest.raises(ValueError, match="no training captions"):
        frequent_captions([], 3)


def test_blind_baselines_benchmark_reads_the_annotation_files(tmp_path, benchmark_module, monkeypatch):
    import json

    bench = benchmark_module("blind_baselines")
    monkeypatch.setattr("xfm_pipeline.metrics.captioning.java_available", lambda: False)  # METEOR: tests/metrics/test_captioning_metric.py

    refs = [
        {"bbox": [0, 0, 10, 10], "split": "train"},
        {"bbox": [20, 20, 10, 10], "split": "train"},
        {"bbox": [10, 10, 10, 10], "split": "val"},
        {"bbox": [50, 50, 10, 10], "split": "testA"},
    ]
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    assert bench.grounding_baseline(tmp_path / "refs.json") == {"testA": 0.0, "val": 1.0}

    train = ["a red circle"] * 3 + ["two blue squares"] * 2 + ["a green triangle"]
    (tmp_path / "train.json").write_text(json.dumps([{"image": f"{i}.jpg", "image_id": i, "caption": c} for i, c in enumerate(train)]))
    for split in ("val", "test"):
        gt = {
            "images": [{"id": 1}, {"id": 2}, {"id": 3}],
            "annotations": [
                {"id": 10, "image_id": 1, "caption": "two blue squares"},
                {"id": 20, "image_id": 2, "caption": "two blue squares near a circle"},
                {"id": 30, "image_id": 3, "caption": "a red circle"},
            ],
        }
        (tmp_path / f"{split}_gt.json").write_text(json.dumps(gt))
    out = bench.captioning_baseline(tmp_path, candidates=3)
    assert out["caption"] == "two blue squares"  # not the most frequent caption: the best on validation CIDEr
    assert out["test"]["cider"] > 0 and out["test"]["bleu_1"] > 0
