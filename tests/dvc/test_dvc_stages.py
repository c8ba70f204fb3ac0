"""The fine-tune and report stages of dvc.yaml are generated from the task registry and kept in sync."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from xfm_pipeline import dvc_stages
from xfm_pipeline.tasks.registry import PIPELINES

REPO = Path(__file__).resolve().parents[2]


def test_committed_dvc_yaml_is_what_the_command_writes():
    assert dvc_stages.render(REPO) == (REPO / "dvc.yaml").read_text(), "run `python -m xfm_pipeline.dvc_stages`"


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
        assert stage["metrics"] == [{f"data/08_reporting/metrics/{name}.json": {"cache": False}}]
    report = stages["report"]["deps"]
    assert {f"data/08_reporting/metrics/{name}.json" for name in PIPELINES} <= set(report)
    drawn = {name for name, (spec, _) in PIPELINES.items() if spec.examples}
    assert {f"data/07_model_output/{name}" for name in drawn} <= set(report)
    assert not {f"data/07_model_output/{name}" for name in set(PIPELINES) - drawn} & set(report)


def test_check_fails_on_a_hand_edited_stage_and_write_repairs_it(tmp_path):
    shutil.copytree(REPO / "conf" / "base", tmp_path / "conf" / "base")
    (tmp_path / "conf" / "local").mkdir()
    text = (REPO / "dvc.yaml").read_text()
    (tmp_path / "dvc.yaml").write_text(text.replace("kedro run --pipelines finetune_vqa", "kedro run --pipelines finetune_vqa --runner ParallelRunner"))
    assert dvc_stages.main(["--project", str(tmp_path), "--check"]) == 1
    assert dvc_stages.main(["--project", str(tmp_path)]) == 0
    assert (tmp_path / "dvc.yaml").read_text() == text
    assert dvc_stages.main(["--project", str(tmp_path), "--check"]) == 0
