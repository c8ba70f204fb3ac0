"""`make gpu-check`, part 1: the tiny chain on CUDA in bf16, with every module call checked to find its
parameters and inputs on the GPU (device_guard): pretraining (20 steps) and every fine-tune/eval pipeline
for a few steps, their evaluation included."""

from __future__ import annotations

import pytest
from device_guard import only_on
from kedro_project import MINI_WORLD, make_project, run_pipelines

from xfm_pipeline.tasks.registry import PIPELINES

pytestmark = [pytest.mark.gpu, pytest.mark.system]

BF16 = {"mixed_precision": "bf16"}
FEW_STEPS = {"loop": {"max_steps": 3, "eval_every": 3, **BF16}}


def _local_parameters() -> dict[str, dict]:
    """conf/local parameter files: bf16, 20 pretraining steps, a few steps of every other stage."""
    return {
        "parameters_data_ingestion.yml": {"data_ingestion": {"shapes_world": MINI_WORLD}},
        "parameters_pretrain.yml": {
            "pretrain": {"loop": {"max_steps": 20, "checkpoint_every": 20, **BF16}, "warmup": {"loop": {"max_steps": 3, "checkpoint_every": 3}}}
        },
        "parameters_pretrain_vision.yml": {"pretrain_vision": {"loop": {"max_steps": 3, "checkpoint_every": 3, **BF16}}},
        "parameters_pretrain_bbox.yml": {"pretrain_bbox": {"loop": {"max_steps": 3, "checkpoint_every": 3, **BF16}}},
        "parameters_finetune.yml": {"finetune_defaults": FEW_STEPS, **{name: FEW_STEPS for name in PIPELINES}},
    }


@pytest.mark.timeout(420)
def test_the_chain_trains_and_evaluates_on_the_gpu_in_bf16(tmp_path):
    project = make_project(tmp_path / "project", _local_parameters())
    run_pipelines(project, ["data_ingestion", "data_validation", "pretrain_shards", "model_init"])
    with only_on("cuda"):
        run_pipelines(project, ["pretrain_vision", "pretrain", "pretrain_bbox", *PIPELINES])
    missing = [name for name in PIPELINES if not (project / "data" / "08_reporting" / "metrics" / f"{name}.json").is_file()]
    assert missing == []
