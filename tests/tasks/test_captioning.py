"""Captioning task at tiny size: data/prompt masking, decoder init, loss/learning, beam search, metrics, job."""

from __future__ import annotations

import math

import pytest
import torch
from understanding_fixtures import IMAGE_ROOT, assert_noise_hid_the_images, load_backbone, one_thread, tiny_init, tokenizer, train_steps, validated, vision_inputs, write_data_dir  # noqa: F401

from xfm_pipeline.config import ConfigError
from xfm_pipeline.jobs.finetune import eval_loader
from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.tasks.registry import get_task

pytestmark = pytest.mark.usefixtures("one_thread")

TASK = get_task("captioning")


@pytest.fixture(autouse=True)
def no_java(monkeypatch):
    """Score with the pure-Python PTB approximation and no METEOR: the Java tools take seconds per call."""
    monkeypatch.setattr("xfm_pipeline.metrics.captioning.java_available", lambda: False)


def _gt_subset(gt: dict, ids: set) -> dict:
    return {"images": [i for i in gt["images"] if i["id"] in ids], "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}


@pytest.fixture(scope="module")
def data():
    val, test = validated("captioning/val.json")[:4], validated("captioning/test.json")[:3]
    return {
        "train": validated("captioning/train.json")[:6],
        "val": val,
        "test": test,
        "val_gt": _gt_subset(validated("captioning/val_gt.json"), {r["image_id"] for r in val}),
        "test_gt": _gt_subset(validated("captioning/test_gt.json"), {r["image_id"] for r in test}),
    }


def params(**overrides) -> TaskParams:
    base = {"image_size": 64, "batch_size": 6, "eval_batch_size": 4, "max_tokens": 30, "options": {"augment": False, "beam_size": 2, "max_len": 6, "min_len": 2}}
    return TaskParams(**{**base, **overrides})


def train_batch(data, tokenizer):
    dataset = TASK.dataset("train", data, tokenizer, params(), IMAGE_ROOT, train=True)
    return TASK.collate("train", True)([dataset[(i, 5 + i)] for i in range(len(dataset))])


def test_options_are_validated(tiny_init):
    with pytest.raises(ConfigError, match="beam"):
        TASK.build_model(load_backbone(tiny_init), params(options={"beam": 3}), {})
    with pytest.raises(ValueError, match="min_len"):
        TASK.build_model(load_backbone(tiny_init), params(options={"min_len": 9, "max_len": 4}), {})


def test_dataset_prompt_is_not_a_target(data, tokenizer):
    batch = train_batch(data, tokenizer)
    assert batch["images"].shape == (6, 3, 64, 64)
    ids, atts, targets = batch["text_ids"], batch["text_atts"], batch["target_mask"]
    assert ids.shape == atts.shape == targets.shape
    prompt = tokenizer("a picture of", add_special_tokens=False)["input_ids"]
    assert ids[0, 1 : 1 + len(prompt)].tolist() == prompt
    assert not targets[:, : 1 + len(prompt)].any()  # [CLS] + prompt never predicted
    assert (targets <= atts).all() and (targets.sum(1) >= 2).all()  # caption words + [SEP]
    last = atts.sum(1) - 1
    assert (ids[torch.arange(6), last] == tokenizer.sep_token_id).all() and targets[torch.arange(6), last].all()
    ev = TASK.dataset("val", data, tokenizer, params(), IMAGE_ROOT, train=False)
    assert ev[0]["image_id"] == data["val"][0]["image_id"]


def test_decoder_reads_image_tokens_with_fusion_weights(tiny_init):
    model = TASK.build_model(load_backbone(tiny_init), params(), {})
    fusion, decoder = model.xfm.fusion_encoder, model.decoder
    assert decoder.fresh_keys == []  # every layer weight, cross-attention K/V (vision width) included
    assert decoder.layer[0].crossattention.self.key.in_features == model.xfm.config.vision.width
    assert torch.equal(decoder.layer[1].crossattention.self.value.weight, fusion.layer[1].crossattention.self.value.weight)
    assert torch.equal(decoder.embeddings.word_embeddings.weight, model.xfm.text_encoder.base_model.embeddings.word_embeddings.weight)


def test_loss_backward_and_learning(data, tokenizer, tiny_init):
    model = TASK.build_model(load_backbone(tiny_init), params(), data)
    batch = train_batch(data, tokenizer)
    losses = TASK.loss(model, batch)
    assert math.isfinite(float(losses["loss"].detach()))
    losses["loss"].backward()
    assert any(p.grad is not None for p in model.xfm.vision_encoder.parameters())
    assert model.decoder.layer[0].crossattention.self.key.weight.grad is not None
    before, after = train_steps(TASK, model, batch, steps=6, lr=2e-4)
    assert after < 0.6 * before, (before, after)


def test_causal_mask_blocks_future_tokens(tokenizer, tiny_init):
    model = TASK.build_model(load_backbone(tiny_init), params(), {}).eval()
    ids = torch.tensor([[101, 1037, 3861, 1997, 1037, 2417]])
    changed = ids.clone()
    changed[0, -1] = 2630
    context, atts = torch.randn(1, 9, 192), torch.ones(1, 9, dtype=torch.long)
    with torch.no_grad():
        a = model.decoder(ids, torch.ones_like(ids), context, atts)
        b = model.decoder(changed, torch.ones_like(ids), context, atts)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-5) and not torch.allclose(a[:, -1], b[:, -1])


