"""Image-text matching with in-batch hard negatives (ITM, docs/xfm.md#itm).

For every pair b of the local batch one hard negative text is drawn for image b and one hard negative
image for text b, with probabilities softmax(similarity) over the local batch (positives excluded). The
fusion encoder then scores B positives and up to 2B negatives in one call.

Degenerate rows: a row whose every candidate is a positive (a batch of one pair, or all pairs sharing
one ``idx``) has no negative. ``sample_hard_negatives`` returns ``NO_NEGATIVE`` (-1) there and
``itm_loss`` drops those negative pairs: the loss is CE over the B positives and the negatives that
exist (positives only, if none exists).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

NO_NEGATIVE = -1  # index returned for a row that has no valid negative
_WEIGHT_FLOOR = 1e-5  # added to softmax weights (as X-FM does) so rows never underflow to all zeros


def positive_mask(batch_size: int, idx: torch.Tensor | None = None, device=None) -> torch.Tensor:
    """(B, B) bool: True where column j is a positive of row i (the diagonal, plus ``idx[i] == idx[j]``)."""
    if idx is None:
        return torch.eye(batch_size, dtype=torch.bool, device=device)
    idx = idx.view(-1)
    return idx.view(-1, 1) == idx.view(1, -1)


def _sample_rows(sim: torch.Tensor, positives: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One column per row of ``sim`` (B, B) ~ softmax(row) restricted to non-positives; -1 if none."""
    weights = F.softmax(sim.float(), dim=1) + _WEIGHT_FLOOR  # (B, B)
    weights = weights.masked_fill(positives, 0.0)
    has_negative = ~positives.all(dim=1)  # (B,)
    weights[~has_negative] = 1.0  # placeholder so multinomial accepts the row; overwritten below
    choice = torch.multinomial(weights, 1, generator=generator).squeeze(1)  # (B,)
    return choice.masked_fill(~has_negative, NO_NEGATIVE)


@torch.no_grad()
def sample_hard_negatives(
    sim_i2t: torch.Tensor,
    sim_t2i: torch.Tensor,
    idx: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one hard negative text per image and one hard negative image per text (vectorised).

    Args:
        sim_i2t: (B, B) local image-to-text logits (row = image, column = text).
        sim_t2i: (B, B) local text-to-image logits (row = text, column = image), usually ``sim_i2t.t()``.
        idx: optional (B,) ids; entries sharing the row's id are positives and never drawn.
        generator: RNG for ``torch.multinomial`` (on the device of the sims); None = global RNG.

    Returns:
        ``(neg_text_for_image, neg_image_for_text)``, each (B,) long; ``NO_NEGATIVE`` where a row has none.
    """
    b = sim_i2t.shape[0]
    if sim_i2t.shape != (b, b) or sim_t2i.shape != (b, b):
        shapes = f"{tuple(sim_i2t.shape)} and {tuple(sim_t2i.shape)}"
        raise ValueError(f"expected two (B, B) local similarity matrices, got {shapes}")
    positives = positive_mask(b, idx, sim_i2t.device)  # symmetric
    neg_text_for_image = _sample_rows(sim_i2t, positives, generator)
    neg_image_for_text = _sample_rows(sim_t2i, positives, generator)
    return neg_text_for_image, neg_image_for_text


class ITMOutput(NamedTuple):
    loss: torch.Tensor  # scalar CE over positives and negatives
    accuracy: torch.Tensor  # scalar, detached: fraction of pairs classified correctly (for logging)


class ITMPairs(NamedTuple):
    """The T = B + n1 + n2 (text, image) pairs ITM fuses: B positives, n1 (negative image, text b) and
    n2 (image b, negative text)."""

    text_index: torch.Tensor  # (T,) long, text row of each pair
    image_index: torch.Tensor  # (T,) long, image row of each pair
    labels: torch.Tensor  # (T,) long, 1 = match (the first B), 0 = negative


def itm_pairs(
    sim_i2t: torch.Tensor,
    sim_t2i: torch.Tensor,
    idx: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> ITMPairs:
    """The positives and hard negatives ITM fuses (arguments as in :func:`sample_hard_negatives`)."""
    b = sim_i2t.shape[0]
    neg_text, neg_image = sample_hard_negatives(sim_i2t, sim_t2i, idx, generator)  # (B,), (B,)
    rows = torch.arange(b, device=sim_i2t.device)
    texts_with_neg = rows[neg_image != NO_NEGATIVE]  # (n1,) text rows paired with a negative image
    images_with_neg = rows[neg_text != NO_NEGATIVE]  # (n2,) image rows paired with a negative text
    text_index = torch.cat([rows, texts_with_neg, neg_text[images_with_neg]])  # (T,)
    image_index = torch.cat([rows, neg_image[texts_with_neg], images_with_neg])  # (T,)
    labels = torch.zeros(text_index.shape[0], dtype=torch.long, device=sim_i2t.device)
    labels[:b] = 1
    return ITMPairs(text_index, image_index, labels)


def itm_head_loss(model, fused: torch.Tensor, labels: torch.Tensor) -> ITMOutput:
    """CE of the ITM head on fused pairs: (T, L, Dt) fusion output and (T,) labels -> ITMOutput."""
    logits = model.itm_logits(fused)  # (T, 2)
    loss = F.cross_entropy(logits, labels)
    accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
    return ITMOutput(loss, accuracy)


def itm_loss(
    model,
    image_embeds: torch.Tensor,
    image_atts: torch.Tensor | None,
    text_embeds: torch.Tensor,
    text_atts: torch.Tensor,
    sim_i2t: torch.Tensor,
    sim_t2i: torch.Tensor,
    idx: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> ITMOutput:
    """ITM loss: fusion over [positives; (negative image, text); (image, negative text)] in one call.

    Args:
        model: an ``XFM`` (uses ``fuse`` and ``itm_logits``).
        image_embeds: (B, 1+N, Dv) image tokens of each pair.
        image_atts: (B, 1+N) cross-attention mask of each pair's image (regions), or None = all ones.
        text_embeds: (B, L, Dt) text-encoder states (pass ``.detach()`` for X-FM's stop-gradient).
        text_atts: (B, L) text padding mask.
        sim_i2t, sim_t2i, idx, generator: as in :func:`sample_hard_negatives`.

    Returns:
        ITMOutput(loss, accuracy); labels are 1 for the B positives, 0 for the negatives.
    """
    pairs = itm_pairs(sim_i2t, sim_t2i, idx, generator)
    # The fusion projects each of the B images once and indexes them per pair (image_index).
    fused = model.fuse(text_embeds[pairs.text_index], text_atts[pairs.text_index], image_embeds, image_atts, image_index=pairs.image_index)  # (T, L, Dt)
    return itm_head_loss(model, fused, pairs.labels)
