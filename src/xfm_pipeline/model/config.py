"""Configuration dataclasses of the X-FM model (one comment per field, nanoGPT style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VISION_STEMS = ("patch", "conv")
# What MIM regresses (docs/xfm.md#change-mim-target): "features" is the paper's online self-target; "pixels" adds a
# linear ``mim_head`` predicting each masked patch's pixels (SimMIM), for a vision encoder trained from
# scratch, where the self-target collapses to a constant (every image and patch the same feature).
MIM_TARGETS = ("features", "pixels")
# Which word table the fusion encoder's MLM head decodes with (docs/xfm.md#fix-fusion-mlm-decoder): "text" ties it to
# the text encoder's word embeddings; "own" gives the fusion encoder its own RoBERTa embedding block, as official
# X-FM has (needed to reproduce released weights).
FUSION_WORD_EMBEDDINGS = ("text", "own")


@dataclass
class VisionConfig:
    """BEiT-v2 style ViT (docs/xfm.md#vision-encoder)."""

    image_size: int = 224  # input resolution in pixels (square)
    patch_size: int = 16  # patch side; the token grid is image_size // patch_size
    width: int = 768  # token width D_v
    depth: int = 12  # number of transformer blocks
    num_heads: int = 12  # attention heads per block
    mlp_ratio: float = 4.0  # FFN hidden = mlp_ratio * width
    layer_scale_init: float = 0.1  # LayerScale gamma_1/gamma_2 initial value
    drop_path_rate: float = 0.1  # stochastic depth at the last block (linear over depth)
    stem: str = "patch"  # patch: BEiT's linear patch embedding (official keys) | conv: a convolutional stem
    abs_pos_emb: bool = False  # a learned absolute position embedding (ViT's ``pos_embed``); X-FM's BEiT-v2 has none

    def __post_init__(self):
        if self.stem not in VISION_STEMS:
            raise ValueError(f"vision.stem must be one of {VISION_STEMS}, got {self.stem!r}")
        if self.stem == "conv" and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
            raise ValueError(f"vision.stem 'conv' needs a power-of-two patch_size >= 2, got {self.patch_size}")

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
    """A transformers BERT/RoBERTa-family masked language model (docs/xfm.md#text-encoder)."""

    pretrained: str | None = None  # local from_pretrained directory or a packaged model name; None = hf_config
    hf_config: dict[str, Any] | None = None  # transformers config dict (needs model_type) for random init


@dataclass
class FusionConfig:
    """Fusion encoder: post-LN layers of self-attn, cross-attn to image tokens, FFN (docs/xfm.md#fusion-encoder)."""

    num_layers: int = 12  # every layer has cross-attention (fusion_fusion_start_at = 0)
    num_heads: int = 12  # heads of self- and cross-attention; width is the text width
    intermediate_size: int = 3072  # FFN hidden size
    dropout: float = 0.1  # hidden and attention dropout
    layer_norm_eps: float = 1e-5  # post-LN epsilon (RoBERTa's)
    word_embeddings: str = "text"  # text: MLM decoder tied to the text word table | own: the official fusion embedding block

    def __post_init__(self):
        if self.word_embeddings not in FUSION_WORD_EMBEDDINGS:
            raise ValueError(f"fusion.word_embeddings must be one of {FUSION_WORD_EMBEDDINGS}, got {self.word_embeddings!r}")


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
    mim_target: str = "features"  # features: the encoder's own output, detached (paper) | pixels: mim_head
    activation_checkpointing: bool = False  # recompute each vision/text/fusion block's activations in backward (less memory)

    def __post_init__(self):
        if self.mim_target not in MIM_TARGETS:
            raise ValueError(f"mim_target must be one of {MIM_TARGETS}, got {self.mim_target!r}")
