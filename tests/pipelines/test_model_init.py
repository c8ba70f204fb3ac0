"""model_init through Kedro: session run on the tiny preset, catalog round trip of the checkpoint."""

import json
import shutil
from pathlib import Path

import pytest

from xfm_pipeline.config import ConfigError
from xfm_pipeline.pipelines.model_init.nodes import initialise_model

REPO = Path(__file__).resolve().parents[2]


def test_node_rejects_unknown_parameters():
    with pytest.raises(ConfigError, match="model_init.presett"):
        initialise_model({"presett": "tiny"})


def test_kedro_session_writes_a_loadable_checkpoint(tmp_path, monkeypatch):
    from kedro.framework.project import configure_project
    from kedro.framework.session import KedroSession

    shutil.copytree(REPO / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / "local").mkdir()
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XFM_MLFLOW", "0")
    configure_project("xfm_pipeline")  # the package is installed; its sources need not be under tmp_path
    with KedroSession.create(project_path=tmp_path) as session:
        session.run(pipeline_names=["model_init"])
    summary = json.loads((tmp_path / "data/08_reporting/model_init.json").read_text())
    assert summary["preset"] == "tiny" and summary["parameters"]["total"] > 20_000_000

    from xfm_pipeline.datasets import XFMCheckpointDataset

    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer, load_pretrained, read_checkpoint_config

    directory = XFMCheckpointDataset(path=str(tmp_path / "data/06_models/init")).load()  # checkpoints travel by path
    assert directory == str(tmp_path / "data/06_models/init")
    assert sum(p.numel() for p in load_pretrained(directory).parameters()) == summary["parameters"]["total"]
    assert load_checkpoint_tokenizer(directory)("red circle")["input_ids"][0] == 101
    assert read_checkpoint_config(directory)["extra"]["preset"] == "tiny"
