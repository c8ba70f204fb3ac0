"""BEiT-v2 initialisation of the base vision encoder from the release layout and from timm's, against
timm's own BEiT-v2 model on the same weights; model_init with BEiT-v2 and RoBERTa reports both."""

import pytest
import torch
import torch.nn.functional as F
from pretrained_files import write_beit_v2, write_roberta_dir
from safetensors.torch import load_file
from timm.models.beit import gen_relative_position_index

from xfm_pipeline.config import ConfigError
from xfm_pipeline.model import build_config
from xfm_pipeline.model.position_resize import resize_rel_pos_table
from xfm_pipeline.model.pretrained_vision import load_beit_v2
from xfm_pipeline.model.vision import VisionEncoder
from xfm_pipeline.pipelines.model_init.nodes import initialise_model

pytestmark = pytest.mark.integration  # 86M-parameter encoders and 350-425 MB weight files

TABLE = "attn.relative_position_bias_table"
BLOCK_TENSORS = 16  # per block: gamma_1/2, norm1/2 (2 each), q/v bias, table, qkv, proj (2), fc1 (2), fc2 (2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One set of random BEiT-v2 B/16 weights at 224 px in the three file kinds."""
    root = tmp_path_factory.mktemp("beit_v2")
    return {
        "original": write_beit_v2(root / "beitv2_base_patch16_224_pt1k.pth", "original"),
        "timm": write_beit_v2(root / "beitv2_base_patch16_224.pth", "timm"),
        "safetensors": write_beit_v2(root / "beitv2_base_patch16_224.safetensors", "timm"),
    }


@pytest.fixture(scope="module")
def file_states(files):
    return {
        "original": torch.load(files["original"], weights_only=True)["model"],
        "timm": torch.load(files["timm"], weights_only=True),
        "safetensors": load_file(str(files["safetensors"])),
    }


def _base_encoder(image_size: int = 224) -> VisionEncoder:
    torch.manual_seed(0)
    return VisionEncoder(build_config("base", {"vision": {"image_size": image_size}}).vision).eval()


@pytest.fixture(scope="module")
def loaded(files):
    """{kind: (base encoder loaded from that file, report)}."""
    out = {}
    for kind, path in files.items():
        encoder = _base_encoder()
        out[kind] = (encoder, load_beit_v2(path, encoder))
    return out


def test_original_release_fills_every_block_with_the_shared_table(loaded, file_states):
    encoder, report = loaded["original"]
    state = file_states["original"]
    assert report.missing == [] and sorted(report.initialised) == ["fc_norm.bias", "fc_norm.weight"]  # official X-FM: fresh 1/0
    assert report.unexpected == [] and report.resized == []
    assert len(report.loaded) == 4 + 12 * BLOCK_TENSORS  # cls_token, mask_token, patch_embed (2), blocks
    skipped = report.skipped
    assert len(skipped) == 35 and sum(k.startswith("cls_pt_layers.") for k in skipped) == 2 * 15
    assert {"lm_head.weight", "lm_head.bias", "norm.weight", "norm.bias", "rel_pos_bias.relative_position_index"} <= set(skipped)
    assert "fc_norm" in skipped["norm.weight"] and "pretraining-only" in skipped["lm_head.weight"]
    ours = encoder.state_dict()
    for i in range(12):
        torch.testing.assert_close(ours[f"blocks.{i}.{TABLE}"], state["rel_pos_bias.relative_position_bias_table"], rtol=0, atol=0)
    for key in ("mask_token", "cls_token", "patch_embed.proj.weight", "blocks.7.attn.qkv.weight", "blocks.7.attn.q_bias", "blocks.11.gamma_2"):
        torch.testing.assert_close(ours[key], state[key], rtol=0, atol=0)
    assert torch.equal(ours["fc_norm.weight"], torch.ones(768)) and torch.equal(ours["fc_norm.bias"], torch.zeros(768))


@pytest.mark.parametrize("kind", ["timm", "safetensors"])
def test_timm_file_loads_every_tensor(loaded, file_states, kind):
    encoder, report = loaded[kind]
    state = file_states[kind]
    assert report.missing == [] and list(report.initialised) == ["mask_token"]  # timm's BEiT has none: trunc-normal init
    assert report.unexpected == [] and report.resized == []
    assert sorted(report.skipped) == ["head.bias", "head.weight"]
    assert len(report.loaded) == 5 + 12 * BLOCK_TENSORS  # cls_token, patch_embed (2), fc_norm (2), blocks
    ours = encoder.state_dict()
    for key in report.loaded:
        torch.testing.assert_close(ours[key], state[key], rtol=0, atol=0)


def _images() -> torch.Tensor:
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))  # (B, 3, H, W)


