"""Blind baselines of each task kind on tiny hand-made records with known answers."""

from __future__ import annotations

import itertools

import pytest

from xfm_pipeline.reporting.blind import blind_baselines, random_ranking_r_mean
from xfm_pipeline.tasks.registry import PIPELINES


def spec(pipeline: str):
    return PIPELINES[pipeline][0]


def test_random_ranking_recall_is_the_exact_expectation_over_all_rankings():
    # image side: one image with 2 of 6 captions; enumerate every ranking of the 6 captions
    for k in (1, 2, 5):
        hits = [any(t < 2 for t in order[:k]) for order in itertools.permutations(range(6))]
        txt = sum(hits) / len(hits)
        assert random_ranking_r_mean([2, 2, 2], ks=(k,)) == pytest.approx((txt + min(k, 3) / 3) / 2)
    assert random_ranking_r_mean([1, 1], ks=(1, 5, 10)) == pytest.approx(2.5 / 3)  # r1 = 1/2 both ways, r5 = r10 = 1


def test_vqa_priors_on_the_headline_split_only():
    def q(question_id, question, answer, split="test"):
        return {"question_id": question_id, "image": f"{split}/1.jpg", "question": question, "answer": [answer] * 10, "question_type": "colour"}

    train = [
        q(1, "what colour is the circle?", "red", "train"),
        q(2, "what colour is the circle?", "red", "train"),
        q(3, "what colour is the star?", "blue", "train"),
    ]
    test = [q(4, "what colour is the circle?", "red"), q(5, "what colour is the star?", "blue")]
    out = blind_baselines(spec("finetune_vqa"), {"train": train, "val": test, "test": test, "answer_list": ["red", "blue"]})
    assert list(out) == ["test"]  # the headline's split (val is labelled too)
    assert [(b["name"], b["value"]) for b in out["test"]] == [("text-only answer prior per question type", 50.0), ("question lookup", 100.0)]


def test_nlvr_majority_and_statement_lookup():
    def r(sentence, label):
        return {"images": ["a.jpg", "b.jpg"], "sentence": sentence, "label": str(label)}

    train = [r("s1", True), r("s1", True), r("s2", False)]
    test = [r("s1", True), r("s2", False), r("s3", False)]
    out = blind_baselines(spec("finetune_nlvr"), {"train": train, "val": [], "test": test})
    assert [(b["name"], b["value"]) for b in out["test"]] == [("majority label", pytest.approx(100 / 3)), ("statement lookup", pytest.approx(200 / 3))]
    assert "val" not in out  # no records


def test_grounding_mean_box_per_evaluation_split():
    def r(i, split, box):
        return {"image": f"{split}/{i}.jpg", "text": "the square", "bbox": box, "ref_id": i, "split": split}

    refs = [r(0, "train", [0, 0, 10, 10]), r(1, "train", [10, 10, 10, 10]), r(2, "val", [5, 5, 10, 10]), r(3, "testA", [50, 50, 4, 4])]
    out = blind_baselines(spec("finetune_grounding"), {"refs": refs})
    assert {s: [b["value"] for b in v] for s, v in out.items()} == {"testA": [0.0], "val": [100.0]}


def test_glue_majority_label_scored_with_the_task_metric():
    glue = {"SST-2/train": "sentence\tlabel\na\t1\nb\t1\nc\t0\n", "SST-2/dev": "sentence\tlabel\nd\t1\ne\t0\nf\t0\ng\t0\n"}
    assert blind_baselines(spec("finetune_glue_sst2"), {"glue": glue}) == {"val": [{"name": "majority label", "value": 25.0}]}


def test_imagenet_majority_class_on_the_test_split():
    manifest = [
        {"image": f"{s}/{c}/{i}.jpg", "label": c, "split": s}
        for i, (s, c) in enumerate([("train", "a"), ("train", "a"), ("train", "b"), *[("val", c) for c in "abbb"]])
    ]
    assert blind_baselines(spec("finetune_imagenet"), {"manifest": manifest}) == {"test": [{"name": "majority class", "value": 25.0}]}


def test_captioning_picks_the_constant_caption_on_validation_cider():
    train = [{"image": f"train/{i}.jpg", "caption": c, "image_id": i} for i, c in enumerate(["a red circle"] * 3 + ["a blue square"])]

    def gt(first):  # the first image shows a blue square, the two others a green star
        refs = {first: "a blue square", first + 1: "a green star", first + 2: "a green star"}
        return {"images": [{"id": i} for i in refs], "annotations": [{"image_id": i, "id": i, "caption": c} for i, c in refs.items()]}

    out = blind_baselines(spec("finetune_captioning"), {"train": train, "val": [], "test": [], "val_gt": gt(1), "test_gt": gt(4)})
    assert sorted(out) == ["test", "val"]
    assert out["val"][0]["name"] == "constant caption 'a blue square'"  # the less frequent caption matches the references
    assert out["test"][0]["value"] > 0.0
