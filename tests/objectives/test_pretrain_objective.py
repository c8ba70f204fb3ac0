"""XFMPretrainObjective on the real tiny model: keys per stream, weights, skipped work, gradient routing,
the pointer box head."""

import random

import pytest
import torch

from xfm_pipeline.data.masking import BlockMaskGenerator, TextMasker
from xfm_pipeline.model.text import load_tokenizer
from xfm_pipeline.objectives import ObjectiveWeights, XFMPretrainObjective, bbox_loss, itc_loss, pointer_loss
from xfm_pipeline.objectives.pretrain import duplicate_pair_ids

pytestmark = pytest.mark.integration  # the whole pretraining objective on the real tiny model, every stream

TEXTS = [
    "a red circle left of a blue square",
    "a green triangle",
    "two yellow squares above a circle",
    "a small purple xylophone",
]


@pytest.fixture(scope="module")
def batches():
    """One batch per stream, built with the real tokenizer and maskers (4 texts, 64 px images)."""
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    enc = tokenizer(TEXTS, padding="max_length", max_length=12, truncation=True, return_tensors="pt")
    masked = TextMasker(tokenizer, mask_prob=0.5, max_masks=6)(enc["input_ids"], enc["attention_mask"], rng=random.Random(0))
    text = {
        "text_ids": enc["input_ids"],
        "text_atts": enc["attention_mask"],
        "text_ids_masked": masked.text_ids_masked,
        "masked_pos": masked.masked_pos,
        "masked_ids": masked.masked_ids,
    }
    block_masks, rng = BlockMaskGenerator.for_grid(8), random.Random(0)
    g = torch.Generator().manual_seed(0)
    region_atts = (torch.rand(4, 64, generator=g) > 0.5).long()
    region_atts[0] = 1  # the whole-image caption attends to every patch
    return {
        "image_text": {
            "stream": "image_text",
            "images": torch.randn(4, 3, 64, 64, generator=g),
            "image_patch_mask": block_masks(4, rng),
            **text,
        },
        "region_text": {
            "stream": "region_text",
            "images": torch.randn(2, 3, 64, 64, generator=g),
            "idx_to_group_img": torch.tensor([0, 0, 1, 1]),
            "image_atts": torch.cat([torch.ones(4, 1, dtype=torch.long), region_atts], dim=1),
            "target_bbox": torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.3, 0.3, 0.2, 0.2], [0.6, 0.4, 0.3, 0.1], [0.5, 0.7, 0.4, 0.2]]),
            "is_image": torch.tensor([1, 0, 0, 0]),
            **text,
        },
        "image_only": {
            "stream": "image_only",
            "images": torch.randn(3, 3, 64, 64, generator=g),
            "image_patch_mask": block_masks(3, rng),
        },
        "text_only": {"stream": "text_only", **text},
    }


EXPECTED_KEYS = {
    "image_text": {"loss_itc", "loss_itm", "loss_mlm", "loss_mim", "patch_similarity"},  # + the collapse diagnostic
    "region_text": {"loss_itc", "loss_itm", "loss_mlm", "loss_bbox", "loss_giou"},
    "image_only": {"loss_mim"},
    "text_only": {"loss_text_mlm"},
}


@pytest.mark.parametrize("stream", sorted(EXPECTED_KEYS))
def test_each_stream_gives_finite_paper_named_losses_and_their_weighted_sum(tiny_model, batches, stream):
    weights = ObjectiveWeights(itc=0.5, itm=2.0, mlm=1.5, mim=0.25, bbox=3.0, giou=0.75, text_mlm=1.25)
    batch = {**batches[stream], "generator": torch.Generator().manual_seed(0)}
    out = XFMPretrainObjective(weights)(tiny_model, batch)
    assert set(out) == EXPECTED_KEYS[stream] | {"loss"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in out.values())
    expected = sum(getattr(weights, k.removeprefix("loss_")) * v for k, v in out.items() if k.startswith("loss_"))
    torch.testing.assert_close(out["loss"], expected)


