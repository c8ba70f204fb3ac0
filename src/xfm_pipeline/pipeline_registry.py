"""Project pipelines, registered explicitly by name."""

from __future__ import annotations

from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Map pipeline names to pipelines; ``__default__`` runs the demo chain."""
    from xfm_pipeline.pipelines import data_ingestion, data_validation, model_init

    pipelines: dict[str, Pipeline] = {
        "data_ingestion": data_ingestion.create_pipeline(),
        "data_validation": data_validation.create_pipeline(),
        "model_init": model_init.create_pipeline(),
    }
    pipelines["__default__"] = pipelines["data_ingestion"] + pipelines["data_validation"] + pipelines["model_init"]
    return pipelines
