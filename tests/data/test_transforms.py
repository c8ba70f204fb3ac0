"""Image transforms: output shapes, normalisation statistics, determinism of the eval transforms."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from xfm_pipeline.data import transforms as T


@pytest.fixture
def image():
    img = Image.new("RGB", (96, 80), (255, 255, 255))
    img.paste((255, 0, 0), (10, 10, 50, 50))
    return img


@pytest.mark.parametrize(
    "make",
    [T.pretrain_transform, T.train_transform, T.eval_transform, T.imagenet_train_transform, T.imagenet_eval_transform],
)
@pytest.mark.parametrize("size", [64, 96])
def test_output_shape(make, size, image):
    out = make(size)(image)
    assert out.shape == (3, size, size) and out.dtype == torch.float32


def test_randaugment_color_transform_shape(image):
    out = T.randaugment_color_transform()(image.resize((64, 64)))
    assert out.shape == (3, 64, 64)


def test_eval_transform_normalises_with_clip_stats():
    out = T.eval_transform(32)(Image.new("RGB", (40, 40), (255, 255, 255)))
    expected = torch.tensor([(1 - m) / s for m, s in zip(T.CLIP_MEAN, T.CLIP_STD, strict=True)])
    assert torch.allclose(out[:, 16, 16], expected, atol=1e-4)


def test_imagenet_eval_uses_imagenet_stats_and_center_crop():
    img = Image.new("RGB", (200, 100), (0, 0, 0))
    img.paste((255, 255, 255), (50, 0, 150, 100))  # white centre band, black sides
    out = T.imagenet_eval_transform(64)(img)
    white = torch.tensor([(1 - m) / s for m, s in zip(T.IMAGENET_MEAN, T.IMAGENET_STD, strict=True)])
    assert torch.allclose(out[:, 32, 32], white, atol=1e-3)
    # Resize(73) keeps the aspect ratio (146 x 73) and the 64-px centre crop stays inside the white band.
    assert torch.allclose(out[:, 32, 1], white, atol=0.05)


def test_eval_transforms_are_deterministic_and_train_ones_random(image):
    ev = T.eval_transform(64)
    assert torch.equal(ev(image), ev(image))
    torch.manual_seed(0)
    tr = T.pretrain_transform(64)
    outs = [tr(image) for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_randaugment_op_space_is_xfm():
    ops = T._xfm_randaugment_cls(color_only=False)._AUGMENTATION_SPACE
    assert set(ops) == {"Identity", "AutoContrast", "Equalize", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}
    colour = T._xfm_randaugment_cls(color_only=True)._AUGMENTATION_SPACE
    assert set(colour) == {"Identity", "AutoContrast", "Equalize", "Brightness", "Sharpness"}


def test_bad_size_rejected():
    with pytest.raises(ValueError):
        T.eval_transform(4)
    with pytest.raises(ValueError):
        T.imagenet_eval_transform(64, crop_pct=1.5)


def test_seeded_transform_draws_from_the_seed_and_restores_the_global_rng(image):
    train = T.train_transform(64)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first, again, other = (T.seeded_transform(train, image, s) for s in (7, 7, 8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.random.default_generator.manual_seed(7)  # the transform's draws are the CPU generator's under that seed
    assert torch.equal(train(image), first)


def test_seeded_transform_queues_nothing_for_cuda(image):
    """``torch.manual_seed`` queues a seed for the CUDA devices, with a formatted traceback, on every call
    while CUDA is not initialised: milliseconds a sample. A per-sample transform must leave that queue alone."""
    import torch.cuda

    tracker = torch.cuda._lazy_seed_tracker
    torch.manual_seed(0)  # the queue now holds this call's seed
    queued = tracker.manual_seed_all_cb
    for seed in range(3):
        T.seeded_transform(T.eval_transform(64), image, seed)
    assert tracker.manual_seed_all_cb is queued
