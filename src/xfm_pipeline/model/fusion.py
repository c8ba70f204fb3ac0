"""Fusion encoder: post-LN layers of self-attention, cross-attention to image tokens and FFN (docs/xfm.md#fusion-encoder).

Key names follow BERT/RoBERTa (``attention.self.query``, ``crossattention.output.LayerNorm``,
``intermediate.dense``, ``output.dense`` ...) so the official ``fusion_encoder.roberta.encoder.layer.*``
weights map one to one. The input is the text encoder's last hidden state, never token ids: with
``word_embeddings: "own"`` (official weights) the encoder holds the official embedding block only as the
MLM decoder's word table and as the starting point of the decoders (``decoder.CausalDecoder.from_xfm``).
Attention runs through ``torch.nn.functional.scaled_dot_product_attention``, except when attention dropout
is on in training on CPU (see :func:`attend`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xfm_pipeline.model.config import FusionConfig
from xfm_pipeline.model.dropout import Dropout, dropout
from xfm_pipeline.model.embeddings import TokenEmbeddings


class _QKV(nn.Module):
    """Query from the sequence, key/value from a context of possibly different width."""

    def __init__(self, width: int, context_width: int):
        super().__init__()
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(context_width, width)
        self.value = nn.Linear(context_width, width)


class _AddNorm(nn.Module):
    """dense -> dropout -> residual add -> LayerNorm (post-LN)."""

    def __init__(self, in_width: int, width: int, dropout: float, eps: float):
        super().__init__()
        self.dense = nn.Linear(in_width, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)
        self.dropout = Dropout(dropout)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, dropout_p: float) -> torch.Tensor:
    """Scaled dot-product attention: (B, H, L, d) queries x (B, H, M, d) keys/values -> (B, H, L, d).

    ``mask`` (B, 1, 1, M) bool, True = attend, or None. SDPA, except with attention dropout on CPU: there
    SDPA takes its math path (it rescales the keys, guards fully masked rows and draws its dropout mask
    element by element), so the product, softmax and :func:`~xfm_pipeline.model.dropout.dropout` are
    spelled out. Masked keys get the dtype's lowest value rather than -inf (rows are never fully masked
    here: the text's first token and the image's token 0 are always attended).
    """
    if dropout_p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)  # (B, H, L, M)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return dropout(scores.softmax(dim=-1), dropout_p) @ v


class Attention(nn.Module):
    """Multi-head attention block with post-LN output; self-attention when ``context`` is ``x``."""

    def __init__(self, width: int, context_width: int, num_heads: int, dropout: float, eps: float):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.attn_dropout = dropout
        self.self = _QKV(width, context_width)
        self.output = _AddNorm(width, width, dropout, eps)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)  # (B, H, n, d/H)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        context_mask: torch.Tensor | None,
        groups: ContextGroups | None = None,
    ) -> torch.Tensor:
        """x: (B, L, D); context: (B, M, Dc), or (U, M, Dc) with ``groups`` saying which context each row
        attends to; context_mask: (B|U, 1, 1, M) bool aligned with ``context``, True = attend, or None =
        attend everywhere."""
        k, v = self._heads(self.self.key(context)), self._heads(self.self.value(context))  # (B|U, H, M, D/H)
        q = self.self.query(x)  # (B, L, D)
        if groups is not None:
            q = groups.stack(q)  # (S, C*L, D)
            k, v = groups.contexts(k), groups.contexts(v)  # (S, H, M, D/H)
            context_mask = None if context_mask is None else groups.contexts(context_mask)  # (S, 1, 1, M)
        out = attend(self._heads(q), k, v, context_mask, self.attn_dropout if self.training else 0.0)
        out = out.transpose(1, 2).flatten(2)  # (B, L, D) or (S, C*L, D)
        if groups is not None:
            out = groups.unstack(out, x.shape[1])  # (B, L, D)
        return self.output(out, x)


@dataclass(frozen=True)
class ContextGroups:
    """Text rows grouped by the image they cross-attend to.

    Queries never interact in cross-attention, so the rows that attend to one image can be stacked along
    the query axis and attend in one product with that image's keys and values: a few products of C*L
    queries against M keys, instead of B products against B gathered copies of the keys (ITM and
    image-conditioned MLM fuse each image 3-6 times). Stacks hold C rows, the largest group but at most
    twice the mean (a hard negative that many texts pick is split over several stacks of its image), so
    the zero-padded queries, never read back, stay under 2B rows.
    """

    slot: torch.Tensor  # (B,) long: row b's place in the (S*C) stack rows
    stack_context: torch.Tensor  # (S,) long: the context of each stack
    capacity: int  # C, rows per stack
    one_per_context: bool  # every context holds rows and fits one stack: stack_context == arange(U)

    @classmethod
    def of(cls, index: torch.Tensor, num_contexts: int) -> ContextGroups:
        """Groups of ``index`` (B,) long in [0, U)."""
        counts = torch.bincount(index, minlength=num_contexts)  # (U,)
        capacity = min(int(counts.max()), 2 * -(-index.numel() // num_contexts))  # C <= 2 ceil(B/U)
        order = torch.argsort(index, stable=True)  # rows sorted by context
        starts = counts.cumsum(0) - counts  # (U,) first sorted position of each context
        rank = torch.empty_like(index)  # (B,) place of each row within its context's rows
        rank[order] = torch.arange(index.numel(), device=index.device) - starts[index[order]]
        stacks = (counts + capacity - 1) // capacity  # (U,) stacks per context
        first = stacks.cumsum(0) - stacks  # (U,) first stack of each context
        slot = (first[index] + rank // capacity) * capacity + rank % capacity
        stack_context = torch.repeat_interleave(torch.arange(num_contexts, device=index.device), stacks)
        return cls(slot, stack_context, capacity, bool((stacks == 1).all()))

    def contexts(self, x: torch.Tensor) -> torch.Tensor:
        """(U, ...) per-context tensor -> (S, ...) per stack (``x`` itself when each context is one stack)."""
        return x if self.one_per_context else x.index_select(0, self.stack_context)

    def stack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) rows -> (S, C*L, D): each stack's rows one after another, zero-padded."""
        _, length, d = x.shape
        num_stacks = self.stack_context.numel()
        stacked = x.new_zeros(num_stacks * self.capacity, length, d).index_copy(0, self.slot, x)
        return stacked.view(num_stacks, self.capacity * length, d)

    def unstack(self, y: torch.Tensor, length: int) -> torch.Tensor:
        """(S, C*L, D) -> (B, L, D), the inverse of :meth:`stack` on the real rows."""
        return y.reshape(-1, length, y.shape[-1]).index_select(0, self.slot)


