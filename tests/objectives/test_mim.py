"""MIM feature regression: masked patches only, plus the pooled token; target detached."""

import pytest
import torch

from xfm_pipeline.objectives import mim_loss


def _naive_mim(pred, target, mask):
    patch_sq, patch_n = 0.0, 0
    for b in range(pred.shape[0]):
        for i in range(mask.shape[1]):
            if mask[b, i]:
                patch_sq += ((pred[b, 1 + i] - target[b, 1 + i]) ** 2).sum().item()
                patch_n += pred.shape[2]
    pooled = ((pred[:, 0] - target[:, 0]) ** 2).mean().item()
    return (patch_sq / patch_n if patch_n else 0.0) + pooled


@pytest.fixture
def tensors():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 1 + 6, 4, generator=g, requires_grad=True)
    target = torch.randn(3, 1 + 6, 4, generator=g, requires_grad=True)
    mask = torch.tensor([[1, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    return pred, target, mask


def test_matches_naive_reference(tensors):
    pred, target, mask = tensors
    assert mim_loss(pred, target, mask).item() == pytest.approx(_naive_mim(pred, target, mask), rel=1e-6)


def test_unmasked_patches_do_not_count_and_target_gets_no_gradient(tensors):
    pred, target, mask = tensors
    loss = mim_loss(pred, target, mask)
    loss.backward()
    assert target.grad is None
    unmasked = torch.cat([torch.zeros(3, 1, dtype=torch.bool), ~mask], dim=1)  # (B, 1+N), token 0 counts
    assert (pred.grad[unmasked] == 0).all()
    assert (pred.grad[:, 0] != 0).any() and (pred.grad[:, 1:][mask] != 0).any()


def test_no_masked_patch_leaves_the_pooled_term(tensors):
    pred, target, _ = tensors
    loss = mim_loss(pred, target, torch.zeros(3, 6, dtype=torch.bool))
    assert loss.item() == pytest.approx(((pred[:, 0] - target[:, 0]) ** 2).mean().item(), rel=1e-6)
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_shape_mismatch_is_rejected(tensors):
    pred, target, mask = tensors
    with pytest.raises(ValueError, match="mim_loss shapes"):
        mim_loss(pred, target, mask[:, :5])
