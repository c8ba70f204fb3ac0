"""Box losses: hand-computed L1/GIoU, torchvision's GIoU as a second reference, is_image, degenerate boxes,
the pointer head's patch cross-entropy."""

import math

import pytest
import torch
from torchvision.ops import generalized_box_iou as tv_generalized_box_iou

from xfm_pipeline.objectives import bbox_loss, box_cxcywh_to_xyxy, generalized_box_iou, pointer_loss


def test_cxcywh_to_xyxy():
    boxes = torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.3, 0.6, 0.2, 0.4]])
    torch.testing.assert_close(box_cxcywh_to_xyxy(boxes), torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.2, 0.4, 0.4, 0.8]]))


def test_giou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 2.0, 3.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 3.0, 1.0], [1.0, 1.0, 2.0, 3.0]])
    # overlap: inter 1, union 7, hull 9 -> 1/7 - 2/9; disjoint: union 2, hull 3 -> -1/3; identical -> 1
    expected = torch.tensor([1 / 7 - 2 / 9, -1 / 3, 1.0])
    torch.testing.assert_close(generalized_box_iou(a, b), expected)


def test_giou_matches_torchvision_diagonal():
    g = torch.Generator().manual_seed(0)
    a = box_cxcywh_to_xyxy(torch.rand(20, 4, generator=g) * 0.5 + 0.25)
    b = box_cxcywh_to_xyxy(torch.rand(20, 4, generator=g) * 0.5 + 0.25)
    torch.testing.assert_close(generalized_box_iou(a, b), tv_generalized_box_iou(a, b).diagonal())


def test_bbox_loss_hand_computed():
    pred = torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.25, 0.25, 0.5, 0.5]])
    target = torch.tensor([[0.6, 0.5, 0.4, 0.4], [0.25, 0.25, 0.5, 0.5]])
    loss_bbox, loss_giou = bbox_loss(pred, target)
    assert loss_bbox.item() == pytest.approx(0.1 / 2)
    # box 1: [0.3,0.3,0.7,0.7] vs [0.4,0.3,0.8,0.7]: inter 0.12, union 0.2, hull 0.2 -> GIoU 0.6; box 2: 1
    assert loss_giou.item() == pytest.approx((1 - 0.6) / 2, rel=1e-5)


def test_whole_image_captions_are_excluded():
    pred = torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.1, 0.9, 0.1, 0.1], [0.25, 0.25, 0.5, 0.5]], requires_grad=True)
    target = torch.tensor([[0.6, 0.5, 0.4, 0.4], [0.5, 0.5, 1.0, 1.0], [0.25, 0.25, 0.5, 0.5]])
    losses = bbox_loss(pred, target, is_image=torch.tensor([0, 1, 0]))
    kept = bbox_loss(pred[[0, 2]], target[[0, 2]])
    for got, want in zip(losses, kept, strict=True):
        torch.testing.assert_close(got, want)
    sum(losses).backward()
    assert (pred.grad[1] == 0).all()


def test_only_whole_image_captions_give_attached_zeros():
    pred = torch.rand(2, 4, requires_grad=True)
    loss_bbox, loss_giou = bbox_loss(pred, torch.rand(2, 4), is_image=torch.ones(2))
    assert loss_bbox.item() == 0.0 and loss_giou.item() == 0.0
    (loss_bbox + loss_giou).backward()
    assert torch.equal(pred.grad, torch.zeros(2, 4))


def test_degenerate_boxes_give_finite_losses_and_do_not_zero_the_batch():
    pred = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.2, 0.0], [0.3, 0.3, 0.2, 0.2], [0.5, 0.5, 0.4, 0.4]], requires_grad=True)
    target = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.4, 0.4, 0.2, 0.2], [0.3, 0.3, 0.0, 0.1], [0.6, 0.5, 0.4, 0.4]])
    loss_bbox, loss_giou = bbox_loss(pred, target)
    assert torch.isfinite(loss_bbox) and torch.isfinite(loss_giou)
    (loss_bbox + loss_giou).backward()
    assert torch.isfinite(pred.grad).all()
    # the healthy last box still contributes its own term: total >= its (1 - 0.6) / 4
    assert loss_giou.item() >= 0.4 / 4
    _, healthy_alone = bbox_loss(pred[3:].detach(), target[3:])
    _, without_last = bbox_loss(pred[:3].detach(), target[:3])
    assert loss_giou.item() == pytest.approx((3 * without_last.item() + healthy_alone.item()) / 4, rel=1e-6)


def test_pointer_loss_is_the_cross_entropy_of_the_centre_patch_over_the_kept_boxes():
    # 2 x 2 grid, patches row-major: centre (0.7, 0.2) lies in patch 1, (0.2, 0.9) in patch 2, (0.5, 0.5) in patch 3
    scores = torch.tensor([[0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 5.0]], requires_grad=True)
    target = torch.tensor([[0.7, 0.2, 0.1, 0.1], [0.2, 0.9, 0.2, 0.1], [0.5, 0.5, 1.0, 1.0]])
    first = -(2.0 - math.log(3 + math.exp(2.0)))  # -log softmax(scores[0])[1]
    second = -(3.0 - math.log(2 + math.e + math.exp(3.0)))  # -log softmax(scores[1])[2]
    assert pointer_loss(scores[:2], target[:2]).item() == pytest.approx((first + second) / 2, rel=1e-6)
    loss = pointer_loss(scores, target, is_image=torch.tensor([0, 0, 1]))  # the whole-image caption is left out
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)
    loss.backward()
    assert torch.equal(scores.grad[2], torch.zeros(4))
    only_image = pointer_loss(scores, target, is_image=torch.ones(3))
    assert only_image.item() == 0.0 and only_image.requires_grad
