"""The task registry: every task's :class:`~xfm_pipeline.tasks.spec.TaskSpec`, listed explicitly.

Adding a task is its module (ending with its ``SPEC``), one line here and one parameter block in
``conf/base/parameters_finetune.yml``; then ``python -m xfm_pipeline.dvc_stages`` regenerates its DVC stage.
Every other task-keyed table (pipelines, starting checkpoints, headline metrics, paper numbers, example
drawings) is derived from these specs (docs/design.md#tasks).
"""

from __future__ import annotations

from xfm_pipeline.tasks import captioning, glue, grounding, imagenet, nlvr, retrieval, vqa
from xfm_pipeline.tasks.base import Task
from xfm_pipeline.tasks.spec import TaskPipeline, TaskSpec

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        vqa.SPEC,
        captioning.SPEC,
        retrieval.SPEC,
        nlvr.SPEC,
        grounding.SPEC,
        *glue.SPECS,
        imagenet.FINETUNE_SPEC,
        imagenet.LINEAR_PROBE_SPEC,
    )
}

# pipeline name -> (its task's spec, the pipeline's spec)
PIPELINES: dict[str, tuple[TaskSpec, TaskPipeline]] = {p.name: (spec, p) for spec in TASKS.values() for p in spec.pipelines}


def get_spec(name: str) -> TaskSpec:
    """The spec of the task registered as ``name``.

    Raises:
        KeyError: unknown task name (the message lists the known ones).
    """
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; registered: {sorted(TASKS)}")
    return TASKS[name]


def get_task(name: str) -> Task:
    """The task object registered as ``name`` (see :func:`get_spec`)."""
    return get_spec(name).task


def get_pipeline(name: str) -> tuple[TaskSpec, TaskPipeline]:
    """``(task spec, pipeline spec)`` of the fine-tune/evaluation pipeline ``name``.

    Raises:
        KeyError: unknown pipeline name (the message lists the known ones).
    """
    if name not in PIPELINES:
        raise KeyError(f"unknown task pipeline {name!r}; registered: {sorted(PIPELINES)}")
    return PIPELINES[name]
