"""Grounding at tiny size: box augmentation, data, the pointer head, bbox learning, IoU accuracy on known
answers, the job. The task contract: tests/tasks/test_task_contract.py."""

from __future__ import annotations

import random

import pytest
import torch
from task_helpers import build, eval_loader, run_job, train_batch, train_steps

from xfm_pipeline.config import ConfigError
from xfm_pipeline.model.box_heads import PatchPointer, centre_patch, patch_centres
from xfm_pipeline.tasks.checkpoint import load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.tasks.grounding import box_to_target, crop_containing
from xfm_pipeline.tasks.registry import get_task

TASK = get_task("grounding")


def test_options_and_box_geometry(case, tiny_init):
    with pytest.raises(ConfigError, match="hflip"):
        build(case, tiny_init, hflip=True)
    with pytest.raises(ValueError, match="hflip_prob"):
        build(case, tiny_init, hflip_prob=2.0)
    with pytest.raises(ValueError, match="box_head"):
        build(case, tiny_init, box_head="anchors")
    rng = random.Random(0)
    for _ in range(200):  # every random crop contains the box
        bbox = [rng.uniform(0, 80), rng.uniform(0, 80), rng.uniform(1, 16), rng.uniform(1, 16)]
        x0, y0, x1, y1 = crop_containing(bbox, 96, 96, rng)
        assert x0 <= bbox[0] and y0 <= bbox[1] and x1 >= bbox[0] + bbox[2] and y1 >= bbox[1] + bbox[3] and x1 <= 96 and y1 <= 96
    assert box_to_target([10, 20, 30, 40], (0, 0, 100, 100), flip=False) == pytest.approx((0.25, 0.4, 0.3, 0.4))
    assert box_to_target([10, 20, 30, 40], (0, 0, 100, 100), flip=True) == pytest.approx((0.75, 0.4, 0.3, 0.4))
    assert box_to_target([10, 20, 30, 40], (10, 20, 50, 70), flip=False) == pytest.approx((0.375, 0.4, 0.75, 0.8))


def test_splits_dataset_and_collate(case, tokenizer):
    assert TASK.splits == ("train", "val", "testA", "testB")
    assert len(TASK.dataset("train", case.data, tokenizer, case.params, case.image_root, train=True)) == 6
    for split, n in {"val": 4, "testA": 3, "testB": 3}.items():
        assert len(eval_loader(case, split, tokenizer).dataset) == n
    batch = train_batch(case, tokenizer, seed=5)
    assert batch["images"].shape == (6, 3, 64, 64) and batch["target_bbox"].shape == (6, 4)
    assert ((batch["target_bbox"] >= 0) & (batch["target_bbox"] <= 1)).all()
    plain = train_batch(case.with_options(augment=False), tokenizer, seed=5)  # without augmentation the target is the whole-image box
    first = case.data["refs"][0]
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


@pytest.mark.integration  # an optimiser runs several steps
@pytest.mark.parametrize("box_head", ["cls", "pointer"])
def test_box_head_gets_gradients_and_a_few_steps_learn(box_head, case, tokenizer, tiny_init):
    model = build(case, tiny_init, box_head=box_head)
    batch = train_batch(case.with_options(augment=False), tokenizer, seed=5)
    losses = TASK.loss(model, batch)
    assert {"loss", "loss_bbox", "loss_giou"} <= set(losses)
    assert ("loss_pointer" in losses) == (box_head == "pointer")
    losses["loss"].backward()
    head = model.xfm.bbox_head[0] if box_head == "cls" else model.xfm.bbox_pointer.refine[0]
    assert head.weight.grad is not None
    before, after = train_steps(TASK, model, batch, steps=8, lr=2e-4)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("box_head", ["cls", "pointer"])
def test_predictions_and_accuracy_on_known_answers(box_head, case, tokenizer, tiny_init, tmp_path):
    case = case.with_options(box_head=box_head)
    model = build(case, tiny_init).eval()
    assert TASK.new_parameters(model) == []  # both box heads belong to the pretrained model
    loader = eval_loader(case, "testA", tokenizer)
    predictions = TASK.predict(model, loader, case.params)
    write_task_checkpoint(model, tmp_path, case.params, tokenizer)  # the checkpoint rebuilds the chosen box head
    assert TASK.predict(load_task_checkpoint(tmp_path).eval(), loader, case.params) == predictions
    assert [p["index"] for p in predictions] == [0, 1, 2] and all(len(p["pred_bbox"]) == 4 for p in predictions)
    metrics = TASK.evaluate(predictions, "testA", case.data)
    assert set(metrics) == {"grounding_acc"} and 0 <= metrics["grounding_acc"] <= 100
    gold = [r for r in case.data["refs"] if r["split"] == "testA"]
    perfect = [{"index": i, "pred_bbox": r["bbox"]} for i, r in enumerate(gold)]
    assert TASK.evaluate(perfect, "testA", case.data) == {"grounding_acc": 100.0}
    shifted = [{"index": i, "pred_bbox": [x + w, y, w, h]} for i, (x, y, w, h) in enumerate(r["bbox"] for r in gold)]
    assert TASK.evaluate(shifted, "testA", case.data) == {"grounding_acc": 0.0}


@pytest.mark.integration
def test_run_finetune_end_to_end(case, tiny_init, tmp_path):
    result = run_job(case, tiny_init, tmp_path, batch_size=3, eval_batch_size=4, options={})
    assert set(result["metrics"]) == {"val", "testA", "testB"}
    assert all(set(m) == {"grounding_acc"} for m in result["metrics"].values())
    assert any("val/grounding_acc" in h for h in result["history"])
    assert load_task_checkpoint(result["checkpoint"]).task == "grounding"
