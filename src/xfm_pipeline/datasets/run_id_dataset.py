"""The MLflow run id of the node being run, as a node input."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset


class MlflowRunIdDataset(AbstractDataset):
    """Loads None: the tracking hook (``hooks.MlflowHook.before_node_run``) replaces the input with the
    node's own MLflow run id when tracking is on, so jobs get the id as an explicit argument."""

    def __init__(self, metadata: dict[str, Any] | None = None):
        self.metadata = metadata

    def _load(self) -> None:
        return None

    def _save(self, data: Any) -> None:
        raise NotImplementedError("mlflow_run_id is read-only: the tracking hook supplies it")

    def _describe(self) -> dict[str, Any]:
        return {}
