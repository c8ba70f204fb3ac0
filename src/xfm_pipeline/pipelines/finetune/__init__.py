"""Fine-tune and evaluation pipelines, one per registered task pipeline."""

from xfm_pipeline.pipelines.finetune.pipeline import OUTPUTS, create_pipelines, output_dataset

__all__ = ["OUTPUTS", "create_pipelines", "output_dataset"]
