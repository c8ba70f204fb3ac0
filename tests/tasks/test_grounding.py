"""Grounding task at tiny size: box augmentation, data, bbox loss, learning, IoU metric, checkpoint, job."""

from __future__ import annotations

import math
import random

import pytest
import torch
from understanding_fixtures import IMAGE_ROOT, load_backbone, one_thread, tiny_init, tokenizer, train_steps, validated, write_data_dir  # noqa: F401

from xfm_pipeline.config import ConfigError
from xfm_pipeline.jobs.finetune import eval_loader
from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.model.box_heads import PatchPointer, centre_patch, patch_centres
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
    with pytest.raises(ValueError, match="box_head"):
        TASK.build_model(load_backbone(tiny_init), params(options={"box_head": "anchors"}), {})
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


def test_pointer_geometry():
    assert patch_centres(2).tolist() == [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]  # (x, y), row-major
    boxes = torch.tensor([[0.1, 0.2, 0.1, 0.1], [0.9, 0.6, 0.1, 0.1], [1.0, 1.0, 0.2, 0.2], [0.6, 0.4, 0.5, 0.5]])
    assert centre_patch(boxes, 2).tolist() == [0, 3, 3, 1]


def test_a_sure_pointer_puts_the_box_on_the_pointed_patch():
    pointer = PatchPointer(text_width=8, vision_width=6, dim=4)
    with torch.no_grad():
        pointer.query.weight.zero_()
        pointer.query.bias.fill_(10.0)  # the same query for any CLS
        pointer.key.weight.zero_()
        pointer.key.weight[:, :4] = torch.eye(4)
        pointer.key.bias.zero_()
        pointer.refine[3].weight.zero_()
        pointer.refine[3].bias.zero_()  # no offset (tanh 0), size sigmoid(0) = 0.5
    patches = torch.zeros(2, 9, 6)  # a 3 x 3 grid
    patches[0, 5, :4] = 10.0  # image 0 points at patch 5 (row 1, col 2), image 1 at patch 0
    patches[1, 0, :4] = 10.0
    scores, boxes = pointer(torch.randn(2, 8), patches)
    assert scores.argmax(dim=1).tolist() == [5, 0]
    torch.testing.assert_close(boxes, torch.tensor([[5 / 6, 0.5, 0.5, 0.5], [1 / 6, 1 / 6, 0.5, 0.5]]))


@pytest.mark.parametrize("box_head", ["cls", "pointer"])
def test_loss_backward_and_learning(box_head, data, tokenizer, tiny_init):
    model = TASK.build_model(load_backbone(tiny_init), params(options={"augment": True, "box_head": box_head}), data)
    batch = train_batch(data, tokenizer, augment=False)
    losses = TASK.loss(model, batch)
    assert {"loss", "loss_bbox", "loss_giou"} <= set(losses) and math.isfinite(float(losses["loss"].detach()))
    assert ("loss_pointer" in losses) == (box_head == "pointer")
    losses["loss"].backward()
    head = model.xfm.bbox_head[0] if box_head == "cls" else model.xfm.bbox_pointer.refine[0]
    assert head.weight.grad is not None
    before, after = train_steps(TASK, model, batch, steps=8, lr=2e-4)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("box_head", ["cls", "pointer"])
def test_predict_evaluate_and_checkpoint_round_trip(box_head, data, tokenizer, tiny_init, tmp_path):
    task_params = params(options={"augment": True, "box_head": box_head})
    model = TASK.build_model(load_backbone(tiny_init), task_params, data).eval()
    assert TASK.new_parameters(model) == []  # both box heads belong to the pretrained model
    loader = eval_loader(TASK, "testA", data, tokenizer, task_params, IMAGE_ROOT)
    predictions = TASK.predict(model, loader, task_params)
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
    write_task_checkpoint(model, directory, task_params, tokenizer)
    restored = load_task_checkpoint(directory).eval()
    again = TASK.predict(restored, loader, task_params)
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
