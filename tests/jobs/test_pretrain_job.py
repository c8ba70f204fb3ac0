"""The pretraining job: every stream trains from shards or from records in memory; torchrun on 2 processes
equals 1 process; a run killed mid-epoch and restarted equals an uninterrupted one (shards)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from xfm_pipeline.jobs.pretrain import run_pretraining
from xfm_pipeline.training.launch import DistributedConfig, run_job


def _params(
    output_dir,
    steps=4,
    checkpoint_every=0,
    streams=("image_text", "region_text", "image_only", "text_only"),
    objectives=None,
    lr=3e-4,
    eps=1e-8,
    sharding="ddp",
):
    # 2 lanes (the default) over 4 shards of 8 samples; shuffle windows of 6 samples, so a resumed run
    # starts inside a window and inside a shard
    stream_params = {
        "image_text": {"batch_size": 4, "max_tokens": 16, "max_masks": 4, "shuffle_buffer": 6},
        "region_text": {"batch_size": 2, "texts_per_image": 2, "fusion_texts_per_image": 1, "max_tokens": 16, "max_masks": 4, "shuffle_buffer": 6},
        "image_only": {"batch_size": 4, "shuffle_buffer": 6},
        "text_only": {"batch_size": 4, "max_tokens": 16, "mask_prob": 0.15, "max_masks": 4, "shuffle_buffer": 6},
    }
    return {
        **{name: stream_params[name] for name in streams},
        "objectives": objectives or {},
        "loop": {
            "max_steps": steps,
            "lr": lr,
            "eps": eps,
            "warmup": 1,
            "checkpoint_every": checkpoint_every,
            "log_every": 1,
            "progress": False,
            "seed": 7,
            "sharding": sharding,
        },
        "output_dir": str(output_dir),
    }


def _config(world, init_dir, params, source="shards"):
    """The job config reading every stream from ``source``: "shards" (WebDataset) or "records" (JSON lines in memory)."""
    corpora = {
        name: [{"path": str(world / "shards" / name) if source == "shards" else str(world / "records" / f"{name}.jsonl")}]
        for name in ("image_text", "region_text", "image_only", "text_only")
    }
    return {"params": params, "init_dir": str(init_dir), "corpora": corpora, "image_root": str(world / "images"), "run_id": None}


def _weights(checkpoint) -> dict[str, torch.Tensor]:
    return load_file(str(Path(checkpoint) / "model.safetensors"))


def test_every_stream_and_objective_runs(pretrain_world, init_dir, tmp_path):
    result = run_pretraining(_config(pretrain_world, init_dir, _params(tmp_path / "run", steps=3)))
    keys = set(result["history"][-1])
    for expected in (
        "image_text/loss_itc",
        "image_text/loss_itm",
        "image_text/loss_mlm",
        "image_text/loss_mim",
        "region_text/loss_bbox",
        "region_text/loss_giou",
        "image_only/loss_mim",
        "text_only/loss_text_mlm",
    ):
        assert expected in keys
    assert all(torch.isfinite(torch.tensor(v)) for v in result["history"][-1].values())
    assert Path(result["final_checkpoint"], "config.json").is_file()


def test_a_new_run_prunes_older_run_directories_and_keep_runs_is_not_part_of_the_key(pretrain_world, init_dir, tmp_path):
    # records in memory (a JSON-lines corpus): the same streams, lanes and resume as shards
    first = run_pretraining(_config(pretrain_world, init_dir, _params(tmp_path / "out", steps=1, streams=("image_only",)), "records"))
    first_dir = Path(first["final_checkpoint"]).parent
    second = run_pretraining(
        _config(pretrain_world, init_dir, {**_params(tmp_path / "out", steps=1, streams=("image_only",), lr=1e-4), "keep_runs": 1}, "records")
    )
    second_dir = Path(second["final_checkpoint"]).parent

    assert second_dir != first_dir and not first_dir.exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == [second_dir.name]
    again = run_pretraining(
        _config(pretrain_world, init_dir, {**_params(tmp_path / "out", steps=1, streams=("image_only",), lr=1e-4), "keep_runs": 5}, "records")
    )
    assert Path(again["final_checkpoint"]).parent == second_dir and again["resumed_from"] is not None


@pytest.mark.system  # torchrun, 2 processes
@pytest.mark.timeout(600)  # ~100 s each on a busy 2-core machine
@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_two_process_torchrun_equals_one_process(pretrain_world, init_dir, tmp_path, sharding):
    # ITM draws hard negatives from the LOCAL batch (as the paper does), so a 2-process run legitimately
    # differs there; the other objectives see the same global batch and must give the same update.
    # Adam divides by sqrt(v) + eps, so float-level differences (the order of the cross-rank gradient sum)
    # of gradients near eps become step differences of up to lr: keep lr small and eps at 1e-6.
    objectives = {"itm": 0.0, "bbox": 0.0, "giou": 0.0}
    streams = ("image_text", "image_only", "text_only")
    one = run_pretraining(_config(pretrain_world, init_dir, _params(tmp_path / "one", streams=streams, objectives=objectives, lr=1e-4, eps=1e-6)))
    two = run_job(
        "xfm_pipeline.jobs.pretrain:run_pretraining",
        _config(pretrain_world, init_dir, _params(tmp_path / "two", streams=streams, objectives=objectives, lr=1e-4, eps=1e-6, sharding=sharding)),
        tmp_path / "two_job",
        DistributedConfig(nproc_per_node=2, rdzv_endpoint="127.0.0.1:29533"),
    )  # fsdp: each rank holds half of every block's weights and optimizer state; the checkpoint is whole
    a, b = _weights(one["final_checkpoint"]), _weights(two["final_checkpoint"])
    assert a.keys() == b.keys()
    init = _weights(init_dir)
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-5, rtol=0, msg=lambda m, k=key: f"{k}: {m}")
    assert sum(not torch.equal(a[k], init[k]) for k in a if k in init) > 50  # the runs really trained


@pytest.mark.system  # a worker subprocess, killed
@pytest.mark.timeout(900)  # three runs and a kill: ~230 s on a busy 2-core machine
def test_killed_run_restarts_to_the_same_parameters(pretrain_world, init_dir, tmp_path):
    full = run_pretraining(_config(pretrain_world, init_dir, _params(tmp_path / "full", steps=4, checkpoint_every=2)))
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "job": "xfm_pipeline.jobs.pretrain:run_pretraining",
                "config": _config(pretrain_world, init_dir, _params(tmp_path / "killed", steps=4, checkpoint_every=2)),
            }
        )
    )
    proc = subprocess.Popen([sys.executable, "-m", "xfm_pipeline.training.worker", str(job)], env=dict(os.environ, XFM_MLFLOW="0"))
    deadline = time.time() + 240
    while not list((tmp_path / "killed").glob("run-*/checkpoint-0000002")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail("the run finished before it could be killed; make it longer")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((tmp_path / "killed").glob("run-*/checkpoint-0000004"))
    resumed = run_pretraining(_config(pretrain_world, init_dir, _params(tmp_path / "killed", steps=4, checkpoint_every=2)))
    assert resumed["resumed_from"].endswith("checkpoint-0000002")
    changed = run_pretraining(_config(pretrain_world, init_dir, _params(tmp_path / "killed", steps=4, checkpoint_every=2, lr=2e-4)))
    assert changed["resumed_from"] is None  # other parameters: a fresh run, never the finished one
    a, b = _weights(full["final_checkpoint"]), _weights(resumed["final_checkpoint"])
    # same batches, masks, dropout and optimizer state (tests/training/test_streams.py checks the resumed
    # batches bit for bit); only float noise between processes (thread scheduling of reductions) may
    # differ, far below any training signal. Attention KEY biases have a true gradient of exactly zero
    # (softmax is shift-invariant per query), so their gradient IS float noise and Adam turns it into
    # steps of up to ~lr/10: they get a tolerance of that size.
    for key in a:
        atol = 1e-5 if key.endswith("key.bias") else 1e-6
        torch.testing.assert_close(b[key], a[key], atol=atol, rtol=0, msg=lambda m, k=key: f"{k}: {m}")


@pytest.mark.system  # torchrun, 2 processes
@pytest.mark.timeout(900)  # three 2-process launches, one killed: ~90 s on a busy 2-core machine
def test_fsdp_run_resumes_from_its_gathered_checkpoint(pretrain_world, init_dir, tmp_path):
    streams, objectives = ("image_text", "text_only"), {"itm": 0.0}
    dist = DistributedConfig(nproc_per_node=2, rdzv_endpoint="127.0.0.1:29534")
    params = _params(tmp_path / "fsdp", steps=6, checkpoint_every=2, streams=streams, objectives=objectives, sharding="fsdp")
    full_params = {**params, "output_dir": str(tmp_path / "full")}
    full = run_job("xfm_pipeline.jobs.pretrain:run_pretraining", _config(pretrain_world, init_dir, full_params), tmp_path / "full_job", dist)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job": "xfm_pipeline.jobs.pretrain:run_pretraining", "config": _config(pretrain_world, init_dir, params)}))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone", "-m", "xfm_pipeline.training.worker", str(job)]
    proc = subprocess.Popen(torchrun, env=dict(os.environ, XFM_MLFLOW="0"))
    deadline = time.time() + 240
    while not list((tmp_path / "fsdp").glob("run-*/checkpoint-0000002")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail("the run finished before it could be killed; make it longer")
    for process in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:  # both ranks, then torchrun
        process.kill()
    proc.wait()
    latest = sorted((tmp_path / "fsdp").glob("run-*/checkpoint-*"))[-1]  # step 2, or 4 if it got that far
    assert latest.name != "checkpoint-0000006"
    state = torch.load(latest / "training_state.pt", weights_only=True)
    assert state["step"] == int(latest.name[-7:]) and state["optimizer"]["state"]  # the gathered (unsharded) AdamW moments
    resumed = run_job("xfm_pipeline.jobs.pretrain:run_pretraining", _config(pretrain_world, init_dir, params), tmp_path / "job", dist)
    assert resumed["resumed_from"] == str(latest)
    first, again = _weights(full["final_checkpoint"]), _weights(resumed["final_checkpoint"])
    for key in first:
        atol = 1e-5 if key.endswith("key.bias") else 1e-6  # see test_killed_run_restarts_to_the_same_parameters
        torch.testing.assert_close(again[key], first[key], atol=atol, rtol=0, msg=lambda m, k=key: f"{k}: {m}")


@pytest.mark.unit  # argument checks of the loop, nothing runs
def test_fsdp_refuses_a_validation_callback(tmp_path):
    from xfm_pipeline.training.loop import LoopConfig, train

    with pytest.raises(ValueError, match="fsdp"):
        train(torch.nn.Linear(2, 2), lambda m, b: {"loss": m(b).sum()}, {}, LoopConfig(sharding="fsdp"), tmp_path, evaluate=lambda m, s: {})
    with pytest.raises(ValueError, match="sharding"):
        train(torch.nn.Linear(2, 2), lambda m, b: {"loss": m(b).sum()}, {}, LoopConfig(sharding="zero3"), tmp_path)


def _run_shipped_stage(stage: str, world, init_dir, tmp_path) -> tuple[set[str], set[str]]:
    """3 steps of the shipped ``conf/base/parameters_<stage>.yml`` (region batch 4): (loss keys of the last
    step, names of the weights that changed). Also checks the checkpoint's stage tag."""
    import yaml

    shipped = yaml.safe_load((Path(__file__).parents[2] / f"conf/base/parameters_{stage}.yml").read_text())[stage]
    params = {
        **shipped,
        "region_text": {**shipped["region_text"], "batch_size": 4},
        "loop": {**shipped["loop"], "max_steps": 3, "checkpoint_every": 0, "progress": False},
        "output_dir": str(tmp_path / "run"),
    }
    result = run_pretraining({**_config(world, init_dir, params), "stage": stage})
    assert json.loads(Path(result["final_checkpoint"], "config.json").read_text())["extra"]["stage"] == stage
    before, after = _weights(Path(init_dir)), _weights(result["final_checkpoint"])
    return {k for k in result["history"][-1] if "loss" in k}, {name for name in before if not torch.equal(before[name], after[name])}


