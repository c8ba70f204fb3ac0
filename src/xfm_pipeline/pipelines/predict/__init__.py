"""Batch inference pipelines ``predict_<task>``, one per registered task (``xfm_pipeline.predict``)."""

from xfm_pipeline.pipelines.predict.pipeline import create_pipelines, pipeline_name

__all__ = ["create_pipelines", "pipeline_name"]
