"""Fine-tune parameters: layers merged in order, every registered block valid, bad keys rejected in the node
before anything is launched."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from xfm_pipeline.config import ConfigError
from xfm_pipeline.jobs.finetune import FinetuneParams, resolve_params
from xfm_pipeline.tasks.registry import PIPELINES, get_pipeline

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def parameters() -> dict:
    from kedro.config import OmegaConfigLoader

    return OmegaConfigLoader(str(REPO / "conf"), base_env="base", default_run_env="base")["parameters"]


def layers(parameters: dict, name: str) -> list[dict]:
    return [parameters[block] for block in get_pipeline(name)[1].param_layers()]


def test_every_registered_pipeline_validates_and_no_block_is_orphaned(parameters):
    for name, (spec, _) in PIPELINES.items():
        params = resolve_params(name, spec.task, layers(parameters, name))
        assert isinstance(params, FinetuneParams) and params.loop.seed == params.seed == 42, name
        assert params.loop.betas == [0.9, 0.999], name  # from finetune_defaults, not hard-coded in the job
    used = {block for _, pipe in PIPELINES.values() for block in pipe.param_layers()}
    finetune_blocks = {k for k in parameters if k.startswith(("finetune_", "eval_", "linear_probe_"))}
    assert finetune_blocks == used


def test_later_layers_win_and_nested_blocks_merge(parameters):
    task = get_pipeline("finetune_retrieval_flickr")[0].task
    params = resolve_params("finetune_retrieval_flickr", task, layers(parameters, "finetune_retrieval_flickr"))
    assert params.loop.lr == 7e-5  # the pipeline's own block
    assert params.loop.max_steps == 30 and params.batch_size == 24  # its group (finetune_retrieval)
    assert params.loop.lr_scales == {"xfm.text_encoder.": 0.0} and params.eval_batch_size == 64  # group, defaults
    assert params.options["k_test"] == 4


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"loop": {"lrr": 1e-4}}, "finetune_vqa.loop.lrr"),
        ({"loop": {"lr": "fast"}}, "finetune_vqa.loop.lr: expected float"),
        ({"batch_size": 1.5}, "finetune_vqa.batch_size: expected int"),
        ({"options": {"k_tst": 2}}, "finetune_vqa.options.k_tst"),
        ({"loop": {"select_metric": "loss"}}, "finetune_vqa.loop.select_metric: set by the task"),
        ({"distributed": {"nproc": 2}}, "finetune_vqa.distributed.nproc"),
        ({"optimiser": "sgd"}, "finetune_vqa.optimiser"),
    ],
)
def test_the_node_rejects_a_bad_key_fast_and_before_any_launch(parameters, monkeypatch, tmp_path, bad, message):
    from xfm_pipeline.pipelines.finetune.nodes import finetune
    from xfm_pipeline.training import launch

    def launched(*args, **kwargs):
        raise AssertionError("run_job must not start with invalid parameters")

    monkeypatch.setattr(launch, "run_job", launched)
    monkeypatch.chdir(tmp_path)
    blocks = layers(parameters, "finetune_vqa")
    inputs = {f"params_{i}": block for i, block in enumerate([*blocks[:-1], {**blocks[-1], **bad}])}
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        finetune(str(tmp_path / "init"), "images", None, pipeline="finetune_vqa", **inputs)
    assert time.perf_counter() - start < 5.0
    assert not (tmp_path / "data").exists()  # nothing written either
