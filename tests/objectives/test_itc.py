"""ITC against a naive per-row reference (hard targets and same-idx soft targets)."""

import pytest
import torch
import torch.nn.functional as F

from xfm_pipeline.objectives import itc_loss, itc_targets


def _naive_itc(image_feats, text_feats, temperature, idx=None):
    """Row by row: -mean over positives of log softmax, image->text and text->image, averaged."""
    n = image_feats.shape[0]
    losses_i2t, losses_t2i = [], []
    for i in range(n):
        row_i2t = torch.stack([image_feats[i] @ text_feats[j] for j in range(n)]) / temperature
        row_t2i = torch.stack([text_feats[i] @ image_feats[j] for j in range(n)]) / temperature
        positives = [i] if idx is None else [j for j in range(n) if idx[j] == idx[i]]
        log_p_i2t = row_i2t - torch.logsumexp(row_i2t, dim=0)
        log_p_t2i = row_t2i - torch.logsumexp(row_t2i, dim=0)
        losses_i2t.append(-sum(log_p_i2t[j] for j in positives) / len(positives))
        losses_t2i.append(-sum(log_p_t2i[j] for j in positives) / len(positives))
    return (sum(losses_i2t) / n + sum(losses_t2i) / n) / 2


def _features(n=6, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(n, dim, generator=g, dtype=torch.float64), dim=-1).requires_grad_()
    text = F.normalize(torch.randn(n, dim, generator=g, dtype=torch.float64), dim=-1).requires_grad_()
    return image, text


def test_hard_targets_match_naive_reference_with_gradients():
    image, text = _features()
    temperature = torch.tensor(0.07, dtype=torch.float64, requires_grad=True)
    loss = itc_loss(image, text, temperature)
    grads = torch.autograd.grad(loss, (image, text, temperature))
    ref = _naive_itc(image, text, temperature)
    ref_grads = torch.autograd.grad(ref, (image, text, temperature))
    torch.testing.assert_close(loss, ref)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("idx", [[3, 1, 3, 3, 0, 1], [0, 0, 0, 0, 0, 0], [5, 4, 3, 2, 1, 0]])
def test_soft_targets_with_tied_idx_match_naive_reference(idx):
    image, text = _features(seed=1)
    idx = torch.tensor(idx)
    loss = itc_loss(image, text, 0.1, idx=idx)
    ref = _naive_itc(image, text, 0.1, idx=idx.tolist())
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(torch.autograd.grad(loss, image)[0], torch.autograd.grad(ref, image)[0])


def test_distinct_idx_equals_hard_targets():
    image, text = _features(seed=2)
    torch.testing.assert_close(itc_loss(image, text, 0.05, idx=torch.arange(6) * 7), itc_loss(image, text, 0.05))


def test_itc_targets_rows_sum_to_one_over_same_ids():
    targets = itc_targets(torch.tensor([2, 0, 2, 1, 2]))
    torch.testing.assert_close(targets.sum(1), torch.ones(5))
    assert targets[0].tolist() == pytest.approx([1 / 3, 0, 1 / 3, 0, 1 / 3])
    assert targets[3].tolist() == [0, 0, 0, 1, 0]
