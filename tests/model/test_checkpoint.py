"""Checkpoint directories: exact round trip, self-contained config, atomic writes, clear errors."""

import json

import pytest
import torch

from xfm_pipeline.model import load_checkpoint_tokenizer, save_pretrained
from xfm_pipeline.model.checkpoint import CheckpointError, atomic_directory_write, load_pretrained
from xfm_pipeline.model.text import load_tokenizer


def _outputs(model):
    torch.manual_seed(3)
    images = torch.randn(2, 3, 64, 64)
    ids = torch.randint(5, 1000, (2, 7))
    atts = torch.ones(2, 7, dtype=torch.long)
    with torch.no_grad():
        v, t = model.encode_image(images), model.encode_text(ids, atts)
        return model.fuse(t, atts, v), model.image_features(v)


def test_round_trip_is_exact(tiny_model, tmp_path):
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    save_pretrained(tiny_model, tmp_path / "ckpt", tokenizer=tokenizer)
    loaded = load_pretrained(tmp_path / "ckpt").eval()
    ours, theirs = tiny_model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(theirs[key], ours[key], rtol=0, atol=0)
    for a, b in zip(_outputs(tiny_model), _outputs(loaded)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the tie survives the round trip
    assert loaded.text_encoder.get_output_embeddings().weight is loaded.text_encoder.get_input_embeddings().weight
    assert load_checkpoint_tokenizer(tmp_path / "ckpt")("a red circle")["input_ids"] == tokenizer("a red circle")["input_ids"]


def test_weights_file_bytes_depend_on_the_weights_alone(tiny_model, tmp_path):
    # safetensors' save_model writes one header entry per tied alias, in random order; save_weights must
    # give the same bytes every time (run keys and DVC hash these files).
    from safetensors import safe_open

    from xfm_pipeline.model.checkpoint import save_weights, tied_aliases

    files = [tmp_path / f"w{i}.safetensors" for i in range(6)]
    for f in files:
        save_weights(tiny_model, f)
    assert len({f.read_bytes() for f in files}) == 1
    aliases = tied_aliases(tiny_model)
    assert len(aliases) >= 2  # MiniLM's decoder weight and bias
    with safe_open(str(files[0]), "pt") as fh:
        assert json.loads(fh.metadata()["tied"]) == aliases
        assert not set(aliases) & set(fh.keys())  # each tied tensor stored once, under its first name
        assert set(aliases.values()) <= set(fh.keys())


def test_config_is_self_contained(tiny_model, tmp_path):
    save_pretrained(tiny_model, tmp_path / "ckpt", extra={"step": 7})
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["model"]["text"]["pretrained"] is None
    assert meta["model"]["text"]["hf_config"]["model_type"] == "bert"
    assert meta["model"]["text"]["hf_config"]["hidden_size"] == 384
    assert meta["extra"] == {"step": 7}


def test_failed_write_leaves_previous_checkpoint_intact(tiny_model, tmp_path):
    target = tmp_path / "ckpt"
    save_pretrained(tiny_model, target)
    before = (target / "model.safetensors").read_bytes()

    def crash(tmp):
        (tmp / "model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_directory_write(target, crash)
    assert (target / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary left behind


def test_incomplete_directories_are_rejected(tiny_model, tmp_path):
    with pytest.raises(CheckpointError, match="missing config.json"):
        load_pretrained(tmp_path)
    save_pretrained(tiny_model, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        load_pretrained(tmp_path / "ckpt")


def test_loading_at_another_resolution_resamples_the_absolute_position_embedding(tiny_model, tmp_path):
    assert tiny_model.vision_encoder.pos_embed is not None  # the tiny preset has one
    save_pretrained(tiny_model, tmp_path / "ckpt")
    size = tiny_model.config.vision.image_size + 2 * tiny_model.config.vision.patch_size  # two more patches per side
    loaded = load_pretrained(tmp_path / "ckpt", image_size=size).eval()
    grid = size // tiny_model.config.vision.patch_size
    saved = tiny_model.vision_encoder.pos_embed
    assert loaded.vision_encoder.pos_embed.shape == (1, 1 + grid * grid, saved.shape[-1])
    torch.testing.assert_close(loaded.vision_encoder.pos_embed[:, 0], saved[:, 0])  # the CLS slot is kept as is
    with torch.no_grad():
        assert loaded.encode_image(torch.randn(1, 3, size, size)).shape == (1, 1 + grid * grid, loaded.config.vision.width)
