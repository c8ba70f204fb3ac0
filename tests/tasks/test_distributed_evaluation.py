"""Evaluation on 2 ranks gives exactly the 1-process predictions and metrics, for every task.

One torchrun launch (2 gloo processes, ``ranks_job.finetune_each``) runs the fine-tune job's evaluation-only
path (``loop.max_steps: 0``) of every task family, each rank predicting its shard of every split (whole
evaluation batches, sizes chosen so that the shards are uneven and some rank gets none of a split; the
retrieval ranks split the texts and the ITM re-ranking too), plus an NLVR2 run that trains 2 steps with
lr 0 and validates after each: validation on both ranks, rank 0's metrics on both, the best checkpoint
saved by rank 0 and loaded by both for the test split. The same jobs run in this process are the
reference. Both sides run one thread per process, so every batch computes the same bits.

The agreement is printed per task and split (``pytest -s``), e.g. ``vqa val: 5/5 predictions identical``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ranks_job import SHARDS, finetune_each
from task_helpers import write_data_dir

HERE = Path(__file__).resolve().parent
# registered task -> evaluation batch: 2 unless the split sizes want another to make uneven shards
TASKS = {"vqa": 2, "nlvr": 2, "retrieval": 3, "grounding": 2, "captioning": 2, "glue_mnli": 5, "imagenet": 3, "imagenet_linear_probe": 3}


def _job(case, init_dir: Path, directory: Path, out: Path, loop: dict, **params) -> dict:
    from xfm_pipeline.config import to_dict

    job_params = {**to_dict(case.params), **params}
    job_params["loop"] = {**job_params["loop"], "progress": False, **loop}
    return {
        "task": case.name, "params": job_params, "init_dir": str(init_dir), "image_root": case.image_root, "run_id": None,
        "data_dir": str(write_data_dir(directory / "data", case.data)), "output_dir": str(out), "keep_runs": 1,
    }  # fmt: skip


def _jobs(task_case, tiny_init, directory: Path, world: str) -> dict:
    jobs = {
        name: _job(task_case(name), tiny_init, directory / name, directory / world / name, {"max_steps": 0}, eval_batch_size=bs) for name, bs in TASKS.items()
    }
    # lr 0: the weights stay the initial ones, so both runs validate and test the same model
    trained = {"max_steps": 2, "eval_every": 1, "lr": 0.0, "log_every": 1}
    jobs["nlvr_trained"] = _job(task_case("nlvr"), tiny_init, directory / "nlvr", directory / world / "nlvr_trained", trained, eval_batch_size=2)
    return jobs


def _agreement(one: dict, two: dict) -> list[tuple[str, int, int]]:
    """``(task split, identical, total)``: how many 1-process predictions the 2-rank run reproduced exactly, in place."""
    rows = []
    for name in one:
        for split, expected in one[name]["predictions"].items():
            got = two[name]["predictions"].get(split) or []
            same = sum(a == b for a, b in zip(expected, got, strict=True)) if len(got) == len(expected) else 0
            rows.append((f"{name} {split}", same, len(expected)))
    return rows


@pytest.mark.system  # torchrun, 2 processes
@pytest.mark.timeout(900)
def test_two_rank_evaluation_reproduces_one_process_exactly(task_case, tiny_init, tmp_path, monkeypatch):
    from xfm_pipeline.training.launch import DistributedConfig, run_job

    one = json.loads(json.dumps(finetune_each({"jobs": _jobs(task_case, tiny_init, tmp_path, "one")})))  # as the launch returns it
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as this process (the module's one_thread fixture)
    two = run_job("ranks_job:finetune_each", {"jobs": _jobs(task_case, tiny_init, tmp_path, "two")}, tmp_path / "launch", DistributedConfig(nproc_per_node=2))

    shards = {"one": one.pop(SHARDS), "two": two.pop(SHARDS)}  # per rank: [task, items] of each predict call

    def sizes(world: str, task: str) -> list[list[int]]:
        return [[n for name, n in calls if name == task] for calls in shards[world]]

    # each rank predicted whole batches of its own: vqa val 5 = 2 + 3 (batches of 2), test 4 = 2 + 2; retrieval
    # (batches of 3) val 4 images = 3 + 1, test 3 = 0 + 3 (rank 0 only joins the text and ITM work there)
    assert (sizes("one", "vqa"), sizes("two", "vqa")) == ([[5, 4]], [[2, 2], [3, 2]])
    assert (sizes("one", "retrieval"), sizes("two", "retrieval")) == ([[4, 3]], [[3, 0], [1, 3]])
    for task in {job_task for job_task, _ in shards["one"][0]}:
        assert [sum(split) for split in zip(*sizes("two", task), strict=True)] == sizes("one", task)[0], task
    rows = _agreement(one, two)
    report = "\n".join(f"{what}: {same}/{total} predictions identical" for what, same, total in rows)
    print("\n" + report)
    assert all(same == total for _, same, total in rows), report
    assert set(one) == set(TASKS) | {"nlvr_trained"} and sum(total for _, _, total in rows) > 100
    for name in one:
        assert two[name]["predictions"] == one[name]["predictions"], name  # order included
        assert two[name]["metrics"] == one[name]["metrics"], name
    validation = [[h for h in run["history"] if "val/nlvr_acc" in h] for run in (one["nlvr_trained"], two["nlvr_trained"])]
    assert [h["step"] for h in validation[0]] == [1, 2] and validation[1] == validation[0]
