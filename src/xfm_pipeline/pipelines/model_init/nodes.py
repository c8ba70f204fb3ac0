"""Nodes of the model_init pipeline."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from xfm_pipeline.config import ConfigError, from_dict, merge, to_dict

log = logging.getLogger(__name__)


@dataclass
class ModelInitParams:
    """``params:model_init``."""

    preset: str = "tiny"  # tiny | small | base
    overrides: dict[str, Any] = field(default_factory=dict)  # merged into the preset (see model.presets)
    official_checkpoint: str | None = None  # path of an official X-FM .th file to import, or None
    vision_checkpoint: str | None = None  # BEiT-v2 weights for the vision encoder (release .pth or timm .pth/.safetensors), or None
    tokenizer: str | None = None  # local tokenizer directory when the text encoder has no pretrained one
    seed: int = 0  # seed of the random initialisation


def initialise_model(params: dict[str, Any]):
    """Build the model, import official X-FM or BEiT-v2 weights if asked, and describe it.

    With ``official_checkpoint`` the model is built with ``fusion.word_embeddings: own`` (unless the overrides
    say otherwise, which the import then refuses). The text encoder is loaded when ``overrides.text.pretrained`` names a local directory; its import
    report, the BEiT-v2 one and the official one are in the summary (``None`` when not done).

    Returns:
        (Checkpoint, summary dict with the config, parameter counts and import reports).

    Raises:
        ConfigError: both ``official_checkpoint`` and ``vision_checkpoint`` are set.
    """
    import torch

    from xfm_pipeline.model import XFM, build_config, load_official_checkpoint
    from xfm_pipeline.model.checkpoint import Checkpoint
    from xfm_pipeline.model.pretrained_vision import load_beit_v2
    from xfm_pipeline.model.text import load_tokenizer, text_import_report

    p = from_dict(ModelInitParams, params, path="model_init")
    if p.official_checkpoint and p.vision_checkpoint:
        raise ConfigError(
            "model_init.official_checkpoint and model_init.vision_checkpoint are both set: the official X-FM checkpoint "
            "already holds the vision encoder; set one of them"
        )
    torch.manual_seed(p.seed)
    overrides = p.overrides
    if p.official_checkpoint:  # official weights carry the fusion encoder's own word table (docs/xfm.md#fix-fusion-mlm-decoder)
        overrides = merge({"fusion": {"word_embeddings": "own"}}, overrides)
    config = build_config(p.preset, overrides)
    model = XFM(config)
    vision_report = load_beit_v2(p.vision_checkpoint, model.vision_encoder).to_dict() if p.vision_checkpoint else None
    text_report = text_import_report(model.text_encoder)
    report = load_official_checkpoint(p.official_checkpoint, model).to_dict() if p.official_checkpoint else None
    tokenizer_source = p.tokenizer or config.text.pretrained
    tokenizer = load_tokenizer(tokenizer_source) if tokenizer_source else None
    if tokenizer is None:
        log.warning("no tokenizer for preset %s: set model_init.tokenizer to a local tokenizer directory", p.preset)
    counts = parameter_counts(model)
    log.info("X-FM %s: %s parameters", p.preset, f"{counts['total']:,}")
    summary = {
        "preset": p.preset,
        "config": to_dict(config),
        "parameters": counts,
        "official_import": report,
        "vision_import": vision_report,
        "text_import": text_report.to_dict() if text_report else None,
    }
    extra = {"preset": p.preset, "official_checkpoint": p.official_checkpoint, "vision_checkpoint": p.vision_checkpoint}
    return Checkpoint(model=model, tokenizer=tokenizer, extra=extra), summary


def parameter_counts(model) -> dict[str, int]:
    """Unique parameters per top-level component and in total (tied weights counted once)."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    counts["temp"] = model.temp.numel()
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
