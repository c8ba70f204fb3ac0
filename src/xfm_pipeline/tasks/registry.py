"""The task registry: a plain dict, filled explicitly (DESIGN example 5).

Each entry names the module and the attribute holding the task object; modules are imported when a
task is first asked for, so running one task never imports (or depends on) the others.
"""

from __future__ import annotations

import importlib

from xfm_pipeline.tasks.base import Task

GLUE_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")

# task name -> "module:attribute"
TASK_ENTRIES: dict[str, str] = {
    "vqa": "xfm_pipeline.tasks.vqa:TASK",
    "captioning": "xfm_pipeline.tasks.captioning:TASK",
    "retrieval": "xfm_pipeline.tasks.retrieval:TASK",
    "nlvr": "xfm_pipeline.tasks.nlvr:TASK",
    "grounding": "xfm_pipeline.tasks.grounding:TASK",
    **{f"glue_{t}": f"xfm_pipeline.tasks.glue:TASKS.{t}" for t in GLUE_TASKS},
    "imagenet": "xfm_pipeline.tasks.imagenet:FINETUNE",
    "imagenet_linear_probe": "xfm_pipeline.tasks.imagenet:LINEAR_PROBE",
}


def get_task(name: str) -> Task:
    """The task registered as ``name``.

    Raises:
        KeyError: unknown task name (the message lists the known ones).
    """
    if name not in TASK_ENTRIES:
        raise KeyError(f"unknown task {name!r}; registered: {sorted(TASK_ENTRIES)}")
    module, _, attr = TASK_ENTRIES[name].partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj
