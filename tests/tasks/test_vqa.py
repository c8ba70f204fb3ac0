"""VQA task at tiny size: data, decoder init, loss/learning, ranking, metrics, checkpoints, job, blind check."""

from __future__ import annotations

import math

import pytest
import torch
from understanding_fixtures import IMAGE_ROOT, assert_noise_hid_the_images, load_backbone, one_thread, tiny_init, tokenizer, train_steps, validated, vision_inputs, write_data_dir  # noqa: F401

from xfm_pipeline.config import ConfigError
from xfm_pipeline.jobs.finetune import eval_loader
from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.tasks.registry import get_task
from xfm_pipeline.tasks.vqa import noise_image_accuracy

pytestmark = pytest.mark.usefixtures("one_thread")

TASK = get_task("vqa")


@pytest.fixture(scope="module")
def data():
    return {
        "train": validated("vqa/train.json")[:6],
        "val": validated("vqa/val.json")[:5],
        "test": validated("vqa/test.json")[:4],
        "answer_list": validated("vqa/answer_list.json"),
    }


def params(**overrides) -> TaskParams:
    base = {"image_size": 64, "batch_size": 6, "eval_batch_size": 5, "max_tokens": 30, "options": {"augment": False, "k_test": 4}}
    return TaskParams(**{**base, **overrides})


def train_batch(data, tokenizer):
    dataset = TASK.dataset("train", data, tokenizer, params(), IMAGE_ROOT, train=True)
    return TASK.collate("train", True)([dataset[(i, 7 + i)] for i in range(len(dataset))])


def test_options_are_validated(tiny_init):
    with pytest.raises(ConfigError, match="k_tset"):
        TASK.build_model(load_backbone(tiny_init), params(options={"k_tset": 3}), {})
    with pytest.raises(ValueError, match="k_test"):
        TASK.build_model(load_backbone(tiny_init), params(options={"k_test": 0}), {})


def test_dataset_collate_and_answer_weights(data, tokenizer):
    batch = train_batch(data, tokenizer)
    assert batch["images"].shape == (6, 3, 64, 64)
    assert batch["question_ids"].shape == batch["question_atts"].shape and batch["question_ids"].shape[0] == 6
    n = batch["n"]
    assert int(n.sum()) == batch["answer_ids"].shape[0] == batch["weights"].shape[0]
    assert (batch["answer_ids"][:, 0] == tokenizer.cls_token_id).all()
    # weights = count / 10 per unique answer: they sum to 1 per question
    per_question = torch.zeros(6).index_add_(0, torch.arange(6).repeat_interleave(n), batch["weights"])
    assert per_question.tolist() == pytest.approx([1.0] * 6)
    ev = TASK.dataset("val", data, tokenizer, params(), IMAGE_ROOT, train=False)
    assert ev.answer_list == data["answer_list"] and ev[0]["question_id"] == data["val"][0]["question_id"]


def test_decoder_initialised_from_fusion_and_text_encoders(tiny_init):
    model = TASK.build_model(load_backbone(tiny_init), params(), {})
    fusion, decoder = model.xfm.fusion_encoder, model.decoder
    assert torch.equal(decoder.layer[0].attention.self.query.weight, fusion.layer[0].attention.self.query.weight)
    assert torch.equal(decoder.layer[1].output.dense.weight, fusion.layer[1].output.dense.weight)
    assert torch.equal(decoder.lm_head.dense.weight, fusion.lm_head.dense.weight)
    text_emb = model.xfm.text_encoder.base_model.embeddings
    assert torch.equal(decoder.embeddings.word_embeddings.weight, text_emb.word_embeddings.weight)
    assert torch.equal(decoder.embeddings.position_embeddings.weight, text_emb.position_embeddings.weight)
    # tiny: question states are 384 wide, the fusion cross-attention reads 192-wide image tokens
    assert decoder.layer[0].crossattention.self.key.in_features == 384
    assert "layer.0.crossattention.self.key.weight" in decoder.fresh_keys
    assert decoder.embeddings.word_embeddings.weight.data_ptr() != text_emb.word_embeddings.weight.data_ptr()


def test_fresh_decoder_weights_get_the_new_parameter_lr(tiny_init):
    from xfm_pipeline.training.optim import param_groups

    model = TASK.build_model(load_backbone(tiny_init), params(), {})
    new = TASK.new_parameters(model)
    assert sorted(new) == sorted(f"decoder.{k}" for k in model.decoder.fresh_keys)
    assert {n.rsplit(".", 1)[-1] for n in new} == {"weight", "bias"} and all(".crossattention.self.key." in n or ".crossattention.self.value." in n for n in new)
    lr_of = {id(p): g["lr"] for g in param_groups(model, 1e-4, 0.01, new, lr_mult=2.0) for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["decoder.layer.0.crossattention.self.key.weight"])] == pytest.approx(2e-4)
    assert lr_of[id(named["decoder.layer.0.crossattention.self.query.weight"])] == pytest.approx(1e-4)  # copied from the fusion


def test_loss_backward_and_learning(data, tokenizer, tiny_init):
    model = TASK.build_model(load_backbone(tiny_init), params(), data)
    batch = train_batch(data, tokenizer)
    losses = TASK.loss(model, batch)
    assert math.isfinite(float(losses["loss"].detach()))
    losses["loss"].backward()
    assert model.decoder.layer[0].crossattention.self.key.weight.grad is not None
    assert any(p.grad is not None for p in model.xfm.fusion_encoder.parameters())
    assert any(p.grad is not None for p in model.xfm.vision_encoder.parameters())
    before, after = train_steps(TASK, model, batch, steps=6, lr=2e-4)
    assert after < 0.5 * before, (before, after)


