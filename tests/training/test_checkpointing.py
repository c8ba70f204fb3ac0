"""Training checkpoints: the weights are written once, whether or not the metadata writer writes them."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from xfm_pipeline.model import checkpoint as model_checkpoint
from xfm_pipeline.training import checkpointing as ckpt


def test_weights_are_written_once_and_the_checkpoint_is_complete(tmp_path, monkeypatch):
    calls = []
    real = model_checkpoint.save_weights

    def counting(model, path):
        calls.append(path.name)
        real(model, path)

    monkeypatch.setattr(model_checkpoint, "save_weights", counting)
    model = torch.nn.Linear(3, 2)

    def writer(directory, m):  # a model-checkpoint writer: weights and config
        model_checkpoint.save_weights(m, directory / "model.safetensors")
        (directory / "config.json").write_text("{}")

    ckpt.save_training_checkpoint(tmp_path / "with_writer", model, {"step": 1}, writer)
    ckpt.save_training_checkpoint(tmp_path / "plain", model, {"step": 1})
    assert calls == ["model.safetensors", "model.safetensors"]  # one write per checkpoint
    for name in ("with_writer", "plain"):
        assert ckpt.checkpoint_problem(tmp_path / name) is None
        assert torch.equal(load_file(str(tmp_path / name / "model.safetensors"))["weight"], model.weight)
        assert torch.load(tmp_path / name / "training_state.pt", weights_only=True)["step"] == 1
