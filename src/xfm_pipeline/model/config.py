"""Configuration dataclasses of the X-FM model (one comment per field, nanoGPT style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class VisionConfig:
    """BEiT-v2 style ViT (xfm_spec 1.2)."""

    image_size: int = 224  # input resolution in pixels (square)
    patch_size: int = 16  # patch side; the token grid is image_size // patch_size
    width: int = 768  # token width D_v
    depth: int = 12  # number of transformer blocks
    num_heads: int = 12  # attention heads per block
    mlp_ratio: float = 4.0  # FFN hidden = mlp_ratio * width
    layer_scale_init: float = 0.1  # LayerScale gamma_1/gamma_2 initial value
    drop_path_rate: float = 0.1  # stochastic depth at the last block (linear over depth)

    @property
    def grid_size(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """N, the number of patch tokens."""
        return self.grid_size**2


@dataclass
class TextConfig:
    """A transformers BERT/RoBERTa-family masked language model (xfm_spec 1.1)."""

    pretrained: str | None = None  # local from_pretrained directory or a packaged model name; None = hf_config
    hf_config: dict[str, Any] | None = None  # transformers config dict (needs model_type) for random init


@dataclass
class FusionConfig:
    """Fusion encoder: post-LN layers of self-attn, cross-attn to image tokens, FFN (xfm_spec 1.3)."""

    num_layers: int = 12  # every layer has cross-attention (fusion_fusion_start_at = 0)
    num_heads: int = 12  # heads of self- and cross-attention; width is the text width
    intermediate_size: int = 3072  # FFN hidden size
    dropout: float = 0.1  # hidden and attention dropout
    layer_norm_eps: float = 1e-5  # post-LN epsilon (RoBERTa's)


@dataclass
class XFMConfig:
    """The whole model: encoders, projections and heads."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    embed_dim: int = 256  # width of the ITC feature space (vision_proj / text_proj outputs)
    temp: float = 0.07  # initial ITC temperature (a divisor of the cosine similarities)
    temp_min: float = 0.001  # temperature clamp, lower bound
    temp_max: float = 0.5  # temperature clamp, upper bound
