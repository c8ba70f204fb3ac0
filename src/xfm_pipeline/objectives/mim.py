"""Masked image modelling by feature regression (MIM, xfm_spec 2.2).

X-FM has no separate teacher: the target is the vision encoder's own output on the unmasked image
(online, detached), the prediction its output on the mask-token-corrupted image. Because the same
encoder is shaped by ITC/ITM/MLM/BBP, "vision-language training guides the vision encoder".
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
