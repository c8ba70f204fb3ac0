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
