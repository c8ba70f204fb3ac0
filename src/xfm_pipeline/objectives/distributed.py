"""The one cross-process helper of the objectives: gather a per-rank batch into the global batch.

``gather_features`` uses ``torch.distributed.nn.functional.all_gather``, whose backward sums the
gradients of every rank's gathered copy back onto the rank that owns each slice (full gradient). Every
rank then computes the same global-batch loss, and the gradient that reaches rank r's local features is
``W * dL/dx_r``; DDP's gradient averaging divides by W again, so a W-process run takes the same step as a
1-process run on the concatenated batch.

This deliberately replaces the official ``AllGather`` (docs/xfm.md#fix-itc-gradient), whose backward
keeps only the local slice and so scales the contrastive gradient by 1/W compared to single-process
training. On one
process (no initialised process group, or a world of size 1) gathering is the identity, so nothing here
needs ``torch.distributed`` to be set up (docs/xfm.md#fix-single-process-runs).
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_features(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B, ...) of every rank along dim 0 into (W*B, ...), rank order.

    Tensors that need a gradient are gathered with autograd (full gradient, see the module docstring);
    others (ids, or features under ``no_grad``) with a plain ``all_gather``. All ranks must pass the
    same shape. Identity on one process.
    """
    _, world = rank_and_world()
    if world == 1:
        return x
    x = x.contiguous()
    if not x.requires_grad:
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x)
        return torch.cat(parts, dim=0)
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():
        # torch 2.14 marks it deprecated in favour of a private functional-collectives API; it still
        # implements exactly the summed backward we rely on.
        warnings.simplefilter("ignore", FutureWarning)
        parts = all_gather(x)
    return torch.cat(parts, dim=0)
