"""Project pipelines, registered explicitly by name."""

from __future__ import annotations

from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Map pipeline names to pipelines; ``__default__`` runs the demo chain."""
    from xfm_pipeline.pipelines import model_init

    pipelines: dict[str, Pipeline] = {
        "model_init": model_init.create_pipeline(),
    }
    pipelines["__default__"] = pipelines["model_init"]
    return pipelines
