"""Project pipelines, registered explicitly by name."""

from __future__ import annotations

from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Map pipeline names to pipelines; ``__default__`` runs the demo chain. The ``predict_<task>`` and
    ``evaluate_<pipeline>`` pipelines (generated from the task registry) and ``ablation`` (every start x task,
    then the report with its table) are registered but not in it."""
    from xfm_pipeline.pipelines import ablation, data_ingestion, data_validation, evaluate, finetune, model_init, predict, pretrain, report

    pipelines: dict[str, Pipeline] = {
        "data_ingestion": data_ingestion.create_pipeline(),
        "data_validation": data_validation.create_pipeline(),
        "model_init": model_init.create_pipeline(),
        "pretrain_shards": pretrain.create_shards_pipeline(),
        "pretrain_vision": pretrain.create_vision_pipeline(),
        "pretrain": pretrain.create_pipeline(),
        "pretrain_bbox": pretrain.create_bbox_pipeline(),
        **finetune.create_pipelines(),
        "report": report.create_pipeline(),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    extra = {"ablation": ablation.create_pipeline() + pipelines["report"], **predict.create_pipelines(), **evaluate.create_pipelines()}
    return {**pipelines, **extra}
