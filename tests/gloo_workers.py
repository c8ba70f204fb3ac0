"""Spawned gloo process groups for tests: ``worker(rank, store_path, out_path)`` saves its result to
``f"{out_path}.{rank}"`` with ``torch.save``; :func:`spawn_and_collect` runs the workers and loads the results.
Import with ``from gloo_workers import spawn_and_collect`` (``tests/`` is on ``sys.path``)."""

from __future__ import annotations

from pathlib import Path


def spawn_and_collect(worker, directory: Path, world: int) -> list:
    """Run ``world`` processes of ``worker`` (a file store under ``directory``) and return each rank's result."""
    import torch
    import torch.multiprocessing as mp

    out = directory / "result"
    mp.spawn(worker, args=(str(directory / "store"), str(out)), nprocs=world, join=True)
    return [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(world)]