def test_zero_weight_drops_the_key_and_skips_the_work(tiny_model, batches, monkeypatch):
    calls = {"fuse": 0, "encode_text": 0}
    for name in calls:
        original = getattr(tiny_model, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(tiny_model, name, counted)
    objective = XFMPretrainObjective(ObjectiveWeights(itc=0, itm=0, mlm=0))
    with torch.no_grad():
        out = objective(tiny_model, batches["image_text"])
    assert set(out) == {"loss_mim", "loss"}
    assert calls == {"fuse": 0, "encode_text": 0}
    with torch.no_grad():
        out = XFMPretrainObjective(ObjectiveWeights(giou=0))(tiny_model, batches["region_text"])
    assert "loss_giou" not in out and "loss_bbox" in out


def test_region_itc_contrasts_regions_even_within_one_image(tiny_model, batches):
    from xfm_pipeline.model.vision import region_pool

    batch = dict(batches["region_text"])
    batch["image_atts"] = batch["image_atts"].clone()
    batch["image_atts"][1] = batch["image_atts"][0]  # the text of row 1 was drawn for row 0's region again
    only_itc = ObjectiveWeights(itm=0, mlm=0, mim=0, bbox=0, giou=0)
    with torch.no_grad():
        out = XFMPretrainObjective(only_itc)(tiny_model, batch)
        image = tiny_model.encode_image(batch["images"])[batch["idx_to_group_img"]]
        image_feats = tiny_model.image_features(region_pool(image, batch["image_atts"][:, 1:]))
        text_feats = tiny_model.text_features(tiny_model.encode_text(batch["text_ids"], batch["text_atts"]))
        hard = itc_loss(image_feats, text_feats, tiny_model.temperature)
        same_region = itc_loss(image_feats, text_feats, tiny_model.temperature, idx=torch.tensor([0, 0, 1, 2]))
        same_image = itc_loss(image_feats, text_feats, tiny_model.temperature, idx=batch["idx_to_group_img"])
    torch.testing.assert_close(out["loss_itc"], hard)
    torch.testing.assert_close(same_region, hard)  # a duplicated region has identical features: soft = hard
    assert not torch.allclose(hard, same_image)  # rows 2 and 3 are two regions of one image: negatives


def test_inactive_unknown_or_incomplete_streams_are_rejected(tiny_model, batches):
    objective = XFMPretrainObjective(ObjectiveWeights(text_mlm=0))
    assert objective.active_streams == ("image_text", "region_text", "image_only")
    with pytest.raises(ValueError, match="weight 0"):
        objective(tiny_model, batches["text_only"])
    with pytest.raises(ValueError, match="must be one of"):
        objective(tiny_model, {"stream": "video"})
    with pytest.raises(KeyError, match="image_patch_mask"):
        objective(tiny_model, {"stream": "image_only", "images": batches["image_only"]["images"]})
    with pytest.raises(ValueError, match="'itm'"):
        ObjectiveWeights(itm=-1.0)
    with pytest.raises(ValueError, match="detach_text_for_fusion"):
        XFMPretrainObjective(ObjectiveWeights(), "yes")


def _grad_norm(module, skip=()):
    total = 0.0
    for name, p in module.named_parameters():
        if p.grad is not None and not any(s in name for s in skip):
            total += p.grad.abs().sum().item()
    return total


def _backward(model, weights, batch, detach=True):
    model.zero_grad(set_to_none=True)
    out = XFMPretrainObjective(weights, detach_text_for_fusion=detach)(model, batch)
    out["loss"].backward()
    return out


NONE = {"itc": 0, "itm": 0, "mlm": 0, "mim": 0, "bbox": 0, "giou": 0, "pointer": 0, "text_mlm": 0}
WORD_EMBEDDINGS = "word_embeddings"  # tied to the fusion MLM decoder, so fusion MLM trains it by design


def test_gradient_routing_follows_the_stop_gradient(tiny_model, batches):
    batch = batches["image_text"]
    text_encoder, vision_encoder = tiny_model.text_encoder, tiny_model.vision_encoder
    try:
        _backward(tiny_model, ObjectiveWeights(**{**NONE, "mim": 1}), batch)
        assert _grad_norm(vision_encoder) > 0 and _grad_norm(text_encoder) == 0

        _backward(tiny_model, ObjectiveWeights(**{**NONE, "itc": 1}), batch)
        assert _grad_norm(text_encoder) > 0 and _grad_norm(vision_encoder) > 0

        _backward(tiny_model, ObjectiveWeights(**{**NONE, "itm": 1}), batch)
        assert _grad_norm(text_encoder) == 0
        assert _grad_norm(tiny_model.fusion_encoder) > 0 and _grad_norm(vision_encoder) > 0

        _backward(tiny_model, ObjectiveWeights(**{**NONE, "mlm": 1}), batch)
        assert _grad_norm(text_encoder, skip=(WORD_EMBEDDINGS,)) == 0
        assert _grad_norm(vision_encoder) > 0

        _backward(tiny_model, ObjectiveWeights(**{**NONE, "itm": 1}), batch, detach=False)
        assert _grad_norm(text_encoder) > 0

        _backward(tiny_model, ObjectiveWeights(**{**NONE, "bbox": 1, "giou": 1}), batches["region_text"])
        assert _grad_norm(text_encoder) == 0 and _grad_norm(vision_encoder) > 0
        assert _grad_norm(tiny_model.bbox_head) > 0
    finally:
        tiny_model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("stream", ["image_text", "region_text"])
def test_itm_and_fusion_mlm_share_one_fusion_call_and_equal_the_separate_losses(tiny_model, batches, stream, monkeypatch):
    from xfm_pipeline.model.vision import region_pool
    from xfm_pipeline.objectives import fusion_mlm_loss, itm_loss

    batch = {**batches[stream], "generator": torch.Generator().manual_seed(5)}
    fuse_calls = []
    fuse = tiny_model.fuse
    monkeypatch.setattr(tiny_model, "fuse", lambda *a, **k: fuse_calls.append(1) or fuse(*a, **k))
    was_training = tiny_model.training
    tiny_model.eval()  # no dropout: the one call and the two calls see the same numbers
    try:
        with torch.no_grad():
            out = XFMPretrainObjective(ObjectiveWeights(**{**NONE, "itm": 1, "mlm": 1}))(tiny_model, batch)
            assert len(fuse_calls) == 1
            image_embeds, image_atts, idx = tiny_model.encode_image(batch["images"]), None, None
            if stream == "region_text":
                group, image_atts = batch["idx_to_group_img"], batch["image_atts"]
                image_embeds = region_pool(image_embeds[group], image_atts[:, 1:])
                idx = duplicate_pair_ids(group, batch["text_ids"], image_atts)
            text_atts = batch["text_atts"]
            text_embeds = tiny_model.encode_text(batch["text_ids"], text_atts)
            sim = tiny_model.similarity(tiny_model.image_features(image_embeds), tiny_model.text_features(text_embeds))
            itm = itm_loss(
                tiny_model,
                image_embeds,
                image_atts,
                text_embeds,
                text_atts,
                sim,
                sim.t(),
                idx,
                torch.Generator().manual_seed(5),
            )
            mlm = fusion_mlm_loss(
                tiny_model,
                image_embeds,
                image_atts,
                batch["text_ids_masked"],
                text_atts,
                batch["masked_pos"],
                batch["masked_ids"],
            )
    finally:
        tiny_model.train(was_training)
    torch.testing.assert_close(out["loss_itm"], itm.loss)
    torch.testing.assert_close(out["loss_mlm"], mlm)


def test_duplicate_pairs_share_an_id_for_itm():
    group = torch.tensor([0, 0, 1, 0])
    text_ids = torch.tensor([[5, 6], [5, 7], [5, 6], [5, 6]])
    atts = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 1, 0]])
    ids = duplicate_pair_ids(group, text_ids, atts)
    assert ids[0] == ids[3]  # the padding duplicate of pair 0
    assert len({ids[0].item(), ids[1].item(), ids[2].item()}) == 3  # other text / other image
    atts[3, 2] = 1
    assert duplicate_pair_ids(group, text_ids, atts)[3] != duplicate_pair_ids(group, text_ids, atts)[0]