def test_beam_search_respects_lengths_and_beats_greedy(tiny_init):
    from xfm_pipeline.model.decoder import BeamConfig, beam_search

    model = TASK.build_model(load_backbone(tiny_init), params(), {}).eval()
    torch.manual_seed(0)
    context, atts = torch.randn(3, 9, 192), torch.ones(3, 9, dtype=torch.long)
    prompt = torch.tensor([101, 1037, 3861, 1997])
    eos = 102

    def logp(seq: list[int], i: int) -> float:
        ids = torch.tensor([prompt.tolist() + seq + [eos]])
        with torch.no_grad():
            return float(model.decoder.token_logprobs(ids, torch.ones_like(ids), context[i : i + 1], atts[i : i + 1])[0, len(prompt) - 1 :].sum())

    for k in (1, 3):
        out = beam_search(model.decoder, prompt, context, atts, eos, 0, BeamConfig(beam_size=k, max_len=4, min_len=2, length_penalty=0.0))
        assert len(out) == 3 and all(2 <= len(seq) <= 4 and eos not in seq and 0 not in seq for seq in out)
        if k == 1:
            greedy = out
    beam = out  # with length_penalty 0 the beam's pick is at least as likely as greedy's (both end with eos or hit max)
    for i in range(3):
        if len(beam[i]) < 4 and len(greedy[i]) < 4:
            assert logp(beam[i], i) >= logp(greedy[i], i) - 1e-4


def test_predict_evaluate_and_checkpoint_round_trip(data, tokenizer, tiny_init, tmp_path):
    model = TASK.build_model(load_backbone(tiny_init), params(), data).eval()
    loader = eval_loader(TASK, "val", data, tokenizer, params(), IMAGE_ROOT)
    predictions = TASK.predict(model, loader, params())
    assert [p["image_id"] for p in predictions] == [r["image_id"] for r in data["val"]]
    assert all(isinstance(p["caption"], str) for p in predictions)
    metrics = TASK.evaluate(predictions, "val", data)
    assert {"bleu4", "cider", "rouge_l"} <= set(metrics) and all(v >= 0 for v in metrics.values())
    refs = {}
    for ann in data["val_gt"]["annotations"]:
        refs.setdefault(ann["image_id"], ann["caption"])
    copied = TASK.evaluate([{"image_id": i, "caption": c} for i, c in refs.items()], "val", data)
    assert copied["bleu4"] > 50 and copied["cider"] > metrics["cider"]

    directory = tmp_path / "task"
    directory.mkdir()
    write_task_checkpoint(model, directory, params(), tokenizer)
    restored = load_task_checkpoint(directory).eval()
    assert TASK.predict(restored, loader, params()) == predictions


def test_run_finetune_end_to_end(data, tiny_init, tmp_path):
    from xfm_pipeline.jobs.finetune import run_finetune

    p = {"batch_size": 3, "eval_batch_size": 4, "max_steps": 2, "eval_every": 2, "max_tokens": 30, "options": {"beam_size": 2, "max_len": 5, "min_len": 1}}
    result = run_finetune({
        "task": "captioning", "params": p, "init_dir": str(tiny_init), "image_root": IMAGE_ROOT, "run_id": None,
        "data_dir": str(write_data_dir(tmp_path / "data", data)), "output_dir": str(tmp_path / "out"),
    })  # fmt: skip
    assert set(result["metrics"]) == {"val", "test"} and {"cider", "bleu4"} <= set(result["metrics"]["test"])
    assert len(result["predictions"]["test"]) == 3 and any("val/cider" in h for h in result["history"])
    assert set(result["predictions"]["test"][0]) == {"image_id", "caption"}
    assert load_task_checkpoint(result["checkpoint"]).task == "captioning"


def test_noise_seed_feeds_noise_instead_of_the_images(data, tokenizer, tiny_init):
    """The blind check of benchmarks/blind_baselines.py must really hide the images, reproducibly."""
    model = TASK.build_model(load_backbone(tiny_init), params(), data).eval()
    loader = eval_loader(TASK, "val", data, tokenizer, params(), IMAGE_ROOT)
    with torch.no_grad(), vision_inputs(model) as seen:
        TASK.predict(model, loader, params())
        first = TASK.predict(model, loader, params(), noise_seed=3)
        second = TASK.predict(model, loader, params(), noise_seed=3)
    assert_noise_hid_the_images(seen)
    assert first == second and [p["image_id"] for p in first] == [r["image_id"] for r in data["val"]]
