"""``evaluate_<pipeline>``: one node per registered fine-tune/eval pipeline (``tasks.registry.PIPELINES``),
reading the same parameter layers and validated data as that pipeline and writing metrics and predictions
of a task checkpoint without training. Not part of ``__default__`` nor of ``dvc.yaml``."""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline, pipeline

from xfm_pipeline.pipelines.evaluate.nodes import evaluate_checkpoint
from xfm_pipeline.tasks.spec import TaskPipeline

OUTPUTS = ("metrics", "predictions")  # catalog entries "evaluate_<pipeline>_<output>"


def pipeline_name(task_pipeline: str) -> str:
    """The evaluation pipeline (and namespace, and catalog prefix) of ``task_pipeline``: ``evaluate_<it>``."""
    return f"evaluate_{task_pipeline}"


def create_evaluate_pipeline(spec: TaskPipeline) -> Pipeline:
    """Namespace ``evaluate_<spec.name>``: parameter layers + validated data -> metrics, predictions."""
    name = pipeline_name(spec.name)
    layers = {f"params_{i}": f"params:{block}" for i, block in enumerate(spec.param_layers())}
    node = Node(
        update_wrapper(partial(evaluate_checkpoint, pipeline=spec.name), evaluate_checkpoint),
        inputs={"image_root": "params:image_root", "settings": "params:evaluate", **layers, **{key: key for key in spec.data}},
        outputs=list(OUTPUTS),
        name="evaluate",
        tags=["evaluate"],
    )
    return pipeline(
        Pipeline([node]),
        namespace=name,
        inputs=dict(spec.data),
        outputs={output: f"{name}_{output}" for output in OUTPUTS},
        parameters={"params:image_root", "params:evaluate", *layers.values()},
    )


def create_pipelines() -> dict[str, Pipeline]:
    """Every ``evaluate_<pipeline>`` pipeline by name."""
    from xfm_pipeline.tasks.registry import PIPELINES

    return {pipeline_name(name): create_evaluate_pipeline(spec) for name, (_, spec) in PIPELINES.items()}
