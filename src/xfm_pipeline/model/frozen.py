"""Frozen modules: telling one apart (every parameter without gradient) and running one.

``training.optim`` freezes what ``lr_scales`` gives a multiplier of 0 and keeps frozen submodules in eval
mode; the encoder cache (``encoder_cache``) skips recomputing frozen encoders. Both ask :func:`is_frozen`,
so it lives here, in the lower of the two layers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def is_frozen(module: nn.Module) -> bool:
    """True when ``module`` has parameters and none of them is trained."""
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


def run_frozen(module: nn.Module, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``fn()`` with ``module`` in eval mode and gradients off (its training mode restored afterwards)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return fn()
    finally:
        module.train(was_training)
