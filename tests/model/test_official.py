"""Import of the official X-FM checkpoint: key map against the recorded table, file round trip, resizing."""

import pytest
import torch

from xfm_pipeline.model import XFM, build_config, convert_official_state_dict, load_official_checkpoint
from xfm_pipeline.model.official import resize_rel_pos_table


def _official_meta_state_dict(key_shapes: dict) -> dict:
    """The official checkpoint's state dict as meta tensors of the recorded shapes."""
    return {name: torch.empty(shape, device="meta") for name, shape in key_shapes.items()}


@pytest.fixture(scope="module")
def base_on_meta():
    with torch.device("meta"):
        return XFM(build_config("base"))


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
    assert "text_encoder.roberta.embeddings.position_ids" in skipped
    assert "fusion_encoder.roberta.embeddings.word_embeddings.weight" in skipped
    assert mapped["fusion_encoder.layer.11.crossattention.self.key.weight"].shape == (768, 768)
    assert mapped["text_encoder.roberta.encoder.layer.0.attention.self.query.weight"].shape == (768, 768)


def test_base_at_384_resizes_every_relative_position_table(official_key_shapes):
    with torch.device("meta"):
        model = XFM(build_config("base", {"vision": {"image_size": 384}}))
    official = {k: v for k, v in _official_meta_state_dict(official_key_shapes).items() if k.startswith("vision_encoder.")}
    official = {k: torch.randn(v.shape) if "relative_position_bias_table" in k else v for k, v in official.items()}
    mapped, report = convert_official_state_dict(official, model)
    assert len(report.resized) == 12
    assert mapped["vision_encoder.blocks.0.attn.relative_position_bias_table"].shape == (2212, 12)


def test_resize_keeps_the_three_cls_rows_and_is_identity_on_same_grid():
    table = torch.randn(732, 12)
    torch.testing.assert_close(resize_rel_pos_table(table, (732, 12)), table)
    big = resize_rel_pos_table(table, (2212, 12))
    torch.testing.assert_close(big[-3:], table[-3:])
    # the zero-offset entry (centre of the 27x27 grid) is preserved
    torch.testing.assert_close(big[(47 * 47) // 2], table[(27 * 27) // 2], atol=1e-4, rtol=1e-4)


def _to_official_layout(model: XFM) -> dict[str, torch.Tensor]:
    """Write a tiny model's weights the way the official code names them (the inverse key map)."""
    prefix = model.text_encoder.base_model_prefix
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("fusion_encoder.layer."):
            key = "fusion_encoder.roberta.encoder.layer." + key[len("fusion_encoder.layer.") :]
        out[key] = value.clone()
    # what the official file also holds and the importer must skip
    hidden, vocab = model.text_encoder.config.hidden_size, model.text_encoder.config.vocab_size
    out[f"text_encoder.{prefix}.embeddings.position_ids"] = torch.arange(512)[None]
    out["fusion_encoder.roberta.embeddings.word_embeddings.weight"] = torch.randn(vocab, hidden)
    out["fusion_encoder.lm_cap_head.decoder.weight"] = torch.randn(vocab, hidden)
    out["fusion_encoder.lm_head.decoder.weight"] = torch.randn(vocab, hidden)
    grid = model.config.vision.grid_size
    for i in range(model.config.vision.depth):
        out[f"vision_encoder.blocks.{i}.attn.relative_position_index"] = torch.zeros(grid**2 + 1, grid**2 + 1, dtype=torch.long)
    return out


def test_official_file_round_trip(tiny_model, tmp_path):
    path = tmp_path / "xfm_official.th"
    torch.save({"model": _to_official_layout(tiny_model), "config": {"note": "official"}}, path)
    torch.manual_seed(123)
    fresh = XFM(build_config("tiny"))
    report = load_official_checkpoint(path, fresh)
    assert report.unexpected == [] and report.missing == []
    assert "fusion_encoder.lm_cap_head.decoder.weight" in report.skipped
    for key, value in tiny_model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)


def test_official_file_into_a_larger_image_size(tiny_model, tmp_path):
    path = tmp_path / "xfm_official.th"
    torch.save(_to_official_layout(tiny_model), path)  # raw state dict form is accepted too
    model = XFM(build_config("tiny", {"vision": {"image_size": 96}}))
    report = load_official_checkpoint(path, model)
    grid = 96 // 8
    assert sorted(report.resized) == sorted(
        [f"vision_encoder.blocks.{i}.attn.relative_position_bias_table" for i in range(tiny_model.config.vision.depth)] + ["vision_encoder.pos_embed"]
    )
    assert model.vision_encoder.pos_embed.shape == (1, 1 + (96 // 8) ** 2, 192)
    assert model.vision_encoder.blocks[0].attn.relative_position_bias_table.shape == ((2 * grid - 1) ** 2 + 3, 3)
    assert model.encode_image(torch.randn(1, 3, 96, 96)).shape == (1, 1 + grid**2, 192)


class _NotATensor:
    pass


def test_unsafe_or_malformed_files_are_refused(tmp_path, tiny_model):
    evil = tmp_path / "evil.th"
    torch.save({"model": {"x": _NotATensor()}}, evil)
    with pytest.raises(ValueError, match="weights-only"):
        load_official_checkpoint(evil, tiny_model)
    with pytest.raises(FileNotFoundError, match="missing.th"):
        load_official_checkpoint(tmp_path / "missing.th", tiny_model)
