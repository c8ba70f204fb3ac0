"""NLVR2 task at tiny size: data, two-pass fusion head, loss, learning, metrics, checkpoint, job."""

from __future__ import annotations

import math

import pytest
import torch
from understanding_fixtures import IMAGE_ROOT, load_backbone, one_thread, tiny_init, tokenizer, train_steps, validated, write_data_dir  # noqa: F401

from xfm_pipeline.config import ConfigError
from xfm_pipeline.jobs.finetune import eval_loader
from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.tasks.common import mentions_left_right
from xfm_pipeline.tasks.registry import get_task

pytestmark = pytest.mark.usefixtures("one_thread")

TASK = get_task("nlvr")


@pytest.fixture(scope="module")
def data():
    train = validated("nlvr/train.json")[:6]
    train[1] = {**train[1], "label": train[1]["label"] == "True"}  # booleans are accepted too
    return {"train": train, "val": validated("nlvr/dev.json")[:5], "test": validated("nlvr/test.json")[:4]}


def params(**overrides) -> TaskParams:
    base = {"image_size": 64, "batch_size": 6, "eval_batch_size": 4, "max_tokens": 30, "options": {"augment": True}}
    return TaskParams(**{**base, **overrides})


def train_batch(data, tokenizer):
    dataset = TASK.dataset("train", data, tokenizer, params(), IMAGE_ROOT, train=True)
    return TASK.collate("train", True)([dataset[(i, 77 + i)] for i in range(len(dataset))])


def test_options_and_left_right_rule(tiny_init):
    with pytest.raises(ConfigError, match="augmnt"):
        TASK.build_model(load_backbone(tiny_init), params(options={"augmnt": False}), {})
    assert mentions_left_right("the left image has more red shapes") and mentions_left_right("a cross to the Right of a star")
    assert not mentions_left_right("a bright star") and not mentions_left_right("copyrighted")


def test_dataset_collate_and_no_flip_for_left_right(data, tokenizer):
    batch = train_batch(data, tokenizer)
    assert batch["images"].shape == (6, 2, 3, 64, 64)
    assert batch["text_ids"].shape == batch["text_atts"].shape and batch["text_ids"].shape[0] == 6
    expected = [r["label"] in ("True", True) for r in data["train"]]
    assert batch["label"].tolist() == [int(x) for x in expected]
    dataset = TASK.dataset("train", data, tokenizer, params(), IMAGE_ROOT, train=True)
    for i, sentence in enumerate(dataset.sentences):  # careful flip: none when the sentence says left/right
        if mentions_left_right(sentence):
            assert dataset.no_flip is not dataset.flip
            assert not any("Flip" in type(t).__name__ for t in dataset.no_flip.transforms)
    evaluation = TASK.dataset("val", data, tokenizer, params(), IMAGE_ROOT, train=False)
    assert torch.equal(evaluation[0]["images"], evaluation[0]["images"])  # deterministic, no augmentation


def test_model_loss_backward_and_learning(data, tokenizer, tiny_init):
    model = TASK.build_model(load_backbone(tiny_init), params(), data)
    assert model.cls_head[0].in_features == 2 * model.xfm.text_encoder.config.hidden_size
    assert all(name.startswith(TASK.new_param_prefixes) for name, _ in model.named_parameters() if not name.startswith("xfm."))
    batch = train_batch(data, tokenizer)
    losses = TASK.loss(model, batch)
    assert math.isfinite(float(losses["loss"].detach()))
    losses["loss"].backward()
    assert model.cls_head[3].weight.grad is not None
    assert any(p.grad is not None for p in model.xfm.fusion_encoder.parameters())
    # swapping the two images changes the logits (the head sees which image is which)
    model.eval()
    with torch.no_grad():
        logits = model(batch["images"], batch["text_ids"], batch["text_atts"])
        swapped = model(batch["images"].flip(1), batch["text_ids"], batch["text_atts"])
    assert logits.shape == (6, 2) and not torch.allclose(logits, swapped)
    before, after = train_steps(TASK, model, batch, steps=8, lr=1e-4)
    assert after < 0.7 * before, (before, after)


def test_predict_evaluate_and_checkpoint_round_trip(data, tokenizer, tiny_init, tmp_path):
    model = TASK.build_model(load_backbone(tiny_init), params(), data).eval()
    loader = eval_loader(TASK, "val", data, tokenizer, params(), IMAGE_ROOT)
    predictions = TASK.predict(model, loader, params())
    assert [p["index"] for p in predictions] == list(range(5))
    assert all(isinstance(p["prediction"], bool) and 0 <= p["prob_true"] <= 1 for p in predictions)
    metrics = TASK.evaluate(predictions, "val", data)
    assert set(metrics) == {"nlvr_acc"} and 0 <= metrics["nlvr_acc"] <= 100
    truth = [r["label"] == "True" for r in data["val"]]
    perfect = [{"index": i, "prediction": t} for i, t in enumerate(truth)]
    assert TASK.evaluate(perfect, "val", data) == {"nlvr_acc": 100.0}
    assert TASK.evaluate([{**p, "prediction": not p["prediction"]} for p in perfect], "val", data) == {"nlvr_acc": 0.0}

    directory = tmp_path / "task"
    directory.mkdir()
    write_task_checkpoint(model, directory, params(), tokenizer)
    restored = load_task_checkpoint(directory).eval()
    again = TASK.predict(restored, loader, params())
    assert [p["prob_true"] for p in again] == pytest.approx([p["prob_true"] for p in predictions], abs=1e-5)


def test_run_finetune_end_to_end(data, tiny_init, tmp_path):
    from xfm_pipeline.jobs.finetune import run_finetune

    p = {"batch_size": 3, "eval_batch_size": 4, "max_steps": 2, "eval_every": 2, "max_tokens": 30, "options": {"augment": False}}
    result = run_finetune({
        "task": "nlvr", "params": p, "init_dir": str(tiny_init), "image_root": IMAGE_ROOT, "run_id": None,
        "data_dir": str(write_data_dir(tmp_path / "data", data)), "output_dir": str(tmp_path / "out"),
    })  # fmt: skip
    assert set(result["metrics"]) == {"val", "test"} and "nlvr_acc" in result["metrics"]["test"]
    assert len(result["predictions"]["test"]) == 4 and any("val/nlvr_acc" in h for h in result["history"])
    assert load_task_checkpoint(result["checkpoint"]).task == "nlvr"
