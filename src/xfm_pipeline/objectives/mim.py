"""Masked image modelling (MIM, docs/xfm.md#mim): feature regression (the paper) or pixel regression.

X-FM has no separate teacher: the target is the vision encoder's own output on the unmasked image
(online, detached), the prediction its output on the mask-token-corrupted image (:func:`mim_loss`).
Because the same encoder is shaped by ITC/ITM/MLM/BBP, "vision-language training guides the vision
encoder". That presumes a pretrained encoder: from scratch the self-target collapses
(docs/xfm.md#change-mim-target), so a model with ``mim_target="pixels"`` regresses the masked patches'
pixels instead (:func:`mim_pixel_loss`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mim_loss(pred: torch.Tensor, target: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
    """MSE over the masked patch tokens plus MSE on the pooled token 0.

    Args:
        pred: (B, 1+N, D) encoder output on the masked image.
        target: (B, 1+N, D) encoder output on the unmasked image (detached here).
        patch_mask: (B, N) bool, True = masked patch.

    Returns:
        Scalar ``mean((pred - target)^2 over masked patches) + mean((pred_0 - target_0)^2)``; the patch
        term is 0 (still attached to ``pred``) when no patch is masked.
    """
    if pred.shape != target.shape or patch_mask.shape != (pred.shape[0], pred.shape[1] - 1):
        shapes = f"pred {tuple(pred.shape)}, target {tuple(target.shape)}, mask {tuple(patch_mask.shape)}"
        raise ValueError(f"mim_loss shapes: {shapes}")
    pred, target = pred.float(), target.detach().float()
    weights = patch_mask.to(pred.dtype).unsqueeze(-1)  # (B, N, 1)
    squared = (pred[:, 1:] - target[:, 1:]).pow(2) * weights  # (B, N, D), 0 on visible patches
    loss_patches = squared.sum() / (weights.sum() * pred.shape[-1]).clamp(min=1)
    loss_pooled = F.mse_loss(pred[:, 0], target[:, 0])
    return loss_patches + loss_pooled


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, p*p*C) pixels of each patch, patches in row-major order (the ViT's tokens)."""
    b, c, h, w = images.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {p}")
    x = images.reshape(b, c, h // p, p, w // p, p)  # (B, C, gh, p, gw, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def mim_pixel_loss(pred: torch.Tensor, images: torch.Tensor, patch_mask: torch.Tensor, patch_size: int) -> torch.Tensor:
    """MSE between predicted and true pixels of the masked patches (SimMIM-style, no pooled term).

    Args:
        pred: (B, N, p*p*C) predicted pixels of every patch.
        images: (B, C, H, W) the unmasked input images (normalised pixels; the target).
        patch_mask: (B, N) bool, True = masked patch.
        patch_size: p.

    Returns:
        Scalar mean squared error over the masked patches' pixels; 0 (attached to ``pred``) when none is
        masked.
    """
    target = patchify(images.detach(), patch_size).float()  # (B, N, p*p*C)
    if pred.shape != target.shape or patch_mask.shape != pred.shape[:2]:
        shapes = f"pred {tuple(pred.shape)}, target {tuple(target.shape)}, mask {tuple(patch_mask.shape)}"
        raise ValueError(f"mim_pixel_loss shapes: {shapes}")
    weights = patch_mask.to(torch.float32).unsqueeze(-1)  # (B, N, 1)
    squared = (pred.float() - target).pow(2) * weights
    return squared.sum() / (weights.sum() * pred.shape[-1]).clamp(min=1)


def patch_similarity(image_embeds: torch.Tensor) -> torch.Tensor:
    """Collapse diagnostic (logged, never a loss): mean cosine similarity of the patch tokens of one image.

    Args:
        image_embeds: (B, 1+N, D) vision-encoder output; token 0 (pooled) is left out.

    Returns:
        Scalar mean over the batch of ``mean_{i,j} cos(p_i, p_j)`` over all N x N pairs (i = j included,
        so orthogonal tokens give 1/N). It approaches 1 when every patch carries the same vector, as a
        from-scratch encoder does under the feature self-target or a too-high learning rate.
    """
    patches = F.normalize(image_embeds[:, 1:].detach().float(), dim=-1)  # (B, N, D)
    n = patches.shape[1]
    return (patches.sum(1).pow(2).sum(-1) / n**2).mean()  # |sum_i p_i|^2 = sum_ij cos(p_i, p_j)
