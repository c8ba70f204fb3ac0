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
    MlflowStepLogger(run_id, prefix="warmup/")(1, {"region_text/loss_pointer": 4.0, "step": 1})  # a stage's warm-up phase
    logger.set_tags({"xfm.code_fingerprint": "b" * 64, "xfm.resumed_from_code": "a" * 64})  # a resumed run's codes
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
    assert [m.value for m in client.get_metric_history(run_id, "warmup/region_text/loss_pointer")] == [4.0]
    assert "region_text/loss_pointer" not in child.data.metrics
    assert (child.data.tags["xfm.code_fingerprint"], child.data.tags["xfm.resumed_from_code"]) == ("b" * 64, "a" * 64)
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


@pytest.mark.integration  # the hook against a real MLflow store
@pytest.mark.parametrize("node_rank", [0, 1])
def test_a_task_checkpoint_is_logged_as_a_registered_model_on_node_zero_only(tracking, tmp_path, monkeypatch, node_rank):
    """A fine-tune pipeline's task checkpoint goes to ``serving.log_task_model`` (not copied as a plain artifact);
    a node run with ``distributed.node_rank`` > 0 (the last parameter layer that sets it wins) tracks nothing,
    and a pipeline of such nodes opens no parent run, so the store is never created."""
    from kedro.io import DataCatalog
    from kedro.pipeline import Node, Pipeline
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    import xfm_pipeline.serving as serving
    from xfm_pipeline.hooks import MlflowHook

    calls = []

    def fake_log(path, pipeline, run_id, uri):
        calls.append((path, pipeline, run_id, uri))
        return ModelVersion("xfm-vqa", "3", 0)

    monkeypatch.setattr(serving, "log_task_model", fake_log)
    (tmp_path / "vqa").mkdir()
    (tmp_path / "vqa" / "config.json").write_text("{}")
    catalog = DataCatalog.from_config({"finetune_vqa_task_checkpoint": {"type": "xfm_pipeline.datasets.DirectoryDataset", "path": str(tmp_path / "vqa")}})
    layers = {"params:finetune_defaults": {"distributed": {"node_rank": 1 - node_rank}}, "params:finetune_vqa": {"distributed": {"node_rank": node_rank}}}
    for name, value in layers.items():
        catalog[name] = value
    node = Node(lambda a, b: None, inputs=list(layers), outputs="finetune_vqa_task_checkpoint", name="ft", tags=["mlflow"])
    hook = MlflowHook()
    hook.before_pipeline_run({"pipeline_names": ["finetune_vqa"]}, Pipeline([node]), catalog)
    assert hook.before_node_run(node, catalog, layers) is None  # the node reads no run id
    hook.after_dataset_saved("finetune_vqa_task_checkpoint", str(tmp_path / "vqa"), node)
    hook.after_pipeline_run()

    if node_rank == 1:
        assert calls == [] and not (tmp_path / "mlflow.db").exists()
        return
    client = MlflowClient(tracking)
    (run,) = [r for r in client.search_runs([client.get_experiment_by_name("xfm-pipeline").experiment_id]) if r.info.run_name == "ft"]
    assert client.list_artifacts(run.info.run_id) == []  # the model holds the checkpoint; no second copy
    assert run.data.tags["checkpoint.finetune_vqa_task_checkpoint"] == str((tmp_path / "vqa").resolve())
    assert calls == [(tmp_path / "vqa", "finetune_vqa", run.info.run_id, tracking)]
    assert run.data.tags["registered_model.finetune_vqa_task_checkpoint"] == "models:/xfm-vqa/3"


def test_task_checkpoint_datasets_and_node_rank():
    from xfm_pipeline.hooks import node_rank, task_checkpoint_pipeline

    assert task_checkpoint_pipeline("finetune_glue_sst2_task_checkpoint") == "finetune_glue_sst2"
    assert task_checkpoint_pipeline("eval_retrieval_zeroshot_task_checkpoint") == "eval_retrieval_zeroshot"
    assert task_checkpoint_pipeline("pretrain_checkpoint") is None and task_checkpoint_pipeline("finetune_vqa_metrics") is None
    assert node_rank({"finetune_defaults.distributed.node_rank": 0, "finetune_vqa.distributed.node_rank": 2}) == 2
    assert node_rank({"pretrain.distributed.node_rank": 1}) == 1 and node_rank({"pretrain.loop.lr": 0.1}) == 0
