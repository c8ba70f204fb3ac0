"""GLUE at tiny size: the eight registered tasks, single/pair batches, what trains, learning, the official
metrics on known answers, the job (selected checkpoint's validation reused). The task contract:
tests/tasks/test_task_contract.py."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from task_helpers import GLUE_ROWS, build, eval_loader, run_job, train_batch

from xfm_pipeline.tasks.checkpoint import load_task_checkpoint
from xfm_pipeline.tasks.glue import GLUE_KEYS, TASKS, GlueTask
from xfm_pipeline.tasks.registry import get_task


@pytest.fixture(scope="module")
def glue(task_case):
    """``glue(key)``: the TaskCase of ``glue_<key>`` (the first GLUE_ROWS rows of every GLUE file)."""
    return lambda key: task_case(f"glue_{key}")


def test_registry_has_the_eight_tasks():
    assert set(TASKS) == set(GLUE_KEYS)
    for key in GLUE_KEYS:
        task = get_task(f"glue_{key}")
        assert task is TASKS[key] and isinstance(task, GlueTask) and task.name == f"glue_{key}"
        assert task.splits == (("train", "val", "val_mismatched") if key == "mnli" else ("train", "val"))
    assert TASKS["cola"].selection_metric == "matthews_correlation"
    assert TASKS["mrpc"].selection_metric == "acc_and_f1"
    assert TASKS["stsb"].selection_metric == "pearson"
    assert TASKS["rte"].selection_metric == "accuracy"


def test_options_are_validated(glue, tokenizer):
    from xfm_pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="nope"):
        train_batch(glue("sst2").with_options(nope=1), tokenizer)


def test_single_and_pair_batches(glue, tokenizer):
    single = train_batch(glue("sst2"), tokenizer, seed=123)
    assert single["text_ids"].shape == single["text_atts"].shape and single["text_ids"].shape[0] == 8
    assert single["labels"].dtype == torch.long and "images" not in single
    sep = tokenizer.sep_token_id
    assert ((single["text_ids"] == sep).sum(1) == 1).all()  # one sentence: [CLS] a [SEP]
    pair = train_batch(glue("mnli"), tokenizer, seed=123)
    assert ((pair["text_ids"] == sep).sum(1) == 2).all()  # tokenizer pair: [CLS] a [SEP] b [SEP]
    assert pair["text_ids"].shape[1] <= 48 and set(pair["labels"].tolist()) <= {0, 1, 2}
    assert pair["text_atts"].sum(1).max() == pair["text_ids"].shape[1]  # padded to the longest
    stsb = train_batch(glue("stsb"), tokenizer, seed=123)
    assert stsb["labels"].dtype == torch.float32 and (stsb["labels"] >= 0).all() and (stsb["labels"] <= 5).all()


@pytest.mark.parametrize("key", ["cola", "stsb"])
def test_only_the_text_encoder_and_the_head_train(key, glue, tokenizer, tiny_init):
    from xfm_pipeline.training.optim import param_groups

    case, task = glue(key), TASKS[key]
    model = build(case, tiny_init)
    assert model.head[-1].out_features == (1 if key == "stsb" else 2)
    task.loss(model, train_batch(case, tokenizer, seed=123))["loss"].backward()
    assert model.head[0].weight.grad is not None
    assert model.xfm.text_encoder.base_model.embeddings.word_embeddings.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in model.xfm.vision_encoder.parameters())
    assert all(not p.requires_grad for p in model.xfm.fusion_encoder.parameters())
    trained = {id(p) for g in param_groups(model, 1e-4, 0.01, task.new_param_prefixes) for p in g["params"]}
    assert not trained & {id(p) for p in model.xfm.vision_encoder.parameters()}


@pytest.mark.integration  # an optimiser runs several steps
def test_a_few_steps_reduce_the_loss(glue, tokenizer, tiny_init):
    case, task = glue("sst2"), TASKS["sst2"]
    torch.manual_seed(0)
    model = build(case, tiny_init)
    batch = train_batch(case, tokenizer, seed=123, n=6)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    model.train()
    losses = []
    for _ in range(8):
        loss = task.loss(model, batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_evaluate_every_task_on_known_answers(glue):
    for key, task in TASKS.items():
        data = glue(key).data
        for split in task.splits[1:]:
            refs = task.examples(split, data)
            perfect = [{"guid": ex.guid, "prediction": ex.label} for ex in refs]
            metrics = task.evaluate(perfect, split, data)
            assert math.isclose(metrics[task.selection_metric], 1.0), (key, split, metrics)
            with pytest.raises(ValueError):
                task.evaluate(perfect[1:], split, data)
    data = glue("mrpc").data
    metrics = TASKS["mrpc"].evaluate([{"guid": ex.guid, "prediction": 1 - ex.label} for ex in TASKS["mrpc"].examples("val", data)], "val", data)
    assert metrics["accuracy"] == 0.0 and set(metrics) == {"accuracy", "f1", "acc_and_f1"}


def test_predictions_cover_the_split_with_the_official_metrics(glue, tokenizer, tiny_init):
    case, task = glue("mrpc"), TASKS["mrpc"]
    model = build(case, tiny_init).eval()
    predictions = task.predict(model, eval_loader(case, "val", tokenizer), case.params)
    assert [p["guid"] for p in predictions] == [ex.guid for ex in task.examples("val", case.data)]
    assert len(predictions) == GLUE_ROWS and set(predictions[0]) == {"guid", "prediction"}
    assert set(task.evaluate(predictions, "val", case.data)) == {"accuracy", "f1", "acc_and_f1"}


@pytest.mark.integration
def test_run_finetune_end_to_end(glue, tokenizer, tiny_init, tmp_path):
    case = glue("mnli")
    data = {"glue": {k: v for k, v in case.data["glue"].items() if k.startswith("MNLI/")}}
    case = replace(case, data=data, params=replace(case.params, batch_size=4, eval_batch_size=32, max_tokens=32))
    result = run_job(case, tiny_init, tmp_path, loop={"eval_every": 1, "lr": 5e-5})
    assert set(result["metrics"]) == {"val", "val_mismatched"}
    assert 0.0 <= result["metrics"]["val"]["accuracy"] <= 1.0
    assert len(result["predictions"]["val_mismatched"]) == GLUE_ROWS
    assert [h["step"] for h in result["history"] if "val/accuracy" in h] == [1, 2]
    assert Path(result["checkpoint"], "model.safetensors").is_file()
    # the val predictions are those of the selected checkpoint (reused from its validation, not recomputed)
    selected = load_task_checkpoint(result["checkpoint"], case.data).eval()
    with torch.no_grad():
        assert TASKS["mnli"].predict(selected, eval_loader(case, "val", tokenizer), case.params) == result["predictions"]["val"]


def _mnli_case(glue):
    case = glue("mnli")
    data = {"glue": {k: v for k, v in case.data["glue"].items() if k.startswith("MNLI/")}}
    return replace(case, data=data, params=replace(case.params, batch_size=4, eval_batch_size=32, max_tokens=32))


@pytest.mark.integration
def test_a_finished_run_keeps_only_its_weights_and_is_reused_by_the_same_code_only(glue, tiny_init, tmp_path, monkeypatch):
    from xfm_pipeline.jobs import resume
    from xfm_pipeline.training import loop

    case = _mnli_case(glue)
    first = run_job(case, tiny_init, tmp_path)
    run_dir = Path(first["checkpoint"]).parent
    assert sorted(p.name for p in run_dir.iterdir()) == ["best", "history.json", "run.json"]  # no optimizer state left
    assert sorted(p.name for p in Path(first["checkpoint"]).iterdir()) == ["config.json", "model.safetensors", "tokenizer"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run of the same code must be reused, not trained")

    monkeypatch.setattr(loop, "train", no_training)
    again = run_job(case, tiny_init, tmp_path)
    assert again["checkpoint"] == first["checkpoint"] and again["history"] == first["history"]
    assert again["predictions"] == first["predictions"]
    monkeypatch.undo()
    monkeypatch.setattr(resume, "code_fingerprint", lambda: "f" * 64)  # a source file changed
    trained = []
    real_train = loop.train
    monkeypatch.setattr(loop, "train", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    afresh = run_job(case, tiny_init, tmp_path)
    assert trained == [1] and Path(afresh["checkpoint"]).parent == run_dir
    assert resume.read_run_record(run_dir)["code_history"] == ["f" * 64]


@pytest.mark.integration
def test_an_interrupted_run_resumes_after_a_code_change(glue, tiny_init, tmp_path, monkeypatch, caplog):
    from xfm_pipeline.jobs import resume

    case = _mnli_case(glue)
    task = TASKS["mnli"]
    real_evaluate = task.evaluate

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed at the step-2 validation")

    monkeypatch.setattr(task, "evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        run_job(case, tiny_init, tmp_path, loop={"checkpoint_every": 1})
    monkeypatch.setattr(task, "evaluate", real_evaluate)
    (run_dir,) = (tmp_path / "out").glob("run-*")
    old_code = resume.read_run_record(run_dir)["code"]
    assert (run_dir / "checkpoint-0000001" / "training_state.pt").is_file()
    monkeypatch.setattr(resume, "code_fingerprint", lambda: "f" * 64)
    with caplog.at_level("INFO"):
        result = run_job(case, tiny_init, tmp_path, loop={"checkpoint_every": 1})
    assert "resumed from" in caplog.text and "checkpoint-0000001 at step 1" in caplog.text
    assert f"trained so far by code {old_code[:12]} with changed code ffffffffffff" in caplog.text
    assert Path(result["checkpoint"]).parent == run_dir
    assert resume.read_run_record(run_dir)["code_history"] == [old_code, "f" * 64]
