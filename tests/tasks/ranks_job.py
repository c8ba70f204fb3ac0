"""A job for ``training.launch.run_job`` (one process or every torchrun rank): the fine-tune job on several
task cases in turn, in one launch. Importable by the torchrun workers when ``tests/tasks`` is on their
``PYTHONPATH`` (``test_distributed_evaluation.py`` sets it)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any
from unittest import mock

SHARDS = "_shards"  # result key: per rank, the items each task.predict call of that rank was given


def finetune_each(config: dict[str, Any]) -> dict[str, Any]:
    """``jobs.finetune.run_finetune(job)`` for every ``config["jobs"][name]``; rank 0's ``{name: result}``
    (metrics, predictions, history) and, under :data:`SHARDS`, ``[[task, items], ...]`` of every rank's
    ``predict`` calls in order. Captioning is scored without the Java tools, as the task tests do (``no_java``
    in ``conftest.py``)."""
    from xfm_pipeline.jobs.finetune import run_finetune
    from xfm_pipeline.tasks.registry import get_task
    from xfm_pipeline.training.distributed_eval import Ranks

    seen: list[list] = []

    def counted(task):
        predict = task.predict

        def wrapper(model, loader, params, **kwargs):
            seen.append([task.name, len(loader.dataset)])
            return predict(model, loader, params, **kwargs)

        return wrapper

    out: dict[str, Any] = {}
    with ExitStack() as patches:
        patches.enter_context(mock.patch("xfm_pipeline.metrics.captioning.java_available", lambda: False))
        for task in {get_task(job["task"]) for job in config["jobs"].values()}:
            patches.enter_context(mock.patch.object(task, "predict", counted(task)))
        for name, job in config["jobs"].items():
            result = run_finetune(job)
            out[name] = {key: result.get(key) for key in ("metrics", "predictions", "history")}
    out[SHARDS] = Ranks.current().gather_list([seen])
    return out