def test_rank_answers_matches_brute_force_likelihood(data, tokenizer, tiny_init):
    from xfm_pipeline.model.decoder import rank_answers
    from xfm_pipeline.data.text import trim_padding
    from xfm_pipeline.tasks.common import tokenize_fixed

    model = TASK.build_model(load_backbone(tiny_init), params(), data).eval()
    torch.manual_seed(0)
    context, atts = torch.randn(3, 7, 384), torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])
    answers = ["yes", "no", "two squares", "red", "a big blue star"]
    ids, a_atts = trim_padding(*tokenize_fixed(tokenizer, answers, 10))
    with torch.no_grad():
        best, score = rank_answers(model.decoder, context, atts, ids, a_atts, k=len(answers))
        brute = torch.stack([
            (model.decoder.token_logprobs(ids, a_atts, context[i : i + 1].expand(5, -1, -1), atts[i : i + 1].expand(5, -1)) * a_atts[:, 1:]).sum(1)
            for i in range(3)
        ])  # (3, A) full log-likelihood, first token once  # fmt: skip
        # padding in the question is masked: changing padded context vectors changes nothing
        noisy = context.clone()
        noisy[2, 3:] = 100.0
        best2, score2 = rank_answers(model.decoder, noisy, atts, ids, a_atts, k=len(answers))
    assert best.tolist() == brute.argmax(1).tolist()
    assert score.tolist() == pytest.approx(brute.max(1).values.tolist(), abs=1e-4)
    assert best2.tolist() == best.tolist() and score2.tolist() == pytest.approx(score.tolist(), abs=1e-4)
    with torch.no_grad():  # k = 1 keeps the best first token only
        top1, _ = rank_answers(model.decoder, context, atts, ids, a_atts, k=1)
        first = model.decoder.token_logprobs(ids[:, :2], a_atts[:, :2], context[:1].expand(5, -1, -1), atts[:1].expand(5, -1))[:, 0]
    assert int(top1[0]) == int(first.argmax())


def test_predict_evaluate_noise_and_checkpoint_round_trip(data, tokenizer, tiny_init, tmp_path):
    model = TASK.build_model(load_backbone(tiny_init), params(), data).eval()
    loader = eval_loader(TASK, "val", data, tokenizer, params(), IMAGE_ROOT)
    predictions = TASK.predict(model, loader, params())
    assert [p["question_id"] for p in predictions] == [r["question_id"] for r in data["val"]]
    assert all(p["answer"] in data["answer_list"] for p in predictions)
    metrics = TASK.evaluate(predictions, "val", data)
    assert "vqa_acc" in metrics and 0 <= metrics["vqa_acc"] <= 100
    assert {f"vqa_acc_{r['answer_type'].replace('/', '_')}" for r in data["val"]} <= set(metrics)
    # the official accuracy: the majority answer scores 100 when >= 4 annotators gave it
    perfect = [{"question_id": r["question_id"], "answer": max(set(r["answer"]), key=r["answer"].count)} for r in data["val"]]
    assert TASK.evaluate(perfect, "val", data)["vqa_acc"] == pytest.approx(100.0)
    assert TASK.evaluate([{**p, "answer": "no such answer"} for p in perfect], "val", data)["vqa_acc"] == 0.0
    assert TASK.evaluate(predictions, "val", {"val": [{**r, "answer": None} for r in data["val"]]}) == {}
    noise = noise_image_accuracy(TASK, model, loader, params(), "val", data, seed=3)
    assert 0 <= noise["vqa_acc"] <= 100

    directory = tmp_path / "task"
    directory.mkdir()
    write_task_checkpoint(model, directory, params(), tokenizer)
    restored = load_task_checkpoint(directory).eval()
    assert TASK.predict(restored, loader, params()) == predictions
    for name, value in model.state_dict().items():
        assert torch.equal(value, restored.state_dict()[name]), name


def test_run_finetune_end_to_end(data, tiny_init, tmp_path):
    from xfm_pipeline.jobs.finetune import run_finetune

    p = {"batch_size": 3, "eval_batch_size": 4, "max_steps": 2, "eval_every": 2, "max_tokens": 30, "options": {"augment": True, "k_test": 8}}
    result = run_finetune({
        "task": "vqa", "params": p, "init_dir": str(tiny_init), "image_root": IMAGE_ROOT, "run_id": None,
        "data_dir": str(write_data_dir(tmp_path / "data", data)), "output_dir": str(tmp_path / "out"),
    })  # fmt: skip
    assert set(result["metrics"]) == {"val", "test"} and "vqa_acc" in result["metrics"]["test"]
    assert len(result["predictions"]["test"]) == 4 and any("val/vqa_acc" in h for h in result["history"])
    assert set(result["predictions"]["test"][0]) == {"question_id", "answer"}
    assert load_task_checkpoint(result["checkpoint"]).task == "vqa"



def test_noise_image_accuracy_feeds_noise_instead_of_the_images(data, tiny_init, tokenizer):
    """The blind check (used by benchmarks/vqa_blind_baseline.py) must really hide the images, reproducibly."""
    model = TASK.build_model(load_backbone(tiny_init), params(), data).eval()
    loader = eval_loader(TASK, "test", data, tokenizer, params(), IMAGE_ROOT)
    with torch.no_grad(), vision_inputs(model) as seen:
        real = TASK.evaluate(TASK.predict(model, loader, params()), "test", data)
        first = noise_image_accuracy(TASK, model, loader, params(), "test", data, seed=3)
        second = noise_image_accuracy(TASK, model, loader, params(), "test", data, seed=3)
    assert_noise_hid_the_images(seen)
    assert first == second and set(first) == set(real) and 0.0 <= first["vqa_acc"] <= 100.0