class _Intermediate(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.dense = nn.Linear(width, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class FusionLayer(nn.Module):
    """self-attn(text) -> Add&LN -> cross-attn(text -> image) -> Add&LN -> FFN -> Add&LN."""

    def __init__(self, config: FusionConfig, width: int, image_width: int):
        super().__init__()
        c = config
        self.attention = Attention(width, width, c.num_heads, c.dropout, c.layer_norm_eps)
        self.crossattention = Attention(width, image_width, c.num_heads, c.dropout, c.layer_norm_eps)
        self.intermediate = _Intermediate(width, c.intermediate_size)
        self.output = _AddNorm(c.intermediate_size, width, c.dropout, c.layer_norm_eps)

    def forward(self, x, text_mask, image_embeds, image_mask, image_groups=None):
        x = self.attention(x, x, text_mask)  # (B, L, D)
        x = self.crossattention(x, image_embeds, image_mask, image_groups)  # (B, L, D)
        return self.output(self.intermediate(x), x)


class MLMHead(nn.Module):
    """dense -> GELU -> LayerNorm -> decoder tied to a word-embedding table, plus its own bias."""

    def __init__(self, width: int, vocab_size: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.layer_norm = nn.LayerNorm(width, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """hidden: (..., D); word_embeddings: (V, D) -> logits (..., V)."""
        h = self.layer_norm(F.gelu(self.dense(hidden)))
        return F.linear(h, word_embeddings, self.bias)


class FusionEncoder(nn.Module):
    """A stack of :class:`FusionLayer` over text hidden states, with an MLM head (image-conditioned MLM)."""

    def __init__(self, config: FusionConfig, width: int, image_width: int, vocab_size: int, max_positions: int = 0, position_offset: int = 0):
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList(FusionLayer(config, width, image_width) for _ in range(config.num_layers))
        self.lm_head = MLMHead(width, vocab_size, config.layer_norm_eps)
        if config.word_embeddings == "own":  # official X-FM: word table = MLM decoder; position/type/LN never used
            self.embeddings = TokenEmbeddings(vocab_size, width, max_positions, position_offset, config.layer_norm_eps, config.dropout)
            nn.init.normal_(self.embeddings.word_embeddings.weight, std=0.02)  # transformers' init of a fresh RoBERTa
            nn.init.normal_(self.embeddings.position_embeddings.weight, std=0.02)
        self.gradient_checkpointing = False  # set by XFM.set_activation_checkpointing (model config activation_checkpointing)

    def forward(
        self,
        text_embeds: torch.Tensor,
        text_atts: torch.Tensor,
        image_embeds: torch.Tensor,
        image_atts: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fuse text states with image tokens.

        Args:
            text_embeds: (B, L, D) text-encoder last hidden state.
            text_atts: (B, L) 1 for real tokens, 0 for padding.
            image_embeds: (B, M, Dv) image tokens (M = 1+N), one per text row; or (U, M, Dv) distinct
                images with ``image_index``.
            image_atts: optional mask aligned with ``image_embeds`` ((B|U, M), 1 = attend; region masks);
                default all ones.
            image_index: optional (B,) long, the ``image_embeds`` row each text row attends to. Equal to
                passing ``image_embeds[image_index]``, but every layer projects the cross-attention keys
                and values of the U images once instead of B times, and the rows of one image attend to
                it together (:class:`ContextGroups`).

        Returns:
            (B, L, D) fused states; index 0 is the fusion CLS.
        """
        text_mask = text_atts.bool()[:, None, None, :]  # (B, 1, 1, L)
        image_mask = None if image_atts is None else image_atts.bool()[:, None, None, :]  # (B|U, 1, 1, M)
        groups = None if image_index is None else ContextGroups.of(image_index, image_embeds.shape[0])
        x = text_embeds
        for layer in self.layer:
            if self.gradient_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(layer, x, text_mask, image_embeds, image_mask, groups, use_reentrant=False)
            else:
                x = layer(x, text_mask, image_embeds, image_mask, groups)
        return x
