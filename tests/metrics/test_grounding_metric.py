"""Grounding IoU (X-FM's pixel-inclusive ``computeIoU``) and Acc@0.5 on hand-made boxes (docs/xfm.md#grounding-accuracy)."""

from __future__ import annotations

import numpy as np
import pytest

from xfm_pipeline.metrics.grounding import (
    box_iou_xywh,
    cxcywh_norm_to_xywh,
    grounding_accuracy,
    grounding_accuracy_by_split,
)


def _official_compute_iou(box1, box2):
    """X-FM ``dataset/utils.py`` ``computeIoU``, transcribed."""
    inter_x1 = max(box1[0], box2[0])
    inter_y1 = max(box1[1], box2[1])
    inter_x2 = min(box1[0] + box1[2] - 1, box2[0] + box2[2] - 1)
    inter_y2 = min(box1[1] + box1[3] - 1, box2[1] + box2[3] - 1)
    if inter_x1 < inter_x2 and inter_y1 < inter_y2:
        inter = (inter_x2 - inter_x1 + 1) * (inter_y2 - inter_y1 + 1)
    else:
        inter = 0
    union = box1[2] * box1[3] + box2[2] * box2[3] - inter
    return float(inter) / union


@pytest.mark.parametrize(
    ("a", "b", "inclusive", "continuous"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0, 1.0),
        ((0, 0, 10, 10), (5, 5, 10, 10), 25 / 175, 25 / 175),  # 5x5 overlap
        ((0, 0, 10, 10), (8, 0, 10, 10), 20 / 180, 20 / 180),  # 2-pixel-wide overlap
        ((0, 0, 10, 10), (9, 0, 10, 10), 0.0, 10 / 190),  # 1-pixel column: none under computeIoU
        ((0, 0, 10, 10), (20, 20, 5, 5), 0.0, 0.0),  # disjoint
        ((0, 0, 10, 10), (2.5, 0, 5, 10), 0.5, 0.5),  # inside, half the area
        ((10, 10, 4, 4), (12.5, 12.5, 4, 4), 2.25 / 29.75, 2.25 / 29.75),  # 1.5 x 1.5 overlap (> 1 pixel)
        ((10, 10, 4, 4), (13.5, 13.5, 4, 4), 0.0, 0.25 / 31.75),  # 0.5 x 0.5 overlap (<= 1 pixel)
    ],
)
def test_iou_hand_cases(a, b, inclusive, continuous):
    assert box_iou_xywh(a, b) == pytest.approx(inclusive)
    assert box_iou_xywh(a, b) == pytest.approx(_official_compute_iou(a, b))
    assert box_iou_xywh(a, b, pixel_inclusive=False) == pytest.approx(continuous)
    assert box_iou_xywh(b, a) == pytest.approx(inclusive)  # symmetric


def test_iou_vectorised_matches_official_on_random_boxes():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.uniform(0, 50, (200, 2)), rng.uniform(1, 40, (200, 2))], axis=1)
    b = a + rng.normal(scale=8, size=a.shape)
    b[:, 2:] = np.abs(b[:, 2:]) + 0.5
    ious = box_iou_xywh(a, b)
    assert ious.shape == (200,)
    assert ious == pytest.approx([_official_compute_iou(x, y) for x, y in zip(a, b, strict=True)])
    assert 0 < np.mean(ious >= 0.5) < 1
    assert box_iou_xywh((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0  # empty union


def test_cxcywh_to_pixel_xywh():
    assert cxcywh_norm_to_xywh([0.5, 0.5, 0.5, 0.5], 200, 100).tolist() == [50.0, 25.0, 100.0, 50.0]
    boxes = np.array([[0.5, 0.5, 1.0, 1.0], [0.25, 0.75, 0.5, 0.5]])
    out = cxcywh_norm_to_xywh(boxes, np.array([640, 100]), np.array([480, 200]))
    assert out.tolist() == [[0.0, 0.0, 640.0, 480.0], [0.0, 100.0, 50.0, 100.0]]
    assert boxes.tolist() == [[0.5, 0.5, 1.0, 1.0], [0.25, 0.75, 0.5, 0.5]]  # input untouched


def test_accuracy_threshold_is_inclusive_and_per_split():
    gt = np.array([[0, 0, 10, 10]] * 4, dtype=float)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 4], [9, 0, 10, 10]], dtype=float)  # IoU 1, .5, .4, 0
    assert grounding_accuracy(pred, gt) == pytest.approx(0.5)  # IoU exactly 0.5 counts
    assert grounding_accuracy(pred, gt, threshold=0.3) == pytest.approx(0.75)
    assert grounding_accuracy(pred, gt, pixel_inclusive=False, threshold=0.05) == pytest.approx(1.0)
    by_split = grounding_accuracy_by_split(pred, gt, ["val", "testA", "val", "testB"])
    assert by_split == {"val": 0.5, "testA": 1.0, "testB": 0.0}
    assert list(by_split) == ["val", "testA", "testB"]


def test_invalid_inputs():
    with pytest.raises(ValueError):
        grounding_accuracy(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError):
        grounding_accuracy(np.zeros((0, 4)), np.zeros((0, 4)))
    with pytest.raises(ValueError):
        box_iou_xywh((0, 0, 1), (0, 0, 1, 1))
    with pytest.raises(ValueError):
        grounding_accuracy_by_split(np.zeros((2, 4)), np.zeros((2, 4)), ["val"])