def test_the_shipped_vision_warm_up_trains_only_the_vision_side_against_the_frozen_text_encoder(pretrain_world, init_dir, tmp_path):
    losses, changed = _run_shipped_stage("pretrain_vision", pretrain_world, init_dir, tmp_path)
    assert losses == {"region_text/loss", "region_text/loss_itc"}
    assert changed and all(name.startswith(("vision_encoder.", "vision_proj.", "text_proj.", "temp")) for name in changed), sorted(changed)[:5]
    assert any(name.startswith("vision_encoder.") for name in changed)


def test_the_shipped_box_stage_trains_only_the_fusion_encoder_and_the_pointer(pretrain_world, init_dir, tmp_path):
    losses, changed = _run_shipped_stage("pretrain_bbox", pretrain_world, init_dir, tmp_path)
    assert losses == {"region_text/loss", "region_text/loss_bbox", "region_text/loss_giou", "region_text/loss_pointer"}
    assert changed and all(name.startswith(("fusion_encoder.", "bbox_pointer.")) for name in changed), sorted(changed)[:5]
    assert any(name.startswith("bbox_pointer.") for name in changed) and any(".crossattention." in name for name in changed)


@pytest.mark.unit  # nothing is launched
def test_a_vision_warm_up_of_zero_steps_passes_the_init_checkpoint_through(init_dir):
    from xfm_pipeline.pipelines.pretrain.nodes import pretrain_vision

    checkpoint, metrics, history = pretrain_vision(str(init_dir), {"loop": {"max_steps": 0}}, "unused", None)
    assert checkpoint == str(init_dir)  # the init checkpoint's directory, untouched
    assert metrics == {"step": 0, "resumed_from": None, "losses": {}} and history == []


def test_augment_off_is_refused_outside_the_region_stream(pretrain_world, init_dir, tmp_path):
    params = _params(tmp_path / "run", steps=1, streams=("image_text",))
    params["image_text"]["augment"] = False
    with pytest.raises(ValueError, match="pretrain.image_text.augment: only region_text"):
        run_pretraining(_config(pretrain_world, init_dir, params))
