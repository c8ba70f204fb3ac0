"""Run a training job in-process or on every rank of a ``torchrun`` launch.

A job is an importable function ``fn(config: dict) -> dict`` (a JSON-serialisable result). With one
process it is simply called. Otherwise the resolved config is written to ``run_dir/job.json`` and
``python -m torch.distributed.run ... -m xfm_pipeline.training.worker run_dir/job.json`` is started:
every rank runs the same job under ``accelerate``; rank 0 writes ``result.json``, which is returned.
Multi-node flags (nnodes, node rank, rendezvous endpoint) are passed through. On a node other than 0
the result is rank 0's too, read once it appears, so ``run_dir`` must be on a filesystem the nodes
share for every node's caller to get it; otherwise those nodes fail with a message saying so.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
RESULT_FILE = "result.json"
RESULT_WAIT_S = 120.0  # how long a node other than 0 waits for rank 0's result.json after its workers end


@dataclass
class DistributedConfig:
    """How many processes run the job, and where they meet."""

    nproc_per_node: int = 1  # processes on this node (GPUs, or CPU workers with gloo)
    nnodes: int = 1  # nodes taking part
    node_rank: int = 0  # this node's rank (0 on the master)
    rdzv_endpoint: str = "127.0.0.1:29500"  # host:port of the rendezvous (the master node)
    max_restarts: int = 0  # torchrun restarts of failed workers (they resume from the last checkpoint)

    @property
    def world_size(self) -> int:
        """Total processes."""
        return self.nproc_per_node * self.nnodes


def resolve_job(path: str):
    """``"package.module:function"`` -> the function."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def torchrun_command(dist: DistributedConfig, job_file: Path) -> list[str]:
    """The ``torch.distributed.run`` command line for ``job_file``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={dist.nproc_per_node}"]
    if dist.nnodes == 1:
        cmd += ["--standalone"]
    else:
        cmd += [
            f"--nnodes={dist.nnodes}",
            f"--node-rank={dist.node_rank}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={dist.rdzv_endpoint}",
        ]
    cmd += [f"--max-restarts={dist.max_restarts}", "-m", "xfm_pipeline.training.worker", str(job_file)]
    return cmd


def run_job(
    job: str, config: dict[str, Any], run_dir: str | Path, dist: DistributedConfig | None = None, result_wait_s: float = RESULT_WAIT_S
) -> dict[str, Any]:
    """Run ``job(config)`` on ``dist.world_size`` processes and return rank 0's result.

    Raises:
        RuntimeError: the torchrun launch failed (the message names the job file), or, on a node other
            than 0, rank 0's result did not appear in ``run_dir`` within ``result_wait_s`` seconds.
    """
    dist = dist or DistributedConfig()
    if dist.world_size == 1:
        return resolve_job(job)(config)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    job_file = run_dir / JOB_FILE
    job_file.write_text(json.dumps({"job": job, "config": config}, indent=2))
    result_file = run_dir / RESULT_FILE
    result_file.unlink(missing_ok=True)
    cmd = torchrun_command(dist, job_file)
    log.info("launching %s", " ".join(cmd))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // dist.nproc_per_node))))
    completed = subprocess.run(cmd, env=env, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"torchrun exited with {completed.returncode}; job config in {job_file}")
    if dist.node_rank != 0:
        return _wait_for_rank0_result(result_file, dist.node_rank, result_wait_s)
    if not result_file.is_file():
        raise RuntimeError(f"torchrun finished but rank 0 wrote no {result_file}")
    return json.loads(result_file.read_text())


def _wait_for_rank0_result(result_file: Path, node_rank: int, wait_s: float) -> dict[str, Any]:
    """Rank 0's result as seen from node ``node_rank`` (rank 0 may finish writing after this node's workers)."""
    deadline = time.monotonic() + wait_s
    while not result_file.is_file():
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"node {node_rank}: training finished on this node, but rank 0's result {result_file} did not "
                f"appear within {wait_s:.0f} s; the outputs are on node 0. Put the run directory on a filesystem "
                "all nodes share for the Kedro run of every node to complete."
            )
        time.sleep(min(1.0, wait_s))
    return json.loads(result_file.read_text())
