"""DataLoader settings resolved for the device a rank runs on, and the one place DataLoaders are built.

Parameters leave a setting ``None`` for "auto": on a CUDA device ``num_workers`` becomes
``min(8, CPUs per rank)`` (the CPUs this process may use, divided by the ranks on the node) and
``pin_memory`` true; on a CPU device both stay off (0 workers: the ranks already use every core).
``persistent_workers`` (auto: true when there are workers) keeps a loader's workers between passes,
e.g. between validations of the same loader; ``prefetch_factor`` (auto: PyTorch's 2) is the batches
each worker loads ahead. Neither applies without workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

AUTO_WORKERS_MAX = 8  # auto num_workers on CUDA: at most this many per rank


@dataclass(frozen=True)
class LoaderSettings:
    """Concrete DataLoader settings of one rank (every "auto" resolved)."""

    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: int | None = None  # None = PyTorch's default (2 batches per worker)

    def kwargs(self) -> dict[str, Any]:
        """The DataLoader keyword arguments (the worker-only ones only with workers, as PyTorch requires)."""
        out: dict[str, Any] = {"num_workers": self.num_workers, "pin_memory": self.pin_memory}
        if self.num_workers > 0:
            out["persistent_workers"] = self.persistent_workers
            if self.prefetch_factor is not None:
                out["prefetch_factor"] = self.prefetch_factor
        return out


def cpus_per_rank() -> int:
    """The CPUs this process may run on, divided by the ranks of its node (``LOCAL_WORLD_SIZE``, set by torchrun)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def resolve_loader_settings(
    device: str | torch.device,
    num_workers: int | None = None,
    pin_memory: bool | None = None,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = None,
    where: str = "",
    cpus: int | None = None,
    worker_cap: int | None = None,
    workers_divide: int | None = None,
) -> LoaderSettings:
    """Resolve the "auto" (None) settings for ``device`` (see the module docstring).

    Args:
        device: the device the batches go to (its type decides the auto values).
        where: the dotted parameter path named in error messages (e.g. ``finetune_vqa``).
        cpus: CPUs of this rank (default :func:`cpus_per_rank`).
        worker_cap: a lower bound than ``min(8, cpus)`` for the auto worker count.
        workers_divide: the auto worker count is a divisor of this number (a rank's stream lanes).

    Raises:
        ValueError: ``num_workers`` < 0 or ``prefetch_factor`` < 1, naming ``<where>.<key>``.
    """
    prefix = f"{where}." if where else ""
    if num_workers is not None and (isinstance(num_workers, bool) or num_workers < 0):
        raise ValueError(f"{prefix}num_workers must be null (auto) or an int >= 0, got {num_workers!r}")
    if prefetch_factor is not None and (isinstance(prefetch_factor, bool) or prefetch_factor < 1):
        raise ValueError(f"{prefix}prefetch_factor must be null (PyTorch's 2) or an int >= 1, got {prefetch_factor!r}")
    cuda = torch.device(device).type == "cuda"
    if num_workers is None:
        num_workers = _auto_workers(cpus or cpus_per_rank(), worker_cap, workers_divide) if cuda else 0
    return LoaderSettings(
        num_workers=num_workers,
        pin_memory=cuda if pin_memory is None else bool(pin_memory),
        persistent_workers=num_workers > 0 if persistent_workers is None else bool(persistent_workers),
        prefetch_factor=prefetch_factor,
    )


def _auto_workers(cpus: int, cap: int | None, divide: int | None) -> int:
    """The largest worker count <= ``min(8, cpus, cap)`` (at least 1) that divides ``divide`` (when given)."""
    most = max(1, min(AUTO_WORKERS_MAX, cpus, cap if cap is not None else cpus))
    return next(n for n in range(most, 0, -1) if divide is None or divide % n == 0)


def make_loader(dataset, settings: LoaderSettings, collate_fn: Callable | None = None, **kwargs: Any) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` with ``settings``; ``kwargs`` are the rest (batch_size, batch_sampler, shuffle)."""
    return torch.utils.data.DataLoader(dataset, collate_fn=collate_fn, **kwargs, **settings.kwargs())
