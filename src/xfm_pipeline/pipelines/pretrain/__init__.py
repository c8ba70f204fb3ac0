"""X-FM pretraining on the validated corpora (in-process or under torchrun), and the vision warm-up before it."""

from xfm_pipeline.pipelines.pretrain.pipeline import create_pipeline, create_vision_pipeline

__all__ = ["create_pipeline", "create_vision_pipeline"]
