"""run_job's torchrun path without torchrun: the command, the exit status and rank 0's result per node."""

import json
import subprocess
import threading
from pathlib import Path

import pytest

from xfm_pipeline.training import launch
from xfm_pipeline.training.launch import RESULT_FILE, DistributedConfig, run_job


def _fake_torchrun(monkeypatch, returncode=0, result=None, delay_s=0.0):
    """Replace subprocess.run: record the command; 'rank 0' writes ``result`` next to the job file."""
    calls = []

    def run(cmd, env, check):
        calls.append(cmd)
        job_file = cmd[-1]
        if result is not None:
            out = Path(job_file).with_name(RESULT_FILE)

            def write():  # atomically, as the worker does
                out.with_suffix(".tmp").write_text(json.dumps(result))
                out.with_suffix(".tmp").replace(out)

            if delay_s:
                threading.Timer(delay_s, write).start()
            else:
                write()
        return subprocess.CompletedProcess(cmd, returncode)

    monkeypatch.setattr(launch.subprocess, "run", run)
    return calls


MULTI_NODE = {"nproc_per_node": 2, "nnodes": 2, "rdzv_endpoint": "10.0.0.1:29500"}


def test_node_zero_returns_rank_zeros_result(monkeypatch, tmp_path):
    calls = _fake_torchrun(monkeypatch, result={"final_checkpoint": "ckpt", "step": 3})
    out = run_job("pkg.mod:fn", {"a": 1}, tmp_path, DistributedConfig(**MULTI_NODE, node_rank=0))
    assert out == {"final_checkpoint": "ckpt", "step": 3}
    cmd = calls[0]
    assert "--nnodes=2" in cmd and "--node-rank=0" in cmd and "--rdzv-endpoint=10.0.0.1:29500" in cmd
    assert json.loads((tmp_path / "job.json").read_text()) == {"job": "pkg.mod:fn", "config": {"a": 1}}


def test_other_nodes_wait_for_rank_zeros_result_on_a_shared_filesystem(monkeypatch, tmp_path):
    _fake_torchrun(monkeypatch, result={"final_checkpoint": "ckpt", "step": 3}, delay_s=0.3)
    out = run_job("pkg.mod:fn", {}, tmp_path, DistributedConfig(**MULTI_NODE, node_rank=1), result_wait_s=10)
    assert out == {"final_checkpoint": "ckpt", "step": 3}


def test_other_nodes_without_the_result_fail_with_the_reason(monkeypatch, tmp_path):
    _fake_torchrun(monkeypatch, result=None)
    with pytest.raises(RuntimeError, match=r"node 1: training finished on this node, but rank 0's result .*result.json"):
        run_job("pkg.mod:fn", {}, tmp_path, DistributedConfig(**MULTI_NODE, node_rank=1), result_wait_s=0.2)


def test_a_failed_launch_names_the_job_file(monkeypatch, tmp_path):
    _fake_torchrun(monkeypatch, returncode=3)
    with pytest.raises(RuntimeError, match=r"torchrun exited with 3; job config in .*job.json"):
        run_job("pkg.mod:fn", {}, tmp_path, DistributedConfig(nproc_per_node=2))
