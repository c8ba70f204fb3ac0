"""Dropout with 15-bit CPU masks: drop rate, scaling, reproducibility, gradients, module swap, attention."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xfm_pipeline.model.dropout import Dropout, dropout, keep_mask, replace_dropout
from xfm_pipeline.model.fusion import attend


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_masks_drop_at_rate_p_and_keep_the_expectation(p):
    torch.manual_seed(0)
    n = 400_000
    mask = keep_mask((n,), p)
    dropped = (mask == 0).double().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)  # five binomial standard deviations
    kept = mask[mask > 0]
    assert torch.all(kept == kept[0])  # one scale for every kept element
    p_exact = round(p * 2**15) / 2**15
    assert abs(p_exact - p) <= 2**-16
    assert kept[0].item() == pytest.approx(1 / (1 - p_exact), rel=1e-6)  # E[mask] = 1 exactly


def test_masks_follow_the_global_seed_and_have_the_requested_shape():
    torch.manual_seed(3)
    a = keep_mask((5, 7, 3), 0.3)
    torch.manual_seed(3)
    b = keep_mask((5, 7, 3), 0.3)
    assert a.shape == (5, 7, 3) and torch.equal(a, b)
    assert not torch.equal(a, keep_mask((5, 7, 3), 0.3))
    assert keep_mask((4, 4), 0.0).eq(1).all()
    for p in (1.0, 1 - 2**-17, -0.1):
        with pytest.raises(ValueError, match=r"in \[0, 1\)"):
            keep_mask((3,), p)


def test_dropout_gradient_is_the_mask_and_eval_is_the_identity():
    x = torch.randn(6, 50, requires_grad=True)
    torch.manual_seed(1)
    y = dropout(x, 0.25)
    torch.manual_seed(1)
    mask = keep_mask(x.shape, 0.25)
    torch.testing.assert_close(y, x * mask)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, mask)
    assert dropout(x, 0.25, training=False) is x
    module = Dropout(0.25).eval()
    assert module(x) is x
    assert dropout(x, 1.0).eq(0).all() and dropout(x, 1 - 2**-17).shape == x.shape  # F.dropout near 1


def test_replace_dropout_swaps_the_text_encoders_modules_without_touching_weights():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32))
    keys = list(model.state_dict())
    plain = sum(type(m) is nn.Dropout for m in model.modules())
    ids = torch.randint(0, 50, (2, 5))
    before = model.eval()(ids).last_hidden_state
    assert replace_dropout(model) == plain > 0
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(model(ids).last_hidden_state, before)
    model.train()(ids).last_hidden_state.sum().backward()  # trains through the swapped modules


@pytest.mark.parametrize("with_mask", [False, True])
def test_attention_with_dropout_on_cpu_is_softmax_then_mask_then_values(with_mask):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 4, 8, generator=g) for _ in range(3))  # (B, H, L|M, d)
    mask = torch.rand(3, 1, 1, 4, generator=g) > 0.4 if with_mask else None
    if mask is not None:
        mask[..., 0] = True
    scores = q @ k.transpose(-1, -2) / math.sqrt(8)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = scores.softmax(-1)  # (B, H, L, M)
    torch.testing.assert_close(attend(q, k, v, mask, 0.0), probs @ v)  # SDPA
    torch.manual_seed(5)
    got = attend(q, k, v, mask, 0.2)
    torch.manual_seed(5)
    torch.testing.assert_close(got, (probs * keep_mask(probs.shape, 0.2)) @ v)
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=mask), probs @ v)