@pytest.mark.parametrize("stream", ["image_text", "image_only"])
def test_mim_target_follows_the_model_config(tiny_model, batches, stream):
    """Pixel-target models regress the masked patches' pixels through mim_head; feature-target models
    regress a detached unmasked pass (the paper)."""
    from xfm_pipeline.objectives import mim_loss, mim_pixel_loss

    batch = batches[stream]
    images, mask = batch["images"], batch["image_patch_mask"]
    only_mim = XFMPretrainObjective(ObjectiveWeights(**{**NONE, "mim": 1}))
    assert tiny_model.config.mim_target == "pixels"
    with torch.no_grad():
        got = only_mim(tiny_model, batch)["loss_mim"]
        pred = tiny_model.encode_image(images, mask)
        expected = mim_pixel_loss(tiny_model.predict_pixels(pred), images, mask, tiny_model.config.vision.patch_size)
    torch.testing.assert_close(got, expected)
    tiny_model.config.mim_target = "features"
    try:
        with torch.no_grad():
            got = only_mim(tiny_model, batch)["loss_mim"]
            expected = mim_loss(pred, tiny_model.encode_image(images), mask)
        torch.testing.assert_close(got, expected)
        with pytest.raises(ValueError, match="predict_pixels needs mim_target 'pixels'"):
            tiny_model.predict_pixels(pred)
    finally:
        tiny_model.config.mim_target = "pixels"


