"""Retrieval task at tiny size: data, loss, learning, ITC + batched ITM re-ranking, metrics, checkpoint, job."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from understanding_fixtures import IMAGE_ROOT, load_backbone, one_thread, tiny_init, tokenizer, train_steps, validated, write_data_dir  # noqa: F401

from xfm_pipeline.config import ConfigError
from xfm_pipeline.jobs.finetune import eval_loader
from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.tasks.registry import get_task

pytestmark = pytest.mark.usefixtures("one_thread")

TASK = get_task("retrieval")
OPTIONS = {"k_test": 3, "rerank_batch": 7, "augment": True}


@pytest.fixture(scope="module")
def data():
    return {
        "train": validated("retrieval/train.json")[:8],  # 4 images x 2 captions
        "val": validated("retrieval/val.json")[:4],  # 4 images x 5 captions
        "test": validated("retrieval/test.json")[:3],
    }


def params(**overrides) -> TaskParams:
    base = {"image_size": 64, "batch_size": 8, "eval_batch_size": 3, "max_tokens": 30, "options": dict(OPTIONS)}
    return TaskParams(**{**base, **overrides})


def train_batch(data, tokenizer):
    dataset = TASK.dataset("train", data, tokenizer, params(), IMAGE_ROOT, train=True)
    return TASK.collate("train", True)([dataset[(i, 1000 + i)] for i in range(len(dataset))])


def test_options_are_validated(tiny_init):
    with pytest.raises(ConfigError, match="k_tset"):
        TASK.build_model(load_backbone(tiny_init), params(options={"k_tset": 3}), {})
    with pytest.raises(ValueError, match="score"):
        TASK.build_model(load_backbone(tiny_init), params(options={"score": "itc"}), {})


def test_datasets_and_collate(data, tokenizer):
    batch = train_batch(data, tokenizer)
    assert batch["images"].shape == (8, 3, 64, 64)
    assert batch["text_ids"].shape == batch["text_atts"].shape and batch["text_ids"].shape[0] == 8
    assert batch["text_atts"][:, -1].any()  # padded to the longest caption only
    assert batch["image_idx"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # dense ids shared by captions of one image
    again = TASK.dataset("train", data, tokenizer, params(), IMAGE_ROOT, train=True)[(0, 1000)]
    assert torch.equal(again["images"], batch["images"][0])  # all randomness from the sample seed
    evaluation = TASK.dataset("val", data, tokenizer, params(), IMAGE_ROOT, train=False)
    assert len(evaluation) == 4 and len(evaluation.texts) == 20 and evaluation.txt2img[:6] == [0] * 5 + [1]
    assert evaluation.text_ids.shape == (20, 30)


def test_loss_is_finite_and_training_reduces_it(data, tokenizer, tiny_init):
    model = TASK.build_model(load_backbone(tiny_init), params(), data)
    batch = train_batch(data, tokenizer)
    losses = TASK.loss(model, batch)
    assert {"loss", "loss_itc", "loss_itm"} <= set(losses) and all(math.isfinite(float(v.detach())) for v in losses.values())
    losses["loss"].backward()
    assert model.xfm.vision_proj.weight.grad is not None and model.xfm.itm_head[0].weight.grad is not None
    before, after = train_steps(TASK, model, batch, steps=8, lr=1e-4)
    assert after < 0.85 * before, (before, after)


def test_predict_evaluate_and_checkpoint_round_trip(data, tokenizer, tiny_init, tmp_path):
    model = TASK.build_model(load_backbone(tiny_init), params(), data).eval()
    loader = eval_loader(TASK, "val", data, tokenizer, params(), IMAGE_ROOT)
    predictions = TASK.predict(model, loader, params())
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
    itm_only = TASK.predict(model, loader, params(options={**OPTIONS, "score": "itm"}))
    xfm = model.xfm
    dataset = loader.dataset
    first = itm_only[0]
    with torch.no_grad():
        image = xfm.encode_image(dataset[0]["images"][None])
        t = first["top"][0]
        ids, atts = dataset.text_ids[t : t + 1], dataset.text_atts[t : t + 1]
        expected = float(xfm.itm_score(xfm.fuse(xfm.encode_text(ids, atts), atts, image)))
    assert first["scores"][0] == pytest.approx(expected, abs=1e-4)

    directory = tmp_path / "task"
    directory.mkdir()
    write_task_checkpoint(model, directory, params(), tokenizer)
    restored = load_task_checkpoint(directory, data).eval()
    again = TASK.predict(restored, loader, params())
    assert [p["top"] for p in again] == [p["top"] for p in predictions]
    assert [s for p in again for s in p["scores"]] == pytest.approx([s for p in predictions for s in p["scores"]], abs=1e-4)


def test_evaluate_perfect_and_wrong_predictions(data):
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


def test_run_finetune_end_to_end_and_zero_shot(data, tiny_init, tmp_path):
    from xfm_pipeline.jobs.finetune import run_finetune

    job = {"task": "retrieval", "init_dir": str(tiny_init), "image_root": IMAGE_ROOT, "run_id": None}
    p = {"batch_size": 4, "eval_batch_size": 4, "max_steps": 2, "eval_every": 2, "max_tokens": 30, "options": {"k_test": 2, "augment": False}}
    result = run_finetune({**job, "params": p, "data_dir": str(write_data_dir(tmp_path / "data", data)), "output_dir": str(tmp_path / "out")})
    assert set(result["metrics"]) == {"val", "test"} and "r_mean" in result["metrics"]["test"]
    assert any("val/r_mean" in h for h in result["history"])
    assert load_task_checkpoint(result["checkpoint"]).task == "retrieval"
    first_run = Path(result["checkpoint"]).parent

    # another run in the same output directory with keep_runs 1 removes the first one
    again = run_finetune({**job, "params": {**p, "seed": 1}, "keep_runs": 1, "data_dir": str(write_data_dir(tmp_path / "data", data)), "output_dir": str(tmp_path / "out")})
    assert [d.name for d in (tmp_path / "out").iterdir()] == [Path(again["checkpoint"]).parent.name] != [first_run.name]

    # zero-shot: evaluation only, no train split in the data
    zero = {k: v for k, v in data.items() if k != "train"}
    result = run_finetune({**job, "params": {**p, "max_steps": 0}, "data_dir": str(write_data_dir(tmp_path / "zero", zero)), "output_dir": str(tmp_path / "zero_out")})
    assert set(result["metrics"]) == {"val", "test"} and result["history"] == []
    assert len(result["predictions"]["test"]) == 3 + 15
