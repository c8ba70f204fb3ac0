"""Activation checkpointing (model config ``activation_checkpointing``): same losses and gradients, blocks recomputed."""

import pytest
import torch

from xfm_pipeline.model import XFM, build_config

pytestmark = pytest.mark.integration  # two tiny models, forward and backward


def _loss_and_grads(model: XFM) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(1)  # the same dropout masks in both models (checkpoint replays the RNG state on recompute)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 64, 64, generator=g)
    ids = torch.randint(1000, 5000, (2, 8), generator=g)
    atts = torch.ones_like(ids)
    image_embeds = model.encode_image(images)
    fused = model.fuse(model.encode_text(ids, atts), atts, image_embeds)
    loss = fused.pow(2).mean() + image_embeds.pow(2).mean()
    loss.backward()
    return loss.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def _count_block_forwards(model: XFM) -> dict[str, int]:
    """Calls of the self-attention inside every vision, text and fusion block (a recomputation in backward
    counts again; counted inside the block because transformers checkpoints the layer's own ``forward``)."""
    counts: dict[str, int] = {}
    blocks = {
        "vision": model.vision_encoder.blocks,
        "text": model.text_encoder.base_model.encoder.layer,
        "fusion": model.fusion_encoder.layer,
    }

    def counted(key, forward):
        def forward_and_count(*args, **kwargs):
            counts[key] += 1
            return forward(*args, **kwargs)

        return forward_and_count

    for name, layers in blocks.items():
        for i, block in enumerate(layers):
            attention = block.attn if name == "vision" else block.attention
            counts[f"{name}.{i}"] = 0
            attention.forward = counted(f"{name}.{i}", attention.forward)
    return counts


def test_checkpointed_blocks_give_the_same_loss_and_gradients_and_are_recomputed():
    torch.manual_seed(0)
    plain = XFM(build_config("tiny")).train()
    checkpointed = XFM(build_config("tiny", {"activation_checkpointing": True})).train()
    checkpointed.load_state_dict(plain.state_dict())
    plain_calls, checkpointed_calls = _count_block_forwards(plain), _count_block_forwards(checkpointed)
    loss, grads = _loss_and_grads(plain)
    loss_ckpt, grads_ckpt = _loss_and_grads(checkpointed)
    torch.testing.assert_close(loss_ckpt, loss)
    assert grads.keys() == grads_ckpt.keys()
    for key, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[key], grad, rtol=1e-4, atol=1e-6)
    assert len(plain_calls) == 4 + 6 + 2  # tiny: 4 vision, 6 MiniLM text, 2 fusion blocks
    assert set(plain_calls.values()) == {1} and set(checkpointed_calls.values()) == {2}  # forward + recompute


def test_activation_checkpointing_only_applies_in_training():
    model = XFM(build_config("tiny", {"activation_checkpointing": True})).eval()
    with torch.no_grad():
        assert model.encode_image(torch.randn(1, 3, 64, 64)).shape == (1, 65, 192)