def test_region_fusion_rows_keep_itc_on_every_text_and_fuse_only_the_marked_ones(tiny_model, batches):
    from xfm_pipeline.objectives.pretrain import _PER_TEXT_KEYS

    batch = dict(batches["region_text"])
    marked = torch.tensor([True, False, True, False])
    every_text = {k: v for k, v in batch.items()}
    marked_only = {k: v[marked] if k in _PER_TEXT_KEYS else v for k, v in batch.items()}
    objective = XFMPretrainObjective(ObjectiveWeights())
    was_training = tiny_model.training
    tiny_model.eval()  # no dropout: the three calls see the same numbers
    try:
        with torch.no_grad():
            out = objective(tiny_model, {**batch, "fusion_rows": marked, "generator": torch.Generator().manual_seed(5)})
            full = objective(tiny_model, {**every_text, "generator": torch.Generator().manual_seed(5)})
            fused = objective(tiny_model, {**marked_only, "generator": torch.Generator().manual_seed(5)})
    finally:
        tiny_model.train(was_training)
    torch.testing.assert_close(out["loss_itc"], full["loss_itc"])
    assert not torch.allclose(out["loss_itc"], fused["loss_itc"])
    for name in ("loss_itm", "loss_mlm", "loss_bbox", "loss_giou"):
        torch.testing.assert_close(out[name], fused[name])


def test_region_text_keys_make_identical_texts_itc_positives_and_never_itm_negatives(tiny_model, batches, monkeypatch):
    from xfm_pipeline.model.vision import region_pool
    from xfm_pipeline.objectives import pretrain as pretrain_module

    keys = torch.tensor([7, 7, 3, 9])  # rows 0 and 1 carry the same text string (e.g. two "large grey star"s)
    batch = {**batches["region_text"], "text_key": keys, "generator": torch.Generator().manual_seed(1)}
    sampled = []

    def recording_pairs(*args, **kwargs):
        pairs = itm_pairs(*args, **kwargs)
        sampled.append(pairs)
        return pairs

    from xfm_pipeline.objectives.itm import itm_pairs

    monkeypatch.setattr(pretrain_module, "itm_pairs", recording_pairs)
    was_training = tiny_model.training
    tiny_model.eval()
    try:
        with torch.no_grad():
            out = XFMPretrainObjective(ObjectiveWeights(mlm=0, bbox=0, giou=0))(tiny_model, batch)
            image = tiny_model.encode_image(batch["images"])[batch["idx_to_group_img"]]
            image_feats = tiny_model.image_features(region_pool(image, batch["image_atts"][:, 1:]))
            text_feats = tiny_model.text_features(tiny_model.encode_text(batch["text_ids"], batch["text_atts"]))
            by_text = itc_loss(image_feats, text_feats, tiny_model.temperature, idx=keys)
            hard = itc_loss(image_feats, text_feats, tiny_model.temperature)
    finally:
        tiny_model.train(was_training)
    torch.testing.assert_close(out["loss_itc"], by_text)
    assert not torch.allclose(by_text, hard)
    (pairs,) = sampled
    negatives = pairs.labels == 0
    assert negatives.any()
    assert (keys[pairs.text_index[negatives]] != keys[pairs.image_index[negatives]]).all()


def test_trimmed_text_padding_gives_the_same_losses(tiny_model, batches):
    from xfm_pipeline.data.pretrain_datasets import trim_text_padding

    objective = XFMPretrainObjective(ObjectiveWeights())
    was_training = tiny_model.training
    tiny_model.eval()
    try:
        for stream in ("image_text", "region_text", "text_only"):
            padded = batches[stream]
            trimmed = trim_text_padding(dict(padded))
            longest = int(padded["text_atts"].sum(1).max())
            assert trimmed["text_ids"].shape[1] == trimmed["text_ids_masked"].shape[1] == longest < padded["text_ids"].shape[1]
            with torch.no_grad():
                want = objective(tiny_model, {**padded, "generator": torch.Generator().manual_seed(2)})
                got = objective(tiny_model, {**trimmed, "generator": torch.Generator().manual_seed(2)})
            for key in want:
                torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=1e-5)
    finally:
        tiny_model.train(was_training)


