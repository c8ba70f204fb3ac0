"""Every preset builds, runs forward with the documented shapes, and base matches the paper's size."""

import pytest
import torch

from xfm_pipeline.config import ConfigError
from xfm_pipeline.model import PRESETS, XFM, build_config

PAPER_BASE_PARAMETERS = 327_295_353  # the paper's "327M" (docs/xfm.md#parameter-count)


def _forward_shapes(model: XFM, batch: int, seq: int = 12) -> None:
    cfg = model.config
    text_cfg = model.text_encoder.config
    images = torch.randn(batch, 3, cfg.vision.image_size, cfg.vision.image_size)
    ids = torch.randint(5, 1000, (batch, seq))
    atts = torch.ones(batch, seq, dtype=torch.long)
    atts[:, -3:] = 0
    n = cfg.vision.num_patches
    with torch.no_grad():
        image_embeds = model.encode_image(images)
        text_embeds = model.encode_text(ids, atts)
        fused = model.fuse(text_embeds, atts, image_embeds)
        img_f, txt_f = model.image_features(image_embeds), model.text_features(text_embeds)
        assert image_embeds.shape == (batch, 1 + n, cfg.vision.width)
        assert text_embeds.shape == (batch, seq, text_cfg.hidden_size)
        assert fused.shape == (batch, seq, text_cfg.hidden_size)
        assert img_f.shape == txt_f.shape == (batch, cfg.embed_dim)
        torch.testing.assert_close(img_f.norm(dim=-1), torch.ones(batch))
        assert model.similarity(img_f, txt_f).shape == (batch, batch)
        assert model.itm_logits(fused).shape == (batch, 2)
        boxes = model.predict_bbox(fused)
        assert boxes.shape == (batch, 4) and boxes.min() >= 0 and boxes.max() <= 1
        assert model.fusion_mlm_logits(fused[:, :3]).shape == (batch, 3, text_cfg.vocab_size)
        assert model.text_mlm_logits(text_embeds[:, :3]).shape == (batch, 3, text_cfg.vocab_size)


def test_registry_lists_the_three_sizes():
    assert set(PRESETS) == {"tiny", "small", "base"}


def test_tiny_forward_shapes(tiny_model):
    _forward_shapes(tiny_model, batch=4)


def test_small_forward_shapes():
    torch.manual_seed(0)
    _forward_shapes(XFM(build_config("small")).eval(), batch=2)


@pytest.mark.system
def test_base_forward_shapes(base_model):
    _forward_shapes(base_model, batch=1)


@pytest.mark.system
def test_base_parameter_count_is_the_papers(base_model):
    per_part = {name: sum(p.numel() for p in m.parameters()) for name, m in base_model.named_children()}
    assert per_part["bbox_pointer"] == 2 * (768 * 256 + 256) + (1536 * 3072 + 3072) + 2 * 3072 + (3072 * 4 + 4)  # not in X-FM
    total = sum(p.numel() for p in base_model.parameters()) - per_part["bbox_pointer"]
    assert total == PAPER_BASE_PARAMETERS
    assert abs(total / 327.3e6 - 1) < 0.005
    assert per_part["vision_encoder"] == 85_762_752
    assert per_part["text_encoder"] == 124_055_040 + 642_393  # RoBERTa + MLM head (decoder tied)
    assert per_part["fusion_encoder"] == 113_421_312 + 642_393  # 12 layers + MLM head (decoder tied to text)


def test_temperature_is_clamped_without_editing_the_parameter(tiny_model):
    model = XFM.__new__(XFM)
    torch.nn.Module.__init__(model)
    model.config = tiny_model.config
    model.temp = torch.nn.Parameter(torch.tensor(5.0))
    assert model.temperature.item() == pytest.approx(tiny_model.config.temp_max)
    assert model.temp.item() == 5.0


def test_overrides_merge_and_unknown_keys_are_rejected():
    cfg = build_config("tiny", {"vision": {"image_size": 96}, "embed_dim": 64})
    assert cfg.vision.image_size == 96 and cfg.vision.patch_size == 8 and cfg.embed_dim == 64
    with pytest.raises(ConfigError, match="model.vision.image_sise"):
        build_config("tiny", {"vision": {"image_sise": 96}})
    with pytest.raises(KeyError, match="huge"):
        build_config("huge")


def test_mim_target_decides_the_pixel_head(tiny_model, base_model):
    p = tiny_model.config.vision.patch_size
    assert tiny_model.config.mim_target == "pixels" and tiny_model.config.vision.stem == "conv"
    assert tiny_model.mim_head.out_features == 3 * p * p
    assert base_model.config.mim_target == "features" and not hasattr(base_model, "mim_head")  # official keys
    with pytest.raises(ValueError, match="mim_target must be one of"):
        build_config("tiny", {"mim_target": "tokens"})
