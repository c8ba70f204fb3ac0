"""ImageNet fine-tune and linear probe at tiny size: splits, data, Mixup, what trains, learning, top-k on known
answers, the job. The task contract: tests/tasks/test_task_contract.py."""

from __future__ import annotations

import math

import pytest
import torch
from task_helpers import build, eval_loader, run_job, train_batch

from xfm_pipeline.tasks.imagenet import FINETUNE, LINEAR_PROBE, mix_batch, split_records
from xfm_pipeline.tasks.registry import get_task


@pytest.fixture(scope="module")
def manifest(shapes_world):
    """The whole validated ImageNet manifest of the session's shapes world."""
    return shapes_world.records("imagenet/manifest.json")


@pytest.fixture
def finetune(task_case):
    return task_case("imagenet")


@pytest.fixture
def probe(task_case):
    return task_case("imagenet_linear_probe")


def _test_batch(case, n: int = 8) -> dict:
    """The first ``n`` images of the (deterministic) test split, collated."""
    dataset = eval_loader(case, "test", None).dataset
    return get_task(case.name).collate("test", False)([dataset[i] for i in range(n)])


def test_registry_and_options(finetune, probe):
    from xfm_pipeline.config import ConfigError

    assert get_task("imagenet") is FINETUNE and get_task("imagenet_linear_probe") is LINEAR_PROBE
    assert FINETUNE.splits == LINEAR_PROBE.splits == ("train", "val", "test")
    assert FINETUNE.selection_metric == "top1"
    with pytest.raises(ConfigError, match="bogus"):
        FINETUNE.options(finetune.with_options(bogus=1).params)
    with pytest.raises(ConfigError, match="head"):
        LINEAR_PROBE.options(probe.with_options(head="transformer").params)
    with pytest.raises(ConfigError, match="augment"):
        FINETUNE.options(finetune.with_options(augment="heavy").params)


def test_held_out_val_is_deterministic_stratified_and_disjoint(manifest):
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


def test_batches_and_seeded_augmentation(finetune, probe):
    a = train_batch(finetune, None, n=8)
    assert a["images"].shape == (8, 3, 64, 64) and a["labels"].dtype == torch.long and a["mix_seed"].shape == (8,)
    b = train_batch(finetune, None, n=8)
    assert torch.equal(a["images"], b["images"])  # same sample seeds -> same augmentation
    c = train_batch(finetune, None, seed=100, n=8)
    assert not torch.equal(a["images"], c["images"])
    light = finetune.with_options(augment="light")
    assert train_batch(light, None, n=8)["images"].shape == (8, 3, 64, 64)
    assert torch.equal(train_batch(light, None, n=8)["images"], train_batch(light, None, n=8)["images"])
    assert torch.equal(_test_batch(finetune)["images"], _test_batch(probe)["images"])  # eval transform is deterministic


def test_mixup_is_seeded_and_needs_even_batches(finetune):
    options = FINETUNE.options(finetune.params)
    batch = train_batch(finetune, None, n=8)
    x1, t1 = mix_batch(batch["images"], batch["labels"], batch["mix_seed"], 6, options)
    x2, t2 = mix_batch(batch["images"], batch["labels"], batch["mix_seed"], 6, options)
    assert torch.equal(x1, x2) and torch.equal(t1, t2) and t1.shape == (8, 6)
    assert torch.allclose(t1.sum(1), torch.ones(8))
    assert not torch.equal(x1, batch["images"])  # mixed, and the input batch is untouched
    with pytest.raises(ValueError, match="even"):
        mix_batch(batch["images"][:3], batch["labels"][:3], batch["mix_seed"][:3], 6, options)


@pytest.mark.integration  # an optimiser runs several steps
def test_finetune_trains_the_vision_encoder_only_and_learns(finetune, tiny_init):
    torch.manual_seed(0)
    plain = finetune.with_options(mixup=0.0, cutmix=0.0, label_smoothing=0.0)
    model = build(plain, tiny_init)
    assert model.head[-1].out_features == 6
    batch = _test_batch(plain)  # fixed images for the learning check
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


@pytest.mark.integration  # an optimiser runs several steps
def test_linear_probe_freezes_the_backbone(probe, tiny_init):
    from xfm_pipeline.training.optim import param_groups

    model = build(probe, tiny_init)
    linear = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 1 and not model.head[0].affine  # standardise + one Linear: a linear classifier
    model.train()
    assert model.training and not model.xfm.training and not model.xfm.vision_encoder.training
    trained = [p for g in param_groups(model, 1e-3, 0.0, LINEAR_PROBE.new_param_prefixes) for p in g["params"]]
    assert {id(p) for p in trained} == {id(p) for p in model.head.parameters()}
    before = {k: v.clone() for k, v in model.xfm.state_dict().items()}
    opt = torch.optim.AdamW(trained, lr=1e-2)
    batch = _test_batch(probe)
    losses = []
    for _ in range(15):
        loss = LINEAR_PROBE.loss(model, batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert all(torch.equal(before[k], v) for k, v in model.xfm.state_dict().items())
    mlp = build(probe, tiny_init, head="mlp")
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


def test_predictions_rank_every_class_on_the_test_split(finetune, tiny_init):
    model = build(finetune, tiny_init).eval()
    predictions = FINETUNE.predict(model, eval_loader(finetune, "test", None), finetune.params)
    assert len(predictions) == 12 and all(len(p["topk"]) == 5 and p["topk_scores"] == sorted(p["topk_scores"], reverse=True) for p in predictions)
    metrics = FINETUNE.evaluate(predictions, "test", finetune.data)
    assert set(metrics) == {"top1", "top5"} and 0 <= metrics["top1"] <= metrics["top5"] <= 1


@pytest.mark.integration
@pytest.mark.parametrize("name, options", [("imagenet", {}), ("imagenet_linear_probe", {"head": "linear"})])
def test_run_finetune_end_to_end(name, options, task_case, tiny_init, tmp_path):
    case = task_case(name).with_options(val_fraction=0.2, **options)
    result = run_job(case, tiny_init, tmp_path, loop={"eval_every": 1, "lr": 1e-4}, eval_batch_size=32)
    assert set(result["metrics"]) == {"val", "test"}
    assert len(result["predictions"]["val"]) == 12 and len(result["predictions"]["test"]) == 12
    assert all(math.isfinite(v) for v in result["metrics"]["test"].values())
    assert [h["step"] for h in result["history"] if "val/top1" in h] == [1, 2]
