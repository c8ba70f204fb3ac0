"""Run a training job in-process or on every rank of a ``torchrun`` launch.

A job is an importable function ``fn(config: dict) -> dict`` (a JSON-serialisable result). With one
process it is simply called. Otherwise the resolved config is written to ``job.json`` in the node's job
directory (:func:`job_directory`) and ``python -m torch.distributed.run ... -m xfm_pipeline.training.worker
job.json`` is started: every rank runs the same job under ``accelerate``; global rank 0 writes
``result.json`` next to the job file, which node 0 returns.

Several nodes run the same Kedro pipeline, each with its own ``node_rank``; their torchrun agents meet in a
c10d rendezvous whose store node 0 hosts at ``rdzv_endpoint``. The worker numbers the global ranks node by
node, so global rank 0 (checkpoints, MLflow metrics, the result) is on node 0, whose Kedro run saves the
outputs. A node other than 0 writes nothing to the filesystem the nodes share: its job files live in a
node-local temporary directory, :func:`run_job` returns None there, and its Kedro node returns
:class:`OnNodeZero` markers, which the project hook's stand-in datasets do not save
(``hooks.NodeZeroOutputsHook``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
RESULT_FILE = "result.json"


@dataclass
class DistributedConfig:
    """How many processes run the job, and where they meet."""

    nproc_per_node: int = 1  # processes on this node (GPUs, or CPU workers with gloo); the same on every node
    nnodes: int = 1  # nodes taking part
    node_rank: int = 0  # this node's rank (0 on the node that hosts the rendezvous and saves the outputs)
    rdzv_endpoint: str = "127.0.0.1:29500"  # host:port of the rendezvous, on node 0
    max_restarts: int = 0  # torchrun restarts of failed workers (they resume from the last checkpoint)

    def __post_init__(self):
        if self.nproc_per_node < 1 or self.nnodes < 1 or not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"distributed: need nproc_per_node >= 1, nnodes >= 1 and 0 <= node_rank < nnodes, got {self}")

    @property
    def world_size(self) -> int:
        """Total processes."""
        return self.nproc_per_node * self.nnodes


@dataclass(frozen=True)
class OnNodeZero:
    """What a Kedro node returns for each output on a node other than 0: the result is global rank 0's, on
    node 0, whose Kedro run saves it (``run_dir``: where that node's job keeps its runs)."""

    node_rank: int
    run_dir: str


def resolve_job(path: str):
    """``"package.module:function"`` -> the function."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def torchrun_command(dist: DistributedConfig, job_file: Path) -> list[str]:
    """The ``torch.distributed.run`` command line for ``job_file``.

    Several nodes: a c10d rendezvous at ``rdzv_endpoint`` whose store node 0 hosts (``is_host``, so that the
    address need not be matched against host names). torchrun's ``--node-rank`` is not passed: c10d ignores
    it (it numbers the nodes by host name and process id); the worker reads the node rank from the job file.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={dist.nproc_per_node}"]
    if dist.nnodes == 1:
        cmd += ["--standalone"]
    else:
        cmd += [
            f"--nnodes={dist.nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={dist.rdzv_endpoint}",
            f"--rdzv-conf=is_host={str(dist.node_rank == 0).lower()}",
        ]
    cmd += [f"--max-restarts={dist.max_restarts}", "-m", "xfm_pipeline.training.worker", str(job_file)]
    return cmd


@contextlib.contextmanager
def job_directory(run_dir: str | Path, dist: DistributedConfig) -> Iterator[Path]:
    """Where this node keeps a job's files (``job.json``, the inputs its Kedro node writes for the job,
    rank 0's ``result.json``): ``run_dir`` on node 0, kept beside the runs for inspection and reruns; on any
    other node a node-local temporary directory, removed afterwards, so that only node 0 writes to a
    filesystem the nodes share."""
    if dist.node_rank == 0:
        yield Path(run_dir)
        return
    with tempfile.TemporaryDirectory(prefix=f"xfm-job-node{dist.node_rank}-") as tmp:
        yield Path(tmp)


def run_job(job: str, config: dict[str, Any], job_dir: str | Path, dist: DistributedConfig | None = None) -> dict[str, Any] | None:
    """Run ``job(config)`` on ``dist.world_size`` processes; rank 0's result on node 0, None on other nodes.

    ``job_dir`` (from :func:`job_directory`) gets the job file; on node 0 also rank 0's result.

    Raises:
        RuntimeError: the torchrun launch failed (the message names the job file), or rank 0 wrote no result.
    """
    dist = dist or DistributedConfig()
    if dist.world_size == 1:
        return resolve_job(job)(config)
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    job_file = job_dir / JOB_FILE
    job_file.write_text(json.dumps({"job": job, "config": config, "node_rank": dist.node_rank}, indent=2))
    result_file = job_dir / RESULT_FILE
    result_file.unlink(missing_ok=True)
    cmd = torchrun_command(dist, job_file)
    log.info("launching %s", " ".join(cmd))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // dist.nproc_per_node))))
    completed = subprocess.run(cmd, env=env, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"torchrun exited with {completed.returncode}; job config in {job_file}")
    if dist.node_rank != 0:
        log.info("node %d of %d: its ranks finished; global rank 0 on node 0 has the result", dist.node_rank, dist.nnodes)
        return None
    if not result_file.is_file():
        raise RuntimeError(f"torchrun finished but rank 0 wrote no {result_file}")
    return json.loads(result_file.read_text())
