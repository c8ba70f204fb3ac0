"""Frozen-encoder caching: exact outputs, each distinct input encoded once, trained encoders never cached."""

from __future__ import annotations

import pytest
import torch
from understanding_fixtures import IMAGE_ROOT, load_backbone, one_thread, tiny_init, tokenizer, validated  # noqa: F401

from xfm_pipeline.model.encoder_cache import EncoderCache, FrozenEncodings
from xfm_pipeline.tasks.base import TaskParams
from xfm_pipeline.tasks.registry import get_task
from xfm_pipeline.training.optim import freeze_zero_scaled, is_frozen

pytestmark = pytest.mark.usefixtures("one_thread")

FROZEN_ENCODERS = {"xfm.text_encoder.": 0.0, "xfm.vision_encoder.": 0.0}


def test_encoder_cache_computes_each_key_once():
    calls: list[list[int]] = []

    def compute(keys):
        def rows(positions):
            calls.append([keys[p] for p in positions])
            return [torch.full((keys[p],), float(keys[p])) for p in positions]

        return rows

    cache = EncoderCache()
    keys = [3, 1, 3, 2]
    rows = cache.rows(keys, compute(keys))
    assert calls == [[3, 1, 2]]  # the duplicate 3 is computed once
    assert [r.tolist() for r in rows] == [[3.0] * 3, [1.0], [3.0] * 3, [2.0] * 2]
    again = [2, 5, 1]
    rows = cache.rows(again, compute(again))
    assert calls[-1] == [5] and len(cache) == 4
    assert [r.tolist() for r in rows] == [[2.0] * 2, [5.0] * 5, [1.0]]
    with pytest.raises(ValueError, match="returned 0 rows for 1"):
        cache.rows([9], lambda positions: [])


def test_cached_image_and_text_encodings_equal_the_encoders(tiny_init, tokenizer):
    from xfm_pipeline.data.text import trim_padding
    from xfm_pipeline.tasks.common import tokenize_fixed

    xfm = load_backbone(tiny_init).train()
    freeze_zero_scaled(xfm, {"text_encoder.": 0.0, "vision_encoder.": 0.0})
    assert is_frozen(xfm.vision_encoder) and is_frozen(xfm.text_encoder) and not is_frozen(xfm.fusion_encoder)
    torch.manual_seed(0)
    images = torch.randn(3, 3, 64, 64)
    ids, atts = trim_padding(*tokenize_fixed(tokenizer, ["a red circle", "is there a blue square left of the star?", "two"], 30))
    with torch.no_grad():
        xfm.eval()
        want_images, want_texts = xfm.encode_image(images), xfm.encode_text(ids, atts)
        xfm.train()
    encodings = FrozenEncodings()
    calls: list[int] = []
    hook = xfm.vision_encoder.register_forward_pre_hook(lambda module, args: calls.append(len(args[0])))
    first = encodings.images(xfm, images, ["a", "b", "c"])
    second = encodings.images(xfm, images[[2, 0]], ["c", "a"])
    hook.remove()
    assert calls == [3] and len(encodings.image_cache) == 3  # the second call is served from the cache
    torch.testing.assert_close(first, want_images)
    torch.testing.assert_close(second, want_images[[2, 0]])
    assert xfm.vision_encoder.training  # run in eval mode, training mode restored

    texts = encodings.texts(xfm, ids, atts, use_cache=True)
    mask = atts.bool()
    torch.testing.assert_close(texts[mask], want_texts[mask])
    assert (texts[~mask] == 0).all()  # padding comes back as zeros; the attention masks hide it
    # the same question padded to another batch length gives the same states for its real tokens
    longer_ids = torch.nn.functional.pad(ids[2:], (0, 4), value=tokenizer.pad_token_id)
    longer_atts = torch.nn.functional.pad(atts[2:], (0, 4))
    again = encodings.texts(xfm, longer_ids, longer_atts, use_cache=True)
    assert again.shape == (1, ids.shape[1] + 4, want_texts.shape[-1]) and len(encodings.text_cache) == 3
    torch.testing.assert_close(again[0, : int(atts[2].sum())], want_texts[2, : int(atts[2].sum())])


