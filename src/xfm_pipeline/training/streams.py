"""Streamed pretraining data: lanes over shards, a shuffle buffer, weighted mixing, exact resume.

Global batch ``k`` of a stream is a pure function of the seed, ``k`` and the data, whatever the number of
processes and DataLoader workers:

* **Lanes.** A stream has ``L`` lanes. Part ``i`` of every source (its ``i``-th shard; records in memory
  are dealt into ``L`` parts) belongs to lane ``i % L``, so no two lanes read the same shard. Global batch
  ``k`` is, in lane order, the samples ``[k*b, (k+1)*b)`` of every lane (``b = B / L``). Rank ``r`` of
  ``W`` reads lanes ``[r*L/W, (r+1)*L/W)`` and each of its ``n`` DataLoader workers an equal block of
  those, so nothing is read twice and ``W*n`` must divide ``L``.
* **Mixing.** Item ``p`` of a lane comes from source ``s`` with probability ``weight_s`` (seeded draws in
  blocks of :data:`MIX_BLOCK`); every source of the lane runs its own sequence.
* **Shuffling.** A source's sequence in a lane reads, in epoch ``e``, the lane's parts in a seeded order;
  the samples are cut into windows of ``shuffle_buffer`` and each window is emitted in a seeded
  permutation (the window is the shuffle buffer). What the buffer holds at any position is a function of
  the position, so a resumed stream needs only the number of batches consumed (the checkpoint's data
  position) to continue exactly where the interrupted one was; parts before it are skipped from the index
  counts and, inside a shard, by seeking past the tar headers of skipped samples.
* **Seeds.** Sample ``p`` of lane ``l`` draws all its randomness from ``sample_seed(seed, l, p)``.

Memory per worker is one window per (lane, source) it reads, whatever the corpus size.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xfm_pipeline.training.dataloaders import LoaderSettings, make_loader
from xfm_pipeline.training.sampling import sample_seed
from xfm_pipeline.training.stream_sources import Item, StreamSource

MIX_BLOCK = 4096  # lane items per block of source draws (resuming at item p draws ceil(p / MIX_BLOCK) blocks)


@dataclass
class StreamPosition:
    """The global batches of a stream consumed so far: the loop's resume position (``sampler`` of a
    :class:`~xfm_pipeline.training.loop.Stream`; the loop sets ``start_batch`` from a checkpoint)."""

    start_batch: int = 0


@dataclass(frozen=True)
class StreamLayout:
    """How a stream's global batches are cut: lanes, samples per lane and batch, shuffle buffer, seed."""

    lanes: int  # L: independent sub-streams; parts of every source are dealt to them
    batch_size: int  # B: samples per global batch (all ranks)
    shuffle_buffer: int  # samples per shuffle window
    seed: int

    def __post_init__(self) -> None:
        if self.lanes < 1 or self.batch_size % self.lanes:
            raise ValueError(f"the global batch ({self.batch_size}) must be a multiple of the stream's lanes ({self.lanes})")
        if self.shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {self.shuffle_buffer}")

    @property
    def per_lane(self) -> int:
        """Samples each lane adds to a global batch."""
        return self.batch_size // self.lanes

    def lanes_of(self, rank: int, world_size: int, worker: int = 0, workers: int = 1) -> list[int]:
        """The lanes read by DataLoader ``worker`` (of ``workers``) of ``rank`` (of ``world_size``)."""
        readers = world_size * workers
        if self.lanes % readers:
            raise ValueError(
                f"{self.lanes} lanes cannot be split evenly over {world_size} process(es) x {workers} DataLoader worker(s): "
                "make `lanes` a multiple of their product"
            )
        per = self.lanes // readers
        first = (rank * workers + worker) * per
        return list(range(first, first + per))


def _rng(seed: int, *words: int) -> random.Random:
    """A ``random.Random`` seeded by ``seed`` and ``words`` (the same in every process)."""
    for position, word in enumerate(words):
        seed = sample_seed(seed, position, word)
    return random.Random(seed)


