"""A pretraining stage's warm-up phase (``warmup``): its parameters are the stage's with the warm-up's keys
merged over them, it runs first, and the stage continues from its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from xfm_pipeline.config import ConfigError
from xfm_pipeline.jobs.pretrain import run_pretraining, warmup_params

STAGE = {
    "region_text": {"batch_size": 2, "texts_per_image": 2, "max_tokens": 16, "max_masks": 4, "shuffle_buffer": 6},
    "objectives": {"itc": 1.0, "itm": 0.0, "mlm": 0.0, "mim": 0.0, "bbox": 1.0, "giou": 1.0, "pointer": 1.0, "text_mlm": 0.0},
    "box_head": "pointer",
    "loop": {"max_steps": 5, "lr": 3e-4, "warmup": 1, "checkpoint_every": 0, "log_every": 1, "progress": False, "seed": 7},
    "output_dir": "runs/pretrain",
}


@pytest.mark.unit
def test_the_warm_up_block_is_merged_over_the_stage_key_by_key():
    warm = warmup_params({**STAGE, "warmup": {"region_text": {"batch_size": 4}, "objectives": {"itc": 0.0}, "loop": {"max_steps": 2}}})
    assert warm["region_text"] == {**STAGE["region_text"], "batch_size": 4}
    assert warm["objectives"] == {**STAGE["objectives"], "itc": 0.0}
    assert warm["loop"] == {**STAGE["loop"], "max_steps": 2}
    assert warm["box_head"] == "pointer" and "warmup" not in warm
    assert warm["output_dir"] == str(Path("runs/pretrain/warmup"))
    assert warmup_params({**STAGE, "warmup": {"output_dir": "elsewhere"}})["output_dir"] == "elsewhere"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("warmup", "message"),
    [
        ({"region_txt": {"batch_size": 4}}, r"unknown key\(s\) pretrain\.warmup\.region_txt"),
        ({"region_text": {"batch_sise": 4}}, r"pretrain\.warmup\.region_text\.batch_sise"),
        ({"warmup": {}}, r"pretrain\.warmup\.warmup: a warm-up phase cannot have a warm-up"),
        ([1, 2], r"pretrain\.warmup: expected a mapping"),
    ],
)
def test_a_bad_warm_up_block_is_refused_naming_the_key(warmup, message):
    with pytest.raises(ConfigError, match=message):
        warmup_params({**STAGE, "warmup": warmup})


@pytest.mark.unit  # refused before anything runs
def test_a_warm_up_is_refused_on_several_nodes_and_with_a_bad_loop(init_dir):
    from xfm_pipeline.pipelines.pretrain.nodes import pretrain

    params = {**STAGE, "warmup": {"loop": {"max_steps": 2}}, "distributed": {"nnodes": 2}}
    with pytest.raises(ValueError, match=r"pretrain\.warmup runs on one node only"):
        pretrain(str(init_dir), params, "unused", None)
    params = {**STAGE, "warmup": {"loop": {"max_stepz": 2}}}
    with pytest.raises(ConfigError, match=r"pretrain\.warmup\.loop\.max_stepz"):
        pretrain(str(init_dir), params, "unused", None)


def test_a_job_refuses_a_warm_up_it_would_not_run(pretrain_world, init_dir, tmp_path):
    params = {**STAGE, "output_dir": str(tmp_path / "run"), "warmup": {"loop": {"max_steps": 1}}}
    config = {"params": params, "init_dir": str(init_dir), "corpora": {}, "image_root": str(pretrain_world / "images"), "run_id": None}
    with pytest.raises(ValueError, match="a job runs one phase"):
        run_pretraining(config)


def test_the_stage_continues_from_the_warm_up_checkpoint(pretrain_world, init_dir, tmp_path):
    """Warm-up: box prediction alone for 2 steps; then 3 steps of ITC alone, which never touches the pointer head.
    The final pointer is therefore the warm-up's, and differs from the initial one."""
    from xfm_pipeline.pipelines.pretrain.nodes import pretrain

    shards = {name: [{"name": name, "path": str(pretrain_world / "shards" / name), "weight": 1.0}] for name in ("region_text",)}
    params = {
        **STAGE,
        "objectives": {**STAGE["objectives"], "bbox": 0.0, "giou": 0.0, "pointer": 0.0},  # the stage: ITC only
        "output_dir": str(tmp_path / "run"),
        "warmup": {"objectives": {"itc": 0.0, "bbox": 1.0, "giou": 1.0, "pointer": 1.0}, "loop": {"max_steps": 2}},
    }
    params["loop"] = {**params["loop"], "max_steps": 3}
    checkpoint, metrics, history = pretrain(str(init_dir), params, str(pretrain_world / "images"), None, **shards)

    assert [row["step"] for row in history] == [1, 2, 1, 2, 3]
    assert set(history[0]) >= {"warmup/region_text/loss_pointer", "warmup/region_text/loss_bbox"} and "warmup/region_text/loss_itc" not in history[0]
    assert "region_text/loss_itc" in history[-1] and not any("pointer" in key for key in history[-1])
    assert metrics["step"] == 3 and metrics["warmup"]["step"] == 2
    assert set(metrics["warmup"]["losses"]) >= {"region_text/loss_pointer"} and "region_text/loss_itc" in metrics["losses"]

    warm_runs = sorted((tmp_path / "run" / "warmup").glob("run-*/checkpoint-*"))
    assert len(warm_runs) == 1 and Path(checkpoint).parent.parent == tmp_path / "run"
    assert json.loads(Path(checkpoint, "config.json").read_text())["extra"]["stage"] == "pretrain"
    first, warm, final = (load_file(str(Path(d) / "model.safetensors")) for d in (init_dir, warm_runs[0], checkpoint))
    pointer = [name for name in first if name.startswith("bbox_pointer.")]
    assert pointer and any(not torch.equal(first[n], warm[n]) for n in pointer)
    assert all(torch.equal(warm[n], final[n]) for n in pointer)  # the stage started from the warm-up's weights
    assert any(not torch.equal(warm[n], final[n]) for n in final if n.startswith("vision_proj."))
