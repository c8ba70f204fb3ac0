"""Retrieval at tiny size: data, learning, ITC + batched ITM re-ranking, recall on known answers, the job and
zero-shot evaluation. The task contract: tests/tasks/test_task_contract.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from task_helpers import build, eval_loader, run_job, train_batch, train_steps

from xfm_pipeline.config import ConfigError
from xfm_pipeline.tasks.checkpoint import load_task_checkpoint
from xfm_pipeline.tasks.registry import get_task

TASK = get_task("retrieval")


def test_options_are_validated(case, tiny_init):
    with pytest.raises(ConfigError, match="k_tset"):
        build(case, tiny_init, k_tset=3)
    with pytest.raises(ValueError, match="score"):
        build(case, tiny_init, score="itc")


def test_datasets_and_collate(case, tokenizer):
    batch = train_batch(case, tokenizer, seed=1000)
    assert batch["images"].shape == (8, 3, 64, 64)
    assert batch["text_ids"].shape == batch["text_atts"].shape and batch["text_ids"].shape[0] == 8
    assert batch["text_atts"][:, -1].any()  # padded to the longest caption only
    assert batch["image_idx"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # dense ids shared by captions of one image
    again = train_batch(case, tokenizer, seed=1000, n=1)
    assert torch.equal(again["images"][0], batch["images"][0])  # all randomness from the sample seed
    evaluation = eval_loader(case, "val", tokenizer).dataset
    assert len(evaluation) == 4 and len(evaluation.texts) == 20 and evaluation.txt2img[:6] == [0] * 5 + [1]
    assert evaluation.text_ids.shape == (20, 30)


@pytest.mark.integration  # an optimiser runs several steps
def test_itc_and_itm_get_gradients_and_a_few_steps_learn(case, tokenizer, tiny_init):
    model = build(case, tiny_init)
    batch = train_batch(case, tokenizer, seed=1000)
    losses = TASK.loss(model, batch)
    assert {"loss", "loss_itc", "loss_itm"} <= set(losses)
    losses["loss"].backward()
    assert model.xfm.vision_proj.weight.grad is not None and model.xfm.itm_head[0].weight.grad is not None
    before, after = train_steps(TASK, model, batch, steps=8, lr=1e-4)
    assert after < 0.85 * before, (before, after)


def test_ranking_and_recall(case, tokenizer, tiny_init):
    data = case.data
    model = build(case, tiny_init).eval()
    loader = eval_loader(case, "val", tokenizer)
    predictions = TASK.predict(model, loader, case.params)
    images = [p for p in predictions if p["query"] == "image"]
    texts = [p for p in predictions if p["query"] == "text"]
    assert len(images) == 4 and len(texts) == 20
    assert all(len(p["top"]) == 10 and p["scores"] == sorted(p["scores"], reverse=True) for p in images)
    assert all(len(p["top"]) == 4 for p in texts)  # capped at the number of images
    # the k_test=3 re-ranked candidates rank above every other candidate
    assert all(min(p["scores"][:3]) > max(p["scores"][3:]) for p in predictions)
    metrics = TASK.evaluate(predictions, "val", data)
    assert {"txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean"} <= set(metrics)
    assert metrics["img_r10"] == 100.0  # only 4 images

    # "itm" ranks re-ranked pairs by the ITM logit alone
    itm_only = TASK.predict(model, loader, case.with_options(score="itm").params)
    xfm = model.xfm
    dataset = loader.dataset
    first = itm_only[0]
    with torch.no_grad():
        image = xfm.encode_image(dataset[0]["images"][None])
        t = first["top"][0]
        ids, atts = dataset.text_ids[t : t + 1], dataset.text_atts[t : t + 1]
        expected = float(xfm.itm_score(xfm.fuse(xfm.encode_text(ids, atts), atts, image)))
    assert first["scores"][0] == pytest.approx(expected, abs=1e-4)


def test_evaluate_perfect_and_wrong_predictions(case):
    data = case.data
    val = data["val"]
    n_texts = sum(len(r["caption"]) for r in val)
    perfect = [{"query": "image", "index": i, "top": [5 * i], "scores": [1.0]} for i in range(4)]
    perfect += [{"query": "text", "index": t, "top": [t // 5], "scores": [1.0]} for t in range(n_texts)]
    assert TASK.evaluate(perfect, "val", data)["r_mean"] == 100.0
    wrong = [{**p, "top": [(p["top"][0] + (5 if p["query"] == "image" else 1)) % (n_texts if p["query"] == "image" else 4)]} for p in perfect]
    metrics = TASK.evaluate(wrong, "val", data)
    assert metrics["txt_r1"] == 0.0 and metrics["img_r1"] == 0.0
    with pytest.raises(ValueError, match="cover"):
        TASK.evaluate(perfect[:3], "val", data)


@pytest.mark.integration
def test_run_finetune_end_to_end_and_zero_shot(case, tiny_init, tmp_path):
    job = {"batch_size": 4, "eval_batch_size": 4, "options": {"k_test": 2, "augment": False}}
    result = run_job(case, tiny_init, tmp_path, **job)
    assert set(result["metrics"]) == {"val", "test"} and "r_mean" in result["metrics"]["test"]
    assert any("val/r_mean" in h for h in result["history"])
    assert load_task_checkpoint(result["checkpoint"]).task == "retrieval"
    first_run = Path(result["checkpoint"]).parent

    # another run in the same output directory with keep_runs 1 removes the first one
    again = run_job(case, tiny_init, tmp_path, loop={"seed": 1}, keep_runs=1, **job)
    assert [d.name for d in (tmp_path / "out").iterdir()] == [Path(again["checkpoint"]).parent.name] != [first_run.name]

    # zero-shot: evaluation only, no train split in the data
    zero = {k: v for k, v in case.data.items() if k != "train"}
    result = run_job(case, tiny_init, tmp_path / "zero", data=zero, loop={"max_steps": 0}, **job)
    assert set(result["metrics"]) == {"val", "test"} and result["history"] == []
    assert len(result["predictions"]["test"]) == 3 + 15
