"""Import of the official X-FM checkpoint: key map against the recorded table, file round trip, resizing.

Parity of the imported outputs with hand-written references: test_official_parity.py."""

import pytest
import torch

from xfm_pipeline.model import XFM, build_config, convert_official_state_dict, load_official_checkpoint


def _official_meta_state_dict(key_shapes: dict) -> dict:
    """The official checkpoint's state dict as meta tensors of the recorded shapes."""
    return {name: torch.empty(shape, device="meta") for name, shape in key_shapes.items()}


OWN_FUSION_TABLE = {"fusion": {"word_embeddings": "own"}}  # the architecture official weights need


@pytest.fixture(scope="module")
def base_on_meta():
    with torch.device("meta"):
        return XFM(build_config("base", OWN_FUSION_TABLE))


def test_every_official_key_is_mapped_or_skipped_with_a_reason(base_on_meta, official_key_shapes):
    official = _official_meta_state_dict(official_key_shapes)
    assert len(official) == 771
    mapped, report = convert_official_state_dict(official, base_on_meta)
    assert report.unexpected == [] and report.missing == [] and report.resized == []
    assert report.not_in_xfm == sorted(k for k in base_on_meta.state_dict() if k.startswith("bbox_pointer."))  # model.box_heads
    assert report.not_in_xfm and "not in X-FM 10" in report.summary()
    assert len(report.loaded) + len(report.skipped) == len(official)
    skipped = report.skipped
    assert sum(".lm_cap_head." in k for k in skipped) == 2 * 7  # two unused heads, 7 tensors each
    assert all(k.endswith("relative_position_index") for k in skipped if "relative_position" in k)
    assert "text_encoder.roberta.embeddings.position_ids" in skipped and "fusion_encoder.roberta.embeddings.position_ids" in skipped
    assert sorted(k for k in skipped if ".lm_head.decoder." in k) == [
        f"{encoder}.lm_head.decoder.{t}" for encoder in ("fusion_encoder", "text_encoder") for t in ("bias", "weight")
    ]
    assert (len(report.loaded), len(skipped)) == (739, 32)
    # the fusion encoder's own embedding block is kept: its word table is the fusion MLM decoder
    assert mapped["fusion_encoder.embeddings.word_embeddings.weight"].shape == (50265, 768)
    assert mapped["fusion_encoder.embeddings.token_type_embedding"].shape == (768,)
    assert mapped["fusion_encoder.layer.11.crossattention.self.key.weight"].shape == (768, 768)
    assert mapped["text_encoder.roberta.encoder.layer.0.attention.self.query.weight"].shape == (768, 768)


def test_a_model_tying_the_fusion_decoder_to_the_text_table_refuses_official_weights(official_key_shapes):
    with torch.device("meta"):
        model = XFM(build_config("base"))
    with pytest.raises(ValueError, match=r"fusion_encoder\.roberta\.embeddings\.word_embeddings\.weight.*word_embeddings: own"):
        convert_official_state_dict(_official_meta_state_dict(official_key_shapes), model)


def test_base_at_384_resizes_every_relative_position_table(official_key_shapes):
    with torch.device("meta"):
        model = XFM(build_config("base", {"vision": {"image_size": 384}}))
    official = {k: v for k, v in _official_meta_state_dict(official_key_shapes).items() if k.startswith("vision_encoder.")}
    official = {k: torch.randn(v.shape) if "relative_position_bias_table" in k else v for k, v in official.items()}
    mapped, report = convert_official_state_dict(official, model)
    assert len(report.resized) == 12
    assert mapped["vision_encoder.blocks.0.attn.relative_position_bias_table"].shape == (2212, 12)


@pytest.fixture(scope="module")
def official_tiny():
    """A tiny model with the official architecture (its own fusion embedding block); every tensor random,
    so the fusion word table differs from the text one."""
    torch.manual_seed(7)
    model = XFM(build_config("tiny", OWN_FUSION_TABLE)).eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.5)
    return model


