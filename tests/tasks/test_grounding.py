"""Grounding task at tiny size: box augmentation, data, bbox loss, learning, IoU metric, checkpoint, job."""

from __future__ import annotations

import math
import random

import pytest
from understanding_fixtures import IMAGE_ROOT, load_backbone, one_thread, tiny_init, tokenizer, train_steps, validated, write_data_dir  # noqa: F401

from xfm_pipeline.config import ConfigError
from xfm_pipeline.jobs.finetune import eval_loader
from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.tasks.grounding import box_to_target, crop_containing
from xfm_pipeline.tasks.registry import get_task

pytestmark = pytest.mark.usefixtures("one_thread")

TASK = get_task("grounding")


@pytest.fixture(scope="module")
def data():
    refs = validated("grounding/refcoco+.json")
    keep = {"train": 6, "val": 4, "testA": 3, "testB": 3}
    out = []
    for split, n in keep.items():
        out += [r for r in refs if r["split"] == split][:n]
    return {"refs": out}


def params(**overrides) -> TaskParams:
    base = {"image_size": 64, "batch_size": 6, "eval_batch_size": 4, "max_tokens": 30, "options": {"augment": True}}
    return TaskParams(**{**base, **overrides})


def train_batch(data, tokenizer, augment=True):
    dataset = TASK.dataset("train", data, tokenizer, params(options={"augment": augment}), IMAGE_ROOT, train=True)
    return TASK.collate("train", True)([dataset[(i, 5 + i)] for i in range(len(dataset))])


def test_options_and_box_geometry(tiny_init):
    with pytest.raises(ConfigError, match="hflip"):
        TASK.build_model(load_backbone(tiny_init), params(options={"hflip": True}), {})
    with pytest.raises(ValueError, match="hflip_prob"):
        TASK.build_model(load_backbone(tiny_init), params(options={"hflip_prob": 2.0}), {})
    rng = random.Random(0)
    for _ in range(200):  # every random crop contains the box
        bbox = [rng.uniform(0, 80), rng.uniform(0, 80), rng.uniform(1, 16), rng.uniform(1, 16)]
        x0, y0, x1, y1 = crop_containing(bbox, 96, 96, rng)
        assert x0 <= bbox[0] and y0 <= bbox[1] and x1 >= bbox[0] + bbox[2] and y1 >= bbox[1] + bbox[3] and x1 <= 96 and y1 <= 96
    assert box_to_target([10, 20, 30, 40], (0, 0, 100, 100), flip=False) == pytest.approx((0.25, 0.4, 0.3, 0.4))
    assert box_to_target([10, 20, 30, 40], (0, 0, 100, 100), flip=True) == pytest.approx((0.75, 0.4, 0.3, 0.4))
    assert box_to_target([10, 20, 30, 40], (10, 20, 50, 70), flip=False) == pytest.approx((0.375, 0.4, 0.75, 0.8))


def test_splits_dataset_and_collate(data, tokenizer):
    assert TASK.splits == ("train", "val", "testA", "testB")
    for split, n in {"train": 6, "val": 4, "testA": 3, "testB": 3}.items():
        assert len(TASK.dataset(split, data, tokenizer, params(), IMAGE_ROOT, train=split == "train")) == n
    batch = train_batch(data, tokenizer)
    assert batch["images"].shape == (6, 3, 64, 64) and batch["target_bbox"].shape == (6, 4)
    assert ((batch["target_bbox"] >= 0) & (batch["target_bbox"] <= 1)).all()
    plain = train_batch(data, tokenizer, augment=False)  # without augmentation the target is the whole-image box
    first = data["refs"][0]
    (x, y, w, h), (width, height) = first["bbox"], plain["size"][0].tolist()
    assert plain["target_bbox"][0].tolist() == pytest.approx([(x + w / 2) / width, (y + h / 2) / height, w / width, h / height], abs=1e-6)


def test_loss_backward_and_learning(data, tokenizer, tiny_init):
    model = TASK.build_model(load_backbone(tiny_init), params(), data)
    batch = train_batch(data, tokenizer, augment=False)
    losses = TASK.loss(model, batch)
    assert {"loss", "loss_bbox", "loss_giou"} <= set(losses) and math.isfinite(float(losses["loss"].detach()))
    losses["loss"].backward()
    assert model.xfm.bbox_head[0].weight.grad is not None
    before, after = train_steps(TASK, model, batch, steps=8, lr=2e-4)
    assert after < 0.8 * before, (before, after)


def test_predict_evaluate_and_checkpoint_round_trip(data, tokenizer, tiny_init, tmp_path):
    model = TASK.build_model(load_backbone(tiny_init), params(), data).eval()
    loader = eval_loader(TASK, "testA", data, tokenizer, params(), IMAGE_ROOT)
    predictions = TASK.predict(model, loader, params())
    assert [p["index"] for p in predictions] == [0, 1, 2] and all(len(p["pred_bbox"]) == 4 for p in predictions)
    metrics = TASK.evaluate(predictions, "testA", data)
    assert set(metrics) == {"grounding_acc"} and 0 <= metrics["grounding_acc"] <= 100
    gold = [r for r in data["refs"] if r["split"] == "testA"]
    perfect = [{"index": i, "pred_bbox": r["bbox"]} for i, r in enumerate(gold)]
    assert TASK.evaluate(perfect, "testA", data) == {"grounding_acc": 100.0}
    shifted = [{"index": i, "pred_bbox": [x + w, y, w, h]} for i, (x, y, w, h) in enumerate(r["bbox"] for r in gold)]
    assert TASK.evaluate(shifted, "testA", data) == {"grounding_acc": 0.0}

    directory = tmp_path / "task"
    directory.mkdir()
    write_task_checkpoint(model, directory, params(), tokenizer)
    restored = load_task_checkpoint(directory).eval()
    again = TASK.predict(restored, loader, params())
    assert [c for p in again for c in p["pred_bbox"]] == pytest.approx([c for p in predictions for c in p["pred_bbox"]], abs=1e-3)


def test_run_finetune_end_to_end(data, tiny_init, tmp_path):
    from xfm_pipeline.jobs.finetune import run_finetune

    p = {"batch_size": 3, "eval_batch_size": 4, "max_steps": 2, "eval_every": 2, "max_tokens": 30}
    result = run_finetune({
        "task": "grounding", "params": p, "init_dir": str(tiny_init), "image_root": IMAGE_ROOT, "run_id": None,
        "data_dir": str(write_data_dir(tmp_path / "data", data)), "output_dir": str(tmp_path / "out"),
    })  # fmt: skip
    assert set(result["metrics"]) == {"val", "testA", "testB"}
    assert all(set(m) == {"grounding_acc"} for m in result["metrics"].values())
    assert any("val/grounding_acc" in h for h in result["history"])
    assert load_task_checkpoint(result["checkpoint"]).task == "grounding"