def test_frozen_text_cache_encodes_each_text_once_and_keeps_the_losses(tiny_model, batches):
    from xfm_pipeline.training.optim import freeze_zero_scaled

    rows: list[int] = []
    encoder = tiny_model.text_encoder.base_model
    hook = encoder.register_forward_pre_hook(lambda module, args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    frozen = freeze_zero_scaled(tiny_model, {"text_encoder.": 0.0})
    was_training = tiny_model.training
    tiny_model.eval()
    try:
        batch = {**batches["region_text"], "text_key": torch.arange(4)}
        plain = XFMPretrainObjective(ObjectiveWeights(mlm=0), frozen_text_cache=0)
        cached = XFMPretrainObjective(ObjectiveWeights(mlm=0), frozen_text_cache=100)
        with pytest.raises(ValueError, match="frozen_text_cache"):
            XFMPretrainObjective(ObjectiveWeights(), frozen_text_cache=-1)
        want = plain(tiny_model, {**batch, "generator": torch.Generator().manual_seed(3)})
        rows.clear()
        first = cached(tiny_model, {**batch, "generator": torch.Generator().manual_seed(3)})
        second = cached(tiny_model, {**batch, "generator": torch.Generator().manual_seed(3)})
        assert sum(rows) == 4  # four distinct texts, encoded once over both calls
        assert len(cached.encodings.text_cache) == 4
        for key in want:
            torch.testing.assert_close(first[key], want[key])
            torch.testing.assert_close(second[key], want[key])
    finally:
        hook.remove()
        tiny_model.train(was_training)
        for name, param in tiny_model.named_parameters():
            if name in frozen:
                param.requires_grad_(True)


def test_the_pointer_box_head_gives_bbp_and_its_cross_entropy_and_trains_the_fusion_encoder(tiny_model, batches):
    batch = batches["region_text"]
    boxes_only = ObjectiveWeights(**{**NONE, "bbox": 1.0, "giou": 2.0, "pointer": 0.5})
    try:
        tiny_model.zero_grad(set_to_none=True)
        out = XFMPretrainObjective(boxes_only, box_head="pointer")(tiny_model, batch)
        assert set(out) == {"loss_bbox", "loss_giou", "loss_pointer", "loss"}
        with torch.no_grad():  # reference: the same computation written out
            image = tiny_model.encode_image(batch["images"])[batch["idx_to_group_img"]]  # (4, 1+N, Dv)
            text = tiny_model.encode_text(batch["text_ids"], batch["text_atts"])
            scores, boxes = tiny_model.bbox_pointer(tiny_model.fuse(text, batch["text_atts"], image)[:, 0], image[:, 1:])
            want_bbox, want_giou = bbox_loss(boxes, batch["target_bbox"], batch["is_image"])
            want_pointer = pointer_loss(scores, batch["target_bbox"], batch["is_image"])
        torch.testing.assert_close(out["loss_bbox"], want_bbox)
        torch.testing.assert_close(out["loss_giou"], want_giou)
        torch.testing.assert_close(out["loss_pointer"], want_pointer)
        torch.testing.assert_close(out["loss"], want_bbox + 2.0 * want_giou + 0.5 * want_pointer)
        out["loss"].backward()
        assert _grad_norm(tiny_model.bbox_pointer) > 0 and _grad_norm(tiny_model.fusion_encoder) > 0
        assert _grad_norm(tiny_model.bbox_head) == 0 and _grad_norm(tiny_model.text_encoder) == 0
    finally:
        tiny_model.zero_grad(set_to_none=True)
    with torch.no_grad():  # X-FM's head: no pointer term, whatever its weight
        assert "loss_pointer" not in XFMPretrainObjective(boxes_only)(tiny_model, batch)
    assert XFMPretrainObjective(ObjectiveWeights(**{**NONE, "pointer": 1.0})).active_streams == ()
    assert XFMPretrainObjective(ObjectiveWeights(**{**NONE, "pointer": 1.0}), box_head="pointer").active_streams == ("region_text",)
    with pytest.raises(ValueError, match="box_head"):
        XFMPretrainObjective(box_head="anchors")
    with pytest.raises(ValueError, match="box_head"):
        tiny_model.predict_box(torch.zeros(1, 2, 384), torch.zeros(1, 65, 192), "anchors")