def _to_official_layout(model: XFM) -> dict[str, torch.Tensor]:
    """Write a model with its own fusion embedding block the way the official code names it (the inverse key map)."""
    prefix = model.text_encoder.base_model_prefix
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("bbox_pointer."):  # not in X-FM
            continue
        if key.startswith("fusion_encoder.layer."):
            key = "fusion_encoder.roberta.encoder.layer." + key[len("fusion_encoder.layer.") :]
        elif key == "fusion_encoder.embeddings.token_type_embedding":
            key, value = "fusion_encoder.roberta.embeddings.token_type_embeddings.weight", value[None]
        elif key.startswith("fusion_encoder.embeddings."):
            key = "fusion_encoder.roberta.embeddings." + key[len("fusion_encoder.embeddings.") :]
        out[key] = value.clone()
    # what the official file also holds and the importer must skip
    hidden, vocab = model.text_encoder.config.hidden_size, model.text_encoder.config.vocab_size
    out[f"text_encoder.{prefix}.embeddings.position_ids"] = torch.arange(512)[None]
    out["fusion_encoder.roberta.embeddings.position_ids"] = torch.arange(512)[None]
    out["fusion_encoder.lm_cap_head.decoder.weight"] = torch.randn(vocab, hidden)
    out["fusion_encoder.lm_head.decoder.weight"] = out["fusion_encoder.roberta.embeddings.word_embeddings.weight"]  # tied
    out["fusion_encoder.lm_head.decoder.bias"] = out["fusion_encoder.lm_head.bias"]
    grid = model.config.vision.grid_size
    for i in range(model.config.vision.depth):
        out[f"vision_encoder.blocks.{i}.attn.relative_position_index"] = torch.zeros(grid**2 + 1, grid**2 + 1, dtype=torch.long)
    return out


@pytest.fixture(scope="module")
def official_file(official_tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "xfm_official.th"
    torch.save({"model": _to_official_layout(official_tiny), "config": {"note": "official"}}, path)
    return path


def test_official_file_round_trip(official_tiny, official_file):
    torch.manual_seed(123)
    fresh = XFM(build_config("tiny", OWN_FUSION_TABLE))
    report = load_official_checkpoint(official_file, fresh)
    assert report.unexpected == [] and report.missing == []
    assert report.not_in_xfm and all(k.startswith("bbox_pointer.") for k in report.not_in_xfm)
    assert {"fusion_encoder.lm_cap_head.decoder.weight", "fusion_encoder.lm_head.decoder.weight"} <= set(report.skipped)
    for key, value in official_tiny.state_dict().items():
        if key not in report.not_in_xfm:
            torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)


def test_official_file_into_a_larger_image_size(official_tiny, official_file, tmp_path):
    path = tmp_path / "raw.th"
    torch.save(_to_official_layout(official_tiny), path)  # raw state dict form is accepted too
    model = XFM(build_config("tiny", {"vision": {"image_size": 96}, **OWN_FUSION_TABLE}))
    report = load_official_checkpoint(path, model)
    grid = 96 // 8
    assert sorted(report.resized) == sorted(
        [f"vision_encoder.blocks.{i}.attn.relative_position_bias_table" for i in range(official_tiny.config.vision.depth)] + ["vision_encoder.pos_embed"]
    )
    assert model.vision_encoder.pos_embed.shape == (1, 1 + (96 // 8) ** 2, 192)
    assert model.vision_encoder.blocks[0].attn.relative_position_bias_table.shape == ((2 * grid - 1) ** 2 + 3, 3)
    assert model.encode_image(torch.randn(1, 3, 96, 96)).shape == (1, 1 + grid**2, 192)


class _NotATensor:
    pass


def test_unsafe_or_malformed_files_are_refused(tmp_path, official_tiny):
    evil = tmp_path / "evil.th"
    torch.save({"model": {"x": _NotATensor()}}, evil)
    with pytest.raises(ValueError, match="weights-only"):
        load_official_checkpoint(evil, official_tiny)
    with pytest.raises(FileNotFoundError, match="missing.th"):
        load_official_checkpoint(tmp_path / "missing.th", official_tiny)
