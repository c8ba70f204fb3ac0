"""Bounding-box prediction losses (BBP: L1 + GIoU, docs/xfm.md#box-prediction) and box helpers.

Boxes are normalised ``(cx, cy, w, h)`` in [0, 1]. Degenerate boxes (zero or negative width/height)
are handled by clamping: side lengths are clamped at 0 and the union and enclosing areas at a small
epsilon, so such a box gives a finite GIoU (and finite gradients) instead of NaN. The official code
instead zeroes the GIoU term of the whole batch when any box is degenerate; here only that box's own
term is affected.
"""

from __future__ import annotations

import math

import torch

_EPS = 1e-7  # floor of union / enclosing areas


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) (cx, cy, w, h) -> (..., 4) (x0, y0, x1, y1)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def _area(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) xyxy -> (...) area, sides clamped at 0."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """GIoU of matching rows (pairwise-diagonal, not all pairs): (K, 4) xyxy x (K, 4) xyxy -> (K,).

    GIoU = IoU - (|C| - |A u B|) / |C|, C the smallest enclosing box; in [-1, 1]. Degenerate boxes
    are clamped (see the module docstring), never NaN.
    """
    area1, area2 = _area(boxes1), _area(boxes2)  # (K,)
    lt = torch.maximum(boxes1[:, :2], boxes2[:, :2])  # (K, 2)
    rb = torch.minimum(boxes1[:, 2:], boxes2[:, 2:])  # (K, 2)
    inter = (rb - lt).clamp(min=0).prod(dim=1)  # (K,)
    union = area1 + area2 - inter
    iou = inter / union.clamp(min=_EPS)
    enc_lt = torch.minimum(boxes1[:, :2], boxes2[:, :2])
    enc_rb = torch.maximum(boxes1[:, 2:], boxes2[:, 2:])
    enclosing = (enc_rb - enc_lt).clamp(min=0).prod(dim=1).clamp(min=_EPS)  # (K,)
    return iou - (enclosing - union) / enclosing


def bbox_loss(
    pred_cxcywh: torch.Tensor,
    target_cxcywh: torch.Tensor,
    is_image: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 and GIoU box losses, each summed over the kept boxes and divided by their number.

    Args:
        pred_cxcywh: (B, 4) predicted normalised boxes (``XFM.predict_bbox``).
        target_cxcywh: (B, 4) target normalised boxes.
        is_image: optional (B,) 1 where the text is the whole-image caption; those pairs are excluded
            (their target is the trivial full-image box).

    Returns:
        ``(loss_bbox, loss_giou)``: L1 summed over coordinates and boxes / num_boxes, and
        ``sum(1 - GIoU) / num_boxes``. With no box left both are 0 and still attached to ``pred``.
    """
    pred = pred_cxcywh.float()  # (B, 4)
    target = target_cxcywh.to(pred.dtype)  # (B, 4)
    keep = torch.ones_like(pred[:, 0])  # (B,) 1 = counted
    if is_image is not None:
        keep = 1.0 - is_image.view(-1).to(pred.dtype)
    num_boxes = keep.sum().clamp(min=1)  # kept as a tensor: no host synchronisation
    loss_bbox = ((pred - target).abs().sum(dim=1) * keep).sum() / num_boxes
    giou = generalized_box_iou(box_cxcywh_to_xyxy(pred), box_cxcywh_to_xyxy(target))  # (B,), finite everywhere
    loss_giou = ((1.0 - giou) * keep).sum() / num_boxes
    return loss_bbox, loss_giou


def pointer_loss(scores: torch.Tensor, target_cxcywh: torch.Tensor, is_image: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the pointer head's patch scores against the patch holding each gold box centre.

    Args:
        scores: (B, N) patch scores of :class:`~xfm_pipeline.model.box_heads.PatchPointer`, N = grid**2.
        target_cxcywh: (B, 4) target normalised boxes.
        is_image: optional (B,) 1 where the text is the whole-image caption (excluded, as in :func:`bbox_loss`).

    Returns:
        The cross-entropy summed over the kept boxes / their number (0, still attached, when none is kept).
    """
    from xfm_pipeline.model.box_heads import centre_patch  # the model package imports transformers: not at import time

    target = centre_patch(target_cxcywh, math.isqrt(scores.shape[1]))  # (B,)
    per_box = torch.nn.functional.cross_entropy(scores.float(), target, reduction="none")  # (B,)
    keep = torch.ones_like(per_box) if is_image is None else 1.0 - is_image.view(-1).to(per_box.dtype)
    return (per_box * keep).sum() / keep.sum().clamp(min=1)
