"""benchmarks/fusion_attention.py: cross-attention entropy of the fusion encoder."""

from __future__ import annotations

import math

import pytest
import torch


@pytest.fixture
def bench(benchmark_module):
    return benchmark_module("fusion_attention")


def test_entropy_of_uniform_one_hot_and_masked_rows(bench):
    m = 8
    weights = torch.zeros(2, 2, 3, m)  # (B, H, L, M)
    weights[:, 0] = 1.0 / m  # head 0: uniform everywhere
    weights[:, 1, :, 3] = 1.0  # head 1: one-hot
    weights[1, 1, 2] = 1.0 / m  # ... except a row that the text mask hides
    text_mask = torch.tensor([[1, 1, 1], [1, 1, 0]])

    cls, tokens, largest = bench.attention_entropy(weights, text_mask)

    assert cls.tolist() == pytest.approx([math.log(m), 0.0])
    assert tokens.tolist() == pytest.approx([math.log(m), 0.0])  # the masked uniform row is not counted
    assert largest.tolist() == pytest.approx([1.0 / m, 1.0])


def test_recomputed_weights_are_the_ones_the_fusion_encoder_uses(bench, tiny_model):
    """weights @ values, through the block's output layer, gives the cross-attention block's own output."""
    import copy

    torch.manual_seed(0)
    xfm = copy.deepcopy(tiny_model)
    for layer in xfm.fusion_encoder.layer:  # peaked attention, so a wrong scale or mask would show
        layer.crossattention.self.query.weight.data.mul_(30.0)
        layer.crossattention.self.key.weight.data.mul_(30.0)
    b, length = 3, 5
    width, image_width = xfm.text_encoder.config.hidden_size, xfm.config.vision.width
    text_embeds = torch.randn(b, length, width)
    text_atts = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    image_embeds = torch.randn(b, 7, image_width)
    captured = {}
    layers = xfm.fusion_encoder.layer
    hooks = [layer.attention.register_forward_hook(lambda _m, _i, out, i=i: captured.__setitem__(("in", i), out)) for i, layer in enumerate(layers)]
    hooks += [layer.crossattention.register_forward_hook(lambda _m, _i, out, i=i: captured.__setitem__(("out", i), out)) for i, layer in enumerate(layers)]
    with torch.no_grad():
        weights = bench.cross_attention_weights(xfm, text_embeds, text_atts, image_embeds)
    for hook in hooks:
        hook.remove()

    assert len(weights) == len(layers) >= 2
    for i, (w, layer) in enumerate(zip(weights, layers, strict=True)):
        attention = layer.crossattention
        assert w.shape == (b, attention.num_heads, length, 7)
        assert torch.allclose(w.sum(-1), torch.ones(b, attention.num_heads, length))
        assert bench.attention_entropy(w, text_atts)[1].mean() < math.log(7) - 0.5  # far from uniform
        values = attention._heads(attention.self.value(image_embeds))  # (B, H, M, d)
        with torch.no_grad():
            rebuilt = attention.output((w @ values).transpose(1, 2).flatten(2), captured[("in", i)])
        torch.testing.assert_close(rebuilt, captured[("out", i)], atol=1e-5, rtol=1e-4)
