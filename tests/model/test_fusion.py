"""Fusion encoder against a naive reference: post-LN self-attn, cross-attn with masks, FFN."""

import math

import pytest
import torch
import torch.nn.functional as F

from xfm_pipeline.model.config import FusionConfig
from xfm_pipeline.model.fusion import ContextGroups, FusionEncoder


def _naive_attention(block, x, context, mask):
    """Plain softmax attention written out, with the block's weights; mask (B, M) True = attend."""
    b, length, d = x.shape
    h = block.num_heads
    q = block.self.query(x).view(b, length, h, d // h).transpose(1, 2)
    k = block.self.key(context).view(b, context.shape[1], h, d // h).transpose(1, 2)
    v = block.self.value(context).view(b, context.shape[1], h, d // h).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, length, d)
    return block.output.LayerNorm(block.output.dense(out) + x)


def _naive_layer(layer, x, text_mask, image, image_mask):
    x = _naive_attention(layer.attention, x, x, text_mask)
    x = _naive_attention(layer.crossattention, x, image, image_mask)
    return layer.output.LayerNorm(layer.output.dense(F.gelu(layer.intermediate.dense(x))) + x)


@pytest.fixture(scope="module")
def fusion():
    torch.manual_seed(0)
    cfg = FusionConfig(num_layers=2, num_heads=4, intermediate_size=64, dropout=0.1)
    return FusionEncoder(cfg, width=32, image_width=24, vocab_size=50).eval()


def test_matches_naive_reference(fusion):
    torch.manual_seed(1)
    text, image = torch.randn(2, 5, 32), torch.randn(2, 7, 24)
    text_atts = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    image_atts = torch.tensor([[1] * 7, [1, 1, 1, 1, 0, 0, 0]])
    out = fusion(text, text_atts, image, image_atts)
    ref = text
    for layer in fusion.layer:
        ref = _naive_layer(layer, ref, text_atts.bool(), image, image_atts.bool())
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_masked_tokens_do_not_influence_the_output(fusion):
    torch.manual_seed(2)
    text, image = torch.randn(1, 6, 32), torch.randn(1, 9, 24)
    text_atts = torch.tensor([[1, 1, 1, 1, 0, 0]])
    image_atts = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0, 0]])
    out = fusion(text, text_atts, image, image_atts)
    text2, image2 = text.clone(), image.clone()
    text2[:, 4:] = torch.randn(1, 2, 32)
    image2[:, 5:] = torch.randn(1, 4, 24)
    out2 = fusion(text2, text_atts, image2, image_atts)
    torch.testing.assert_close(out[:, :4], out2[:, :4])


def test_default_image_mask_attends_everywhere(fusion):
    text, image = torch.randn(2, 4, 32), torch.randn(2, 3, 24)
    atts = torch.ones(2, 4, dtype=torch.long)
    torch.testing.assert_close(fusion(text, atts, image), fusion(text, atts, image, torch.ones(2, 3)))


def test_image_index_equals_gathered_images_in_values_and_gradients(fusion):
    torch.manual_seed(3)
    text = torch.randn(5, 4, 32, requires_grad=True)
    text_atts = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    images = torch.randn(3, 6, 24, requires_grad=True)
    image_atts = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 0]])
    index = torch.tensor([2, 0, 0, 1, 2])  # images repeated and reordered, image 1 once
    indexed = fusion(text, text_atts, images, image_atts, image_index=index)
    (grad_text_indexed, grad_images_indexed) = torch.autograd.grad(indexed.square().sum(), (text, images))
    gathered = fusion(text, text_atts, images[index], image_atts[index])
    (grad_text_gathered, grad_images_gathered) = torch.autograd.grad(gathered.square().sum(), (text, images))
    torch.testing.assert_close(indexed, gathered)
    torch.testing.assert_close(grad_text_indexed, grad_text_gathered)
    torch.testing.assert_close(grad_images_indexed, grad_images_gathered)
    without_atts = fusion(text, text_atts, images, image_index=index)
    torch.testing.assert_close(without_atts, fusion(text, text_atts, images[index]))


def test_context_groups_stack_rows_by_image_and_back():
    index = torch.tensor([2, 0, 0, 1, 2])  # image 0 twice, image 1 once, image 2 twice; image 3 never
    groups = ContextGroups.of(index, num_contexts=4)
    assert groups.capacity == 2
    assert groups.stack_context.tolist() == [0, 1, 2]  # no stack for the unused image
    assert not groups.one_per_context
    assert groups.slot.tolist() == [4, 0, 1, 2, 5]  # stack * capacity + rank in it, in row order
    rows = torch.arange(1.0, 6.0)[:, None, None].expand(5, 3, 2)  # row b filled with b + 1; (B=5, L=3, D=2)
    stacked = groups.stack(rows)  # (S=3, C*L=6, D=2)
    assert stacked.shape == (3, 6, 2)
    assert stacked[:, ::3, 0].tolist() == [[2, 3], [4, 0], [1, 5]]  # first token of each slot
    torch.testing.assert_close(groups.unstack(stacked, 3), rows)
    per_image = torch.arange(4.0)[:, None]  # (U, 1)
    assert groups.contexts(per_image).flatten().tolist() == [0, 1, 2]


def test_context_groups_split_a_crowded_image_over_stacks():
    index = torch.tensor([0, 0, 1, 0, 0, 0, 0, 0])  # 7 rows on image 0 of 4: capacity 2 * ceil(8 / 4) = 4
    groups = ContextGroups.of(index, num_contexts=4)
    assert groups.capacity == 4
    assert groups.stack_context.tolist() == [0, 0, 1]
    assert groups.slot.tolist() == [0, 1, 8, 2, 3, 4, 5, 6]  # image 0: stack 0 (4 rows) then stack 1 (3)
    rows = torch.randn(8, 2, 3)
    torch.testing.assert_close(groups.unstack(groups.stack(rows), 2), rows)
    assert ContextGroups.of(torch.tensor([1, 0, 1]), num_contexts=2).one_per_context


def test_crowded_image_index_equals_gathered_images(fusion):
    torch.manual_seed(4)
    text, text_atts = torch.randn(8, 4, 32), torch.ones(8, 4, dtype=torch.long)
    images = torch.randn(4, 6, 24, requires_grad=True)
    image_atts = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 0], [1, 1, 0, 0, 1, 1]])
    index = torch.tensor([0, 0, 1, 0, 0, 0, 0, 0])  # image 0 split over two stacks, images 2 and 3 unused
    indexed = fusion(text, text_atts, images, image_atts, image_index=index)
    gathered = fusion(text, text_atts, images[index], image_atts[index])
    torch.testing.assert_close(indexed, gathered)
    torch.testing.assert_close(torch.autograd.grad(indexed.square().sum(), images)[0], torch.autograd.grad(gathered.square().sum(), images)[0])


def test_mlm_head_uses_the_given_tied_table(fusion):
    table = torch.randn(50, 32)
    logits = fusion.lm_head(torch.randn(3, 32), table)
    assert logits.shape == (3, 50)
    assert set(dict(fusion.lm_head.named_parameters())) == {"dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias", "bias"}


def test_key_names_follow_bert_layout(fusion):
    keys = set(fusion.state_dict())
    for expected in (
        "layer.0.attention.self.query.weight",
        "layer.0.attention.output.LayerNorm.weight",
        "layer.1.crossattention.self.key.weight",
        "layer.1.crossattention.output.dense.bias",
        "layer.1.intermediate.dense.weight",
        "layer.1.output.LayerNorm.bias",
    ):
        assert expected in keys
    assert fusion.layer[0].crossattention.self.key.in_features == 24
