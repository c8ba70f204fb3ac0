"""The contract every registered task keeps, checked on the tiny init checkpoint and a few shapes-world records.

For each task of the registry: the task model builds on the backbone; the loss of one training batch is a
finite scalar whose backward reaches the parameters; prediction on the validation split gives JSON-ready
records; evaluation returns finite metrics including the task's ``selection_metric``; a task checkpoint
written and loaded back predicts exactly the same. What each task predicts (known answers) is tested in its
own ``test_<task>.py``.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from task_helpers import build, eval_loader, train_batch

from xfm_pipeline.tasks.checkpoint import load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.tasks.registry import TASKS, get_task

NAMES = sorted(TASKS)  # every registered task


def test_the_registry_lists_the_tasks_of_the_paper():
    assert {"vqa", "captioning", "retrieval", "nlvr", "grounding", "glue_mnli", "imagenet", "imagenet_linear_probe"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_task_contract(name, task_case, tiny_init, tokenizer, tmp_path):
    task, case = get_task(name), task_case(name)
    assert task.name == name and task.splits[:2] == ("train", "val") and task.selection_metric
    model = build(case, tiny_init)
    assert model.task == name

    # one training batch: a finite scalar loss whose gradient reaches the parameters
    model.train()
    torch.manual_seed(0)
    losses = task.loss(model, train_batch(case, tokenizer))
    assert losses["loss"].shape == () and all(math.isfinite(float(v.detach())) for v in losses.values()), losses
    losses["loss"].backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert any(bool(g.abs().sum() > 0) for g in grads.values()), f"{name}: no parameter got a non-zero gradient"
    assert all(bool(torch.isfinite(g).all()) for g in grads.values())
    model.zero_grad(set_to_none=True)

    # predict on the validation split, evaluate with the official metric
    model.eval()
    loader = eval_loader(case, "val", tokenizer)
    with torch.no_grad():
        predictions = task.predict(model, loader, case.params)
    assert predictions and json.loads(json.dumps(predictions)) == predictions  # JSON-ready records
    metrics = task.evaluate(predictions, "val", case.data)
    assert task.selection_metric in metrics, (name, sorted(metrics))
    assert all(isinstance(v, float | int) and math.isfinite(v) for v in metrics.values()), metrics

    # the task checkpoint round trip predicts the same
    write_task_checkpoint(model, tmp_path, case.params, tokenizer)
    restored = load_task_checkpoint(tmp_path, case.data).eval()
    assert restored.task == name
    with torch.no_grad():
        assert task.predict(restored, loader, case.params) == predictions
