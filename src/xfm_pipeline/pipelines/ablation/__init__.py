"""The ``ablation`` pipeline: what each starting checkpoint is worth after the same fine-tune budget."""

from xfm_pipeline.pipelines.ablation.pipeline import ROWS, STARTS, create_pipeline

__all__ = ["ROWS", "STARTS", "create_pipeline"]
