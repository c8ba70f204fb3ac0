"""GLUE tasks at tiny size: registry, data, loss, learning, predict/evaluate, checkpoints, the job."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.tasks.glue import GLUE_KEYS, TASKS, GlueTask
from xfm_pipeline.tasks.registry import GLUE_TASKS, get_task

REPO = Path(__file__).resolve().parents[2]
GLUE_DIR = REPO / "data" / "02_intermediate" / "glue"
INIT = REPO / "data" / "06_models" / "init"
ROWS = 24  # rows kept per GLUE file


def _head(text: str, lines: int, header: bool = True) -> str:
    rows = text.splitlines(keepends=True)
    return "".join(rows[: lines + (1 if header else 0)])


@pytest.fixture(scope="module")
def glue_data():
    """{"glue": {"CoLA/train": text, ...}} from the validated shapes-world GLUE files (first ROWS rows per file)."""
    if not GLUE_DIR.is_dir():
        pytest.skip("validated GLUE data missing (run the data_validation pipeline)")
    out = {}
    for path in sorted(GLUE_DIR.glob("*/*.tsv")):
        headerless = path.parent.name == "CoLA" and path.stem != "test"
        out[f"{path.parent.name}/{path.stem}"] = _head(path.read_text(), ROWS, header=not headerless)
    return {"glue": out}


@pytest.fixture(scope="module")
def tokenizer():
    from xfm_pipeline.model.text import load_tokenizer

    return load_tokenizer("all-minilm-l6-v2")


@pytest.fixture(scope="module")
def backbone():
    from xfm_pipeline.model import XFM, build_config

    torch.manual_seed(0)
    return XFM(build_config("tiny"))


def _params(**kw) -> TaskParams:
    return TaskParams(**{"batch_size": 8, "eval_batch_size": 16, "max_tokens": 48, **kw})


def _batch(task, data, tokenizer, split="train", n=8, train=True):
    ds = task.dataset(split, data, tokenizer, _params(), "", train=train)
    items = [ds[(i, 123)] if train else ds[i] for i in range(n)]
    return task.collate(split, train)(items)


def test_registry_has_the_eight_tasks():
    assert set(TASKS) == set(GLUE_TASKS) == set(GLUE_KEYS)
    for key in GLUE_TASKS:
        task = get_task(f"glue_{key}")
        assert task is TASKS[key] and isinstance(task, GlueTask) and task.name == f"glue_{key}"
        assert task.splits == (("train", "val", "val_mismatched") if key == "mnli" else ("train", "val"))
    assert TASKS["cola"].selection_metric == "matthews_correlation"
    assert TASKS["mrpc"].selection_metric == "acc_and_f1"
    assert TASKS["stsb"].selection_metric == "pearson"
    assert TASKS["rte"].selection_metric == "accuracy"


def test_options_are_validated(glue_data, tokenizer):
    from xfm_pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="nope"):
        TASKS["sst2"].dataset("train", glue_data, tokenizer, _params(options={"nope": 1}), "", train=True)


def test_single_and_pair_batches(glue_data, tokenizer):
    single = _batch(TASKS["sst2"], glue_data, tokenizer)
    assert single["text_ids"].shape == single["text_atts"].shape and single["text_ids"].shape[0] == 8
    assert single["labels"].dtype == torch.long and "images" not in single
    sep = tokenizer.sep_token_id
    assert ((single["text_ids"] == sep).sum(1) == 1).all()  # one sentence: [CLS] a [SEP]
    pair = _batch(TASKS["mnli"], glue_data, tokenizer)
    assert ((pair["text_ids"] == sep).sum(1) == 2).all()  # tokenizer pair: [CLS] a [SEP] b [SEP]
    assert pair["text_ids"].shape[1] <= 48 and set(pair["labels"].tolist()) <= {0, 1, 2}
    assert pair["text_atts"].sum(1).max() == pair["text_ids"].shape[1]  # padded to the longest
    stsb = _batch(TASKS["stsb"], glue_data, tokenizer)
    assert stsb["labels"].dtype == torch.float32 and (stsb["labels"] >= 0).all() and (stsb["labels"] <= 5).all()


def test_loss_backward_trains_only_text_encoder_and_head(glue_data, tokenizer, backbone):
    from xfm_pipeline.training.optim import param_groups

    for key in ("cola", "stsb"):
        task = TASKS[key]
        model = task.build_model(copy.deepcopy(backbone), _params(), glue_data)
        assert model.head[-1].out_features == (1 if key == "stsb" else 2)
        loss = task.loss(model, _batch(task, glue_data, tokenizer))["loss"]
        assert torch.isfinite(loss)
        loss.backward()
        assert model.head[0].weight.grad is not None
        assert model.xfm.text_encoder.base_model.embeddings.word_embeddings.weight.grad is not None
        assert all(p.grad is None and not p.requires_grad for p in model.xfm.vision_encoder.parameters())
        assert all(not p.requires_grad for p in model.xfm.fusion_encoder.parameters())
        trained = {id(p) for g in param_groups(model, 1e-4, 0.01, task.new_param_prefixes) for p in g["params"]}
        assert not trained & {id(p) for p in model.xfm.vision_encoder.parameters()}


def test_a_few_steps_reduce_the_loss(glue_data, tokenizer, backbone):
    task = TASKS["sst2"]
    torch.manual_seed(0)
    model = task.build_model(copy.deepcopy(backbone), _params(), glue_data)
    batch = _batch(task, glue_data, tokenizer, n=6)
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


def test_evaluate_every_task_on_known_answers(glue_data):
    for key, task in TASKS.items():
        for split in task.splits[1:]:
            refs = task.examples(split, glue_data)
            perfect = [{"guid": ex.guid, "prediction": ex.label} for ex in refs]
            metrics = task.evaluate(perfect, split, glue_data)
            assert task.selection_metric in metrics
            assert math.isclose(metrics[task.selection_metric], 1.0), (key, split, metrics)
        with pytest.raises(ValueError):
            task.evaluate(perfect[1:], split, glue_data)
    metrics = TASKS["mrpc"].evaluate([{"guid": ex.guid, "prediction": 1 - ex.label} for ex in TASKS["mrpc"].examples("val", glue_data)], "val", glue_data)
    assert metrics["accuracy"] == 0.0 and set(metrics) == {"accuracy", "f1", "acc_and_f1"}


def test_predict_evaluate_and_checkpoint_round_trip(glue_data, tokenizer, backbone, tmp_path):
    task = TASKS["mrpc"]
    params = _params()
    model = task.build_model(copy.deepcopy(backbone), params, glue_data).eval()
    loader = torch.utils.data.DataLoader(task.dataset("val", glue_data, tokenizer, params, "", train=False), batch_size=16, collate_fn=task.collate("val", False))
    predictions = task.predict(model, loader, params)
    assert len(predictions) == ROWS and set(predictions[0]) == {"guid", "prediction"}
    json.dumps(predictions)
    assert set(task.evaluate(predictions, "val", glue_data)) == {"accuracy", "f1", "acc_and_f1"}
    write_task_checkpoint(model, tmp_path, params, tokenizer)
    loaded = load_task_checkpoint(tmp_path).eval()
    batch = next(iter(loader))
    with torch.no_grad():
        assert torch.allclose(model(batch["text_ids"], batch["text_atts"]), loaded(batch["text_ids"], batch["text_atts"]), atol=1e-5)
    assert task.predict(loaded, loader, params) == predictions


def test_run_finetune_end_to_end(glue_data, tmp_path):
    from xfm_pipeline.jobs.finetune import run_finetune

    if not (INIT / "config.json").is_file():
        pytest.skip("no tiny init checkpoint (run the model_init pipeline)")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    subset = {k: v for k, v in glue_data["glue"].items() if k.startswith("MNLI/")}
    (data_dir / "glue.json").write_text(json.dumps(subset))
    params = {"batch_size": 4, "eval_batch_size": 32, "max_steps": 2, "eval_every": 1, "lr": 5e-5, "max_tokens": 32, "options": {}}
    result = run_finetune({"task": "glue_mnli", "params": params, "init_dir": str(INIT), "data_dir": str(data_dir), "image_root": str(REPO / "data/01_raw/shapes_world/images"), "output_dir": str(tmp_path / "out"), "run_id": None})
    assert set(result["metrics"]) == {"val", "val_mismatched"}
    assert 0.0 <= result["metrics"]["val"]["accuracy"] <= 1.0
    assert len(result["predictions"]["val_mismatched"]) == ROWS
    assert [h["step"] for h in result["history"] if "val/accuracy" in h] == [1, 2]
    assert Path(result["checkpoint"], "model.safetensors").is_file()
    # the val predictions are those of the selected checkpoint (reused from its validation, not recomputed)
    from xfm_pipeline.jobs.finetune import eval_loader
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer
    from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint

    task, data = get_task("glue_mnli"), {"glue": subset}
    selected = load_task_checkpoint(result["checkpoint"], data).eval()
    loader = eval_loader(task, "val", data, load_checkpoint_tokenizer(result["checkpoint"]), TaskParams(eval_batch_size=32, max_tokens=32), "")
    with torch.no_grad():
        assert task.predict(selected, loader, TaskParams()) == result["predictions"]["val"]
