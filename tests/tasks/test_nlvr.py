"""NLVR2 at tiny size: data and the careful flip, the two-image head, learning, accuracy on known answers, the
job. The task contract: tests/tasks/test_task_contract.py."""

from __future__ import annotations

import pytest
import torch
from task_helpers import build, eval_loader, run_job, train_batch, train_steps
from torchvision.transforms import v2

from xfm_pipeline.config import ConfigError
from xfm_pipeline.tasks.checkpoint import load_task_checkpoint
from xfm_pipeline.tasks.common import mentions_left_right
from xfm_pipeline.tasks.registry import get_task

TASK = get_task("nlvr")


def test_options_and_left_right_rule(case, tiny_init):
    with pytest.raises(ConfigError, match="augmnt"):
        build(case, tiny_init, augmnt=False)
    assert mentions_left_right("the left image has more red shapes") and mentions_left_right("a cross to the Right of a star")
    assert not mentions_left_right("a bright star") and not mentions_left_right("copyrighted")


def test_dataset_and_collate(case, tokenizer):
    batch = train_batch(case, tokenizer, seed=77)
    assert batch["images"].shape == (6, 2, 3, 64, 64)
    assert batch["text_ids"].shape == batch["text_atts"].shape and batch["text_ids"].shape[0] == 6
    expected = [r["label"] in ("True", True) for r in case.data["train"]]
    assert batch["label"].tolist() == [int(x) for x in expected] and 0 < sum(expected) < 6
    evaluation = eval_loader(case, "val", tokenizer).dataset
    assert torch.equal(evaluation[0]["images"], evaluation[0]["images"])  # deterministic, no augmentation


def test_no_flip_for_statements_that_say_left_or_right(case, tokenizer):
    dataset = TASK.dataset("train", case.data, tokenizer, case.params, case.image_root, train=True)
    says = [mentions_left_right(sentence) for sentence in dataset.sentences]
    assert says.count(True) == 3 and says.count(False) == 3  # the case holds both kinds (tests/tasks/conftest.py)
    assert any(isinstance(t, v2.RandomHorizontalFlip) for t in dataset.flip.transforms)
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in dataset.no_flip.transforms)
    # which of the two transforms each item goes through: the flipping one draws zeros, the other ones
    dataset.flip, dataset.no_flip = (lambda image: torch.zeros(3, 64, 64)), (lambda image: torch.ones(3, 64, 64))
    drawn = [float(dataset[(i, 77 + i)]["images"].mean()) for i in range(len(dataset))]
    assert drawn == [1.0 if said else 0.0 for said in says]


@pytest.mark.integration  # an optimiser runs several steps
def test_head_sees_which_image_is_which_and_a_few_steps_learn(case, tokenizer, tiny_init):
    model = build(case, tiny_init)
    assert model.cls_head[0].in_features == 2 * model.xfm.text_encoder.config.hidden_size
    assert all(name.startswith(TASK.new_param_prefixes) for name, _ in model.named_parameters() if not name.startswith("xfm."))
    batch = train_batch(case, tokenizer, seed=77)
    TASK.loss(model, batch)["loss"].backward()
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


def test_predictions_and_accuracy_on_known_answers(case, tokenizer, tiny_init):
    data = case.data
    model = build(case, tiny_init).eval()
    predictions = TASK.predict(model, eval_loader(case, "val", tokenizer), case.params)
    assert [p["index"] for p in predictions] == list(range(5))
    assert all(isinstance(p["prediction"], bool) and 0 <= p["prob_true"] <= 1 for p in predictions)
    metrics = TASK.evaluate(predictions, "val", data)
    assert set(metrics) == {"nlvr_acc"} and 0 <= metrics["nlvr_acc"] <= 100
    truth = [r["label"] == "True" for r in data["val"]]
    perfect = [{"index": i, "prediction": t} for i, t in enumerate(truth)]
    assert TASK.evaluate(perfect, "val", data) == {"nlvr_acc": 100.0}
    assert TASK.evaluate([{**p, "prediction": not p["prediction"]} for p in perfect], "val", data) == {"nlvr_acc": 0.0}


@pytest.mark.integration
def test_run_finetune_end_to_end(case, tiny_init, tmp_path):
    result = run_job(case, tiny_init, tmp_path, batch_size=3, eval_batch_size=4, options={"augment": False})
    assert set(result["metrics"]) == {"val", "test"} and "nlvr_acc" in result["metrics"]["test"]
    assert len(result["predictions"]["test"]) == 4 and any("val/nlvr_acc" in h for h in result["history"])
    assert load_task_checkpoint(result["checkpoint"]).task == "nlvr"
