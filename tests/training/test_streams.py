"""Streams over shards: lanes split over ranks and workers without overlap, every sample once per lane
epoch, weighted mixing, and global batch k the same after a restart, on any process and worker count."""

from __future__ import annotations

import io
from collections import Counter

import pytest
import torch
from PIL import Image

from xfm_pipeline.data.shards import Sample, write_shards
from xfm_pipeline.training.stream_sources import StreamSource
from xfm_pipeline.training.streams import MIX_BLOCK, LaneDataset, LaneLoader, StreamLayout, StreamPosition, _Mixer, assign_indices, lane_items

pytestmark = pytest.mark.unit


class _Indices:
    """A sample builder that keeps only what identifies a sample: its index and seed."""

    def make(self, record, index, seed, where, image):
        return {"index": index, "seed": seed, "caption": record.desc[0]}


def _collate(samples):
    return [(s["index"], s["seed"]) for s in samples]


def _jpeg(i: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (i % 256, 0, 0)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    """37 image-text samples in shards of 5 (7 full shards and one of 2)."""
    directory = tmp_path_factory.mktemp("shards")
    write_shards([Sample(f"{i:09d}", {"desc": f"caption {i}"}, _jpeg(i)) for i in range(37)], directory, "image_text", max_samples=5)
    return directory


def _sources(shard_dir, *extra):
    sources = [StreamSource.from_shards("main", "image_text", shard_dir), *extra]
    assign_indices(sources)
    return sources


def _batches(sources, layout, start, n, rank=0, world_size=1, workers=0):
    loader = LaneLoader(LaneDataset(sources, layout, _Indices(), StreamPosition(start), rank, world_size), _collate, workers)
    batches = iter(loader)
    return [next(batches) for _ in range(n)]


LAYOUT = StreamLayout(lanes=4, batch_size=8, shuffle_buffer=3, seed=11)


def test_a_restarted_stream_continues_with_exactly_the_batches_of_an_uninterrupted_one(shard_dir):
    sources = _sources(shard_dir)
    full = _batches(sources, LAYOUT, 0, 14)  # past the first epoch of every lane (9-10 samples, 2 a batch)
    for start in (1, 3, 5, 9):  # inside shuffle windows, inside shards, in the second epoch
        assert _batches(sources, LAYOUT, start, 14 - start) == full[start:]


def test_ranks_and_workers_read_disjoint_lanes_and_together_make_the_one_process_batches(shard_dir):
    sources = _sources(shard_dir)
    full = _batches(sources, LAYOUT, 2, 4)
    ranks = [_batches(sources, LAYOUT, 2, 4, rank=r, world_size=2, workers=2) for r in range(2)]  # 2 x 2 DataLoader workers
    assert [a + b for a, b in zip(*ranks)] == full
    assert [LAYOUT.lanes_of(r, 2, w, 2) for r in range(2) for w in range(2)] == [[0], [1], [2], [3]]
    with pytest.raises(ValueError, match="4 lanes cannot be split evenly over 3 process"):
        LAYOUT.lanes_of(0, 3)


def test_every_sample_comes_once_per_lane_epoch_and_shards_never_share_a_lane(shard_dir):
    sources = _sources(shard_dir)
    layout = StreamLayout(lanes=2, batch_size=2, shuffle_buffer=4, seed=0)
    for lane, shards in ((0, [0, 2, 4, 6]), (1, [1, 3, 5, 7])):
        expected = sorted(i for s in shards for i in range(5 * s, min(5 * s + 5, 37)))
        first = [item.index for _, item in _take(lane_items(sources, lane, layout, 0), 2 * len(expected))]
        assert sorted(first[: len(expected)]) == expected and sorted(first[len(expected) :]) == expected
        assert first[: len(expected)] != expected  # shuffled
    seeds = [seed for _, b in enumerate(_batches(sources, layout, 0, 5)) for _, seed in b]
    assert len(set(seeds)) == len(seeds)  # every sample its own augmentation seed


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_sources_mix_by_weight_and_a_restart_finds_each_source_position(shard_dir, tmp_path):
    records = [type("R", (), {"desc": (f"memory {i}",), "image": None})() for i in range(12)]
    memory = StreamSource.from_records("memory", "image_text", records, None, weight=3.0)
    sources = _sources(shard_dir, memory)
    assert memory.first_index == 37
    layout = StreamLayout(lanes=2, batch_size=4, shuffle_buffer=5, seed=5)
    batches = _batches(sources, layout, 0, 200)
    from_memory = sum(i >= 37 for b in batches for i, _ in b) / (4 * 200)
    assert from_memory == pytest.approx(0.75, abs=0.04)
    assert _batches(sources, layout, 120, 10) == batches[120:130]
    mixer = _Mixer([1.0, 3.0], seed=5, lane=1)
    position = MIX_BLOCK + 17
    choices = Counter(_take(mixer.choices(0), position))
    assert mixer.counts_before(position) == [choices[0], choices[1]]


def test_layout_and_source_problems_are_refused_before_any_worker_starts(shard_dir):
    sources = _sources(shard_dir)
    with pytest.raises(ValueError, match=r"global batch \(6\) must be a multiple of the stream's lanes \(4\)"):
        StreamLayout(lanes=4, batch_size=6, shuffle_buffer=2, seed=0)
    with pytest.raises(ValueError, match="source 'main' has no sample in lane 8 of 9"):
        LaneDataset(sources, StreamLayout(lanes=9, batch_size=9, shuffle_buffer=2, seed=0), _Indices(), StreamPosition())
    with pytest.raises(ValueError, match="weight > 0"):
        LaneDataset([StreamSource.from_shards("w", "image_text", shard_dir, weight=0.0)], LAYOUT, _Indices(), StreamPosition())


def test_real_samples_are_identical_after_a_restart(shard_dir, tiny_checkpoint_without_dropout):
    from xfm_pipeline.data import pretrain_datasets as pd
    from xfm_pipeline.data.masking import BlockMaskGenerator, TextMasker
    from xfm_pipeline.data.transforms import pretrain_transform
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer

    tokenizer = load_checkpoint_tokenizer(tiny_checkpoint_without_dropout)
    builder = pd.ImageTextDataset(
        [], None, pretrain_transform(32), tokenizer, TextMasker(tokenizer, 0.5, 4), BlockMaskGenerator(4, 4, 2), pd.TextSettings(16, 16)
    )
    sources = _sources(shard_dir)

    def batches(start, n):
        loader = iter(LaneLoader(LaneDataset(sources, LAYOUT, builder, StreamPosition(start)), pd.collate("image_text")))
        return [next(loader) for _ in range(n)]

    full, resumed = batches(0, 6)[4:], batches(4, 2)
    for a, b in zip(full, resumed):
        assert a.keys() == b.keys()
        for key, value in a.items():
            assert torch.equal(value, b[key]) if isinstance(value, torch.Tensor) else value == b[key], key


def test_opening_a_stream_leaves_the_global_rng_alone(shard_dir):
    # the loop seeds dropout and ITM negatives per step; a resumed run opens its streams at another step
    loader = LaneLoader(LaneDataset(_sources(shard_dir), LAYOUT, _Indices(), StreamPosition()), _collate)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    batches = iter(loader)
    next(batches)
    assert torch.equal(torch.rand(3), expected)
