"""Masked language modelling: image-conditioned (fusion) MLM and text-only MLM (docs/xfm.md#mlm).

Targets come from ``data.masking.TextMasker``: ``masked_pos`` (B, M) positions padded with 0 and
``masked_ids`` (B, M) original ids padded with -100, so padded slots are ignored by the loss.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # masked_ids value of padding slots


def mlm_loss(logits: torch.Tensor, masked_ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the masked slots, ignoring ``masked_ids == -100``.

    Args:
        logits: (B, M, V) predictions at the masked positions.
        masked_ids: (B, M) original token ids, -100 on padding slots.

    Returns:
        Scalar mean over the real slots; 0 (still attached to ``logits``) when there is none, where
        ``F.cross_entropy(reduction="mean")`` would return NaN. No host synchronisation.
    """
    flat_logits = logits.reshape(-1, logits.shape[-1]).float()  # (B*M, V)
    flat_ids = masked_ids.reshape(-1)  # (B*M,)
    total = F.cross_entropy(flat_logits, flat_ids, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (flat_ids != IGNORE_INDEX).sum().clamp(min=1)


def gather_positions(hidden: torch.Tensor, masked_pos: torch.Tensor) -> torch.Tensor:
    """Pick the hidden states at the masked positions: (B, L, D) x (B, M) -> (B, M, D)."""
    index = masked_pos.long().unsqueeze(-1).expand(-1, -1, hidden.shape[-1])  # (B, M, D)
    return torch.gather(hidden, 1, index)


def fusion_mlm_text(model, text_ids_masked: torch.Tensor, text_atts: torch.Tensor, detach_text: bool = True) -> torch.Tensor:
    """The text-encoder pass of image-conditioned MLM: (B, L) masked ids -> (B, L, Dt) states.

    With ``detach_text`` (the paper's stop-gradient, docs/xfm.md#stop-gradient) it runs without gradient, so the MLM
    loss trains the fusion and vision encoders only. (The fusion MLM decoder is tied to the text word
    embeddings in this model, which therefore still receive its gradient.)
    """
    with torch.no_grad() if detach_text else nullcontext():
        return model.encode_text(text_ids_masked, text_atts)


def fusion_mlm_head_loss(model, fused: torch.Tensor, masked_pos: torch.Tensor, masked_ids: torch.Tensor) -> torch.Tensor:
    """CE of the fusion MLM head at the masked positions of (B, L, Dt) fused states."""
    logits = model.fusion_mlm_logits(gather_positions(fused, masked_pos))  # (B, M, V)
    return mlm_loss(logits, masked_ids)


def fusion_mlm_loss(
    model,
    image_embeds: torch.Tensor,
    image_atts: torch.Tensor | None,
    text_ids_masked: torch.Tensor,
    text_atts: torch.Tensor,
    masked_pos: torch.Tensor,
    masked_ids: torch.Tensor,
    detach_text: bool = True,
) -> torch.Tensor:
    """Image-conditioned MLM: text encoder on the masked ids -> fusion with the image -> fusion MLM head.

    Args:
        model: an ``XFM`` (``encode_text``, ``fuse``, ``fusion_mlm_logits``).
        image_embeds: (B, 1+N, Dv) image tokens of each text.
        image_atts: (B, 1+N) cross-attention mask (regions) or None = all ones.
        text_ids_masked: (B, L) ids with masks applied; text_atts: (B, L).
        masked_pos: (B, M) long; masked_ids: (B, M) long, -100 padded.
        detach_text: the paper's stop-gradient (see :func:`fusion_mlm_text`).

    Returns:
        Scalar CE over the masked slots.
    """
    text_embeds = fusion_mlm_text(model, text_ids_masked, text_atts, detach_text)  # (B, L, Dt)
    fused = model.fuse(text_embeds, text_atts, image_embeds, image_atts)  # (B, L, Dt)
    return fusion_mlm_head_loss(model, fused, masked_pos, masked_ids)


def text_mlm_loss(
    model,
    text_ids_masked: torch.Tensor,
    text_atts: torch.Tensor,
    masked_pos: torch.Tensor,
    masked_ids: torch.Tensor,
) -> torch.Tensor:
    """Text-only MLM with the text encoder's own MLM head (no image; docs/xfm.md#mlm).

    Shapes as in :func:`fusion_mlm_loss`. Returns a scalar CE over the masked slots.
    """
    hidden = model.encode_text(text_ids_masked, text_atts)  # (B, L, Dt)
    logits = model.text_mlm_logits(gather_positions(hidden, masked_pos))  # (B, M, V)
    return mlm_loss(logits, masked_ids)
