"""The fine-tune template: one namespaced node per registered task pipeline (``tasks.registry.PIPELINES``)."""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline, pipeline

from xfm_pipeline.pipelines.finetune.nodes import finetune
from xfm_pipeline.tasks.registry import PIPELINES
from xfm_pipeline.tasks.spec import TaskPipeline

OUTPUTS = ("task_checkpoint", "metrics", "predictions", "history")  # catalog entries "<pipeline>_<output>"


def output_dataset(name: str, output: str) -> str:
    """The catalog dataset of a task pipeline's ``output`` (one of :data:`OUTPUTS`), e.g. ``finetune_vqa_metrics``."""
    return f"{name}_{output}"


def create_finetune_pipeline(spec: TaskPipeline) -> Pipeline:
    """Namespace ``spec.name``: starting checkpoint (path) + parameter layers + validated data -> task
    checkpoint, metrics, predictions, history. The MLflow run id comes from the tracking hook."""
    layers = {f"params_{i}": f"params:{block}" for i, block in enumerate(spec.param_layers())}
    node = Node(
        update_wrapper(partial(finetune, pipeline=spec.name), finetune),
        inputs={"init": "init", "image_root": "params:image_root", "run_id": "mlflow_run_id", **layers, **{key: key for key in spec.data}},
        outputs=list(OUTPUTS),
        name="finetune",
        tags=["mlflow", "finetune"],
    )
    return pipeline(
        Pipeline([node]),
        namespace=spec.name,
        inputs={"init": spec.init, "mlflow_run_id": "mlflow_run_id", **spec.data},
        outputs={output: output_dataset(spec.name, output) for output in OUTPUTS},
        parameters={"params:image_root", *layers.values()},
    )


def create_pipelines() -> dict[str, Pipeline]:
    """Every fine-tune/eval pipeline by name."""
    return {name: create_finetune_pipeline(spec) for name, (_, spec) in PIPELINES.items()}
