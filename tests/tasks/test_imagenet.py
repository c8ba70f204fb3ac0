"""ImageNet fine-tune and linear probe at tiny size: splits, data, Mixup, freezing, learning, metrics, job."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint, write_task_checkpoint
from xfm_pipeline.tasks.imagenet import FINETUNE, LINEAR_PROBE, mix_batch, split_records
from xfm_pipeline.tasks.registry import get_task

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "data" / "02_intermediate" / "imagenet" / "manifest.json"
IMAGENET_ROOT = REPO / "data" / "01_raw" / "shapes_world" / "imagenet"
INIT = REPO / "data" / "06_models" / "init"


@pytest.fixture(scope="module")
def data():
    if not MANIFEST.is_file():
        pytest.skip("validated ImageNet manifest missing (run the data_validation pipeline)")
    return {"manifest": json.loads(MANIFEST.read_text())}


@pytest.fixture(scope="module")
def small(data):
    """10 train + 2 val images per class."""
    out, count = [], {}
    for r in data["manifest"]:
        key = (r["split"], r["label"])
        if count.get(key, 0) < (10 if r["split"] == "train" else 2):
            out.append(r)
            count[key] = count.get(key, 0) + 1
    return {"manifest": out}


@pytest.fixture(scope="module")
def backbone():
    from xfm_pipeline.model import XFM, build_config

    torch.manual_seed(0)
    return XFM(build_config("tiny"))


def _params(**options) -> TaskParams:
    return TaskParams(image_size=64, batch_size=8, eval_batch_size=16, options={"image_root": str(IMAGENET_ROOT), **options})


def _batch(task, data, params, split="train", n=8, train=True, seed=0):
    ds = task.dataset(split, data, None, params, "unused", train=train)
    return task.collate(split, train)([ds[(i, seed + i)] if train else ds[i] for i in range(n)])


def test_registry_and_options():
    from xfm_pipeline.config import ConfigError

    assert get_task("imagenet") is FINETUNE and get_task("imagenet_linear_probe") is LINEAR_PROBE
    assert FINETUNE.splits == LINEAR_PROBE.splits == ("train", "val", "test")
    assert FINETUNE.selection_metric == "top1"
    with pytest.raises(ConfigError, match="bogus"):
        FINETUNE.options(_params(bogus=1))
    with pytest.raises(ConfigError, match="head"):
        LINEAR_PROBE.options(_params(head="transformer"))
    with pytest.raises(ConfigError, match="augment"):
        FINETUNE.options(_params(augment="heavy"))


def test_held_out_val_is_deterministic_stratified_and_disjoint(data):
    manifest = data["manifest"]
    train, val, test = (split_records(manifest, s, 0.1) for s in ("train", "val", "test"))
    assert len(train) + len(val) == sum(r["split"] == "train" for r in manifest)
    assert {r["image"] for r in train}.isdisjoint(r["image"] for r in val)
    assert test == sorted((r for r in manifest if r["split"] == "val"), key=lambda r: r["image"])  # official val = test
    per_class = {}
    for r in val:
        per_class[r["label"]] = per_class.get(r["label"], 0) + 1
    assert len(set(per_class.values())) == 1 and len(per_class) == 6
    assert val == split_records(list(reversed(manifest)), "val", 0.1)  # order-independent
    assert split_records(manifest, "val", 0.0) == []


def test_batches_and_seeded_augmentation(small):
    params = _params()
    a = _batch(FINETUNE, small, params)
    assert a["images"].shape == (8, 3, 64, 64) and a["labels"].dtype == torch.long and a["mix_seed"].shape == (8,)
    b = _batch(FINETUNE, small, params)
    assert torch.equal(a["images"], b["images"])  # same sample seeds -> same augmentation
    c = _batch(FINETUNE, small, params, seed=100)
    assert not torch.equal(a["images"], c["images"])
    light = _batch(FINETUNE, small, _params(augment="light"))
    assert light["images"].shape == (8, 3, 64, 64) and torch.equal(light["images"], _batch(FINETUNE, small, _params(augment="light"))["images"])
    e1 = _batch(FINETUNE, small, params, split="test", train=False)
    e2 = _batch(LINEAR_PROBE, small, params, split="test", train=False)
    assert torch.equal(e1["images"], e2["images"])  # eval transform is deterministic


def test_mixup_is_seeded_and_needs_even_batches(small):
    options = FINETUNE.options(_params())
    batch = _batch(FINETUNE, small, _params())
    x1, t1 = mix_batch(batch["images"], batch["labels"], batch["mix_seed"], 6, options)
    x2, t2 = mix_batch(batch["images"], batch["labels"], batch["mix_seed"], 6, options)
    assert torch.equal(x1, x2) and torch.equal(t1, t2) and t1.shape == (8, 6)
    assert torch.allclose(t1.sum(1), torch.ones(8))
    assert not torch.equal(x1, batch["images"])  # mixed, and the input batch is untouched
    with pytest.raises(ValueError, match="even"):
        mix_batch(batch["images"][:3], batch["labels"][:3], batch["mix_seed"][:3], 6, options)


def test_finetune_loss_backward_and_learning(small, backbone):
    torch.manual_seed(0)
    params = _params(mixup=0.0, cutmix=0.0, label_smoothing=0.0)
    model = FINETUNE.build_model(copy.deepcopy(backbone), params, small)
    assert model.head[-1].out_features == 6
    batch = _batch(FINETUNE, small, params, split="test", train=False)  # fixed images for the learning check
    mixed = FINETUNE.loss(FINETUNE.build_model(copy.deepcopy(backbone), _params(), small), _batch(FINETUNE, small, _params()))["loss"]
    assert torch.isfinite(mixed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    losses = []
    for _ in range(8):
        loss = FINETUNE.loss(model, batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert model.xfm.vision_encoder.blocks[0].attn.qkv.weight.grad is not None
    assert all(p.grad is None for p in model.xfm.text_encoder.parameters())
    assert losses[-1] < 0.8 * losses[0]


def test_linear_probe_freezes_the_backbone(small, backbone):
    from xfm_pipeline.training.optim import param_groups

    params = _params()
    model = LINEAR_PROBE.build_model(copy.deepcopy(backbone), params, small)
    linear = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 1 and not model.head[0].affine  # standardise + one Linear: a linear classifier
    model.train()
    assert model.training and not model.xfm.training and not model.xfm.vision_encoder.training
    trained = [p for g in param_groups(model, 1e-3, 0.0, LINEAR_PROBE.new_param_prefixes) for p in g["params"]]
    assert {id(p) for p in trained} == {id(p) for p in model.head.parameters()}
    before = {k: v.clone() for k, v in model.xfm.state_dict().items()}
    opt = torch.optim.AdamW(trained, lr=1e-2)
    batch = _batch(LINEAR_PROBE, small, params, split="test", train=False)
    losses = []
    for _ in range(15):
        loss = LINEAR_PROBE.loss(model, batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert all(torch.equal(before[k], v) for k, v in model.xfm.state_dict().items())
    mlp = LINEAR_PROBE.build_model(copy.deepcopy(backbone), _params(head="mlp"), small)
    widths = [m.out_features for m in mlp.head if isinstance(m, torch.nn.Linear)]
    assert widths == [384, 768, 384, 192, 6]  # 2x, 4x, 2x, 1x of D=192, then the classes


def test_evaluate_on_known_answers():
    preds = [
        {"image": "a", "label": 0, "topk": [0, 1, 2, 3, 4], "topk_scores": [5, 4, 3, 2, 1]},
        {"image": "b", "label": 4, "topk": [0, 1, 2, 3, 4], "topk_scores": [5, 4, 3, 2, 1]},
        {"image": "c", "label": 5, "topk": [0, 1, 2, 3, 4], "topk_scores": [5, 4, 3, 2, 1]},
        {"image": "d", "label": 2, "topk": [2, 1, 0, 3, 4], "topk_scores": [5, 4, 3, 2, 1]},
    ]
    m = FINETUNE.evaluate(preds, "test", {"manifest": [{"image": "x", "label": str(i), "split": "train"} for i in range(6)]})
    assert m == {"top1": 0.5, "top5": 0.75}
    three = [{"image": "a", "label": 2, "topk": [0, 1, 2], "topk_scores": [3.0, 2.0, 1.0]}]
    assert FINETUNE.evaluate(three, "test", {})["top5"] == 1.0  # top-5 capped at the 3 classes


def test_predict_and_checkpoint_round_trip(small, backbone, tmp_path):
    params = _params()
    model = FINETUNE.build_model(copy.deepcopy(backbone), params, small).eval()
    loader = torch.utils.data.DataLoader(FINETUNE.dataset("test", small, None, params, "", train=False), batch_size=6, collate_fn=FINETUNE.collate("test", False))
    predictions = FINETUNE.predict(model, loader, params)
    assert len(predictions) == 12 and len(predictions[0]["topk"]) == 5
    json.dumps(predictions)
    metrics = FINETUNE.evaluate(predictions, "test", small)
    assert set(metrics) == {"top1", "top5"} and 0 <= metrics["top1"] <= metrics["top5"] <= 1
    write_task_checkpoint(model, tmp_path, params)
    loaded = load_task_checkpoint(tmp_path, small)
    assert FINETUNE.predict(loaded, loader, params) == predictions


def test_run_finetune_end_to_end(small, tmp_path):
    from xfm_pipeline.jobs.finetune import run_finetune

    if not (INIT / "config.json").is_file():
        pytest.skip("no tiny init checkpoint (run the model_init pipeline)")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "manifest.json").write_text(json.dumps(small["manifest"]))
    for task, options in (("imagenet", {}), ("imagenet_linear_probe", {"head": "linear"})):
        params = {"batch_size": 8, "eval_batch_size": 32, "max_steps": 2, "eval_every": 1, "lr": 1e-4, "options": {"image_root": str(IMAGENET_ROOT), "val_fraction": 0.2, **options}}
        result = run_finetune({"task": task, "params": params, "init_dir": str(INIT), "data_dir": str(data_dir), "image_root": str(REPO / "data/01_raw/shapes_world/images"), "output_dir": str(tmp_path / task), "run_id": None})
        assert set(result["metrics"]) == {"val", "test"}
        assert len(result["predictions"]["val"]) == 12 and len(result["predictions"]["test"]) == 12
        assert all(math.isfinite(v) for v in result["metrics"]["test"].values())
        assert [h["step"] for h in result["history"] if "val/top1" in h] == [1, 2]
