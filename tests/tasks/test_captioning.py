"""Captioning at tiny size: prompt masking, decoder init, learning, causal mask, beam search, metrics on known
answers, the job, the blind check. The task contract: tests/tasks/test_task_contract.py."""

from __future__ import annotations

import pytest
import torch
from task_helpers import assert_noise_hid_the_images, build, eval_loader, run_job, train_batch, train_steps, vision_inputs

from xfm_pipeline.config import ConfigError
from xfm_pipeline.tasks.checkpoint import load_task_checkpoint
from xfm_pipeline.tasks.registry import get_task

TASK = get_task("captioning")


def test_options_are_validated(case, tiny_init):
    with pytest.raises(ConfigError, match="beam"):
        build(case, tiny_init, beam=3)
    with pytest.raises(ValueError, match="min_len"):
        build(case, tiny_init, min_len=9, max_len=4)


def test_dataset_prompt_is_not_a_target(case, tokenizer):
    batch = train_batch(case, tokenizer, seed=5)
    assert batch["images"].shape == (6, 3, 64, 64)
    ids, atts, targets = batch["text_ids"], batch["text_atts"], batch["target_mask"]
    assert ids.shape == atts.shape == targets.shape
    prompt = tokenizer("a picture of", add_special_tokens=False)["input_ids"]
    assert ids[0, 1 : 1 + len(prompt)].tolist() == prompt
    assert not targets[:, : 1 + len(prompt)].any()  # [CLS] + prompt never predicted
    assert (targets <= atts).all() and (targets.sum(1) >= 2).all()  # caption words + [SEP]
    last = atts.sum(1) - 1
    assert (ids[torch.arange(6), last] == tokenizer.sep_token_id).all() and targets[torch.arange(6), last].all()
    assert eval_loader(case, "val", tokenizer).dataset[0]["image_id"] == case.data["val"][0]["image_id"]


def test_decoder_reads_image_tokens_with_fusion_weights(case, tiny_init):
    model = build(case, tiny_init)
    fusion, decoder = model.xfm.fusion_encoder, model.decoder
    assert decoder.fresh_keys == []  # every layer weight, cross-attention K/V (vision width) included
    assert decoder.layer[0].crossattention.self.key.in_features == model.xfm.config.vision.width
    assert torch.equal(decoder.layer[1].crossattention.self.value.weight, fusion.layer[1].crossattention.self.value.weight)
    assert torch.equal(decoder.embeddings.word_embeddings.weight, model.xfm.text_encoder.base_model.embeddings.word_embeddings.weight)


@pytest.mark.integration  # an optimiser runs several steps
def test_gradients_reach_vision_and_cross_attention_and_a_few_steps_learn(case, tokenizer, tiny_init):
    model = build(case, tiny_init)
    batch = train_batch(case, tokenizer, seed=5)
    TASK.loss(model, batch)["loss"].backward()
    assert any(p.grad is not None for p in model.xfm.vision_encoder.parameters())
    assert model.decoder.layer[0].crossattention.self.key.weight.grad is not None
    before, after = train_steps(TASK, model, batch, steps=6, lr=2e-4)
    assert after < 0.6 * before, (before, after)


def test_causal_mask_blocks_future_tokens(case, tiny_init):
    model = build(case, tiny_init).eval()
    ids = torch.tensor([[101, 1037, 3861, 1997, 1037, 2417]])
    changed = ids.clone()
    changed[0, -1] = 2630
    context, atts = torch.randn(1, 9, 192), torch.ones(1, 9, dtype=torch.long)
    with torch.no_grad():
        a = model.decoder(ids, torch.ones_like(ids), context, atts)
        b = model.decoder(changed, torch.ones_like(ids), context, atts)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-5) and not torch.allclose(a[:, -1], b[:, -1])


def test_beam_search_respects_lengths_and_beats_greedy(case, tiny_init):
    from xfm_pipeline.model.decoder import BeamConfig, beam_search

    model = build(case, tiny_init).eval()
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


def test_predictions_and_metrics_on_known_answers(case, tokenizer, tiny_init):
    data = case.data
    model = build(case, tiny_init).eval()
    predictions = TASK.predict(model, eval_loader(case, "val", tokenizer), case.params)
    assert [p["image_id"] for p in predictions] == [r["image_id"] for r in data["val"]]
    assert all(isinstance(p["caption"], str) for p in predictions)
    metrics = TASK.evaluate(predictions, "val", data)
    assert {"bleu4", "cider", "rouge_l"} <= set(metrics) and all(v >= 0 for v in metrics.values())
    refs = {}
    for ann in data["val_gt"]["annotations"]:
        refs.setdefault(ann["image_id"], ann["caption"])
    copied = TASK.evaluate([{"image_id": i, "caption": c} for i, c in refs.items()], "val", data)
    assert copied["bleu4"] > 50 and copied["cider"] > metrics["cider"]


@pytest.mark.integration
def test_run_finetune_end_to_end(case, tiny_init, tmp_path):
    result = run_job(case, tiny_init, tmp_path, batch_size=3, eval_batch_size=4, options={"beam_size": 2, "max_len": 5, "min_len": 1})
    assert set(result["metrics"]) == {"val", "test"} and {"cider", "bleu4"} <= set(result["metrics"]["test"])
    assert len(result["predictions"]["test"]) == 3 and any("val/cider" in h for h in result["history"])
    assert set(result["predictions"]["test"][0]) == {"image_id", "caption"}
    assert load_task_checkpoint(result["checkpoint"]).task == "captioning"


def test_noise_seed_feeds_noise_instead_of_the_images(case, tokenizer, tiny_init):
    """The blind check of benchmarks/blind_baselines.py must really hide the images, reproducibly."""
    model = build(case, tiny_init).eval()
    loader = eval_loader(case, "val", tokenizer)
    with torch.no_grad(), vision_inputs(model) as seen:
        TASK.predict(model, loader, case.params)
        first = TASK.predict(model, loader, case.params, noise_seed=3)
        second = TASK.predict(model, loader, case.params, noise_seed=3)
    assert_noise_hid_the_images(seen)
    assert first == second and [p["image_id"] for p in first] == [r["image_id"] for r in case.data["val"]]