class _SourceLane:
    """The sequence of one source in one lane: epochs of its parts in seeded order, window-shuffled."""

    def __init__(self, source: StreamSource, source_id: int, lane: int, layout: StreamLayout):
        self.source, self.source_id, self.lane, self.layout = source, source_id, lane, layout
        sizes, starts = source.part_sizes(layout.lanes), source.part_starts(layout.lanes)
        self.parts = [i for i in range(len(sizes)) if i % layout.lanes == lane]
        self.sizes = {i: sizes[i] for i in self.parts}
        self.starts = {i: starts[i] for i in self.parts}
        self.length = sum(self.sizes.values())  # samples per epoch
        if self.length == 0:
            raise ValueError(
                f"source {source.name!r} has no sample in lane {lane} of {layout.lanes} ({len(sizes)} part(s), {source.size} samples): "
                "give it at least as many non-empty shards as the stream has lanes, or lower `lanes`"
            )

    def _order(self, epoch: int) -> list[int]:
        order = list(self.parts)
        _rng(self.layout.seed, self.source_id, self.lane, epoch, 1).shuffle(order)
        return order

    def _read_from(self, order: list[int], position: int) -> Iterator[Item]:
        """Items of the epoch whose parts are read in ``order``, from input position ``position`` on."""
        lanes = self.layout.lanes
        for part in order:
            size = self.sizes[part]
            if position >= size:
                position -= size
                continue
            yield from self.source.read(part, position, lanes, self.starts[part])
            position = 0

    def items(self, start: int) -> Iterator[Item]:
        """The sequence from its item ``start`` on (endless: epoch after epoch)."""
        buffer = self.layout.shuffle_buffer
        epoch, offset = divmod(start, self.length)
        while True:
            window = offset // buffer
            reader = self._read_from(self._order(epoch), window * buffer)
            while window * buffer < self.length:
                n = min(buffer, self.length - window * buffer)
                held = list(itertools.islice(reader, n))  # the shuffle buffer
                if len(held) != n:
                    raise ValueError(f"source {self.source.name!r}: lane {self.lane} read {len(held)} samples where its index promises {n}")
                order = list(range(n))
                _rng(self.layout.seed, self.source_id, self.lane, epoch, 2, window).shuffle(order)
                for j in order[offset - window * buffer :]:
                    yield held[j]
                window += 1
                offset = window * buffer
            epoch, offset = epoch + 1, 0


class _Mixer:
    """Which source each item of a lane comes from: seeded draws by weight, in blocks of MIX_BLOCK."""

    def __init__(self, weights: Sequence[float], seed: int, lane: int):
        total = float(sum(weights))
        self.cumulative = np.cumsum(np.asarray(weights, dtype=np.float64) / total)
        self.seed, self.lane = seed, lane

    def block(self, b: int) -> np.ndarray:
        """Source ids of items ``[b*MIX_BLOCK, (b+1)*MIX_BLOCK)``."""
        if len(self.cumulative) == 1:
            return np.zeros(MIX_BLOCK, dtype=np.int64)
        rng = np.random.default_rng([self.seed, self.lane, b])
        return np.minimum(np.searchsorted(self.cumulative, rng.random(MIX_BLOCK), side="right"), len(self.cumulative) - 1)

    def counts_before(self, position: int) -> list[int]:
        """Items of each source among the lane's first ``position`` items."""
        counts = np.zeros(len(self.cumulative), dtype=np.int64)
        full, rest = divmod(position, MIX_BLOCK)
        for b in range(full):
            counts += np.bincount(self.block(b), minlength=len(counts))
        if rest:
            counts += np.bincount(self.block(full)[:rest], minlength=len(counts))
        return counts.tolist()

    def choices(self, start: int) -> Iterator[int]:
        """Source ids of items ``start, start + 1, ...``."""
        b, rest = divmod(start, MIX_BLOCK)
        while True:
            yield from self.block(b)[rest:].tolist()
            b, rest = b + 1, 0


