"""Shared fixtures: offline environment, a session-wide tiny model."""

from __future__ import annotations

import os

for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "GX_ANALYTICS_ENABLED": "false",
}.items():
    os.environ.setdefault(_key, _value)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny-preset X-FM in eval mode (MiniLM text encoder loaded from site-packages)."""
    import torch

    from xfm_pipeline.model import XFM, build_config

    torch.manual_seed(0)
    return XFM(build_config("tiny")).eval()


@pytest.fixture(scope="session")
def base_model():
    """The base preset (327.3M parameters), built once per session."""
    import torch

    from xfm_pipeline.model import XFM, build_config

    torch.manual_seed(0)
    return XFM(build_config("base")).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint_without_dropout(tmp_path_factory):
    """A tiny-preset checkpoint (with tokenizer) with every dropout at 0, so repeated forwards and runs on
    different process counts agree exactly."""
    import torch

    from xfm_pipeline.model import XFM, build_config, save_pretrained
    from xfm_pipeline.model.text import load_tokenizer

    torch.manual_seed(0)
    model = XFM(build_config("tiny", {"fusion": {"dropout": 0.0}}))
    model.text_encoder.config.hidden_dropout_prob = 0.0
    model.text_encoder.config.attention_probs_dropout_prob = 0.0
    directory = tmp_path_factory.mktemp("tiny_no_dropout") / "ckpt"
    save_pretrained(model, directory, tokenizer=load_tokenizer("all-minilm-l6-v2"))
    return directory


@pytest.fixture
def benchmark_module(monkeypatch):
    """``benchmark_module("pretrain_step")`` imports ``benchmarks/pretrain_step.py`` (not a package) for the
    test; it is registered in ``sys.modules`` meanwhile, where dataclasses look their module up."""
    import importlib.util
    import sys
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load
