"""MLM losses: ignore-index handling, position gathering, and the stop-gradient of fusion MLM."""

import math

import pytest
import torch
from torch import nn

from xfm_pipeline.objectives import fusion_mlm_loss, gather_positions, mlm_loss, text_mlm_loss


def _naive_mlm(logits, masked_ids):
    """Average of -log softmax(logits)[target] over the slots whose target is not -100."""
    terms = []
    for b in range(masked_ids.shape[0]):
        for m in range(masked_ids.shape[1]):
            target = int(masked_ids[b, m])
            if target == -100:
                continue
            row = logits[b, m].tolist()
            log_z = math.log(sum(math.exp(v) for v in row))
            terms.append(log_z - row[target])
    return sum(terms) / len(terms)


def test_mlm_loss_ignores_padding_slots():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 11, generator=g)
    masked_ids = torch.tensor([[3, 7, -100, -100], [10, -100, -100, -100], [0, 1, 2, 5]])
    assert mlm_loss(logits, masked_ids).item() == pytest.approx(_naive_mlm(logits, masked_ids), rel=1e-6)
    # what sits in the logits of padding slots does not matter
    changed = logits.clone()
    changed[0, 2:] = 100.0
    assert mlm_loss(changed, masked_ids).item() == pytest.approx(mlm_loss(logits, masked_ids).item(), rel=1e-6)


def test_mlm_loss_without_targets_is_zero_and_differentiable():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = mlm_loss(logits, torch.full((2, 3), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_gather_positions_matches_indexing():
    hidden = torch.randn(2, 6, 4)
    masked_pos = torch.tensor([[1, 4, 0], [5, 2, 0]])
    out = gather_positions(hidden, masked_pos)
    assert out.shape == (2, 3, 4)
    for b in range(2):
        for m in range(3):
            assert torch.equal(out[b, m], hidden[b, masked_pos[b, m]])


class _FakeModel(nn.Module):
    """Minimal XFM surface for the MLM losses: embedding text encoder, additive fusion, linear heads."""

    def __init__(self, vocab=13, dim=5):
        super().__init__()
        torch.manual_seed(0)
        self.text_encoder = nn.Embedding(vocab, dim)
        self.fusion = nn.Linear(dim, dim)
        self.fusion_head = nn.Linear(dim, vocab)
        self.text_head = nn.Linear(dim, vocab)

    def encode_text(self, ids, atts):
        return self.text_encoder(ids) * atts[..., None]

    def fuse(self, text_embeds, text_atts, image_embeds, image_atts=None):
        return self.fusion(text_embeds + image_embeds.mean(1, keepdim=True))

    def fusion_mlm_logits(self, fused):
        return self.fusion_head(fused)

    def text_mlm_logits(self, hidden):
        return self.text_head(hidden)


@pytest.fixture
def mlm_batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 13, (2, 6), generator=g)
    atts = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]])
    masked_pos = torch.tensor([[1, 3], [2, 0]])
    masked_ids = torch.tensor([[4, 9], [7, -100]])
    return ids, atts, masked_pos, masked_ids


@pytest.mark.parametrize("detach_text", [True, False])
def test_fusion_mlm_loss_value_and_stop_gradient(mlm_batch, detach_text):
    model = _FakeModel()
    ids, atts, masked_pos, masked_ids = mlm_batch
    image = torch.randn(2, 3, 5, requires_grad=True)
    loss = fusion_mlm_loss(model, image, None, ids, atts, masked_pos, masked_ids, detach_text=detach_text)
    fused = model.fuse(model.encode_text(ids, atts), atts, image)
    logits = torch.stack([model.fusion_mlm_logits(fused[b, masked_pos[b]]) for b in range(2)])
    assert loss.item() == pytest.approx(_naive_mlm(logits.detach(), masked_ids), rel=1e-6)
    loss.backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert model.fusion.weight.grad.abs().sum() > 0
    assert (model.text_encoder.weight.grad is None) == detach_text


def test_text_mlm_loss_uses_the_text_head(mlm_batch):
    model = _FakeModel()
    ids, atts, masked_pos, masked_ids = mlm_batch
    loss = text_mlm_loss(model, ids, atts, masked_pos, masked_ids)
    hidden = model.encode_text(ids, atts)
    logits = torch.stack([model.text_mlm_logits(hidden[b, masked_pos[b]]) for b in range(2)])
    assert loss.item() == pytest.approx(_naive_mlm(logits.detach(), masked_ids), rel=1e-6)
    loss.backward()
    assert model.text_encoder.weight.grad.abs().sum() > 0 and model.fusion_head.weight.grad is None
