"""``predict_<task>``: one node per registered task, generated from ``tasks.registry.TASKS`` and the task's
record schema (``xfm_pipeline.predict.TASK_SCHEMAS``): queries (+ an images folder when the task reads
images) -> predictions and quarantine. Not part of ``__default__``."""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.pipelines.predict.nodes import image_fields, predict_queries

OUTPUTS = ("predictions", "quarantine")  # catalog entries "predict_<task>_<output>"
INPUTS = ("queries", "images")  # ... and "predict_<task>_<input>" (images only for tasks with image fields)


def pipeline_name(task: str) -> str:
    """The pipeline (and node, and catalog prefix) of registered task ``task``: ``predict_<task>``."""
    return f"predict_{task}"


def create_predict_pipeline(task: str) -> Pipeline:
    """The ``predict_<task>`` pipeline of registered task ``task``."""
    from xfm_pipeline.predict import schema_of

    name = pipeline_name(task)
    inputs = {"queries": f"{name}_queries", "settings": "params:predict"}
    if image_fields(schema_of(task)):
        inputs["images"] = f"{name}_images"
    node = Node(
        update_wrapper(partial(predict_queries, task=task), predict_queries),
        inputs=inputs,
        outputs=[f"{name}_{output}" for output in OUTPUTS],
        name=name,
        tags=["predict"],
    )
    return Pipeline([node])


def create_pipelines() -> dict[str, Pipeline]:
    """Every ``predict_<task>`` pipeline by name."""
    from xfm_pipeline.tasks.registry import TASKS

    return {pipeline_name(task): create_predict_pipeline(task) for task in TASKS}
