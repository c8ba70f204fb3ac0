"""Nodes of the model_init pipeline."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from xfm_pipeline.config import from_dict, to_dict

log = logging.getLogger(__name__)


@dataclass
class ModelInitParams:
    """``params:model_init``."""

    preset: str = "tiny"  # tiny | small | base
    overrides: dict[str, Any] = field(default_factory=dict)  # merged into the preset (see model.presets)
    official_checkpoint: str | None = None  # path of an official X-FM .th file to import, or None
    tokenizer: str | None = None  # local tokenizer directory when the text encoder has no pretrained one
    seed: int = 0  # seed of the random initialisation


def initialise_model(params: dict[str, Any]):
    """Build the model, import official weights if asked, and describe it.

    Returns:
        (Checkpoint, summary dict with the config, parameter counts and import report).
    """
    import torch

    from xfm_pipeline.model import XFM, build_config, load_official_checkpoint
    from xfm_pipeline.model.checkpoint import Checkpoint
    from xfm_pipeline.model.text import load_tokenizer

    p = from_dict(ModelInitParams, params, path="model_init")
    torch.manual_seed(p.seed)
    config = build_config(p.preset, p.overrides)
    model = XFM(config)
    report = load_official_checkpoint(p.official_checkpoint, model).to_dict() if p.official_checkpoint else None
    tokenizer_source = p.tokenizer or config.text.pretrained
    tokenizer = load_tokenizer(tokenizer_source) if tokenizer_source else None
    if tokenizer is None:
        log.warning("no tokenizer for preset %s: set model_init.tokenizer to a local tokenizer directory", p.preset)
    counts = parameter_counts(model)
    log.info("X-FM %s: %s parameters", p.preset, f"{counts['total']:,}")
    summary = {"preset": p.preset, "config": to_dict(config), "parameters": counts, "official_import": report}
    extra = {"preset": p.preset, "official_checkpoint": p.official_checkpoint}
    return Checkpoint(model=model, tokenizer=tokenizer, extra=extra), summary


def parameter_counts(model) -> dict[str, int]:
    """Unique parameters per top-level component and in total (tied weights counted once)."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    counts["temp"] = model.temp.numel()
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
