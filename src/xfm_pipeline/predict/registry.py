"""Which predictor module serves which registered task, and every task's record schema (:data:`TASK_SCHEMAS`).

Derived from ``tasks.registry.TASKS``: a task is served by the adapter of its task class, so a new GLUE task
or ImageNet variant needs nothing here; a new task class needs its module in this package and one line below.
"""

from __future__ import annotations

from xfm_pipeline.predict.base import TaskAdapter
from xfm_pipeline.predict.captioning import CaptioningAdapter
from xfm_pipeline.predict.glue import GlueAdapter
from xfm_pipeline.predict.grounding import GroundingAdapter
from xfm_pipeline.predict.imagenet import ImagenetAdapter
from xfm_pipeline.predict.nlvr import NLVRAdapter
from xfm_pipeline.predict.retrieval import RetrievalAdapter
from xfm_pipeline.predict.schema import TaskSchema
from xfm_pipeline.predict.vqa import VQAAdapter
from xfm_pipeline.tasks import captioning, glue, grounding, imagenet, nlvr, retrieval, vqa
from xfm_pipeline.tasks.registry import TASKS, get_task

ADAPTERS: dict[type, type[TaskAdapter]] = {  # task class -> its predictor module's adapter
    vqa.VQATask: VQAAdapter,
    captioning.CaptioningTask: CaptioningAdapter,
    retrieval.RetrievalTask: RetrievalAdapter,
    nlvr.NLVRTask: NLVRAdapter,
    grounding.GroundingTask: GroundingAdapter,
    glue.GlueTask: GlueAdapter,
    imagenet.ImagenetTask: ImagenetAdapter,
}


def adapter_for(task: str) -> TaskAdapter:
    """The adapter of the registered task ``task``.

    Raises:
        KeyError: an unknown task, or a task class without a predictor module.
    """
    instance = get_task(task)
    if type(instance) not in ADAPTERS:
        raise KeyError(f"task {task!r} ({type(instance).__name__}) has no predictor module in xfm_pipeline.predict")
    return ADAPTERS[type(instance)](instance)


TASK_SCHEMAS: dict[str, TaskSchema] = {name: adapter_for(name).schema for name in TASKS}


def schema_of(task: str) -> TaskSchema:
    """The record schema of the registered task ``task``.

    Raises:
        KeyError: an unknown task (the message lists the known ones).
    """
    if task not in TASK_SCHEMAS:
        raise KeyError(f"unknown task {task!r}; registered: {sorted(TASK_SCHEMAS)}")
    return TASK_SCHEMAS[task]
