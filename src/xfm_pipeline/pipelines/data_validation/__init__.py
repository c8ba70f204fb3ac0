"""Validate every raw dataset with Great Expectations; publish valid records, quarantine or fail on the rest."""

from xfm_pipeline.pipelines.data_validation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
