"""X-FM pretraining on the validated corpora written as WebDataset shards (in-process or under torchrun), the
vision warm-up before it and the region-data box stage after it."""

from xfm_pipeline.pipelines.pretrain.pipeline import create_bbox_pipeline, create_pipeline, create_shards_pipeline, create_vision_pipeline

__all__ = ["create_bbox_pipeline", "create_pipeline", "create_shards_pipeline", "create_vision_pipeline"]
