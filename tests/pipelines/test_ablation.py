"""The ``ablation`` pipeline: registered outside the demo chain, its table on hand-made runs (means, sample
standard deviations, gains, GLUE's validation split), and a tiny run in a temporary Kedro project (two starts x
two seeds of SST-2): the seed shared with the fine-tune pipeline gives its exact metric, run directories are
deleted, the table, markdown and plot are written."""

from __future__ import annotations

import json
import math

import pytest

from xfm_pipeline.pipelines.ablation import ROWS, STARTS, create_pipeline
from xfm_pipeline.pipelines.ablation.nodes import seed_values, summarise


def _runs(row: str, start: str, values: list[float], key: str, seeds=(42, 43, 44)) -> dict:
    return {"row": row, "start": start, "seeds": list(seeds[: len(values)]), "runs": [{key: v, "val/other": 0.0} for v in values]}


def test_it_is_registered_outside_the_demo_chain_with_every_row_and_start():
    from xfm_pipeline.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    names = {node.name for node in pipelines["ablation"].nodes}
    assert {f"ablation.{row}_from_{start}" for row in ROWS for start in STARTS} | {"ablation.summarise", "ablation.render"} <= names
    assert "report.build_report_site" in names  # the report shows the table
    assert not {n for n in names if n.startswith("ablation.")} & {node.name for node in pipelines["__default__"].nodes}
    assert {row for row, seeds in ROWS.items() if seeds == 3} == {
        "finetune_vqa",
        "finetune_nlvr",
        "finetune_retrieval_coco",
        "finetune_grounding",
        "finetune_captioning",
    }


def test_the_table_has_mean_sample_std_and_gains_per_row():
    table = summarise(
        a=_runs("finetune_vqa", "init", [40.0, 42.0, 44.0], "test/vqa_acc"),
        b=_runs("finetune_vqa", "pretrain_vision", [50.0, 50.0, 53.0], "test/vqa_acc"),
        c=_runs("finetune_vqa", "pretrain", [55.0, 57.0, 59.0], "test/vqa_acc"),
        d=_runs("finetune_glue_sst2", "init", [0.75], "val/accuracy", seeds=(42,)),
        e=_runs("finetune_glue_sst2", "pretrain", [0.8], "val/accuracy", seeds=(42,)),
    )
    vqa, sst2 = table["tasks"]
    assert vqa["metric"] == "test/vqa_acc" and vqa["starts"]["init"] == {"seeds": [42, 43, 44], "values": [40.0, 42.0, 44.0], "mean": 42.0, "std": 2.0}
    assert vqa["starts"]["pretrain_vision"]["mean"] == 51.0 and vqa["starts"]["pretrain_vision"]["std"] == pytest.approx(math.sqrt(3.0), abs=1e-4)
    assert vqa["gain_over_init"] == 15.0 and vqa["gain_over_warmup"] == 6.0
    assert sst2["metric"] == "val/accuracy"  # GLUE has no test split; fractions shown in percent
    assert sst2["starts"]["init"] == {"seeds": [42], "values": [75.0], "mean": 75.0, "std": 0.0}
    assert sst2["gain_over_init"] == pytest.approx(5.0) and sst2["gain_over_warmup"] is None
    assert table["seeds"] == [42, 43, 44] and table["not_run"] == []


def test_runs_not_written_yet_are_listed_not_guessed():
    table = summarise(
        finetune_vqa_from_pretrain=_runs("finetune_vqa", "pretrain", [50.0], "test/vqa_acc", seeds=(42,)),
        finetune_vqa_from_init=None,
    )
    (vqa,) = table["tasks"]
    assert set(vqa["starts"]) == {"pretrain"} and vqa["gain_over_init"] is None
    assert table["not_run"] == ["finetune_vqa_from_init"]
    from xfm_pipeline.reporting.ablation import ablation_markdown

    assert "Not run yet: finetune_vqa_from_init." in ablation_markdown(table)