def test_trained_encoders_are_never_cached(tiny_init):
    xfm = load_backbone(tiny_init).train()
    encodings = FrozenEncodings()
    images = torch.randn(2, 3, 64, 64)
    out = encodings.images(xfm, images, ["a", "b"])
    assert out.requires_grad and len(encodings.image_cache) == 0


def cached_task_case(name: str) -> tuple[dict, TaskParams, list[str]]:
    """(data, params with both encoders frozen, the image key of each of the first 6 training items)."""
    if name == "vqa":
        train = validated("vqa/train.json")[:6]
        data, options, keys = {"train": train}, {"augment": False, "k_test": 4}, [r["image"] for r in train]
    elif name == "nlvr":
        train = validated("nlvr/train.json")[:6]
        data, options, keys = {"train": train}, {"augment": False}, [path for r in train for path in r["images"]]
    else:
        refs = [r for r in validated("grounding/refcoco+.json") if r["split"] == "train"][:6]
        data, options, keys = {"refs": refs}, {"augment": False}, [r["image"] for r in refs]
    return data, TaskParams(image_size=64, batch_size=6, max_tokens=30, options=options, lr_scales=FROZEN_ENCODERS), keys


@pytest.mark.parametrize("name", ["vqa", "nlvr", "grounding"])
def test_loss_with_frozen_encoders_is_unchanged_by_the_cache(name, tiny_init, tokenizer):
    task = get_task(name)
    data, params, keys = cached_task_case(name)
    dataset = task.dataset("train", data, tokenizer, params, IMAGE_ROOT, train=True)
    batch = task.collate("train", True)([dataset[(i, i)] for i in range(6)])
    assert batch["image_keys"] == keys
    model = task.build_model(load_backbone(tiny_init), params, data).train()
    freeze_zero_scaled(model, FROZEN_ENCODERS)
    uncached = task.loss(model, {k: v for k, v in batch.items() if k != "image_keys"})["loss"]
    assert len(model.encodings.image_cache) == 0
    cached = [task.loss(model, batch)["loss"] for _ in range(2)]
    assert len(model.encodings.image_cache) == len(set(keys)) and len(model.encodings.text_cache) > 0
    for loss in cached:
        torch.testing.assert_close(loss, uncached)
    cached[1].backward()
    assert any(p.grad is not None for p in model.xfm.fusion_encoder.parameters())


@pytest.mark.parametrize("name", ["vqa", "nlvr", "grounding"])
def test_augmented_training_batches_carry_no_image_keys(name, tokenizer):
    task = get_task(name)
    data, params, _ = cached_task_case(name)
    params = TaskParams(image_size=64, max_tokens=30, options={**params.options, "augment": True})
    dataset = task.dataset("train", data, tokenizer, params, IMAGE_ROOT, train=True)
    assert "image_keys" not in task.collate("train", True)([dataset[(0, 1)], dataset[(1, 2)]])


def test_encoder_cache_stops_storing_at_max_rows():
    cache = EncoderCache(max_rows=2)
    computed: list[int] = []

    def compute(keys):
        def rows(positions):
            computed.extend(keys[p] for p in positions)
            return [torch.full((1,), float(keys[p])) for p in positions]

        return rows

    keys = [1, 2, 3, 3]
    assert [r.item() for r in cache.rows(keys, compute(keys))] == [1.0, 2.0, 3.0, 3.0]
    assert len(cache) == 2 and computed == [1, 2, 3]
    assert [r.item() for r in cache.rows([3, 1], compute([3, 1]))] == [3.0, 1.0]
    assert computed == [1, 2, 3, 3]  # 3 did not fit: computed again; 1 came from the cache
    with pytest.raises(ValueError, match="max_rows"):
        EncoderCache(max_rows=-1)