def lane_items(sources: Sequence[StreamSource], lane: int, layout: StreamLayout, start: int) -> Iterator[tuple[int, Item]]:
    """``(sample seed, item)`` of lane ``lane`` from its item ``start`` on."""
    mixer = _Mixer([s.weight for s in sources], layout.seed, lane)
    counts = mixer.counts_before(start)
    sequences = [_SourceLane(s, i, lane, layout).items(counts[i]) for i, s in enumerate(sources)]
    for p, source in enumerate(mixer.choices(start), start=start):
        yield sample_seed(layout.seed, lane, p), next(sequences[source])


def assign_indices(sources: Sequence[StreamSource]) -> None:
    """Give every source its first stream-wide sample index (sources in order)."""
    total = 0
    for source in sources:
        source.first_index = total
        total += source.size


class LaneDataset(torch.utils.data.IterableDataset):
    """Yields ``(k, lane, [sample, ...])``: the per-lane chunks of global batches ``k = start, start+1, ...``
    for the lanes of this rank and DataLoader worker. ``builder.make(record, index, seed, where, image)``
    builds one sample (the datasets of :mod:`xfm_pipeline.data.pretrain_datasets`)."""

    def __init__(self, sources: Sequence[StreamSource], layout: StreamLayout, builder: Any, position: StreamPosition, rank: int = 0, world_size: int = 1):
        if any(s.weight <= 0 for s in sources) or not sources:
            raise ValueError(f"a stream needs at least one source, each with a weight > 0; got {[(s.name, s.weight) for s in sources]}")
        self.sources, self.layout, self.builder, self.position = list(sources), layout, builder, position
        self.rank, self.world_size = rank, world_size
        for lane in range(layout.lanes):  # fail here, not in a worker, when a lane would be empty
            for i, source in enumerate(self.sources):
                _SourceLane(source, i, lane, layout)

    def __iter__(self) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        lanes = self.layout.lanes_of(self.rank, self.world_size, worker, workers)
        k, b = self.position.start_batch, self.layout.per_lane
        readers = {lane: lane_items(self.sources, lane, self.layout, k * b) for lane in lanes}
        while True:
            for lane in lanes:
                items = itertools.islice(readers[lane], b)
                yield k, lane, [self.builder.make(item.record, item.index, seed, item.where, item.image) for seed, item in items]
            k += 1


def _unchanged(chunk):
    return chunk


class LaneLoader:
    """This rank's batches of a stream: a DataLoader over :class:`LaneDataset` (``num_workers`` processes,
    each loading ``prefetch_factor`` lane chunks ahead; None = PyTorch's 2), whose lane chunks are put
    together in lane order and collated in the main process (so batches are not pinned: the loop copies
    them to the device)."""

    def __init__(
        self, dataset: LaneDataset, collate: Callable[[list[dict[str, Any]]], dict[str, Any]], num_workers: int = 0, prefetch_factor: int | None = None
    ):
        self.dataset, self.collate = dataset, collate
        layout = dataset.layout
        self.lanes = layout.lanes_of(dataset.rank, dataset.world_size)  # all lanes of this rank
        layout.lanes_of(dataset.rank, dataset.world_size, 0, max(num_workers, 1))  # refuse an uneven worker split now
        settings = LoaderSettings(num_workers=num_workers, persistent_workers=num_workers > 0, prefetch_factor=prefetch_factor)
        self.loader = make_loader(dataset, settings, _unchanged, batch_size=None)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # Open the DataLoader now (the loop does it before its first step) and without touching the global
        # RNG: a DataLoader iterator draws its base seed from it, which would shift the dropout and ITM
        # negatives of the step it is opened in (a resumed run opens it at another step than a fresh one).
        with torch.random.fork_rng(devices=[]):
            chunks = iter(self.loader)
        return self._batches(chunks)

    def _batches(self, chunks: Iterator) -> Iterator[dict[str, Any]]:
        while True:
            got = sorted(itertools.islice(chunks, len(self.lanes)), key=lambda c: c[1])
            if [c[1] for c in got] != self.lanes or len({c[0] for c in got}) != 1:
                raise RuntimeError(f"lane chunks out of order: got (batch, lane) {[(c[0], c[1]) for c in got]} for lanes {self.lanes}")
            yield self.collate([sample for _, _, samples in got for sample in samples])