def test_a_run_without_its_headline_metric_names_row_start_and_seed():
    with pytest.raises(KeyError, match=r"finetune_vqa from pretrain, seed 42: no 'vqa_acc'"):
        summarise(a=_runs("finetune_vqa", "pretrain", [1.0], "test/other"))


def test_a_row_needs_as_many_seeds_as_it_runs():
    assert seed_values({"seeds": [7, 8, 9]}, 2, "finetune_vqa") == [7, 8]
    with pytest.raises(ValueError, match=r"ablation.seeds: finetune_vqa runs 3 seeds, 2 configured"):
        seed_values({"seeds": [7, 8]}, 3, "finetune_vqa")


@pytest.mark.integration
def test_a_tiny_ablation_reproduces_the_fine_tune_and_keeps_only_numbers(tmp_path, shapes_world, tiny_checkpoint_without_dropout):
    import shutil

    import torch
    import yaml
    from kedro.framework.project import configure_project
    from kedro.framework.session import KedroSession
    from kedro.runner import SequentialRunner
    from kedro_project import inside, make_project

    from xfm_pipeline.model import XFM, build_config, save_pretrained
    from xfm_pipeline.model.text import load_tokenizer

    root = make_project(tmp_path / "project")
    (root / "data").mkdir()
    for layer in ("01_raw", "02_intermediate"):
        (root / "data" / layer).symlink_to(shapes_world.root / "data" / layer)
    models = root / "data" / "06_models"
    shutil.copytree(tiny_checkpoint_without_dropout, models / "init")
    torch.manual_seed(1)
    save_pretrained(XFM(build_config("tiny")), models / "pretrain", tokenizer=load_tokenizer("all-minilm-l6-v2"))
    (root / "conf" / "local" / "parameters.yml").write_text(
        yaml.safe_dump({"finetune_glue_sst2": {"loop": {"max_steps": 3, "eval_every": 3}}, "ablation": {"seeds": [42, 5]}})
    )
    ablation = create_pipeline(rows={"finetune_glue_sst2": 2}, starts={"init": "init_checkpoint", "pretrain": "pretrain_checkpoint"})
    with inside(root):
        configure_project("xfm_pipeline")
        with KedroSession.create(project_path=root) as session:
            catalog = session.load_context().catalog
            SequentialRunner().run(ablation, catalog)
        with KedroSession.create(project_path=root) as session:
            session.run(pipeline_names=["finetune_glue_sst2"])  # the pipeline itself, from pretrain_checkpoint
    table = json.loads((root / "data" / "08_reporting" / "ablation.json").read_text())
    (row,) = table["tasks"]
    assert row["pipeline"] == "finetune_glue_sst2" and set(row["starts"]) == {"init", "pretrain"}
    assert all(start["seeds"] == [42, 5] and len(start["values"]) == 2 for start in row["starts"].values())
    pipeline_metrics = json.loads((root / "data" / "08_reporting" / "metrics" / "finetune_glue_sst2.json").read_text())
    assert row["starts"]["pretrain"]["values"][0] == pytest.approx(100 * pipeline_metrics[row["metric"]], abs=1e-4)
    assert row["gain_over_init"] == pytest.approx(row["starts"]["pretrain"]["mean"] - row["starts"]["init"]["mean"], abs=1e-3)
    assert not any((models / "ablation_runs").rglob("*.safetensors")) and table["not_run"] == []
    saved = json.loads((root / "data" / "07_model_output" / "ablation" / "finetune_glue_sst2_from_init.json").read_text())
    assert saved["seeds"] == [42, 5] and len(saved["runs"]) == 2  # a partial ablation keeps what it finished
    assert "finetune_glue_sst2" in (root / "data" / "08_reporting" / "ablation.md").read_text()
    assert (root / "data" / "08_reporting" / "ablation.png").stat().st_size > 0
