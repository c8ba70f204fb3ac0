"""A real two-node job on one machine: two ``kedro run`` processes (``nnodes: 2``, ``node_rank`` 0 and 1, one
gloo process each, a c10d rendezvous on 127.0.0.1) in ONE project directory, as nodes sharing a filesystem.

The result equals a 1-process run of the same global batch; node 0 saves the catalog outputs (and, in the
fine-tune test, tracks the job in MLflow and registers the model); node 1 writes nothing under the project but
Kedro-Viz's ``.viz/`` (every write of its processes is audited: ``write_audit/sitecustomize.py``), opens no
MLflow store, ends cleanly and says where node 0 saved the outputs.
In the pretraining test node 1 starts first, so its torchrun agent has the lower process id, which torchrun's
c10d rendezvous numbers first: global rank 0 is on node 0 only because the worker numbers the ranks by node.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from kedro_project import make_project, run_pipelines
from safetensors.torch import load_file

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]  # ~60-90 s each on a busy 2-core machine

AUDIT = Path(__file__).with_name("write_audit")
STREAMS = ("image_text", "image_only", "text_only")
# the settings of tests/jobs/test_pretrain_job.py's 2-process identity test: ITM (local hard negatives) and the
# box losses off, a small lr and eps 1e-6, so that summing gradients over ranks differs by float noise only
PRETRAIN = {
    "image_text": {"batch_size": 4, "max_tokens": 16, "max_masks": 4, "shuffle_buffer": 6},
    "region_text": None,
    "image_only": {"batch_size": 4, "shuffle_buffer": 6},
    "text_only": {"batch_size": 4, "max_tokens": 16, "mask_prob": 0.15, "max_masks": 4, "shuffle_buffer": 6},
    "objectives": {"itm": 0.0, "bbox": 0.0, "giou": 0.0},
    "loop": {"max_steps": 3, "lr": 1.0e-4, "eps": 1.0e-6, "warmup": 1, "checkpoint_every": 0, "log_every": 1, "progress": False, "seed": 7},
    "warmup": None,  # base's warm-up phase runs on one node only
}
GLUE_SST2 = {
    "batch_size": 8,  # global: 4 per node
    "eval_batch_size": 16,
    "max_tokens": 16,
    "loop": {"max_steps": 3, "eval_every": 3, "lr": 1.0e-4, "eps": 1.0e-6, "warmup": 1, "log_every": 1, "progress": False},
}
WORDS = ["red", "green", "blue", "small", "large", "square", "circle", "left", "right", "top"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _distributed(nnodes: int, port: int) -> dict:
    return {"nproc_per_node": 1, "nnodes": nnodes, "rdzv_endpoint": f"127.0.0.1:{port}"}


def _pretrain_project(directory: Path, world: Path, init_dir: Path, nnodes: int, port: int) -> Path:
    """A project whose pretraining reads ``world``'s shards from ``init_dir`` on ``nnodes`` nodes."""
    make_project(directory, {"parameters_pretrain.yml": {"pretrain": {**PRETRAIN, "distributed": _distributed(nnodes, port)}}})
    for name in (*STREAMS, "region_text"):  # every corpus is a pipeline input (region_text unused)
        shutil.copytree(world / "shards" / name, directory / "data" / "05_model_input" / "pretrain_shards" / name)
    shutil.copytree(init_dir, directory / "data" / "06_models" / "pretrain_vision")
    return directory


def _glue_project(directory: Path, init_dir: Path, nnodes: int, port: int) -> Path:
    """A project fine-tuning SST-2 (16 training, 8 dev sentences) from ``init_dir`` on ``nnodes`` nodes."""
    make_project(directory, {"parameters_finetune.yml": {"finetune_glue_sst2": {**GLUE_SST2, "distributed": _distributed(nnodes, port)}}})
    sst2 = directory / "data" / "02_intermediate" / "glue" / "SST-2"
    sst2.mkdir(parents=True)
    for split, n in (("train", 16), ("dev", 8)):
        rows = [f"the {WORDS[i % 10]} {WORDS[(3 * i + 1) % 10]} {WORDS[(7 * i + 2) % 10]}\t{i % 2}" for i in range(n)]
        (sst2 / f"{split}.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    shutil.copytree(init_dir, directory / "data" / "06_models" / "pretrain")
    return directory


def _kedro(project: Path, pipeline: str, block: str, rank: int, env: dict, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kedro", "run", "--pipelines", pipeline, "--params", f"{block}.distributed.node_rank={rank}"]
    return subprocess.Popen(cmd, cwd=project, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _torchrun_started(proc: subprocess.Popen) -> bool:
    try:
        return any("torch.distributed.run" in " ".join(p.cmdline()) for p in psutil.Process(proc.pid).children(recursive=True))
    except psutil.NoSuchProcess:  # ended (its exit status is checked after)
        return False


def _run_two_nodes(project: Path, pipeline: str, block: str, tmp_path: Path, node1_first: bool, track_node0: bool) -> tuple[str, str, float]:
    """Run ``pipeline`` as nodes 0 and 1 in ``project``: both at once, or node 0 once node 1's torchrun agent
    started (``node1_first``). MLflow tracks node 1 (which must open no store) and, if ``track_node0``, node 0.

    Returns:
        (node 0's output, node 1's output, seconds from the first start to both ends)
    """
    base = dict(os.environ, COLUMNS="400", OMP_NUM_THREADS="1")
    env0 = dict(base, XFM_MLFLOW=str(int(track_node0)), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'node0.db'}")
    env1 = dict(
        base,
        XFM_MLFLOW="1",
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'node1.db'}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(AUDIT), os.environ.get("PYTHONPATH")])),
        XFM_WRITE_AUDIT_ROOT=str(project),
        XFM_WRITE_AUDIT_LOG=str(tmp_path / "node1_writes.txt"),
    )
    start = time.perf_counter()
    node1 = _kedro(project, pipeline, block, 1, env1, tmp_path / "node1.log")
    while node1_first and not _torchrun_started(node1) and node1.poll() is None and time.perf_counter() - start < 120:
        time.sleep(0.2)
    node0 = _kedro(project, pipeline, block, 0, env0, tmp_path / "node0.log")
    codes = node1.wait(timeout=400), node0.wait(timeout=400)
    seconds = time.perf_counter() - start
    out0, out1 = (tmp_path / "node0.log").read_text(), (tmp_path / "node1.log").read_text()
    assert codes == (0, 0), f"node 1 exited with {codes[0]}, node 0 with {codes[1]}\n--- node 0:\n{out0[-3000:]}\n--- node 1:\n{out1[-3000:]}"
    return out0, out1, seconds


