"""Causal cross-attention decoder for answer ranking (VQA) and caption generation (docs/xfm.md#decoders).

    ids (B, L) -> embeddings (word + position + type, LN) -> N x [causal self-attn -> Add&LN ->
    cross-attn(context) -> Add&LN -> FFN -> Add&LN] -> MLM-style head tied to the word table -> (B, L, V)

The layers are :class:`~xfm_pipeline.model.fusion.FusionLayer` (post-LN, BERT key names), so
:meth:`CausalDecoder.from_xfm` initialises them by copying the fusion encoder's layers, as X-FM does for
its VQA decoder. Two deliberate differences from the official code (docs/xfm.md#decoders):

* the embedding block comes from the fusion encoder's own block when the model has one (official weights,
  ``fusion.word_embeddings: own``: the official decoder copies it, trained word table and never-trained
  position/type embeddings and LayerNorm alike), and from the TEXT encoder otherwise;
* the context can be any width: the cross-attention key/value projections take ``context_width`` inputs.
  They are copied from the fusion layers when the widths agree (image tokens for captioning) and freshly
  initialised otherwise (e.g. the tiny preset's 384-wide question states vs 192-wide image tokens).

Pure PyTorch: beam search and answer ranking live here too, as functions of tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xfm_pipeline.model.config import FusionConfig
from xfm_pipeline.model.embeddings import TokenEmbeddings, position_offset
from xfm_pipeline.model.fusion import FusionLayer, MLMHead
from xfm_pipeline.model.heads import init_weights


class CausalDecoder(nn.Module):
    """A causal transformer decoder with cross-attention to a context sequence and a tied LM head."""

    def __init__(self, config: FusionConfig, width: int, context_width: int, vocab_size: int, max_positions: int, position_offset: int = 0):
        super().__init__()
        self.config = config
        self.embeddings = TokenEmbeddings(vocab_size, width, max_positions, position_offset, config.layer_norm_eps, config.dropout)
        self.layer = nn.ModuleList(FusionLayer(config, width, context_width) for _ in range(config.num_layers))
        self.lm_head = MLMHead(width, vocab_size, config.layer_norm_eps)
        init_weights(self)

    @classmethod
    def from_xfm(cls, xfm: nn.Module, context_width: int) -> CausalDecoder:
        """A decoder initialised from an X-FM model: layers, LM head and (official weights) embedding block from
        the fusion encoder; embeddings from the text encoder when the fusion encoder has none. Cross-attention
        key/value weights are copied only when ``context_width`` equals the fusion encoder's image width
        (otherwise they keep their fresh N(0, 0.02) init)."""
        text_cfg = xfm.text_encoder.config
        width = text_cfg.hidden_size
        decoder = cls(xfm.config.fusion, width, context_width, text_cfg.vocab_size, text_cfg.max_position_embeddings, position_offset(text_cfg))
        if not hasattr(xfm.fusion_encoder, "embeddings"):
            decoder.embeddings.copy_from_hf(xfm.text_encoder.base_model.embeddings)
        fusion_state = xfm.fusion_encoder.state_dict()  # embeddings.* included when the fusion encoder has them
        own = decoder.state_dict()
        mismatched = {k.rsplit(".", 1)[0] for k, v in fusion_state.items() if k in own and own[k].shape != v.shape}
        copy = {k: v for k, v in fusion_state.items() if k in own and k.rsplit(".", 1)[0] not in mismatched}
        decoder.load_state_dict(copy, strict=False)
        decoder.fresh_keys = sorted(k for k in own if k not in copy and not k.startswith("embeddings."))  # Task.new_parameters
        return decoder

    @staticmethod
    def self_mask(attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) 1/0 padding mask -> (B, 1, L, L) bool: causal AND key not padding."""
        length = attention_mask.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=attention_mask.device).tril()
        return causal[None, None] & attention_mask.bool()[:, None, None, :]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, context: torch.Tensor, context_atts: torch.Tensor) -> torch.Tensor:
        """Decoder states.

        Args:
            input_ids: (B, L) token ids, ``[CLS]/<s>`` first, right-padded.
            attention_mask: (B, L) 1 on real tokens.
            context: (B, M, Dc) states to cross-attend to (question states or image tokens).
            context_atts: (B, M) 1 = attend (the real question padding mask, at train AND eval time).

        Returns:
            (B, L, D) hidden states; position t predicts token t+1.
        """
        x = self.embeddings(input_ids)  # (B, L, D)
        mask = self.self_mask(attention_mask)  # (B, 1, L, L)
        context_mask = context_atts.bool()[:, None, None, :]  # (B, 1, 1, M)
        for layer in self.layer:
            x = layer(x, mask, context, context_mask)
        return x

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., V) through the head tied to the decoder's word table."""
        return self.lm_head(hidden, self.embeddings.word_embeddings.weight)

    def token_logprobs(self, input_ids, attention_mask, context, context_atts) -> torch.Tensor:
        """(B, L-1) log p(token t+1 | tokens <= t, context) of the given sequences (teacher forcing)."""
        logits = self.logits(self(input_ids, attention_mask, context, context_atts)[:, :-1])  # (B, L-1, V)
        return logits.log_softmax(-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)


