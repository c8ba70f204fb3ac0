"""Small helpers shared by the vision-language task modules (retrieval, NLVR2, grounding, VQA, ...).

Kept free of task logic: the per-path memo of transformed images, fixed-length tokenisation and batch
padding trim, device lookup, and the "careful horizontal flip" rule (no flip when the text says left/right).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import torch

_LEFT_RIGHT = re.compile(r"\b(left|right)\b", re.IGNORECASE)
T = TypeVar("T")


class ImageMemo:
    """A dataset's loaded and transformed images, kept per path while its transform is deterministic.

    Without augmentation an image path maps to one tensor for the whole run, yet decoding, resizing and
    normalising it again on every visit cost about 1 ms an image on a CPU: a third of an NLVR2 step on the
    tiny preset (its 1,000 steps read 64,000 images of 1,200 files). ``get(path, make)`` returns the kept
    value or calls ``make()``; values are kept until they hold ``max_mb`` MiB of tensors, later paths are
    made on every call. ``max_mb`` 0 keeps nothing: a dataset with random augmentation must pass 0, as the
    kept value would repeat one draw. Each process (each DataLoader worker) keeps its own.
    """

    def __init__(self, max_mb: int):
        if isinstance(max_mb, bool) or not isinstance(max_mb, int) or max_mb < 0:
            raise ValueError(f"image_memo_mb must be an int >= 0, got {max_mb!r}")
        self.max_bytes = max_mb * 2**20
        self.bytes = 0
        self._kept: dict[str, Any] = {}

    def get(self, path: str, make: Callable[[], T]) -> T:
        """The value of ``path``: kept from an earlier call, else ``make()`` (kept while the budget allows).
        Values are tensors or tuples holding tensors; callers must not modify them in place."""
        if path in self._kept:
            return self._kept[path]
        value = make()
        size = sum(t.numel() * t.element_size() for t in (value if isinstance(value, tuple) else (value,)) if isinstance(t, torch.Tensor))
        if self.bytes + size <= self.max_bytes:
            self._kept[path] = value
            self.bytes += size
        return value

    def transformed(self, root, path: str, transform, seed: int, where: str) -> torch.Tensor:
        """Image ``path`` under ``root`` through ``transform`` with its randomness from ``seed``
        (:func:`~xfm_pipeline.data.transforms.seeded_transform`), kept per path; ``where`` names the record in errors."""
        from xfm_pipeline.data.images import load_image
        from xfm_pipeline.data.transforms import seeded_transform

        return self.get(path, lambda: seeded_transform(transform, load_image(root, path, where), seed))


def image_size(params) -> int:
    """The task's image resolution (the fine-tune job fills ``params.image_size`` from the checkpoint)."""
    if params.image_size is None:
        raise ValueError("params.image_size is None: the fine-tune job sets it from the checkpoint; set it explicitly when building datasets by hand")
    return int(params.image_size)


def mentions_left_right(*texts: str) -> bool:
    """True when any text contains the word 'left' or 'right' (then a horizontal flip would change its truth)."""
    return any(_LEFT_RIGHT.search(t) for t in texts if t)


def tokenize_fixed(tokenizer, texts: str | list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and mask padded to ``max_tokens``: ``(n, max_tokens)`` each (the collate trims padding)."""
    from xfm_pipeline.data.text import tokenize

    tok = tokenize(tokenizer, texts, max_tokens, padding="max_length")
    return tok.text_ids, tok.text_atts


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors of a dict batch moved to ``device`` (other values untouched); copies from pinned memory
    (``pin_memory``) do not block the host."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
