"""The fine-tune and report stages of dvc.yaml, and the ablation's own dvc.yaml, are generated from the task
registry and kept in sync."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from xfm_pipeline import dvc_stages
from xfm_pipeline.tasks.registry import PIPELINES

REPO = Path(__file__).resolve().parents[2]


def test_committed_dvc_yaml_is_what_the_command_writes():
    assert dvc_stages.render(REPO) == (REPO / "dvc.yaml").read_text(), "run `python -m xfm_pipeline.dvc_stages`"
    assert dvc_stages.ablation_file(REPO) == (REPO / dvc_stages.ABLATION_DVC).read_text(), "run `python -m xfm_pipeline.dvc_stages`"


def test_the_ablation_has_its_own_dvc_file_outside_a_plain_dvc_repro():
    from xfm_pipeline.pipelines.ablation import ROWS, STARTS

    assert "ablation" not in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    stage = yaml.safe_load(dvc_stages.ablation_file(REPO))["stages"]["ablation"]
    assert (REPO / dvc_stages.ABLATION_DVC).parent.joinpath(stage["wdir"]).resolve() == REPO
    assert stage["cmd"] == "kedro run --pipelines ablation"
    assert [f"data/06_models/{dataset.removesuffix('_checkpoint')}" for dataset in STARTS.values()] == stage["deps"][: len(STARTS)]
    assert {"data/02_intermediate/vqa", "data/02_intermediate/glue", "data/02_intermediate/imagenet"} <= set(stage["deps"])
    finetune_blocks = stage["params"][2]["conf/base/parameters_finetune.yml"]
    assert {block for row in ROWS for block in PIPELINES[row][1].param_layers()} == set(finetune_blocks)
    assert [next(iter(o)) for o in stage["outs"]] == [
        "data/07_model_output/ablation",
        "data/08_reporting/ablation.json",
        "data/08_reporting/ablation.md",
        "data/08_reporting/ablation.png",
    ]


def test_every_registered_pipeline_has_a_stage_with_its_data_init_module_and_parameter_layers():
    stages = yaml.safe_load(dvc_stages.render(REPO))["stages"]
    path_of = dvc_stages.catalog_paths(REPO)
    for name, (spec, pipe) in PIPELINES.items():
        stage = stages[name]
        assert stage["cmd"] == f"kedro run --pipelines {name}"
        assert f"data/06_models/{pipe.init.removesuffix('_checkpoint')}" in stage["deps"], name
        assert f"src/xfm_pipeline/tasks/{type(spec.task).__module__.rsplit('.', 1)[1]}.py" in stage["deps"], name
        for dataset in pipe.data.values():  # the directory of every validated dataset the pipeline reads
            path = Path(path_of(dataset))
            assert (path if not path.suffix else path.parent).as_posix() in stage["deps"], (name, dataset)
        assert stage["params"][1] == {"conf/base/parameters_finetune.yml": list(pipe.param_layers())}, name
        assert f"data/06_models/{name}" in stage["outs"]
        assert {f"data/08_reporting/metrics/{name}.json": {"cache": False}} in stage["outs"]  # read by the report, not a DVC metric
        assert "metrics" not in stage
    report = stages["report"]["deps"]
    assert {f"data/08_reporting/metrics/{name}.json" for name in PIPELINES} <= set(report)
    assert {f"data/08_reporting/{stage}_metrics.json" for stage in ("pretrain_vision", "pretrain", "pretrain_bbox")} <= set(report)
    for _, pipe in PIPELINES.values():  # blind baselines read every task's validated data
        assert {"data/02_intermediate/" + Path(path_of(dataset)).relative_to("data/02_intermediate").parts[0] for dataset in pipe.data.values()} <= set(report)
    drawn = {name for name, (spec, _) in PIPELINES.items() if spec.examples}
    assert {f"data/07_model_output/{name}" for name in drawn} <= set(report)
    assert not {f"data/07_model_output/{name}" for name in set(PIPELINES) - drawn} & set(report)


def test_the_only_dvc_metrics_are_the_report_scores_directory():
    """`dvc metrics show` prints one table, columns the union of every metrics file's keys: only the report's
    small per-stage score files are metrics (the validation summary, the full per-split metrics are outs)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    declared = {name: stage["metrics"] for name, stage in stages.items() if "metrics" in stage}
    assert declared == {"report": [{"data/08_reporting/scores": {"cache": False}}]}
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in stages["data_validation"]["outs"]]
    assert "data/08_reporting/validation/report.json" in outs
    for stage in ("pretrain_vision", "pretrain", "pretrain_bbox"):
        assert {f"data/08_reporting/{stage}_metrics.json": {"cache": False}} in stages[stage]["outs"]


def test_check_fails_on_a_hand_edited_stage_and_write_repairs_it(tmp_path):
    shutil.copytree(REPO / "conf" / "base", tmp_path / "conf" / "base")
    (tmp_path / "conf" / "local").mkdir()
    text = (REPO / "dvc.yaml").read_text()
    (tmp_path / dvc_stages.ABLATION_DVC).parent.mkdir(parents=True)
    (tmp_path / dvc_stages.ABLATION_DVC).write_text((REPO / dvc_stages.ABLATION_DVC).read_text())
    (tmp_path / "dvc.yaml").write_text(text.replace("kedro run --pipelines finetune_vqa", "kedro run --pipelines finetune_vqa --runner ParallelRunner"))
    assert dvc_stages.main(["--project", str(tmp_path), "--check"]) == 1
    assert dvc_stages.main(["--project", str(tmp_path)]) == 0
    assert (tmp_path / "dvc.yaml").read_text() == text
    assert dvc_stages.main(["--project", str(tmp_path), "--check"]) == 0