# ------------------------------------------------------------------------------------------ losses
def sequence_nll(decoder: CausalDecoder, input_ids, attention_mask, context, context_atts, labels_mask=None, label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-sequence SUM of token NLL under teacher forcing -> (B,).

    ``labels_mask`` (B, L) marks the target tokens (default: every real token after the first); the first
    token is the start token and is never a target.
    """
    targets = input_ids[:, 1:]  # (B, L-1)
    keep = (attention_mask if labels_mask is None else labels_mask)[:, 1:].bool()
    logits = decoder.logits(decoder(input_ids, attention_mask, context, context_atts)[:, :-1])  # (B, L-1, V)
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none", label_smoothing=label_smoothing)  # (B, L-1)
    return (nll * keep).sum(1)


# ------------------------------------------------------------------------------------------ ranking
@torch.no_grad()
def rank_answers(decoder: CausalDecoder, context, context_atts, answer_ids, answer_atts, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick the most likely candidate answer per question (docs/xfm.md#fix-vqa-decoder-and-ranking).

    1. one decoder step from the start token gives p(first token) of every candidate;
    2. keep the top ``k`` candidates by that probability;
    3. score each = full-sequence log-likelihood (first token counted once), padding masked.

    Args:
        context: (B, M, D) question states; context_atts: (B, M) their real padding mask.
        answer_ids, answer_atts: (A, La) candidates tokenised as ``[CLS] answer [SEP]``.

    Returns:
        (B,) index of the chosen candidate and (B,) its log-likelihood.
    """
    top, scores = score_answers(decoder, context, context_atts, answer_ids, answer_atts, k)
    best = scores.argmax(1)
    return top.gather(1, best[:, None]).squeeze(1), scores.gather(1, best[:, None]).squeeze(1)


def score_answers(decoder: CausalDecoder, context, context_atts, answer_ids, answer_atts, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1-3 of :func:`rank_answers`: (B, k) candidate indices (by first-token probability) and (B, k)
    their full-sequence log-likelihoods, in that candidate order (not sorted by likelihood)."""
    b, a = context.shape[0], answer_ids.shape[0]
    k = max(1, min(k, a))
    start = answer_ids[:1, :1].expand(b, 1)  # (B, 1) start token
    first = decoder.logits(decoder(start, torch.ones_like(start), context, context_atts)[:, 0]).log_softmax(-1)  # (B, V)
    first_token = first.gather(1, answer_ids[:, 1][None].expand(b, a))  # (B, A) log p(first answer token)
    top_first, top = first_token.topk(k, dim=1)  # (B, k)
    scores = top_first.clone()
    if answer_ids.shape[1] > 2:  # the remaining tokens: teacher forcing over the top-k candidates
        ids = answer_ids[top].flatten(0, 1)  # (B*k, La)
        atts = answer_atts[top].flatten(0, 1)
        hidden = decoder(ids, atts, context.repeat_interleave(k, 0), context_atts.repeat_interleave(k, 0))  # (B*k, La, D)
        keep = atts[:, 2:].bool()  # targets 2.. (the first token was scored above: counted once)
        logits = decoder.logits(hidden[:, 1:-1][keep])  # (P, V), only real target positions
        logp = logits.log_softmax(-1).gather(1, ids[:, 2:][keep][:, None]).squeeze(1)  # (P,)
        rest = torch.zeros(keep.shape, dtype=logp.dtype, device=logp.device)
        rest[keep] = logp
        scores = scores + rest.sum(1).view(b, k)
    return top, scores


# ------------------------------------------------------------------------------------------ generation
@dataclass
class BeamConfig:
    """Beam-search settings (captioning: beam 3, 20 new tokens max, 5 min; docs/xfm.md#captioning)."""

    beam_size: int = 3  # 1 = greedy
    max_len: int = 20  # generated tokens, the prompt not counted
    min_len: int = 5  # end token forbidden before this many generated tokens
    length_penalty: float = 1.0  # finished score = sum log p / length ** length_penalty


@torch.no_grad()
def beam_search(
    decoder: CausalDecoder, prompt_ids: torch.Tensor, context: torch.Tensor, context_atts: torch.Tensor, eos_id: int, pad_id: int, config: BeamConfig
) -> list[list[int]]:
    """Batched beam search (recomputes the prefix each step; no cache).

    Args:
        prompt_ids: (P,) start token + prompt tokens, shared by every image.
        context: (B, M, Dc) image tokens; context_atts: (B, M).

    Returns:
        per image, the generated token ids (prompt and end token excluded) of the best hypothesis.
    """
    b, k, device = context.shape[0], config.beam_size, context.device
    seqs = prompt_ids.to(device)[None].expand(b * k, -1).clone()  # (B*K, P)
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # only the first beam is alive at the start
    ctx = context.repeat_interleave(k, 0)
    ctx_atts = context_atts.repeat_interleave(k, 0)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    done = [False] * b
    p = prompt_ids.numel()
    for step in range(config.max_len):
        hidden = decoder(seqs, torch.ones_like(seqs), ctx, ctx_atts)[:, -1]  # (B*K, D)
        logp = decoder.logits(hidden).float().log_softmax(-1)  # (B*K, V)
        logp[:, pad_id] = float("-inf")
        if step < config.min_len:
            logp[:, eos_id] = float("-inf")
        vocab = logp.shape[1]
        total = (scores.view(-1, 1) + logp).view(b, k * vocab)  # (B, K*V)
        top_scores, top_idx = total.topk(2 * k, dim=1)  # (B, 2K)
        top_scores, top_idx = top_scores.tolist(), top_idx.tolist()
        new_rows, new_tokens, new_scores = [], [], []
        for i in range(b):
            rows, toks, scs = [], [], []
            for s, idx in zip(top_scores[i], top_idx[i], strict=True):
                beam, tok = divmod(idx, vocab)
                if s == float("-inf"):
                    break
                if done[i]:
                    break
                if tok == eos_id:
                    generated = seqs[i * k + beam, p:].tolist()
                    finished[i].append((s / max(1, len(generated) + 1) ** config.length_penalty, generated))
                    continue
                rows.append(i * k + beam)
                toks.append(tok)
                scs.append(s)
                if len(rows) == k:
                    break
            finished[i].sort(key=lambda h: -h[0])
            del finished[i][k:]
            if len(finished[i]) >= k and (not scs or scs[0] / (step + 1) ** config.length_penalty <= finished[i][-1][0]):
                done[i] = True
            while len(rows) < k:  # dead slots: copy a row, score -inf
                rows.append(i * k)
                toks.append(pad_id)
                scs.append(float("-inf"))
            new_rows += rows
            new_tokens += toks
            new_scores += scs
        if all(done):
            break
        seqs = torch.cat([seqs[torch.tensor(new_rows, device=device)], torch.tensor(new_tokens, device=device)[:, None]], 1)
        scores = torch.tensor(new_scores, device=device).view(b, k)
    out = []
    for i in range(b):
        hyps = list(finished[i])
        if not done[i]:  # reached max_len: the live beams count as hypotheses too
            for j in range(k):
                s = scores[i, j].item()
                if s > float("-inf"):
                    generated = seqs[i * k + j, p:].tolist()
                    hyps.append((s / max(1, len(generated)) ** config.length_penalty, generated))
        hyps.sort(key=lambda h: -h[0])
        out.append(hyps[0][1] if hyps else [])
    return out
