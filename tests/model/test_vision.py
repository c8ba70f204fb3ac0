"""The BEiT-v2 style vision encoder: X-FM pooling order, MIM mask token, region pooling, key layout."""

import pytest
import torch

from xfm_pipeline.model.config import VisionConfig
from xfm_pipeline.model.vision import VisionEncoder, region_pool


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return VisionEncoder(VisionConfig(image_size=32, patch_size=8, width=48, depth=2, num_heads=3, drop_path_rate=0.0)).eval()


def test_token_zero_is_mean_of_normalised_patches(encoder):
    x = torch.randn(2, 3, 32, 32)
    out = encoder(x)
    assert out.shape == (2, 1 + 16, 48)
    torch.testing.assert_close(out[:, 0], out[:, 1:].mean(1))
    # fc_norm (weight 1, bias 0 at init) is applied to every patch token before pooling
    patches = out[:, 1:]
    torch.testing.assert_close(patches.mean(-1), torch.zeros(2, 16), atol=1e-5, rtol=0)
    torch.testing.assert_close(patches.var(-1, unbiased=False), torch.ones(2, 16), atol=1e-3, rtol=0)


def test_mask_token_replaces_masked_patches(encoder):
    x = torch.randn(2, 3, 32, 32)
    none = torch.zeros(2, 16, dtype=torch.bool)
    torch.testing.assert_close(encoder(x, none), encoder(x))
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :5] = True
    masked = encoder(x, mask)
    assert not torch.allclose(masked, encoder(x))
    # the masked patches' pixels no longer matter
    y = x.clone()
    y[:, :, :8, :] = torch.randn(2, 3, 8, 32)  # first patch row = patches 0..3, all masked
    torch.testing.assert_close(encoder(y, mask), masked)
    with pytest.raises(ValueError, match="patch_mask"):
        encoder(x, torch.zeros(2, 15, dtype=torch.bool))


def test_region_pool_weights_the_region_patches():
    embeds = torch.randn(1, 1 + 4, 3)
    weights = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    pooled = region_pool(embeds, weights)
    torch.testing.assert_close(pooled[0, 0], (embeds[0, 1] + embeds[0, 3]) / 2)
    torch.testing.assert_close(pooled[:, 1:], embeds[:, 1:])


def test_key_layout_matches_official_vision_encoder(official_key_shapes):
    official = {}
    for name, shape in official_key_shapes.items():
        # relative_position_index is a buffer the official code saves; timm regenerates it (non-persistent)
        if name.startswith("vision_encoder.") and not name.endswith("relative_position_index"):
            official[name[len("vision_encoder.") :]] = shape
    with torch.device("meta"):
        base = VisionEncoder(VisionConfig())
    ours = {k: tuple(v.shape) for k, v in base.state_dict().items()}
    assert ours == official


@pytest.mark.parametrize("patch_size", [2, 4, 8])
def test_conv_stem_keeps_the_patch_grid_and_the_mim_contract(patch_size):
    torch.manual_seed(0)
    config = VisionConfig(image_size=32, patch_size=patch_size, width=48, depth=1, num_heads=3, drop_path_rate=0.0, stem="conv")
    encoder = VisionEncoder(config).eval()
    n = (32 // patch_size) ** 2
    strided = [m for m in encoder.patch_embed.proj if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == patch_size.bit_length() - 1  # log2(p) stride-2 convolutions
    x = torch.randn(3, 3, 32, 32)
    out = encoder(x)
    assert out.shape == (3, 1 + n, 48)
    # per-sample normalisation: an image's tokens do not depend on the rest of the batch
    torch.testing.assert_close(encoder(x[:1]), out[:1], atol=1e-5, rtol=1e-5)
    # masked patches' pixels no longer matter (the mask token replaces the stem's output)
    mask = torch.zeros(1, n, dtype=torch.bool)
    mask[0, 0] = True
    y = x[:1].clone()
    y[..., :patch_size, :patch_size] += 5.0  # pixels of patch 0 only
    torch.testing.assert_close(encoder(x[:1], mask), encoder(y, mask))


def test_conv_stem_needs_a_power_of_two_patch():
    with pytest.raises(ValueError, match="power-of-two patch_size"):
        VisionConfig(patch_size=6, stem="conv")
    with pytest.raises(ValueError, match="vision.stem must be one of"):
        VisionConfig(stem="convnext")


@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_a_patch_mask_of_the_wrong_shape_is_rejected(stem):
    encoder = VisionEncoder(VisionConfig(image_size=32, patch_size=8, width=48, depth=1, num_heads=3, drop_path_rate=0.0, stem=stem))
    with pytest.raises(ValueError, match=r"patch_mask has shape \(2, 15\), expected \(2, 16\)"):
        encoder(torch.randn(2, 3, 32, 32), torch.zeros(2, 15, dtype=torch.bool))


def test_cpu_training_uses_explicit_attention_with_the_same_result(encoder):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        fused = encoder(x)  # SDPA
    assert all(block.attn.fused_attn for block in encoder.blocks)
    explicit = encoder(x)  # autograd records: timm's explicit attention on CPU
    assert not any(block.attn.fused_attn for block in encoder.blocks)
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)
    explicit.sum().backward()
    assert all(block.attn.relative_position_bias_table.grad.abs().sum() > 0 for block in encoder.blocks)
    encoder.zero_grad(set_to_none=True)


def test_absolute_position_embedding_is_added_to_every_token():
    torch.manual_seed(0)
    config = dict(image_size=32, patch_size=8, width=48, depth=2, num_heads=3, drop_path_rate=0.0)
    with_pos = VisionEncoder(VisionConfig(**config, abs_pos_emb=True)).eval()
    without = VisionEncoder(VisionConfig(**config)).eval()
    assert without.pos_embed is None and with_pos.pos_embed.shape == (1, 1 + 16, 48)
    without.load_state_dict({k: v for k, v in with_pos.state_dict().items() if k != "pos_embed"})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(with_pos(x), without(x))
        with_pos.pos_embed.zero_()
        torch.testing.assert_close(with_pos(x), without(x), rtol=0, atol=0)
