"""Tiny trained task checkpoints for the predictor tests: the fine-tune job (``jobs.finetune.run_finetune``, what
every ``finetune_<task>`` pipeline runs) trains each registered task for one step on a few records of the
session's shapes world and evaluates it; the tests compare ``xfm_pipeline.predict`` with what it wrote.

``trained(task)`` runs the job once per task and session (on first use), so a test pays only for its tasks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

GLUE_ROWS = {"train": 4, "val": 4}  # rows kept per GLUE file and split


@dataclass(frozen=True)
class Trained:
    """One task fine-tuned by the job: its checkpoint, the job's predictions per split and its data."""

    task: str
    checkpoint: Path  # the selected task checkpoint directory
    predictions: dict[str, list[dict[str, Any]]]  # split -> the job's prediction records
    metrics: dict[str, dict[str, float]]  # split -> the job's metrics
    data: dict[str, Any]  # task data key -> records, as the fine-tune node hands them to the job
    image_root: str  # root of the records' image paths


def _glue(world, task) -> dict[str, Any]:
    """{"glue": {"<Task>/<file>": tsv}}: the header and the first rows of the task's train and dev files."""
    glue = {}
    for split, file in task.files.items():
        path = world.validated / "glue" / task.spec.name / f"{file}.tsv"
        header = 0 if task.spec.header(file) is None else 1
        glue[f"{task.spec.name}/{file}"] = "".join(path.read_text().splitlines(keepends=True)[: header + GLUE_ROWS[split.split("_")[0]]])
    return {"glue": glue}


def _imagenet(world) -> dict[str, Any]:
    """Two training images and one held-out image per class (the held-out "val" comes from "train")."""
    keep, count = {"train": 2, "val": 1}, {}
    manifest = []
    for r in world.records("imagenet/manifest.json"):
        key = (r["split"], r["label"])
        if count.get(key, 0) < keep[r["split"]]:
            manifest.append(r)
            count[key] = count.get(key, 0) + 1
    return {"manifest": manifest}


def _gt_subset(gt: dict, ids: set) -> dict:
    return {"images": [i for i in gt["images"] if i["id"] in ids], "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}


def task_data(world, task) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, TaskParams overrides) of registered ``task`` on a few records of ``world``."""
    name = task.name
    if name == "vqa":
        data = {split: world.records(f"vqa/{split}.json")[:n] for split, n in (("train", 4), ("val", 3), ("test", 2))}
        return {**data, "answer_list": world.records("vqa/answer_list.json")}, {"options": {"augment": False, "k_test": 6}}
    if name == "captioning":
        val, test = world.records("captioning/val.json")[:2], world.records("captioning/test.json")[:2]
        data = {"train": world.records("captioning/train.json")[:4], "val": val, "test": test}
        data["val_gt"] = _gt_subset(world.records("captioning/val_gt.json"), {r["image_id"] for r in val})
        data["test_gt"] = _gt_subset(world.records("captioning/test_gt.json"), {r["image_id"] for r in test})
        return data, {"options": {"augment": False, "beam_size": 2, "max_len": 5, "min_len": 2}}
    if name == "retrieval":
        data = {
            "train": world.records("retrieval/train.json")[:4],
            "val": world.records("retrieval/val.json")[:3],
            "test": world.records("retrieval/test.json")[:2],
        }
        return data, {"options": {"augment": False, "k_test": 4, "rerank_batch": 5}}
    if name == "nlvr":
        data = {"train": world.records("nlvr/train.json")[:4], "val": world.records("nlvr/dev.json")[:2], "test": world.records("nlvr/test.json")[:2]}
        return data, {"options": {"augment": False}}
    if name == "grounding":
        refs = world.records("grounding/refcoco+.json")
        keep = {"train": 4, "val": 2, "testA": 2, "testB": 2}
        return {"refs": [r for split, n in keep.items() for r in [r for r in refs if r["split"] == split][:n]]}, {"options": {"augment": False}}
    if name.startswith("glue_"):
        return _glue(world, task), {}
    if name.startswith("imagenet"):
        return _imagenet(world), {"options": {"image_root": world.imagenet_root, "augment": "light", "mixup": 0.0, "cutmix": 0.0}}
    raise KeyError(f"no predictor test data for the registered task {name!r}: add it to task_data in tests/predict/conftest.py")


def run_job(task_name: str, world, init_dir: Path, directory: Path) -> Trained:
    """One optimizer step of the fine-tune job on ``task_name``, validation at the end (selects the checkpoint)."""
    from xfm_pipeline.jobs.finetune import run_finetune
    from xfm_pipeline.tasks.registry import get_task

    data, overrides = task_data(world, get_task(task_name))
    data_dir = directory / "data"
    data_dir.mkdir(parents=True)
    for key, value in data.items():
        (data_dir / f"{key}.json").write_text(json.dumps(value))
    params = {"image_size": 64, "batch_size": 4, "eval_batch_size": 4, "max_tokens": 30, **overrides}
    params["loop"] = {"max_steps": 1, "warmup": 1, "progress": False, "seed": 0}
    result = run_finetune({
        "task": task_name, "params": params, "init_dir": str(init_dir), "image_root": world.image_root, "run_id": None,
        "data_dir": str(data_dir), "output_dir": str(directory / "out"), "keep_runs": 1,
    })  # fmt: skip
    return Trained(task_name, Path(result["checkpoint"]), result["predictions"], result["metrics"], data, world.image_root)


@pytest.fixture(scope="session")
def trained(shapes_world, tiny_checkpoint_without_dropout, tmp_path_factory):
    """``trained(task)``: the :class:`Trained` of registered task ``task`` (the job runs on first use)."""
    import torch

    done: dict[str, Trained] = {}

    def get(task: str) -> Trained:
        if task not in done:
            previous = torch.get_num_threads()
            torch.set_num_threads(1)  # a shared 2-core machine: one thread is faster than two competing ones
            try:
                done[task] = run_job(task, shapes_world, tiny_checkpoint_without_dropout, tmp_path_factory.mktemp(f"trained_{task}"))
            finally:
                torch.set_num_threads(previous)
        return done[task]

    return get


@pytest.fixture(autouse=True)
def no_java(monkeypatch):
    """Captioning scores with the pure-Python PTB approximation and no METEOR (the Java tools take seconds)."""
    monkeypatch.setattr("xfm_pipeline.metrics.captioning.java_available", lambda: False)
