"""Evaluation split over the ranks of a distributed run, with the one-process result bit for bit.

Every rank predicts one contiguous block of an evaluation set; the blocks are cut at multiples of the
evaluation batch, so each rank runs exactly the batches one process would run on those items (same
inputs, same shapes, hence the same numbers) and no item is padded in or evaluated twice. The last
batch may be short and a rank may get no batch at all (fewer batches than ranks). Gathering the
blocks in rank order gives back the dataset order.

:class:`Ranks` is this process's place among the ranks and the few collectives evaluation needs
(gather a list to rank 0, gather tensor rows on every rank, broadcast rank 0's object); they work with
gloo on CPUs and NCCL on GPUs. Without an initialised process group everything is the one-process
identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Subset


@dataclass(frozen=True)
class Ranks:
    """This process (``rank``) among the ``world_size`` processes that evaluate together."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def current(cls) -> Ranks:
        """The default process group's ranks, or one process when none is initialised."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def is_main(self) -> bool:
        """True on rank 0, which receives the gathered predictions and computes the metrics."""
        return self.rank == 0

    def block(self, n: int, unit: int = 1) -> range:
        """This rank's items of ``n``: rank ``r`` takes chunks ``[r*C//W, (r+1)*C//W)`` of the ``C =
        ceil(n / unit)`` chunks of ``unit`` items (the last chunk may be short); the blocks of ranks
        0..W-1 are contiguous, in order, and cover ``range(n)`` exactly once."""
        if unit < 1:
            raise ValueError(f"block unit must be >= 1, got {unit}")
        chunks = -(-n // unit)
        first, last = self.rank * chunks // self.world_size, (self.rank + 1) * chunks // self.world_size
        return range(min(first * unit, n), min(last * unit, n))

    def gather_list(self, items: list[Any]) -> list[Any] | None:
        """Every rank's ``items`` concatenated in rank order on rank 0 (picklable items); None elsewhere."""
        if self.world_size == 1:
            return list(items)
        parts: list[list[Any]] | None = [[] for _ in range(self.world_size)] if self.is_main else None
        dist.gather_object(items, parts, dst=0)
        return [item for part in parts for item in part] if parts is not None else None

    def all_gather_rows(self, rows: torch.Tensor | None) -> torch.Tensor | None:
        """Every rank's ``rows`` (n_r, ...) concatenated along dim 0 in rank order, on every rank, bit for bit.

        A rank without rows passes None (the trailing shape and dtype come from the others); None when no
        rank has any. The ranks' counts may differ: each block is padded to the largest and sent as bytes
        (any dtype, gloo or NCCL), then trimmed.
        """
        if self.world_size == 1:
            return rows
        meta: list[tuple[tuple[int, ...], torch.dtype] | None] = [None] * self.world_size
        dist.all_gather_object(meta, None if rows is None else (tuple(rows.shape), rows.dtype))
        known = [m for m in meta if m is not None]
        if not known:
            return None
        (_, *trailing), dtype = known[0]
        counts = [m[0][0] if m is not None else 0 for m in meta]
        device = rows.device if rows is not None else torch.device(_collective_device())
        buffer = torch.zeros((max(counts), *trailing), dtype=dtype, device=device)  # (max n_r, ...)
        if rows is not None:
            buffer[: len(rows)] = rows
        raw = buffer.reshape(len(buffer), math.prod(trailing)).view(torch.uint8)  # (max n_r, bytes per row)
        parts = [torch.empty_like(raw) for _ in range(self.world_size)]
        dist.all_gather(parts, raw)
        return torch.cat([part[:n].view(dtype).reshape(n, *trailing) for part, n in zip(parts, counts, strict=True)])

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (picklable) on every rank."""
        if self.world_size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def _collective_device() -> str:
    """Where tensors of the default group's collectives live: this rank's GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return f"cuda:{torch.cuda.current_device()}"
    return "cpu"


def shard(dataset: Dataset, ranks: Ranks, batch_size: int) -> Dataset:
    """This rank's block of ``dataset``, cut at multiples of ``batch_size`` (the dataset itself in one process).

    Items keep their dataset indices (a ``Subset`` passes them through), so per-item ``index`` fields and
    records looked up by them stay those of the whole set; :func:`full_dataset` gives the set back.
    """
    if ranks.world_size == 1:
        return dataset
    return Subset(dataset, list(ranks.block(len(dataset), batch_size)))


def full_dataset(dataset: Dataset) -> Dataset:
    """The whole evaluation set behind a :func:`shard` (its attributes: records, tokenizer, texts, ...)."""
    return dataset.dataset if isinstance(dataset, Subset) else dataset
