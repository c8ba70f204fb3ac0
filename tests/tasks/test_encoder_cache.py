"""Frozen-encoder caching: exact outputs, each distinct input encoded once, trained encoders never cached."""

from __future__ import annotations

import pytest
import torch
from task_helpers import build, load_backbone, train_batch

from xfm_pipeline.model.encoder_cache import EncoderCache, FrozenEncodings
from xfm_pipeline.tasks.registry import get_task
from xfm_pipeline.training.optim import freeze_zero_scaled, is_frozen

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


def image_keys(name: str, records: list) -> list[str]:
    """The image key of each record, in the order the collate lists them (NLVR2: left, right per pair)."""
    return [path for r in records for path in r["images"]] if name == "nlvr" else [r["image"] for r in records]


@pytest.mark.parametrize("name", ["vqa", "nlvr", "grounding"])
def test_loss_with_frozen_encoders_is_unchanged_by_the_cache(name, task_case, tiny_init, tokenizer):
    task = get_task(name)
    case = task_case(name).with_options(augment=False)  # un-augmented images are a function of their key
    batch = train_batch(case, tokenizer)
    records = case.data["refs"][:6] if name == "grounding" else case.data["train"][:6]
    assert batch["image_keys"] == image_keys(name, records)
    model = build(case, tiny_init).train()
    freeze_zero_scaled(model, FROZEN_ENCODERS)
    uncached = task.loss(model, {k: v for k, v in batch.items() if k != "image_keys"})["loss"]
    assert len(model.encodings.image_cache) == 0
    cached = [task.loss(model, batch)["loss"] for _ in range(2)]
    assert len(model.encodings.image_cache) == len(set(batch["image_keys"])) and len(model.encodings.text_cache) > 0
    for loss in cached:
        torch.testing.assert_close(loss, uncached)
    cached[1].backward()
    assert any(p.grad is not None for p in model.xfm.fusion_encoder.parameters())
