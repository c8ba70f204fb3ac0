"""The MLflow hook and step logger against a real sqlite tracking store in tmp_path."""

from __future__ import annotations

import pytest


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A sqlite store in tmp_path, run from tmp_path: a new experiment's artifact root is ``./mlruns`` of the
    working directory, which must not be the repository."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("XFM_MLFLOW", raising=False)
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.mark.integration  # a Kedro pipeline run with the hook against a real MLflow store
def test_parent_and_nested_runs_with_params_metrics_and_artifacts(tracking, tmp_path):
    from kedro.io import DataCatalog
    from kedro.pipeline import Node, Pipeline
    from mlflow.tracking import MlflowClient

    from xfm_pipeline.hooks import MlflowHook
    from xfm_pipeline.tracking import EXPERIMENT, MlflowStepLogger

    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    (tmp_path / "corpus.json").write_text("[1, 2, 3]")
    catalog = DataCatalog.from_config(
        {
            "corpus": {"type": "json.JSONDataset", "filepath": str(tmp_path / "corpus.json")},
            "model": {"type": "xfm_pipeline.datasets.DirectoryDataset", "path": str(tmp_path / "ckpt")},
        }
    )
    node = Node(lambda corpus, p, run: None, inputs=["corpus", "params:train", "mlflow_run_id"], outputs="model", name="train_node", tags=["mlflow"])
    untracked = Node(lambda corpus: None, inputs="corpus", outputs=None, name="plain_node")
    hook = MlflowHook()
    hook.before_pipeline_run({"pipeline_names": ["pretrain"], "session_id": "s1"}, Pipeline([node, untracked]), catalog)
    assert hook.before_node_run(untracked, catalog, {"corpus": [1]}) is None
    replaced = hook.before_node_run(node, catalog, {"corpus": [1, 2, 3], "params:train": {"lr": 0.1, "loop": {"max_steps": 5}}, "mlflow_run_id": None})
    run_id = replaced["mlflow_run_id"]  # the node's own run, handed to it as an input
    logger = MlflowStepLogger(run_id)
    for step in (1, 2, 3):
        logger(step, {"image_text/loss_itc": 3.0 - step, "lr": 1e-4, "step": step})
    hook.after_node_run(node, {"model_metrics": {"val/vqa_acc": 0.5, "test": {"vqa_acc": 0.25}, "note": "text"}})
    hook.after_dataset_saved("model", str(tmp_path / "ckpt"), node)
    hook.after_pipeline_run()

    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"kedro run pretrain", "train_node"}  # untracked nodes get no run
    parent, child = runs["kedro run pretrain"], runs["train_node"]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.params == {"train.lr": "0.1", "train.loop.max_steps": "5"}
    assert "git_commit" in child.data.tags and len(child.data.tags["data_md5.corpus"]) == 32
    assert [m.value for m in client.get_metric_history(run_id, "image_text/loss_itc")] == [2.0, 1.0, 0.0]
    assert child.data.metrics["val/vqa_acc"] == 0.5 and child.data.metrics["test.vqa_acc"] == 0.25
    assert child.info.run_id == run_id
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/config.json"]  # not the weights
    assert child.data.tags["checkpoint.model"] == str((tmp_path / "ckpt").resolve())
    assert parent.info.status == child.info.status == "FINISHED"
    assert list((tmp_path / "mlruns").rglob("config.json"))  # the checkpoint's config, logged as an artifact here


def test_disabled_tracking_creates_nothing(tmp_path, monkeypatch):
    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline

    from xfm_pipeline.hooks import MlflowHook

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("XFM_MLFLOW", "0")
    hook = MlflowHook()
    hook.before_pipeline_run({"pipeline_names": ["x"]}, Pipeline([]), DataCatalog())
    hook.after_pipeline_run()
    assert not (tmp_path / "mlflow.db").exists()
