"""Small helpers shared by the vision-language task modules (retrieval, NLVR2, grounding, VQA, ...).

Kept free of task logic: fixed-length tokenisation and batch padding
trim, device lookup, and the "careful horizontal flip" rule (no flip when the text says left/right).
"""

from __future__ import annotations

import re
from typing import Any

import torch

_LEFT_RIGHT = re.compile(r"\b(left|right)\b", re.IGNORECASE)


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