def _max_abs_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


def _assert_node1_wrote_nothing(tmp_path: Path, project: Path, out1: str, pipeline_run: str) -> None:
    log = tmp_path / "node1_writes.txt"
    viz = str(project.resolve() / ".viz")  # Kedro-Viz's plugin hooks write run statistics there on every node
    lines = log.read_text().splitlines() if log.exists() else []
    writes = [line for line in lines if not line.split()[1].startswith(viz)]
    assert writes == [], "node 1 wrote under the project:\n" + "\n".join(writes)
    assert not (tmp_path / "node1.db").exists()  # node 1 never opened its MLflow store
    assert "no MLflow runs on this node" in out1 and pipeline_run in out1


def _node0_tracking(tmp_path: Path, model: str) -> tuple[set[str], int]:
    """Node 0's MLflow runs (names) and the number of versions of the registered ``model``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'node0.db'}")
    experiment = client.get_experiment_by_name("xfm-pipeline")
    return {r.info.run_name for r in client.search_runs([experiment.experiment_id])}, len(client.search_model_versions(f"name='{model}'"))


def test_two_kedro_nodes_pretrain_like_one_process(pretrain_world, init_dir, tmp_path):
    one = _pretrain_project(tmp_path / "one", pretrain_world, init_dir, 1, _free_port())
    started = time.perf_counter()
    run_pipelines(one, ["pretrain"])
    one_s = time.perf_counter() - started
    two = _pretrain_project(tmp_path / "two", pretrain_world, init_dir, 2, _free_port())

    out0, out1, two_s = _run_two_nodes(two, "pretrain", "pretrain", tmp_path, node1_first=True, track_node0=False)

    diff = _max_abs_diff(one / "data" / "06_models" / "pretrain", two / "data" / "06_models" / "pretrain")
    print(f"\ntwo-node pretraining: max |w_2nodes - w_1process| = {diff:.2e}; 1 process {one_s:.0f} s, two nodes {two_s:.0f} s")
    assert diff <= 1e-5
    assert _max_abs_diff(init_dir, two / "data" / "06_models" / "pretrain") > 1e-4  # it really trained
    history = json.loads((two / "data" / "08_reporting" / "pretrain_history.json").read_text())
    assert [h["step"] for h in history] == [1, 2, 3]
    assert json.loads((two / "data" / "06_models" / "pretrain_run" / "job" / "job.json").read_text())["node_rank"] == 0
    _assert_node1_wrote_nothing(tmp_path, two, out1, "pretrain: node 1 is done")
    saved_at = two.resolve() / "data" / "06_models" / "pretrain"
    assert f"pretrain_checkpoint: not saved on node 1; node 0 saves it to {saved_at}" in out1
    assert "rank 0 on node 0 wrote the run under data/06_models/pretrain_run" in out1
    assert "Pipeline execution completed successfully" in out1 and "Saving data to pretrain_checkpoint (XFMCheckpointDataset)" in out0


def test_two_kedro_nodes_finetune_glue_like_one_process(init_dir, tmp_path):
    one = _glue_project(tmp_path / "one", init_dir, 1, _free_port())
    started = time.perf_counter()
    run_pipelines(one, ["finetune_glue_sst2"])
    one_s = time.perf_counter() - started
    two = _glue_project(tmp_path / "two", init_dir, 2, _free_port())

    out0, out1, two_s = _run_two_nodes(two, "finetune_glue_sst2", "finetune_glue_sst2", tmp_path, node1_first=False, track_node0=True)

    checkpoint = Path("data") / "06_models" / "finetune_glue_sst2"
    diff = _max_abs_diff(one / checkpoint, two / checkpoint)
    print(f"\ntwo-node GLUE fine-tune: max |w_2nodes - w_1process| = {diff:.2e}; 1 process {one_s:.0f} s, two nodes {two_s:.0f} s")
    assert diff <= 1e-5
    metrics = Path("data") / "08_reporting" / "metrics" / "finetune_glue_sst2.json"
    assert json.loads((two / metrics).read_text()) == pytest.approx(json.loads((one / metrics).read_text()), abs=1e-6)
    assert _node0_tracking(tmp_path, "xfm-glue-sst2") == ({"kedro run finetune_glue_sst2", "finetune_glue_sst2.finetune"}, 1)
    _assert_node1_wrote_nothing(tmp_path, two, out1, "finetune_glue_sst2: node 1 is done")
    saved_at = two.resolve() / checkpoint
    assert f"finetune_glue_sst2_task_checkpoint: not saved on node 1; node 0 saves it to {saved_at}" in out1
    assert "rank 0 on node 0 wrote the run under data/06_models/finetune_glue_sst2_run/train" in out1
