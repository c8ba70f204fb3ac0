"""VQA at tiny size: answer weights, decoder init, new-parameter lr, learning, answer ranking, the official
accuracy on known answers, the job, the blind check. The task contract: tests/tasks/test_task_contract.py."""

from __future__ import annotations

import pytest
import torch
from task_helpers import assert_noise_hid_the_images, build, eval_loader, run_job, train_batch, train_steps, vision_inputs

from xfm_pipeline.config import ConfigError
from xfm_pipeline.tasks.checkpoint import load_task_checkpoint
from xfm_pipeline.tasks.registry import get_task
from xfm_pipeline.tasks.vqa import noise_image_accuracy

TASK = get_task("vqa")


def test_options_are_validated(case, tiny_init):
    with pytest.raises(ConfigError, match="k_tset"):
        build(case, tiny_init, k_tset=3)
    with pytest.raises(ValueError, match="k_test"):
        build(case, tiny_init, k_test=0)


def test_dataset_collate_and_answer_weights(case, tokenizer):
    batch = train_batch(case, tokenizer, seed=7)
    assert batch["images"].shape == (6, 3, 64, 64)
    assert batch["question_ids"].shape == batch["question_atts"].shape and batch["question_ids"].shape[0] == 6
    n = batch["n"]
    assert int(n.sum()) == batch["answer_ids"].shape[0] == batch["weights"].shape[0]
    assert (batch["answer_ids"][:, 0] == tokenizer.cls_token_id).all()
    # weights = count / 10 per unique answer: they sum to 1 per question
    per_question = torch.zeros(6).index_add_(0, torch.arange(6).repeat_interleave(n), batch["weights"])
    assert per_question.tolist() == pytest.approx([1.0] * 6)
    ev = eval_loader(case, "val", tokenizer).dataset
    assert ev.answer_list == case.data["answer_list"] and ev[0]["question_id"] == case.data["val"][0]["question_id"]


def test_dataset_tokens_are_those_of_each_question_and_answer_alone(case, tokenizer):
    """Questions and answers are tokenised once per dataset; each item holds what tokenising it alone gives."""
    from xfm_pipeline.data.formats.vqa import answer_weights, parse_vqa
    from xfm_pipeline.data.text import pre_question
    from xfm_pipeline.tasks.common import tokenize_fixed
    from xfm_pipeline.tasks.vqa import TEST_QUESTION_WORDS, TRAIN_QUESTION_WORDS

    options = TASK.options(case.params)
    for split, train, words in [("train", True, TRAIN_QUESTION_WORDS), ("val", False, TEST_QUESTION_WORDS)]:
        dataset = TASK.dataset(split, case.data, tokenizer, case.params, case.image_root, train=train)
        for index, record in enumerate(parse_vqa(case.data[split], split, require_answers=train)):
            item = dataset[(index, 3)] if train else dataset[index]
            ids, atts = tokenize_fixed(tokenizer, pre_question(record.question, words), case.params.max_tokens)
            assert torch.equal(item["question_ids"], ids[0]) and torch.equal(item["question_atts"], atts[0])
            if train:
                a_ids, a_atts = tokenize_fixed(tokenizer, list(answer_weights(record)[0]), options.max_answer_tokens)
                assert torch.equal(item["answer_ids"], a_ids) and torch.equal(item["answer_atts"], a_atts)


def test_decoder_initialised_from_fusion_and_text_encoders(case, tiny_init):
    model = build(case, tiny_init)
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


def test_fresh_decoder_weights_get_the_new_parameter_lr(case, tiny_init):
    from xfm_pipeline.training.optim import param_groups

    model = build(case, tiny_init)
    new = TASK.new_parameters(model)
    assert sorted(new) == sorted(f"decoder.{k}" for k in model.decoder.fresh_keys)
    assert {n.rsplit(".", 1)[-1] for n in new} == {"weight", "bias"} and all(
        ".crossattention.self.key." in n or ".crossattention.self.value." in n for n in new
    )
    lr_of = {id(p): g["lr"] for g in param_groups(model, 1e-4, 0.01, new, lr_mult=2.0) for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["decoder.layer.0.crossattention.self.key.weight"])] == pytest.approx(2e-4)
    assert lr_of[id(named["decoder.layer.0.crossattention.self.query.weight"])] == pytest.approx(1e-4)  # copied from the fusion


