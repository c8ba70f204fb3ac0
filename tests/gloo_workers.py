"""Spawned gloo process groups for tests: :func:`spawn_and_collect` runs ``compute(rank)`` on every rank of a
group (a file store: no TCP server thread on rank 0 that could outlive the group at exit) and returns each
rank's result. ``compute`` must be a module-level function (spawned processes import it).
Import with ``from gloo_workers import spawn_and_collect`` (``tests/`` is on ``sys.path``)."""

from __future__ import annotations

from pathlib import Path


def _rank_main(rank: int, compute, store_path: str, out_path: str, world: int) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=world)
    try:
        torch.save(compute(rank), f"{out_path}.{rank}")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def spawn_and_collect(compute, directory: Path, world: int) -> list:
    """Run ``compute(rank)`` in a ``world``-process gloo group (its store under ``directory``); each rank's result."""
    import torch
    import torch.multiprocessing as mp

    out = directory / "result"
    mp.spawn(_rank_main, args=(compute, str(directory / "store"), str(out), world), nprocs=world, join=True)
    return [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(world)]
