"""Text and image masking for MLM and MIM (docs/xfm.md#masking).

``TextMasker`` picks the MLM targets of a tokenised batch: span ("skip-gram") masking over whole words,
80% ``[MASK]`` / 10% random token / 10% unchanged. Compared to X-FM's ``TextMaskingGenerator``
(docs/xfm.md#fix-text-masking):

* whole words work for any tokenizer: word boundaries come from the fast tokenizer's ``word_ids()`` when
  the caller has them, otherwise from the token strings (WordPiece ``##`` continuations, byte-level BPE
  ``Ġ`` / SentencePiece ``▁`` word starts). X-FM's ``##`` test silently never fired for RoBERTa;
* special tokens (``[CLS]``/``<s>``, ``[SEP]``/``</s>``, ``[PAD]``, ``[UNK]``, ``[MASK]``...) are never
  masked and never used as random replacements (X-FM could mask ``</s>`` and draw any vocabulary id);
* words are never split: X-FM kept a random subset of positions when spans overshot, cutting words and
  spans apart. Here a span stops before the word that would overshoot, so the count is ``n_pred`` except
  when only multi-token words longer than the remaining budget are left (then it is a little less);
* ``n_pred = min(max_masks, max(1, round(n * mask_prob)))`` with ``n`` the number of maskable
  (non-special) tokens; X-FM counted ``<s>`` and ``</s>`` in ``n``.

``BlockMaskGenerator`` is BEiT's block-wise MIM mask, returning exactly ``num_masking_patches`` cells.

Both take an explicit ``random.Random`` for reproducibility; without one they use the module-level
``random`` state, which PyTorch's DataLoader seeds differently in every worker.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # masked_ids padding (ignored by the MLM loss)
NOT_A_WORD = -1  # word id of special tokens and padding in word-id tensors


@dataclass(frozen=True)
class MaskedText:
    """MLM inputs and targets of a batch (tensors of docs/xfm.md#masking)."""

    text_ids_masked: torch.Tensor  # (B, L) text_ids with the masks applied
    masked_pos: torch.Tensor  # (B, max_masks) long, masked positions ascending, padded with 0
    masked_ids: torch.Tensor  # (B, max_masks) long, original ids at masked_pos, padded with -100


def _subword_marker(tokenizer: Any) -> tuple[str, str] | None:
    """How token strings mark words: ("continuation", "##") or ("start", "Ġ" / "▁"); None if unknown.

    Decided by which marker most vocabulary entries carry (WordPiece vocabularies are full of ``##``
    entries, byte-level BPE of ``Ġ``, SentencePiece of ``▁``).
    """
    counts = {"##": 0, "Ġ": 0, "▁": 0}
    for token in tokenizer.get_vocab():
        for marker in counts:
            if token.startswith(marker):
                counts[marker] += 1
    marker = max(counts, key=counts.get)
    if counts[marker] == 0:
        return None
    return ("continuation", marker) if marker == "##" else ("start", marker)


def encoding_word_ids(encoding: Any, length: int | None = None) -> torch.Tensor:
    """(B, L) word ids from a fast tokenizer's ``BatchEncoding`` (``NOT_A_WORD`` for specials/padding)."""
    batch = len(encoding["input_ids"])
    rows = [[NOT_A_WORD if w is None else w for w in encoding.word_ids(i)] for i in range(batch)]
    length = length if length is not None else max(len(r) for r in rows)
    return torch.tensor([r + [NOT_A_WORD] * (length - len(r)) for r in rows], dtype=torch.long)


class TextMasker:
    """Whole-word span masking for MLM (see the module docstring for the rules).

    Args:
        tokenizer: a transformers tokenizer with a mask token.
        mask_prob: fraction of the maskable tokens to predict (0.5 image-text/region, 0.15 text stream).
        max_masks: at most this many predictions per text; the width of ``masked_pos``/``masked_ids``.
        skipgram_prb: probability that a pick starts a span instead of a single word.
        skipgram_size: spans cover U{2..skipgram_size} consecutive words (tokens if not whole-word).
        mask_whole_word: mask every token of a picked word together.
    """

    def __init__(
        self,
        tokenizer: Any,
        mask_prob: float,
        max_masks: int,
        skipgram_prb: float = 0.2,
        skipgram_size: int = 3,
        mask_whole_word: bool = True,
    ):
        if not 0.0 < mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in (0, 1], got {mask_prob}")
        if max_masks < 1:
            raise ValueError(f"max_masks must be >= 1, got {max_masks}")
        if not 0.0 <= skipgram_prb <= 1.0:
            raise ValueError(f"skipgram_prb must be in [0, 1], got {skipgram_prb}")
        if skipgram_size < 1:
            raise ValueError(f"skipgram_size must be >= 1, got {skipgram_size}")
        if tokenizer.mask_token_id is None:
            raise ValueError(f"{type(tokenizer).__name__} has no mask token")
        self.tokenizer = tokenizer
        self.mask_prob = mask_prob
        self.max_masks = max_masks
        self.skipgram_prb = skipgram_prb
        self.skipgram_size = skipgram_size
        self.mask_whole_word = mask_whole_word
        self.mask_token_id = tokenizer.mask_token_id
        self.special_ids = frozenset(tokenizer.all_special_ids)
        self.replacement_ids = [i for i in range(len(tokenizer)) if i not in self.special_ids]
        self.marker = _subword_marker(tokenizer)
        self._starts_word = self._word_start_table()  # per token id: does the token start a new word?
        if mask_whole_word and self.marker is None:
            log.warning(
                "%s: no word-boundary markers in the vocabulary; tokens are masked independently unless word_ids are passed",
                type(tokenizer).__name__,
            )

    # ------------------------------------------------------------------ word boundaries
    def _word_start_table(self) -> list[bool]:
        """Per vocabulary id: does the token start a new word when it follows a non-special token?"""
        tokens = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        return [self._token_starts_word(token) for token in tokens]

    def _token_starts_word(self, token: str | None) -> bool:
        if self.marker is None or token is None:
            return True
        if self.marker[0] == "continuation":
            return not token.startswith(self.marker[1])
        return token.startswith(self.marker[1])

    def word_ids(self, text_ids: torch.Tensor, text_atts: torch.Tensor) -> torch.Tensor:
        """(B, L) word ids derived from the token strings (``NOT_A_WORD`` on specials and padding).

        Used when the caller has no ``BatchEncoding.word_ids()``. Differs from them only where a word
        and punctuation are written without a space (``Ġ``/``▁`` tokenizers then see one word).
        """
        return torch.tensor(self._word_rows(text_ids.tolist(), text_atts.tolist()), dtype=torch.long).reshape(text_ids.shape)

    def _word_rows(self, id_rows: list[list[int]], att_rows: list[list[int]]) -> list[list[int]]:
        """:meth:`word_ids` on nested lists (B rows of L)."""
        starts, specials = self._starts_word, self.special_ids
        out = []
        for ids, atts in zip(id_rows, att_rows, strict=True):
            row, word, previous_special = [], -1, True
            for token_id, att in zip(ids, atts, strict=True):
                if not att or token_id in specials:
                    row.append(NOT_A_WORD)
                    previous_special = True
                    continue
                if token_id < len(starts):
                    new_word = starts[token_id]
                else:  # an id beyond the vocabulary table
                    new_word = self._token_starts_word(self.tokenizer.convert_ids_to_tokens(token_id))
                word += int(previous_special or new_word)
                row.append(word)
                previous_special = False
            out.append(row)
        return out

    def _units(self, ids: Sequence[int], atts: Sequence[int], words: Sequence[int]) -> list[list[int]]:
        """Maskable units in sequence order: lists of positions (whole words, or single tokens)."""
        units: list[list[int]] = []
        previous_word = None
        for pos, (token_id, att, word) in enumerate(zip(ids, atts, words, strict=True)):
            if not att or token_id in self.special_ids or word == NOT_A_WORD:
                previous_word = None
                continue
            if self.mask_whole_word and units and word == previous_word and units[-1][-1] == pos - 1:
                units[-1].append(pos)
            else:
                units.append([pos])
            previous_word = word
        return units

    # ------------------------------------------------------------------ choosing targets
    def num_predictions(self, num_maskable: int) -> int:
        """n_pred = min(max_masks, max(1, round(num_maskable * mask_prob))), and never above num_maskable."""
        if num_maskable == 0:
            return 0
        return min(self.max_masks, max(1, round(num_maskable * self.mask_prob)), num_maskable)

    def select_spans(self, units: list[list[int]], rng: random.Random) -> list[list[list[int]]]:
        """Pick spans of consecutive units until ``n_pred`` tokens are chosen.

        Units are visited in random order; an unmasked one starts a span of 1 unit, or with probability
        ``skipgram_prb`` of U{2..skipgram_size} units. A span stops early at the end of the text, at a
        special token, at an already chosen unit, or before a unit that would exceed the budget.

        Returns:
            The spans in the order drawn; each span is a list of units, each unit a list of positions.
        """
        n_pred = self.num_predictions(sum(len(u) for u in units))
        order = list(range(len(units)))
        rng.shuffle(order)
        taken = [False] * len(units)
        spans, count = [], 0
        for start in order:
            if count >= n_pred:
                break
            if taken[start]:
                continue
            length = 1
            if self.skipgram_size >= 2 and rng.random() < self.skipgram_prb:
                length = rng.randint(2, self.skipgram_size)
            span = []
            for u in range(start, min(start + length, len(units))):
                contiguous = u == start or units[u][0] == units[u - 1][-1] + 1
                if taken[u] or not contiguous or count + len(units[u]) > n_pred:
                    break
                taken[u] = True
                count += len(units[u])
                span.append(units[u])
            if span:
                spans.append(span)
        return spans

    def _replacement(self, token_id: int, rng: random.Random) -> int:
        """80% mask token, 10% a random non-special token, 10% unchanged."""
        r = rng.random()
        if r < 0.8:
            return self.mask_token_id
        if r < 0.9:
            return self.replacement_ids[rng.randrange(len(self.replacement_ids))]
        return token_id

    def __call__(
        self,
        text_ids: torch.Tensor,
        text_atts: torch.Tensor,
        word_ids: torch.Tensor | None = None,
        rng: random.Random | None = None,
    ) -> MaskedText:
        """Mask a tokenised batch.

        Args:
            text_ids: (B, L) token ids (``data.text.tokenize``).
            text_atts: (B, L) attention mask; padding is never masked.
            word_ids: optional (B, L) word ids (``encoding_word_ids``); default derived from the tokens.
            rng: random source; default the module-level ``random``.

        Returns:
            MaskedText with (B, L) ``text_ids_masked`` and (B, max_masks) ``masked_pos``/``masked_ids``.
        """
        id_rows = text_ids.tolist()
        word_rows = None if word_ids is None else word_ids.tolist()
        masked_rows, pos_rows, target_rows = self.mask_rows(id_rows, text_atts.tolist(), rng, word_rows)
        batch = text_ids.shape[0]
        return MaskedText(
            torch.tensor(masked_rows, dtype=text_ids.dtype).reshape(text_ids.shape),
            torch.tensor(pos_rows, dtype=torch.long).reshape(batch, self.max_masks),
            torch.tensor(target_rows, dtype=torch.long).reshape(batch, self.max_masks),
        )

    def mask_rows(
        self, id_rows: list[list[int]], att_rows: list[list[int]], rng: random.Random | None = None, word_rows: list[list[int]] | None = None
    ) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
        """:meth:`__call__` on nested lists (B rows of L): ``(text_ids_masked, masked_pos, masked_ids)`` rows,
        the last two of ``max_masks`` each. The same draws from ``rng``, without building tensors."""
        rng = rng if rng is not None else random  # the module offers the same methods on its global state
        if word_rows is None:
            word_rows = self._word_rows(id_rows, att_rows)
        masked_rows, pos_rows, target_rows = [], [], []
        for ids, atts, words in zip(id_rows, att_rows, word_rows, strict=True):
            spans = self.select_spans(self._units(ids, atts, words), rng)
            positions = sorted(pos for span in spans for unit in span for pos in unit)
            masked = list(ids)
            for pos in positions:
                masked[pos] = self._replacement(ids[pos], rng)
            pad = self.max_masks - len(positions)
            masked_rows.append(masked)
            pos_rows.append(positions + [0] * pad)
            target_rows.append([ids[pos] for pos in positions] + [IGNORE_INDEX] * pad)
        return masked_rows, pos_rows, target_rows


# ---------------------------------------------------------------------------------------- image masks
# BEiT / X-FM reference: 75 of 196 patches (14x14 grid) masked, blocks of at least 16 patches.
REFERENCE_NUM_PATCHES = 196
REFERENCE_NUM_MASKED = 75
REFERENCE_MIN_BLOCK = 16


def scaled_mask_sizes(num_patches: int) -> tuple[int, int]:
    """(num_masking_patches, min_num_patches) for a grid of ``num_patches`` cells.

    The masked count keeps BEiT's ratio: round(75 / 196 * N). The minimum block keeps its relative
    area, capped at BEiT's 16: min(16, max(1, round(16 / 196 * N))). So 14x14 gives (75, 16) as in
    X-FM, the tiny preset's 8x8 grid (24, 5), and grids larger than 14x14 keep blocks of at least 16.
    """
    num_masked = round(REFERENCE_NUM_MASKED / REFERENCE_NUM_PATCHES * num_patches)
    min_block = min(REFERENCE_MIN_BLOCK, max(1, round(REFERENCE_MIN_BLOCK / REFERENCE_NUM_PATCHES * num_patches)))
    return num_masked, min_block


class BlockMaskGenerator:
    """BEiT block-wise MIM masks with exactly ``num_masking_patches`` masked cells (docs/xfm.md#masking).

    Rectangles of area ~U(min_num_patches, remaining budget) and log-uniform aspect ratio in
    [min_aspect, max_aspect] are placed at random (10 attempts each); only newly masked cells count.
    When the budget is reached or no rectangle adds a cell, random cells are unmasked or masked to hit
    the exact count.

    Args:
        grid_size: patches per side (int) or (height, width).
        num_masking_patches: exact number of masked cells per image.
        min_num_patches: smallest rectangle area tried.
        min_aspect: smallest height/width ratio; max_aspect defaults to 1 / min_aspect.
        max_num_patches: largest rectangle area tried (default num_masking_patches).
    """

    def __init__(
        self,
        grid_size: int | tuple[int, int],
        num_masking_patches: int,
        min_num_patches: int = 16,
        min_aspect: float = 0.3,
        max_aspect: float | None = None,
        max_num_patches: int | None = None,
    ):
        self.height, self.width = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        self.num_patches = self.height * self.width
        if not 0 <= num_masking_patches <= self.num_patches:
            raise ValueError(f"num_masking_patches must be in [0, {self.num_patches}], got {num_masking_patches}")
        if min_num_patches < 1:
            raise ValueError(f"min_num_patches must be >= 1, got {min_num_patches}")
        if not 0 < min_aspect:
            raise ValueError(f"min_aspect must be > 0, got {min_aspect}")
        self.num_masking_patches = num_masking_patches
        self.min_num_patches = min_num_patches
        self.max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
        max_aspect = max_aspect or 1.0 / min_aspect
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
        # bit 0 of each of the first h rows: times a row's bits, the h-row rectangle of a mask (see _add_block)
        self._row_repeats = [sum(1 << (i * self.width) for i in range(h)) for h in range(self.height + 1)]

    @classmethod
    def for_grid(cls, grid_size: int, **kwargs: Any) -> BlockMaskGenerator:
        """X-FM's 75-of-196 setting scaled to a ``grid_size`` x ``grid_size`` grid (``scaled_mask_sizes``)."""
        num_masked, min_block = scaled_mask_sizes(grid_size * grid_size)
        return cls(grid_size, num_masked, min_num_patches=min_block, **kwargs)

    def _add_block(self, mask: int, budget: int, rng: random.Random) -> tuple[int, int]:
        """Try up to 10 rectangles; mask the first that adds 1..budget new cells.

        ``mask`` holds cell ``i * width + j`` as bit ``i * width + j``. Returns (the new mask, cells added).
        """
        for _ in range(10):
            target_area = rng.uniform(self.min_num_patches, budget)
            aspect = math.exp(rng.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect)))
            w = int(round(math.sqrt(target_area / aspect)))
            if not (0 < h < self.height and 0 < w < self.width):
                continue
            top = rng.randint(0, self.height - h)
            left = rng.randint(0, self.width - w)
            rectangle = ((((1 << w) - 1) << left) * self._row_repeats[h]) << (top * self.width)
            new = rectangle & ~mask
            added = new.bit_count()
            if 0 < added <= budget:
                return mask | new, added
        return mask, 0

    def sample(self, rng: random.Random | None = None) -> torch.Tensor:
        """One mask, (N,) bool in row-major patch order, exactly ``num_masking_patches`` True."""
        rng = rng if rng is not None else random
        mask, count = 0, 0
        while count < self.num_masking_patches:
            mask, added = self._add_block(mask, min(self.num_masking_patches - count, self.max_num_patches), rng)
            if added == 0:
                break
            count += added
        if count < self.num_masking_patches:  # blocks could not fill the budget: mask random free cells
            free = [i for i in range(self.num_patches) if not mask >> i & 1]
            for i in rng.sample(free, self.num_masking_patches - count):
                mask |= 1 << i
        bits = np.frombuffer(mask.to_bytes((self.num_patches + 7) // 8, "little"), dtype=np.uint8)
        return torch.from_numpy(np.unpackbits(bits, bitorder="little")[: self.num_patches].astype(bool))

    def __call__(self, batch_size: int, rng: random.Random | None = None) -> torch.Tensor:
        """(batch_size, N) bool masks, one independent draw per row."""
        if batch_size == 0:
            return torch.zeros(0, self.num_patches, dtype=torch.bool)
        return torch.stack([self.sample(rng) for _ in range(batch_size)])
