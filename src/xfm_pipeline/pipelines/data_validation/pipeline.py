"""data_validation pipeline wiring (generated from the dataset registry, one node per task and step).

    raw catalog entries -> validate_<task> -> validation report (JSON + HTML) -> policy gate
                        -> publish_<task> -> <dataset>_..._validated + <dataset>_quarantine
    evaluation splits   -> index_evaluation_images -> validate_pretrain

Vision-language nodes also take ``shapes_world_images`` (the image root): data_ingestion writes the
images in a node of their own, and validation must not read them before.
"""

from functools import partial

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.data.validation.registry import IMAGE_ROOT_TASKS, TASKS, evaluation_datasets, task_datasets
from xfm_pipeline.pipelines.data_validation import nodes

PARAMS = "params:data_validation"
# The image files of the vision-language datasets; an input so that validation runs after they are written.
IMAGES = "shapes_world_images"


def _outcomes(task: str) -> str:
    return f"validation_outcomes_{task}"


def _for_task(func, task: str):
    """``func`` with its task bound, named ``<func>_<task>`` in logs (a picklable partial)."""
    bound = partial(func, task)
    bound.__name__ = bound.__qualname__ = f"{func.__name__}_{task}"
    bound.__module__, bound.__doc__ = func.__module__, func.__doc__
    return bound


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """Index evaluation images, validate each task, report, gate on ``fail`` policies, publish each task."""
    index = Node(
        nodes.index_evaluation_images,
        inputs={"params": PARAMS, "images": IMAGES, **{s.name: s.catalog_entry for s in evaluation_datasets()}},
        outputs="evaluation_image_index",
        name="index_evaluation_images",
        tags=["data_validation"],
    )
    validate = [
        Node(
            _for_task(nodes.validate_task, task),
            inputs={
                "params": PARAMS,
                **({"evaluation_index": "evaluation_image_index"} if task == "pretrain" else {}),
                **({"images": IMAGES} if task in IMAGE_ROOT_TASKS else {}),
                **{s.name: s.catalog_entry for s in task_datasets(task)},
            },
            outputs=_outcomes(task),
            name=f"validate_{task}",
            tags=["data_validation", f"validation_{task}"],
        )
        for task in TASKS
    ]
    report = Node(
        nodes.report_validation,
        inputs={"params": PARAMS, **{task: _outcomes(task) for task in TASKS}},
        outputs=["validation_report", "validation_report_html"],
        name="report_validation",
        tags=["data_validation"],
    )
    gate = Node(
        nodes.enforce_validation_policies,
        inputs="validation_report",
        outputs="validation_gate",
        name="enforce_validation_policies",
        tags=["data_validation"],
    )
    publish = [
        Node(
            _for_task(nodes.publish_task, task),
            inputs={"gate": "validation_gate", "outcomes": _outcomes(task)},
            outputs={name: name for s in task_datasets(task) for name in (s.validated_entry, f"{s.name}_quarantine")},
            name=f"publish_{task}",
            tags=["data_validation", f"validation_{task}"],
        )
        for task in TASKS
    ]
    return Pipeline([index, *validate, report, gate, *publish])