@torch.no_grad()
def test_tokens_equal_timms_own_model_with_a_shared_table(loaded, file_states):
    """timm's BEiT with ``use_shared_rel_pos_bias`` runs the release's weights as released (one bias
    module for all blocks); X-FM's encoder output is fc_norm (fresh: weight 1, bias 0, eps 1e-6) of its
    patch tokens, then their mean."""
    import timm

    state = file_states["original"]
    reference = timm.create_model("beitv2_base_patch16_224", pretrained=False, use_rel_pos_bias=False, use_shared_rel_pos_bias=True).eval()
    drop = ("mask_token", "norm.", "lm_head.", "cls_pt_layers.", "rel_pos_bias.relative_position_index")
    result = reference.load_state_dict({k: v for k, v in state.items() if not k.startswith(drop)}, strict=False)
    assert sorted(result.missing_keys) == ["fc_norm.bias", "fc_norm.weight", "head.bias", "head.weight"] and not result.unexpected_keys
    blocks_out = reference.forward_features(_images())  # (B, 197, 768); norm is Identity with global_pool="avg"
    patches = F.layer_norm(blocks_out[:, 1:], (768,), eps=1e-6)  # (B, 196, 768)
    ours = loaded["original"][0](_images())  # (B, 197, 768)
    torch.testing.assert_close(ours[:, 1:], patches, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours[:, 0], patches.mean(1), rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_tokens_equal_timms_own_model_with_per_block_tables(loaded, file_states):
    """timm's ``beitv2_base_patch16_224`` loads its own state dict strictly; its fc_norm (from the file)
    applied to its patch tokens is X-FM's output."""
    import timm

    reference = timm.create_model("beitv2_base_patch16_224", pretrained=False).eval()
    reference.load_state_dict(file_states["timm"], strict=True)
    patches = reference.fc_norm(reference.forward_features(_images())[:, 1:])  # (B, 196, 768)
    ours = loaded["timm"][0](_images())
    torch.testing.assert_close(ours[:, 1:], patches, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours[:, 0], patches.mean(1), rtol=1e-4, atol=1e-4)


def test_384_px_encoder_gets_the_tables_resized_by_the_official_method(files, file_states):
    encoder = _base_encoder(384)
    tables = [f"blocks.{i}.{TABLE}" for i in range(12)]
    report = load_beit_v2(files["original"], encoder)
    assert report.resized == tables and report.missing == [] and sorted(report.initialised) == ["fc_norm.bias", "fc_norm.weight"]
    expected = resize_rel_pos_table(file_states["original"]["rel_pos_bias.relative_position_bias_table"], (2212, 12))
    for key in tables:
        torch.testing.assert_close(encoder.state_dict()[key], expected, rtol=0, atol=0)
    report = load_beit_v2(files["timm"], encoder)
    assert report.resized == tables
    torch.testing.assert_close(encoder.state_dict()[tables[5]], resize_rel_pos_table(file_states["timm"][tables[5]], (2212, 12)), rtol=0, atol=0)
    assert torch.equal(encoder.blocks[5].attn.relative_position_index, gen_relative_position_index((24, 24)))  # (577, 577)


def test_bad_files_fail_naming_the_file(tmp_path, files):
    encoder = _base_encoder()
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match=r"junk\.pth: neither a weights-only torch file nor a safetensors file"):
        load_beit_v2(junk, encoder)
    other = tmp_path / "resnet.pth"
    torch.save({"model": {"conv1.weight": torch.zeros(1)}}, other)
    with pytest.raises(ValueError, match=r"resnet\.pth: no BEiT keys"):
        load_beit_v2(other, encoder)
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        load_beit_v2(tmp_path / "absent.pth", encoder)
    small = VisionEncoder(build_config("small", {"vision": {"depth": 1}}).vision)  # 384 wide
    with pytest.raises(ValueError, match=r"beitv2_base_patch16_224_pt1k\.pth: cls_token has shape \(1, 1, 768\), the vision encoder \(1, 1, 384\)"):
        load_beit_v2(files["original"], small)


def test_official_and_vision_checkpoint_together_are_rejected():
    with pytest.raises(ConfigError, match="model_init.official_checkpoint and model_init.vision_checkpoint"):
        initialise_model({"preset": "base", "official_checkpoint": "xfm.th", "vision_checkpoint": "beit.pth"})


def test_model_init_loads_beit_v2_and_roberta_and_reports_both(tmp_path, files, file_states):
    roberta = write_roberta_dir(tmp_path / "roberta", hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    params = {
        "preset": "base",
        "overrides": {"text": {"pretrained": str(roberta)}, "fusion": {"num_layers": 1, "num_heads": 2, "intermediate_size": 128}},
        "vision_checkpoint": str(files["original"]),
    }
    checkpoint, summary = initialise_model(params)
    vision, text = summary["vision_import"], summary["text_import"]
    assert len(vision["loaded"]) == 196 and vision["missing"] == [] and len(vision["skipped"]) == 35
    assert sorted(vision["initialised"]) == ["fc_norm.bias", "fc_norm.weight"]
    assert text["missing"] == [] and text["unexpected"] == [] and "roberta.encoder.layer.1.output.dense.weight" in text["loaded"]
    assert summary["official_import"] is None and checkpoint.extra["vision_checkpoint"] == str(files["original"])
    shared = file_states["original"]["rel_pos_bias.relative_position_bias_table"]
    torch.testing.assert_close(checkpoint.model.vision_encoder.blocks[9].attn.relative_position_bias_table.detach(), shared, rtol=0, atol=0)
    assert checkpoint.tokenizer("a red circle")["input_ids"][0] == 0  # the directory's RoBERTa tokenizer: <s> first
