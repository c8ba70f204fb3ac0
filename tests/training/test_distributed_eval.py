"""Evaluation shards: rank blocks cover a set once, in order, at batch boundaries; the collectives put
every rank's part back in rank order (2 gloo processes)."""

from __future__ import annotations

import pytest
import torch
from gloo_workers import spawn_and_collect

from xfm_pipeline.training.distributed_eval import Ranks, full_dataset, shard

WORLD = 2


@pytest.mark.parametrize(("n", "unit", "world", "blocks"), [
    (5, 2, 2, [range(0, 2), range(2, 5)]),  # 3 batches (2, 2, 1): rank 0 one, rank 1 two with the short one
    (37, 5, 2, [range(0, 20), range(20, 37)]),  # 8 batches: 4 each, the last of 2 items
    (3, 4, 2, [range(0, 0), range(0, 3)]),  # one batch: rank 0 gets none
    (10, 1, 3, [range(0, 3), range(3, 6), range(6, 10)]),
    (0, 4, 2, [range(0, 0), range(0, 0)]),
])  # fmt: skip
def test_blocks_are_whole_batches_in_rank_order_covering_every_item_once(n, unit, world, blocks):
    got = [Ranks(rank, world).block(n, unit) for rank in range(world)]
    assert got == blocks
    assert [i for block in got for i in block] == list(range(n))


def test_one_process_is_the_identity():
    dataset = list(range(5))
    one = Ranks.current()
    assert one == Ranks(0, 1) and one.is_main
    assert shard(dataset, one, 2) is dataset
    rows = torch.arange(6).view(3, 2)
    assert one.gather_list(["a", "b"]) == ["a", "b"] and one.all_gather_rows(rows) is rows and one.broadcast({"x": 1}) == {"x": 1}


def test_a_shard_keeps_the_dataset_indices_and_gives_the_whole_set_back():
    dataset = [f"item{i}" for i in range(7)]
    second = shard(dataset, Ranks(1, 2), 2)  # batches (0 1) (2 3) | (4 5) (6)
    assert [second[i] for i in range(len(second))] == ["item4", "item5", "item6"]
    assert full_dataset(second) is dataset and full_dataset(dataset) is dataset
    with pytest.raises(ValueError, match="unit must be >= 1"):
        Ranks(0, 2).block(4, 0)


def _compute(rank):
    ranks = Ranks.current()
    block = ranks.block(5, 2)  # rank 0: items 0-1, rank 1: items 2-4
    values = torch.arange(5 * 3, dtype=torch.float32).view(5, 3) / 7
    return {
        "ranks": (ranks.rank, ranks.world_size),
        "list": ranks.gather_list([{"index": i} for i in block]),
        "float": ranks.all_gather_rows(values[block.start : block.stop]),
        "bf16": ranks.all_gather_rows(values[block.start : block.stop].to(torch.bfloat16)),
        "rank1_only": ranks.all_gather_rows(torch.tensor([5, -6], dtype=torch.int64) if rank == 1 else None),  # rank 0 has no rows
        "nobody": ranks.all_gather_rows(None),
        "broadcast": ranks.broadcast({"acc": 50.0 + rank}),
    }


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    return spawn_and_collect(_compute, tmp_path_factory.mktemp("gloo_eval"), WORLD)


@pytest.mark.system  # two spawned gloo processes
def test_two_ranks_gather_their_blocks_in_dataset_order(two_rank_results):
    values = torch.arange(5 * 3, dtype=torch.float32).view(5, 3) / 7
    for rank, result in enumerate(two_rank_results):
        assert result["ranks"] == (rank, WORLD)
        assert result["list"] == ([{"index": i} for i in range(5)] if rank == 0 else None)  # on rank 0 only
        assert torch.equal(result["float"], values)  # bit for bit, on every rank
        assert result["bf16"].dtype == torch.bfloat16 and torch.equal(result["bf16"], values.to(torch.bfloat16))
        assert torch.equal(result["rank1_only"], torch.tensor([5, -6]))
        assert result["nobody"] is None
        assert result["broadcast"] == {"acc": 50.0}  # rank 0's
