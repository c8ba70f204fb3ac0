"""Memoised outputs of frozen encoders (fine-tuning, and pretraining with a frozen text encoder).

When ``lr_scales`` freezes an encoder (multiplier 0, so every parameter has ``requires_grad=False``) and
its inputs are deterministic, the encoder maps one input to one output for the whole run: computing it
once per distinct input and reusing it every epoch gives the same loss at a fraction of the cost. On the
tiny preset the frozen MiniLM text encoder and a frozen vision encoder are most of a VQA step, and the
text encoder most of a vision warm-up step (``pretrain_vision``).

A frozen encoder is run in eval mode under ``no_grad``, cached or not: dropout or drop-path on fixed
weights only adds noise. Keys name the input exactly (an image path under a deterministic transform,
the token ids of a text); the caller decides when its keys are valid. Cached rows are plain tensors
outside the state dict, so checkpoints and DDP are unaffected; each process keeps its own cache.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from xfm_pipeline.model.frozen import is_frozen, run_frozen


class EncoderCache:
    """Rows of one frozen encoder's output, keyed by input; a row may have any leading length."""

    def __init__(self, max_rows: int | None = None) -> None:
        if max_rows is not None and max_rows < 0:
            raise ValueError(f"encoder cache: max_rows must be >= 0 or None, got {max_rows}")
        self.max_rows = max_rows  # rows kept at most (None = unbounded); inputs beyond it are computed each time
        self._rows: dict[Hashable, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self, keys: Sequence[Hashable], compute: Callable[[list[int]], list[torch.Tensor]]) -> list[torch.Tensor]:
        """The rows of ``keys``; ``compute(positions)`` returns the rows of the keys not seen yet (one per
        position of ``keys``, in order). Duplicate keys within a call are computed once. Once ``max_rows``
        rows are stored, new rows are returned without being stored."""
        missing: list[int] = []
        pending: set[Hashable] = set()
        for i, key in enumerate(keys):
            if key not in self._rows and key not in pending:
                missing.append(i)
                pending.add(key)
        fresh: dict[Hashable, torch.Tensor] = {}
        if missing:
            computed = compute(missing)
            if len(computed) != len(missing):
                raise ValueError(f"encoder cache: compute returned {len(computed)} rows for {len(missing)} inputs")
            fresh = {keys[i]: row.detach() for i, row in zip(missing, computed, strict=True)}
            for key, row in fresh.items():
                if self.max_rows is None or len(self._rows) < self.max_rows:
                    self._rows[key] = row.clone()
        return [self._rows[key] if key in self._rows else fresh[key] for key in keys]


class FrozenEncodings:
    """Image and text encodings of an X-FM backbone, cached per input while the encoder is frozen.

    ``images(..., keys)`` (one hashable per image) and ``texts(..., use_cache=True)`` (keyed by the real
    tokens' ids) enable the cache; without them, or while the encoder is trained, the encoder simply runs
    (in eval mode under ``no_grad`` when frozen). ``max_rows`` bounds each cache (None = unbounded).
    """

    def __init__(self, max_rows: int | None = None) -> None:
        self.image_cache = EncoderCache(max_rows)
        self.text_cache = EncoderCache(max_rows)

    def images(self, xfm: nn.Module, images: torch.Tensor, keys: Sequence[Hashable] | None = None) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 1+N, Dv)."""
        encoder = xfm.vision_encoder
        if not is_frozen(encoder):
            return xfm.encode_image(images)
        if keys is None:
            return run_frozen(encoder, lambda: xfm.encode_image(images))
        rows = self.image_cache.rows(keys, lambda pos: list(run_frozen(encoder, lambda: xfm.encode_image(images[pos]))))
        return torch.stack(rows)

    def texts(self, xfm: nn.Module, ids: torch.Tensor, atts: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        """(B, L) ids and mask -> (B, L, Dt). With ``use_cache`` the real tokens' states are cached under
        the ids of the real tokens; padded positions come back as zeros (the mask hides them downstream)."""
        encoder = xfm.text_encoder
        if not is_frozen(encoder):
            return xfm.encode_text(ids, atts)
        if not use_cache:
            return run_frozen(encoder, lambda: xfm.encode_text(ids, atts))
        lengths = atts.sum(dim=1).tolist()
        keys = [tuple(row[:n].tolist()) for row, n in zip(ids, lengths, strict=True)]

        def compute(pos: list[int]) -> list[torch.Tensor]:
            states = run_frozen(encoder, lambda: xfm.encode_text(ids[pos], atts[pos]))  # (m, L, Dt)
            return [s[: lengths[p]] for s, p in zip(states, pos, strict=True)]

        padded = pad_sequence(self.text_cache.rows(keys, compute), batch_first=True)  # (B, max n, Dt)
        if padded.shape[1] < ids.shape[1]:
            padded = nn.functional.pad(padded, (0, 0, 0, ids.shape[1] - padded.shape[1]))
        return padded
