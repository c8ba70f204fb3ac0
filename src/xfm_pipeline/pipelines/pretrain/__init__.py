"""X-FM pretraining on the validated corpora (in-process or under torchrun)."""

from xfm_pipeline.pipelines.pretrain.pipeline import create_pipeline

__all__ = ["create_pipeline"]
