"""`dvc repro` end to end on a copy of the project with a miniature world and 2-step trainings.

The copy has exactly the stages, commands and dependencies of dvc.yaml; only the sizes in
conf/base/parameters_*.yml shrink. Checks: the whole chain runs, `dvc metrics show` lists every task and
pretraining stage (one score file each, few columns), a second `dvc repro` is a no-op, and a change to one
task's parameters reruns only that task and the report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from xfm_pipeline.tasks.registry import PIPELINES

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    "XFM_MLFLOW": "0",
    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
}
MINI_WORLD = {
    "images": {"pretrain": 24, "train": 32, "val": 12, "test": 12},
    "nlvr": {"train": 24, "dev": 10, "test": 10},
    "imagenet": {"train_per_class": 4, "val_per_class": 2},
    "glue": {"train": 24, "dev": 12, "test": 12},
    "pretrain": {"text_only": 40},
}
MINI_TRAINING = {"max_steps": 2, "batch_size": 4, "eval_batch_size": 16, "eval_every": 2}


def _update(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _deep_update(target: dict, changes: dict) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def _shrink(conf: Path) -> None:
    _update(conf / "parameters_data_ingestion.yml", lambda d: _deep_update(d["data_ingestion"]["shapes_world"], MINI_WORLD))

    def pretrain(d):
        for stage in d.values():  # pretrain_vision, pretrain, pretrain_bbox
            _deep_update(stage, {"loop": {"max_steps": 2, "checkpoint_every": 0, "warmup": 1}})
            if stage.get("warmup"):  # pretrain's warm-up phase, shrunk alike
                _deep_update(stage["warmup"], {"loop": {"max_steps": 2, "checkpoint_every": 0}, "region_text": {"batch_size": 2}})
            for stream in ("image_text", "region_text", "image_only", "text_only"):
                if stream in stage:
                    stage[stream]["batch_size"] = 2

    _update(conf / "parameters_pretrain.yml", pretrain)
    _update(conf / "parameters_pretrain_vision.yml", pretrain)
    _update(conf / "parameters_pretrain_bbox.yml", pretrain)
    _update(conf / "parameters_finetune.yml", _shrink_finetune)


def _shrink_finetune(blocks: dict) -> None:
    """Every layer of parameters_finetune.yml: batch sizes and steps of MINI_TRAINING wherever a layer sets
    them (the defaults always), evaluation-only pipelines (``max_steps: 0``) left so."""
    for name, block in blocks.items():
        if block is None:
            blocks[name] = block = {}
        if name == "finetune_defaults":
            block.update(batch_size=None, eval_batch_size=None)
            block["loop"] = {**(block.get("loop") or {}), "max_steps": None, "eval_every": None}
        for key in ("batch_size", "eval_batch_size"):
            if key in block:
                block[key] = MINI_TRAINING[key]
        loop = block.get("loop") or {}
        for key in ("max_steps", "eval_every"):
            if key in loop and loop[key] != 0:
                loop[key] = MINI_TRAINING[key]


def _run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Iterator[Path]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed (DVC needs a Git repository)")
    copy = tmp_path_factory.mktemp("dvc") / "project"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    (copy / "dvc.lock").unlink(missing_ok=True)
    _shrink(copy / "conf" / "base")
    for args in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        _run(args, copy)
    yield copy
    shutil.rmtree(copy.parent, ignore_errors=True)  # a few GB of checkpoints, training states and DVC cache


@pytest.mark.timeout(3600)  # the whole chain three times, every stage a `kedro run` subprocess
def test_dvc_repro_runs_the_chain_then_does_nothing_then_only_the_changed_task(project):
    _run(["dvc", "repro"], project)
    metrics = json.loads(_run(["dvc", "metrics", "show", "--json"], project))
    shown = {Path(path).stem: data["data"] for workspace in metrics.values() for path, data in workspace["data"].items()}
    assert shown.keys() == {*PIPELINES, "pretrain_vision", "pretrain", "pretrain_bbox"}, shown.keys()
    columns = {key for data in shown.values() for key in data}
    assert columns <= {"val", "test", "testA", "testB", "val_mismatched", "image_text", "region_text", "image_only", "text_only"}, columns
    results = json.loads((project / "data/08_reporting/results.json").read_text())
    assert results["not_run"] == []

    second = _run(["dvc", "repro"], project)
    assert "Running stage" not in second, second[-2000:]

    _update(project / "conf/base/parameters_finetune.yml", lambda d: d.update(finetune_glue_rte={**(d["finetune_glue_rte"] or {}), "loop": {"seed": 7}}))
    assert "finetune_glue_rte" in _run(["dvc", "status"], project)
    third = _run(["dvc", "repro"], project)  # the task reruns; its new history (losses) reruns the report
    rerun = sorted(line.split("'")[1] for line in third.splitlines() if line.startswith("Running stage"))
    assert rerun == ["finetune_glue_rte", "report"], third[-2000:]
