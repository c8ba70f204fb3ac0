"""MIM: feature regression (masked patches plus the pooled token, target detached), pixel regression, and the
patch-similarity collapse diagnostic."""

import pytest
import torch
import torch.nn.functional as F

from xfm_pipeline.objectives import mim_loss, mim_pixel_loss, patch_similarity, patchify


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


def test_patchify_orders_patches_like_the_vit_tokens():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    patches = patchify(images, 2)  # (2, 2*3, 2*2*3)
    assert patches.shape == (2, 6, 12)
    for b in range(2):
        for gy in range(2):
            for gx in range(3):
                expected = images[b, :, 2 * gy : 2 * gy + 2, 2 * gx : 2 * gx + 2].permute(1, 2, 0).reshape(-1)
                torch.testing.assert_close(patches[b, gy * 3 + gx], expected)
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        patchify(images, 4)


def _naive_pixel_mim(pred, images, mask, p):
    total, count = 0.0, 0
    grid_w = images.shape[3] // p
    for b in range(images.shape[0]):
        for i in range(mask.shape[1]):
            if mask[b, i]:
                gy, gx = divmod(i, grid_w)
                truth = images[b, :, gy * p : (gy + 1) * p, gx * p : (gx + 1) * p].permute(1, 2, 0).reshape(-1)
                total += ((pred[b, i] - truth) ** 2).sum().item()
                count += truth.numel()
    return total / count if count else 0.0


def test_pixel_mim_matches_naive_reference_and_ignores_visible_patches():
    g = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, 8, 8, generator=g, requires_grad=True)
    pred = torch.randn(2, 4, 48, generator=g, requires_grad=True)
    mask = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 1]], dtype=torch.bool)
    loss = mim_pixel_loss(pred, images, mask, 4)
    assert loss.item() == pytest.approx(_naive_pixel_mim(pred, images, mask, 4), rel=1e-6)
    loss.backward()
    assert images.grad is None  # the target is detached
    assert (pred.grad[~mask] == 0).all() and (pred.grad[mask] != 0).any()
    empty = mim_pixel_loss(pred, images, torch.zeros(2, 4, dtype=torch.bool), 4)
    assert empty.item() == 0.0 and empty.requires_grad
    with pytest.raises(ValueError, match="mim_pixel_loss shapes"):
        mim_pixel_loss(pred[:, :3], images, mask, 4)


def test_patch_similarity_matches_a_pairwise_loop_and_its_extremes():
    torch.manual_seed(3)
    tokens = torch.randn(2, 1 + 5, 8)
    naive = torch.stack(
        [torch.stack([F.cosine_similarity(tokens[b, 1 + i], tokens[b, 1 + j], dim=0) for i in range(5) for j in range(5)]).mean() for b in range(2)]
    ).mean()
    torch.testing.assert_close(patch_similarity(tokens), naive)
    collapsed = torch.randn(1, 1, 8).expand(3, 1 + 5, 8)  # every patch the same vector
    assert patch_similarity(collapsed).item() == pytest.approx(1.0)
    orthogonal = torch.cat([torch.zeros(1, 1, 5), torch.eye(5)[None]], 1)  # token 0 ignored
    assert patch_similarity(orthogonal).item() == pytest.approx(1 / 5)
