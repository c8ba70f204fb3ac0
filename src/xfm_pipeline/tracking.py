"""MLflow access in one place: the tracking URI, a per-step metric logger for training loops, git/data provenance.

``model/``, ``objectives/`` and ``training/`` never import MLflow; jobs get an :class:`MlflowStepLogger`
callback from here, and the project hook (``hooks.py``) manages runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXPERIMENT = "xfm-pipeline"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's sqlite store ``mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"


def git_commit() -> str:
    """The checked-out commit (suffix ``-dirty`` with uncommitted changes), or ``unknown``."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """MD5 of a file (DVC's content hash for files)."""
    digest = hashlib.md5()  # noqa: S324 - content fingerprint, as DVC uses
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def flatten(prefix: str, value: Any, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested dicts -> ``{"a.b.c": value}`` (MLflow params are flat)."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value
    return out


class MlflowStepLogger:
    """Logs per-step training metrics into a given MLflow run (callable as the loop's ``on_log``).

    Works from any process: it talks to the tracking store by run id, so torchrun's rank 0 logs into
    the run the Kedro hook opened. A ``None`` run id makes it a no-op (MLflow disabled).
    """

    def __init__(self, run_id: str | None, uri: str | None = None, prefix: str = ""):
        self.run_id = run_id
        self.uri = uri or tracking_uri()
        self.prefix = prefix  # prepended to every metric name (e.g. "warmup/" for a stage's first phase)
        self._client = None

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if self.run_id is None:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(_metric_name(self.prefix + k), float(v), now, step) for k, v in metrics.items() if k != "step"]
        self.client().log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: dict[str, str]) -> None:
        """Set ``tags`` on the run (e.g. the code fingerprints of a resumed run); a no-op without a run."""
        if self.run_id is None:
            return
        from mlflow.entities import RunTag

        self.client().log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def client(self):
        """The tracking client of this logger's store (created once)."""
        from mlflow.tracking import MlflowClient

        if self._client is None:
            self._client = MlflowClient(self.uri)
        return self._client


def _metric_name(key: str) -> str:
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)
