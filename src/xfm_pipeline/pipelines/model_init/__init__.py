"""Build the X-FM model from a preset (optionally importing official weights) and save the initial checkpoint."""

from xfm_pipeline.pipelines.model_init.pipeline import create_pipeline

__all__ = ["create_pipeline"]