@pytest.mark.integration  # an optimiser runs several steps
def test_gradients_reach_the_decoder_fusion_and_vision_and_a_few_steps_learn(case, tokenizer, tiny_init):
    model = build(case, tiny_init)
    batch = train_batch(case, tokenizer, seed=7)
    TASK.loss(model, batch)["loss"].backward()
    assert model.decoder.layer[0].crossattention.self.key.weight.grad is not None
    assert any(p.grad is not None for p in model.xfm.fusion_encoder.parameters())
    assert any(p.grad is not None for p in model.xfm.vision_encoder.parameters())
    before, after = train_steps(TASK, model, batch, steps=6, lr=2e-4)
    assert after < 0.5 * before, (before, after)


def test_rank_answers_matches_brute_force_likelihood(case, tokenizer, tiny_init):
    from xfm_pipeline.data.text import trim_padding
    from xfm_pipeline.model.decoder import rank_answers
    from xfm_pipeline.tasks.common import tokenize_fixed

    model = build(case, tiny_init).eval()
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


def test_predictions_and_the_official_accuracy_on_known_answers(case, tokenizer, tiny_init):
    data = case.data
    model = build(case, tiny_init).eval()
    predictions = TASK.predict(model, eval_loader(case, "val", tokenizer), case.params)
    assert [p["question_id"] for p in predictions] == [r["question_id"] for r in data["val"]]
    assert all(p["answer"] in data["answer_list"] for p in predictions)
    metrics = TASK.evaluate(predictions, "val", data)
    assert 0 <= metrics["vqa_acc"] <= 100
    assert {f"vqa_acc_{r['answer_type'].replace('/', '_')}" for r in data["val"]} <= set(metrics)
    # the official accuracy: the majority answer scores 100 when >= 4 annotators gave it
    perfect = [{"question_id": r["question_id"], "answer": max(set(r["answer"]), key=r["answer"].count)} for r in data["val"]]
    assert TASK.evaluate(perfect, "val", data)["vqa_acc"] == pytest.approx(100.0)
    assert TASK.evaluate([{**p, "answer": "no such answer"} for p in perfect], "val", data)["vqa_acc"] == 0.0
    assert TASK.evaluate(predictions, "val", {"val": [{**r, "answer": None} for r in data["val"]]}) == {}


@pytest.mark.integration
def test_run_finetune_end_to_end(case, tiny_init, tmp_path):
    result = run_job(case, tiny_init, tmp_path, batch_size=3, eval_batch_size=4, options={"augment": True, "k_test": 8})
    assert set(result["metrics"]) == {"val", "test"} and "vqa_acc" in result["metrics"]["test"]
    assert len(result["predictions"]["test"]) == 4 and any("val/vqa_acc" in h for h in result["history"])
    assert set(result["predictions"]["test"][0]) == {"question_id", "answer"}
    assert load_task_checkpoint(result["checkpoint"]).task == "vqa"


def test_noise_image_accuracy_feeds_noise_instead_of_the_images(case, tiny_init, tokenizer):
    """The blind check (used by benchmarks/vqa_blind_baseline.py) must really hide the images, reproducibly."""
    model = build(case, tiny_init).eval()
    loader = eval_loader(case, "test", tokenizer)
    with torch.no_grad(), vision_inputs(model) as seen:
        real = TASK.evaluate(TASK.predict(model, loader, case.params), "test", case.data)
        first = noise_image_accuracy(TASK, model, loader, case.params, "test", case.data, seed=3)
        second = noise_image_accuracy(TASK, model, loader, case.params, "test", case.data, seed=3)
    assert_noise_hid_the_images(seen)
    assert first == second and set(first) == set(real) and 0.0 <= first["vqa_acc"] <= 100.0
