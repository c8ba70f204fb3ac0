"""Visual grounding (RefCOCO+) accuracy: the fraction of predicted boxes with IoU >= 0.5 against the gold
box, per split, as X-FM's ``grounding_eval_bbox`` / ``computeIoU`` compute it
(docs/xfm.md#grounding-accuracy).

Boxes are ``(x, y, w, h)`` in pixels of the ORIGINAL image (COCO's ``bbox`` layout). The model predicts
a normalised ``(cx, cy, w, h)`` in [0, 1]: :func:`cxcywh_norm_to_xywh` scales it by the image's width
and height and moves the centre to the top-left corner, exactly as the official evaluation does.

The official ``computeIoU`` treats a box as the pixels ``x .. x + w - 1`` (inclusive): the intersection
is ``(min(x2) - max(x1) + 1) * (...)`` with ``x2 = x + w - 1``, the union uses the plain areas ``w * h``,
and an intersection counts only when ``max(x1) < min(x2)`` strictly (same for y). The ``-1`` and ``+1``
cancel, so this equals the usual continuous IoU EXCEPT that an overlap of at most one pixel in either
direction counts as no overlap at all (two 10x10 boxes sharing one pixel column: IoU 0 instead of
10/190). ``pixel_inclusive=True`` reproduces it exactly; ``pixel_inclusive=False`` is the continuous IoU.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

GROUNDING_IOU_THRESHOLD = 0.5


def _boxes(boxes, name: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.shape[-1:] != (4,) or array.ndim > 2:
        raise ValueError(f"{name} must have shape (4,) or (N, 4), got {array.shape}")
    return array


def cxcywh_norm_to_xywh(boxes, width, height) -> np.ndarray:
    """Normalised ``(cx, cy, w, h)`` -> pixel ``(x, y, w, h)``, as the official evaluation converts predictions.

    Args:
        boxes: (4,) or (N, 4), coordinates as fractions of the image width/height.
        width, height: the original image size in pixels, scalars or (N,) arrays (one per box).
    """
    b = _boxes(boxes, "boxes")
    scale = np.stack(np.broadcast_arrays(width, height, width, height), axis=-1).astype(np.float64)
    out = b * scale
    out[..., 0] -= out[..., 2] / 2.0
    out[..., 1] -= out[..., 3] / 2.0
    return out


def box_iou_xywh(a, b, pixel_inclusive: bool = True):
    """IoU of ``(x, y, w, h)`` boxes, element-wise over pairs ``a[i], b[i]`` (module doc for the convention).

    Args:
        a, b: (4,) or (N, 4) boxes (broadcast against each other).
        pixel_inclusive: the official ``computeIoU`` convention (default); False for continuous IoU.

    Returns:
        A float for two single boxes, else an (N,) array. A pair whose union is not positive
        (both boxes empty) has IoU 0.
    """
    a_arr, b_arr = _boxes(a, "a"), _boxes(b, "b")
    ax, ay, aw, ah = np.moveaxis(a_arr, -1, 0)
    bx, by, bw, bh = np.moveaxis(b_arr, -1, 0)
    x1, y1 = np.maximum(ax, bx), np.maximum(ay, by)
    if pixel_inclusive:
        x2 = np.minimum(ax + aw - 1, bx + bw - 1)
        y2 = np.minimum(ay + ah - 1, by + bh - 1)
        inter = np.where((x1 < x2) & (y1 < y2), (x2 - x1 + 1) * (y2 - y1 + 1), 0.0)
    else:
        x2, y2 = np.minimum(ax + aw, bx + bw), np.minimum(ay + ah, by + bh)
        inter = np.clip(x2 - x1, 0.0, None) * np.clip(y2 - y1, 0.0, None)
    union = aw * ah + bw * bh - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    if a_arr.ndim == 1 and b_arr.ndim == 1:
        return float(iou)
    return iou


def grounding_accuracy(pred_boxes, gt_boxes, threshold: float = GROUNDING_IOU_THRESHOLD, pixel_inclusive: bool = True) -> float:
    """Fraction in [0, 1] of predictions with IoU >= ``threshold`` against their gold box.

    Args:
        pred_boxes, gt_boxes: (N, 4) pixel ``(x, y, w, h)`` boxes, paired by row
            (convert model outputs with :func:`cxcywh_norm_to_xywh` first).
    """
    pred, gt = _boxes(pred_boxes, "pred_boxes"), _boxes(gt_boxes, "gt_boxes")
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"pred_boxes {pred.shape} and gt_boxes {gt.shape} must both be (N, 4)")
    if len(pred) == 0:
        raise ValueError("no boxes to score")
    return float(np.mean(box_iou_xywh(gt, pred, pixel_inclusive=pixel_inclusive) >= threshold))


def grounding_accuracy_by_split(
    pred_boxes,
    gt_boxes,
    splits: Sequence[Hashable],
    threshold: float = GROUNDING_IOU_THRESHOLD,
    pixel_inclusive: bool = True,
) -> dict[Hashable, float]:
    """:func:`grounding_accuracy` separately for each split label (RefCOCO+: ``val``, ``testA``, ``testB``).

    ``splits[i]`` names the split of pair ``i``; the result has one entry per distinct split, in order of
    first appearance.
    """
    pred, gt = _boxes(pred_boxes, "pred_boxes"), _boxes(gt_boxes, "gt_boxes")
    if pred.ndim != 2 or pred.shape != gt.shape or len(splits) != len(pred):
        raise ValueError(f"pred_boxes {pred.shape}, gt_boxes {gt.shape} and {len(splits)} split labels disagree")
    hits = box_iou_xywh(gt, pred, pixel_inclusive=pixel_inclusive) >= threshold
    out: dict[Hashable, list[bool]] = {}
    for split, hit in zip(splits, hits, strict=True):
        out.setdefault(split, []).append(bool(hit))
    if not out:
        raise ValueError("no boxes to score")
    return {split: sum(h) / len(h) for split, h in out.items()}
