"""Evaluation-only pipelines ``evaluate_<pipeline>``, one per registered fine-tune/eval pipeline."""

from xfm_pipeline.pipelines.evaluate.pipeline import create_pipelines, pipeline_name

__all__ = ["create_pipelines", "pipeline_name"]
