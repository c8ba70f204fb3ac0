"""The stand-in for an output that node 0 of a multi-node job saves (on every other node's Kedro run)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

log = logging.getLogger(__name__)


class SavedOnNodeZero(AbstractDataset):
    """Output ``name`` of a node run with ``distributed.node_rank`` > 0: ``save()`` only logs that node 0 saves
    it (to ``saved_at``, the real entry's path, when it has one); ``load()`` fails, as this Kedro run holds no
    copy. ``hooks.NodeZeroOutputsHook`` puts it in the catalog in place of the real entry."""

    def __init__(self, name: str, node_rank: int, saved_at: Path | None = None):
        self._name = name
        self._node_rank = node_rank
        self._saved_at = saved_at

    def _save(self, data: Any) -> None:  # noqa: ARG002 - the data is rank 0's, on node 0
        where = f" to {self._saved_at.resolve()}" if self._saved_at is not None else ""
        log.info("%s: not saved on node %d; node 0 saves it%s", self._name, self._node_rank, where)

    def _load(self) -> Any:
        raise DatasetError(
            f"{self._name} is saved by node 0 of a multi-node job; this kedro run (node_rank {self._node_rank}) has no copy. "
            "On nodes other than 0 run the multi-node pipeline alone; run what reads its outputs afterwards."
        )

    def _describe(self) -> dict[str, Any]:
        return {"name": self._name, "node_rank": self._node_rank, "saved_at": str(self._saved_at)}
