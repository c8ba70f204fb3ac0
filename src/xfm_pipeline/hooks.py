"""Project hooks: offline environment, outputs saved by node 0 only in multi-node jobs, and MLflow tracking of
every run (one parent run per ``kedro run``)."""

from __future__ import annotations

import logging
import os
from typing import Any

from kedro.framework.hooks import hook_impl

from xfm_pipeline.datasets.catalog_paths import dataset_path
from xfm_pipeline.offline import use_offline_environment

log = logging.getLogger(__name__)

# Nodes with this tag get a nested MLflow run (training and evaluation nodes).
TRACKED_TAG = "mlflow"
# A tracked node with this input gets its nested run's id there (catalog: MlflowRunIdDataset).
RUN_ID_INPUT = "mlflow_run_id"


class OfflineEnvironmentHook:
    """Sets the offline and no-telemetry environment before any node runs (values already set win)."""

    @hook_impl
    def after_context_created(self, context) -> None:  # noqa: ARG002 - hook signature
        use_offline_environment()


class NodeZeroOutputsHook:
    """On a node other than 0 of a multi-node job, a Kedro run saves nothing: node 0 saves the outputs.

    Before the run, every output of a node whose parameters set ``distributed.node_rank`` > 0 is replaced in
    the catalog by :class:`~xfm_pipeline.datasets.node_zero_dataset.SavedOnNodeZero`, whose save logs where
    node 0 saves it (that node returns ``training.launch.OnNodeZero`` markers) and whose load fails: a node
    reading such an output needs node 0's copy, so it runs after the multi-node run.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:  # noqa: ARG002
        from xfm_pipeline.datasets.node_zero_dataset import SavedOnNodeZero

        for node in pipeline.nodes:
            rank = node_rank(parameter_inputs(node, catalog))
            if rank == 0:
                continue
            log.info("node_rank %d: %s runs here, node 0 saves its outputs %s", rank, node.name, ", ".join(node.outputs))
            for name in node.outputs:
                catalog[name] = SavedOnNodeZero(name, rank, dataset_path(catalog, name))


class MlflowHook:
    """Parent run per pipeline run; a nested run per node tagged ``mlflow``.

    Nested runs get the node's parameters (flattened), the git commit, MD5s of file inputs, metrics
    from outputs whose name ends in ``metrics`` (dicts of numbers), and the path of checkpoint directories
    the node saved; a node reading ``mlflow_run_id`` gets its run's id. A fine-tune/eval pipeline's task
    checkpoint (``<pipeline>_task_checkpoint``) is logged as an MLflow model of the node's run and registered
    as ``xfm-<pipeline>``, unless a version holds the same bytes already (``serving.log_task_model``); the
    run's tag ``registered_model.<dataset>`` names the version. Any other checkpoint gets its ``config.json``
    as an artifact (its weights stay where the catalog put them). A node run with ``distributed.node_rank`` > 0
    gets no run (node 0 tracks the job), and a pipeline whose nodes all run so no parent run. Set
    ``XFM_MLFLOW=0`` to switch tracking off.
    """

    def __init__(self):
        self._client = None
        self._parent: str | None = None
        self._node_runs: dict[str, str] = {}
        self._catalog = None

    @property
    def enabled(self) -> bool:
        return os.environ.get("XFM_MLFLOW", "1") != "0"

    def _mlflow(self):
        from mlflow.tracking import MlflowClient

        from xfm_pipeline.tracking import EXPERIMENT, tracking_uri

        if self._client is None:
            self._client = MlflowClient(tracking_uri())
            exp = self._client.get_experiment_by_name(EXPERIMENT)
            self._experiment_id = exp.experiment_id if exp else self._client.create_experiment(EXPERIMENT)
        return self._client

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:  # noqa: ARG002
        if not self.enabled:
            return
        from xfm_pipeline.tracking import git_commit

        ranks = [node_rank(parameter_inputs(node, catalog)) for node in pipeline.nodes]
        if ranks and min(ranks) > 0:
            log.info("node_rank %d: no MLflow runs on this node (node 0 tracks the job)", min(ranks))
            return
        client = self._mlflow()
        names = run_params.get("pipeline_names") or ["__default__"]
        run = client.create_run(
            self._experiment_id,
            run_name=f"kedro run {'+'.join(names)}",
            tags={"kedro.session_id": str(run_params.get("session_id")), "git_commit": git_commit(), "kedro.pipelines": ",".join(names)},
        )
        self._parent = run.info.run_id
        self._catalog = catalog

    @hook_impl
    def before_node_run(self, node, catalog, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """Open the node's nested run; a node that reads ``mlflow_run_id`` gets that run's id as the input."""
        if not (self.enabled and self._parent and TRACKED_TAG in node.tags):
            return None
        from xfm_pipeline.tracking import file_md5, flatten, git_commit

        params = {}
        for name, value in inputs.items():
            if name.startswith("params:"):
                flatten(name[len("params:") :], value, params)
        if node_rank(params) != 0:
            return None
        client = self._mlflow()
        run = client.create_run(
            self._experiment_id,
            run_name=node.name,
            tags={"mlflow.parentRunId": self._parent, "kedro.node": node.name, "git_commit": git_commit()},
        )
        run_id = run.info.run_id
        self._node_runs[node.name] = run_id
        for key, value in list(params.items())[:500]:
            client.log_param(run_id, key[:250], str(value)[:6000])
        for name in inputs:
            path = dataset_path(catalog, name)
            if path is not None and path.is_file():
                client.set_tag(run_id, f"data_md5.{name}", file_md5(path))
        return {RUN_ID_INPUT: run_id} if RUN_ID_INPUT in inputs else None

    @hook_impl
    def after_node_run(self, node, outputs: dict[str, Any]) -> None:
        run_id = self._node_runs.get(node.name)
        if run_id is None:
            return
        client = self._mlflow()
        for name, value in outputs.items():
            if name.endswith("metrics") and isinstance(value, dict):
                from xfm_pipeline.tracking import flatten

                for key, number in flatten("", value).items():
                    if isinstance(number, (int, float)) and not isinstance(number, bool):
                        client.log_metric(run_id, key, float(number))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node) -> None:  # noqa: ARG002
        """A checkpoint directory a tracked node saved: its path as a tag; a task checkpoint logged and
        registered as an MLflow model (its only copy in the store), any other its ``config.json`` as an artifact."""
        run_id = self._node_runs.get(node.name)
        if run_id is None:
            return
        path = dataset_path(self._catalog, dataset_name)
        if path is None or not (path / "config.json").is_file():
            return
        client = self._mlflow()
        client.set_tag(run_id, f"checkpoint.{dataset_name}", str(path.resolve()))
        pipeline = task_checkpoint_pipeline(dataset_name)
        if pipeline is None:
            client.log_artifact(run_id, str(path / "config.json"), artifact_path=dataset_name)
        else:
            from xfm_pipeline.serving import log_task_model
            from xfm_pipeline.tracking import tracking_uri

            version = log_task_model(path, pipeline, run_id, tracking_uri())
            client.set_tag(run_id, f"registered_model.{dataset_name}", f"models:/{version.name}/{version.version}")
            log.info("%s: models:/%s/%s", dataset_name, version.name, version.version)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._finish("FINISHED")

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._finish("FAILED")

    def _finish(self, status: str) -> None:
        if self._parent is None:
            return
        client = self._mlflow()
        for run_id in self._node_runs.values():
            client.set_terminated(run_id, status)
        client.set_terminated(self._parent, status)
        log.info("MLflow parent run %s (%s)", self._parent, status)
        self._parent, self._node_runs = None, {}


def node_rank(params: dict[str, Any]) -> int:
    """The ``distributed.node_rank`` a node runs with, from its flattened parameter layers (in layer order, so
    the last one wins as when the layers are merged); 0 when none sets it."""
    ranks = [value for key, value in params.items() if key == "distributed.node_rank" or key.endswith(".distributed.node_rank")]
    return int(ranks[-1]) if ranks else 0


def parameter_inputs(node, catalog) -> dict[str, Any]:
    """The parameters ``node`` reads from ``catalog``, flattened (``{"pretrain.loop.lr": ...}``) in input order."""
    from xfm_pipeline.tracking import flatten

    params: dict[str, Any] = {}
    for name in node.inputs:
        dataset = catalog.get(name) if name.startswith("params:") else None
        if dataset is not None:
            flatten(name[len("params:") :], dataset.load(), params)
    return params


def task_checkpoint_pipeline(dataset_name: str) -> str | None:
    """The fine-tune/eval pipeline whose task checkpoint ``dataset_name`` is (``finetune_vqa_task_checkpoint`` ->
    ``finetune_vqa``), or None."""
    from xfm_pipeline.pipelines.finetune import output_dataset
    from xfm_pipeline.tasks.registry import PIPELINES

    return next((name for name in PIPELINES if output_dataset(name, "task_checkpoint") == dataset_name), None)
