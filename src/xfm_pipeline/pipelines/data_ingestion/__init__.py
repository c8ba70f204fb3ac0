"""Write the raw layer: generate the shapes world in the published formats (or, for real data, nothing)."""

from xfm_pipeline.pipelines.data_ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
