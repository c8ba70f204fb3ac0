"""BEiT-v2 style vision encoder built on timm's ``Beit`` (docs/xfm.md#vision-encoder).

Differences from timm's ``forward_features`` that X-FM relies on:
* a learned ``mask_token`` replaces the patch embeddings selected by a MIM patch mask;
* ``fc_norm`` is applied to every patch token, and the CLS slot of the output is the plain mean
  of the normalised patch tokens (the transformer's own CLS output is discarded).
* ``stem="conv"`` replaces the linear patch projection by a small convolutional stem (:func:`conv_stem`).
* ``abs_pos_emb=True`` adds timm's learned ``pos_embed`` to the tokens. X-FM's BEiT-v2 has none: with
  relative position biases only, a token learns where it is from the image border, which a long
  pretraining teaches and a few minutes do not. Without it the tiny preset's patch tokens barely encode
  position (a linear probe places them 1.5 patches off on the 8 x 8 grid, against 2.0 for the mean
  position), and the fusion encoder, which has no image positions of its own, cannot regress a box.
The state-dict keys are timm's, which are also the official X-FM ``vision_encoder.*`` keys.
"""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from timm.models.beit import Beit
from torch import nn
from torch.utils.checkpoint import checkpoint

from xfm_pipeline.model.config import VisionConfig


class VisionEncoder(Beit):
    """ViT with per-block relative position bias, LayerScale, q/v bias and, by default, no absolute position embedding."""

    def __init__(self, config: VisionConfig):
        super().__init__(
            img_size=config.image_size,
            patch_size=config.patch_size,
            num_classes=0,
            global_pool="avg",
            embed_dim=config.width,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            qkv_bias=True,
            drop_path_rate=config.drop_path_rate,
            init_values=config.layer_scale_init,
            use_abs_pos_emb=config.abs_pos_emb,
            use_rel_pos_bias=True,
            use_shared_rel_pos_bias=False,
        )
        self.config = config
        if config.stem == "conv":
            self.patch_embed.proj = conv_stem(config.patch_size, config.width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.width))
        trunc_normal_(self.mask_token, std=0.02)

    @property
    def num_patches(self) -> int:
        """N, the number of patch tokens."""
        return self.patch_embed.num_patches

    def forward(self, images: torch.Tensor, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode images into ``[pooled, patch_1..patch_N]``.

        Args:
            images: (B, 3, H, W) normalised pixels.
            patch_mask: optional (B, N) bool; True patches are replaced by ``mask_token`` (MIM).

        Returns:
            (B, 1+N, D) tokens; index 0 is the mean of the ``fc_norm``-ed patch tokens.
        """
        if patch_mask is not None:
            p = self.config.patch_size
            grid = (images.shape[2] // p, images.shape[3] // p)
            if patch_mask.shape != (images.shape[0], grid[0] * grid[1]):
                raise ValueError(f"patch_mask has shape {tuple(patch_mask.shape)}, expected {(images.shape[0], grid[0] * grid[1])}")
            if self.config.stem == "conv":
                images = _blank_masked_pixels(images, patch_mask, grid, p)
        x = self.patch_embed(images)  # (B, N, D)
        if patch_mask is not None:
            w = patch_mask.unsqueeze(-1).to(x.dtype)  # (B, N, 1)
            x = x * (1.0 - w) + self.mask_token.to(x.dtype) * w
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)  # (B, 1+N, D)
        if self.pos_embed is not None:
            x = x + self.pos_embed  # (1, 1+N, D)
        x = self.pos_drop(x)
        self._choose_attention_kernel(x)
        for block in self.blocks:
            if self.grad_checkpointing and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        patches = self.fc_norm(x[:, 1:])  # (B, N, D)
        pooled = patches.mean(dim=1, keepdim=True)  # (B, 1, D)
        return torch.cat((pooled, patches), dim=1)  # (B, 1+N, D)

    def _choose_attention_kernel(self, x: torch.Tensor) -> None:
        """Use timm's explicit attention (q @ k^T + bias, softmax, @ v) when training on CPU, SDPA otherwise.

        The relative position bias is a parameter, so while autograd records, SDPA on CPU cannot use its
        fused kernel and falls back to its math path, which also rescales the keys and guards fully masked
        rows; the explicit attention skips both. Base encoder, 8 images at 224 px on 2 cores: forward and
        backward 4.8 s explicit against 5.1 s SDPA; forward without gradient 1.6 s SDPA against 1.8 s.
        """
        fused = not (torch.is_grad_enabled() and x.device.type == "cpu")
        for block in self.blocks:
            block.attn.fused_attn = fused


def _blank_masked_pixels(images: torch.Tensor, patch_mask: torch.Tensor, grid: tuple[int, int], p: int) -> torch.Tensor:
    """Zero the pixels of masked patches: a conv stem's receptive field crosses patch borders, so they
    would otherwise leak into the visible neighbours' tokens. (B, 3, H, W), (B, gh*gw) -> (B, 3, H, W)."""
    keep = (~patch_mask).to(images.dtype).reshape(-1, 1, *grid)  # (B, 1, gh, gw)
    return images * keep.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)


def conv_stem(patch_size: int, width: int) -> nn.Sequential:
    """A convolutional stem with the patch embedding's geometry: (B, 3, H, W) -> (B, width, H/p, W/p).

    log2(p) 3x3 stride-2 convolutions (each GroupNorm(1) + ReLU; channels double up to ``width``) then a
    1x1 projection: "Early convolutions help transformers see better" (Xiao et al., 2021). A ViT trained
    from scratch learns far faster with it (the tiny preset: shape classification on the shapes world
    reaches 77.5% top-1 in 300 steps, against 41.2% with the linear patch projection;
    ``benchmarks/vision_stem.py``). The normalisation is per sample, so results do not depend on how
    a batch is split over processes.
    """
    layers: list[nn.Module] = []
    steps = patch_size.bit_length() - 1  # log2(p)
    in_ch = 3
    for i in range(steps):
        out_ch = width >> (steps - 1 - i)  # ..., width/4, width/2, width
        layers += [nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1, bias=False), nn.GroupNorm(1, out_ch), nn.ReLU(inplace=True)]
        in_ch = out_ch
    layers.append(nn.Conv2d(in_ch, width, 1))
    return nn.Sequential(*layers)


def region_pool(image_embeds: torch.Tensor, patch_weights: torch.Tensor) -> torch.Tensor:
    """Replace token 0 by the average of the patch tokens weighted by a region mask (X-FM region mode).

    Args:
        image_embeds: (B, 1+N, D) encoder output.
        patch_weights: (B, N) non-negative weights (1 on patches overlapping the region box).

    Returns:
        (B, 1+N, D) with token 0 = sum_i w_i * patch_i / sum_i w_i.
    """
    patches = image_embeds[:, 1:]  # (B, N, D)
    w = patch_weights.to(patches.dtype).unsqueeze(-1)  # (B, N, 1)
    pooled = (patches * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1e-6)
    return torch.cat((pooled, patches), dim=1)
