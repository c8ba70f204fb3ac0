"""Deterministic, resumable, rank-invariant sampling of map-style datasets (fine-tuning; pretraining streams
use :mod:`xfm_pipeline.training.streams`).

Batch ``k`` of a stream is a pure function of ``(seed, k)``: every epoch is a seeded permutation, the
GLOBAL batch is cut from it, and each rank takes its contiguous slice. A run on W processes therefore
sees exactly the global batches of a 1-process run, and resuming only needs the number of batches
consumed. Each sample carries its own seed (``sample_seed``) so augmentation and masking do not depend
on the rank, the worker or the process count either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample in one epoch (stable across ranks, workers and restarts)."""
    h = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) & (2**64 - 1)
    h ^= h >> 31
    return h & (2**63 - 1)


@dataclass
class StreamSampler:
    """Infinite batch sampler yielding this rank's ``[(index, sample_seed), ...]`` slices of global batches."""

    num_samples: int  # dataset size
    global_batch_size: int  # samples per optimizer micro-step over all ranks
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    start_batch: int = 0  # global batches already consumed (resume position)
    _cached: tuple[int, torch.Tensor] | None = field(default=None, init=False, repr=False, compare=False)  # (epoch, permutation)

    def __post_init__(self):
        if self.global_batch_size % self.world_size:
            raise ValueError(f"global batch {self.global_batch_size} is not divisible by world size {self.world_size}")
        if self.num_samples < self.global_batch_size:
            raise ValueError(f"stream has {self.num_samples} samples, fewer than one global batch ({self.global_batch_size})")

    @property
    def batches_per_epoch(self) -> int:
        """Full global batches per epoch (the remainder of each permutation is not used)."""
        return self.num_samples // self.global_batch_size

    def _order(self, epoch: int) -> torch.Tensor:
        """The seeded permutation of ``epoch`` (drawn once per epoch, not once per batch)."""
        if self._cached is None or self._cached[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._cached = (epoch, torch.randperm(self.num_samples, generator=g))
        return self._cached[1]

    def global_batch(self, k: int) -> list[tuple[int, int]]:
        """The k-th global batch as ``(index, sample_seed)`` pairs."""
        epoch, pos = divmod(k, self.batches_per_epoch)
        chunk = self._order(epoch)[pos * self.global_batch_size : (pos + 1) * self.global_batch_size].tolist()
        return [(i, sample_seed(self.seed, epoch, i)) for i in chunk]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        per_rank = self.global_batch_size // self.world_size
        k = self.start_batch
        while True:
            batch = self.global_batch(k)
            yield batch[self.rank * per_rank : (self.rank + 1) * per_rank]
            k += 1


class StreamIterator:
    """Iterates a DataLoader built on a :class:`StreamSampler` and counts the batches consumed."""

    def __init__(self, loader, sampler: StreamSampler):
        self.loader = loader
        self.sampler = sampler
        self.consumed = sampler.start_batch
        self._it = iter(loader)

    def __next__(self):
        batch = next(self._it)
        self.consumed += 1
        return batch

    def __iter__(self):
        return self
