"""Model size presets: a preset name plus overrides gives an :class:`XFMConfig`.

* ``tiny``: 64 px images, a 4-block 192-wide ViT with a convolutional stem (it learns from scratch in
  minutes) and pixel-target MIM (its own features would collapse), the packaged pretrained MiniLM-L6
  text encoder (384 wide), 2 fusion layers without dropout (runs of a few hundred steps: dropout only
  slowed the binding of words to image regions). A pretraining step over the four demo streams takes about
  2 s on 2 CPU cores.
* ``small``: BEiT-S/16 at 224 px (384 wide, 12 blocks), MiniLM-L6, 6 fusion layers.
* ``base``: the paper's model: BEiT-v2 B/16 at 224 px, RoBERTa-base (12 layers), 12 fusion layers;
  327.3M parameters (+5.1M for the pointer box head, not in X-FM). The text encoder is random unless
  ``text.pretrained`` names a local RoBERTa.
"""

from __future__ import annotations

from typing import Any

from xfm_pipeline.config import from_dict, merge
from xfm_pipeline.model.config import XFMConfig

ROBERTA_BASE = {
    "model_type": "roberta",
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "vision": {"image_size": 64, "patch_size": 8, "width": 192, "depth": 4, "num_heads": 3, "drop_path_rate": 0.0, "stem": "conv", "abs_pos_emb": True},
        "text": {"pretrained": "all-minilm-l6-v2"},
        "fusion": {"num_layers": 2, "num_heads": 6, "intermediate_size": 1536, "layer_norm_eps": 1e-12, "dropout": 0.0},
        "embed_dim": 128,
        "mim_target": "pixels",
    },
    "small": {
        "vision": {"image_size": 224, "patch_size": 16, "width": 384, "depth": 12, "num_heads": 6},
        "text": {"pretrained": "all-minilm-l6-v2"},
        "fusion": {"num_layers": 6, "num_heads": 6, "intermediate_size": 1536, "layer_norm_eps": 1e-12},
        "embed_dim": 256,
    },
    "base": {
        "vision": {"image_size": 224, "patch_size": 16, "width": 768, "depth": 12, "num_heads": 12},
        "text": {"hf_config": ROBERTA_BASE},
        "fusion": {"num_layers": 12, "num_heads": 12, "intermediate_size": 3072, "layer_norm_eps": 1e-5},
        "embed_dim": 256,
    },
}


def build_config(preset: str, overrides: dict[str, Any] | None = None) -> XFMConfig:
    """The config of ``preset`` with ``overrides`` merged in (unknown keys rejected).

    Raises:
        KeyError: unknown preset name.
    """
    if preset not in PRESETS:
        raise KeyError(f"unknown model preset {preset!r}; choose one of {sorted(PRESETS)}")
    merged = merge(PRESETS[preset], overrides)
    text_override = (overrides or {}).get("text") or {}
    if text_override.get("pretrained") and "hf_config" not in text_override:
        merged["text"] = {"pretrained": text_override["pretrained"]}  # a local model replaces the preset's architecture
    return from_dict(XFMConfig, merged, path="model")
