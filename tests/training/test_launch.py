"""run_job's torchrun path without torchrun (the command, the job files per node, rank 0's result); the
worker's node-ordered ranks. tests/jobs/test_multi_node.py runs two real nodes."""

import json
import subprocess
from pathlib import Path

import pytest

from xfm_pipeline.training import launch
from xfm_pipeline.training.launch import RESULT_FILE, DistributedConfig, job_directory, run_job
from xfm_pipeline.training.worker import node_ordered_rank


def _fake_torchrun(monkeypatch, returncode=0, result=None):
    """Replace subprocess.run: record the command and the job file; 'rank 0' writes ``result`` next to it."""
    calls = []

    def run(cmd, env, check):
        job_file = Path(cmd[-1])
        calls.append((cmd, json.loads(job_file.read_text())))
        if result is not None:
            job_file.with_name(RESULT_FILE).write_text(json.dumps(result))
        return subprocess.CompletedProcess(cmd, returncode)

    monkeypatch.setattr(launch.subprocess, "run", run)
    return calls


MULTI_NODE = {"nproc_per_node": 2, "nnodes": 2, "rdzv_endpoint": "10.0.0.1:29500"}


def test_node_zero_hosts_the_rendezvous_keeps_the_job_file_and_returns_rank_zeros_result(monkeypatch, tmp_path):
    calls = _fake_torchrun(monkeypatch, result={"final_checkpoint": "ckpt", "step": 3})
    dist = DistributedConfig(**MULTI_NODE, node_rank=0)
    with job_directory(tmp_path / "job", dist) as job_dir:
        out = run_job("pkg.mod:fn", {"a": 1}, job_dir, dist)
    assert job_dir == tmp_path / "job" and out == {"final_checkpoint": "ckpt", "step": 3}
    (cmd, spec), *_ = calls
    assert {"--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=10.0.0.1:29500", "--rdzv-conf=is_host=true"} <= set(cmd)
    assert not any(arg.startswith("--node-rank") for arg in cmd)  # c10d ignores it: the job file carries it
    assert spec == {"job": "pkg.mod:fn", "config": {"a": 1}, "node_rank": 0}
    assert json.loads((tmp_path / "job" / "job.json").read_text()) == spec


def test_other_nodes_keep_their_job_files_in_a_temporary_directory_and_return_none(monkeypatch, tmp_path):
    calls = _fake_torchrun(monkeypatch, result={"step": 3})  # a rank 0 here would write its result beside the job file
    dist = DistributedConfig(**MULTI_NODE, node_rank=1)
    with job_directory(tmp_path / "job", dist) as job_dir:
        (job_dir / "data").mkdir()  # what the Kedro node writes for the job
        assert run_job("pkg.mod:fn", {"a": 1}, job_dir, dist) is None
    (cmd, spec), *_ = calls
    assert "--rdzv-conf=is_host=false" in cmd and spec["node_rank"] == 1
    assert not tmp_path.joinpath("job").exists() and not job_dir.exists()  # nothing shared; the temporary files are gone


def test_a_failed_launch_names_the_job_file(monkeypatch, tmp_path):
    _fake_torchrun(monkeypatch, returncode=3)
    with pytest.raises(RuntimeError, match=r"torchrun exited with 3; job config in .*job.json"):
        run_job("pkg.mod:fn", {}, tmp_path, DistributedConfig(nproc_per_node=2))


def test_a_node_rank_outside_the_nodes_is_rejected():
    with pytest.raises(ValueError, match="0 <= node_rank < nnodes"):
        DistributedConfig(nnodes=2, node_rank=2)


def _torchrun_env(local_rank: int, local_world: int = 2, nodes: int = 2, world: int = 4, agent_store: str = "True") -> dict[str, str]:
    return {
        "LOCAL_RANK": str(local_rank),
        "LOCAL_WORLD_SIZE": str(local_world),
        "GROUP_WORLD_SIZE": str(nodes),
        "WORLD_SIZE": str(world),
        "TORCHELASTIC_USE_AGENT_STORE": agent_store,
    }


def test_ranks_are_numbered_node_by_node():
    ranks = [node_ordered_rank(node, _torchrun_env(local)) for node in (0, 1) for local in (0, 1)]
    assert ranks == [0, 1, 2, 3]
    assert node_ordered_rank(0, _torchrun_env(1, nodes=1, world=2, agent_store="False")) == 1  # one node: torchrun's own ranks
    with pytest.raises(RuntimeError, match="same nproc_per_node"):
        node_ordered_rank(1, _torchrun_env(0, world=3))
    with pytest.raises(RuntimeError, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE"):
        node_ordered_rank(1, _torchrun_env(0, agent_store="False"))
