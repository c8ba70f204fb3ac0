"""The report pipeline: results table (markdown + JSON) and an HTML report with plots and example
predictions drawn on their images (``data/08_reporting/report/``), from every pipeline's outputs."""

from xfm_pipeline.pipelines.report.pipeline import create_pipeline

__all__ = ["create_pipeline"]
