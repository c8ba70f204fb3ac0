"""model_init through Kedro: session run on the tiny preset, catalog round trip of the checkpoint."""

import json

import pytest
from kedro_project import make_project, run_pipelines

from xfm_pipeline.config import ConfigError
from xfm_pipeline.pipelines.model_init.nodes import initialise_model


def test_node_rejects_unknown_parameters():
    with pytest.raises(ConfigError, match="model_init.presett"):
        initialise_model({"presett": "tiny"})


@pytest.mark.integration  # the pipeline in a Kedro session
def test_kedro_session_writes_a_loadable_checkpoint(tmp_path):
    run_pipelines(make_project(tmp_path), ["model_init"])
    summary = json.loads((tmp_path / "data/08_reporting/model_init.json").read_text())
    assert summary["preset"] == "tiny" and summary["parameters"]["total"] > 20_000_000

    from xfm_pipeline.datasets import XFMCheckpointDataset
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer, load_pretrained, read_checkpoint_config

    directory = XFMCheckpointDataset(path=str(tmp_path / "data/06_models/init")).load()  # checkpoints travel by path
    assert directory == str(tmp_path / "data/06_models/init")
    assert sum(p.numel() for p in load_pretrained(directory).parameters()) == summary["parameters"]["total"]
    assert load_checkpoint_tokenizer(directory)("red circle")["input_ids"][0] == 101
    assert read_checkpoint_config(directory)["extra"]["preset"] == "tiny"
