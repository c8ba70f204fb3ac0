"""The report pipeline: one results table from every fine-tune/eval pipeline's metrics."""

from xfm_pipeline.pipelines.report.pipeline import create_pipeline

__all__ = ["create_pipeline"]
