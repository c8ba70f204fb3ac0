"""Fine-tuning and evaluation pipelines, one per task, built from one template with Kedro namespaces."""

from xfm_pipeline.pipelines.finetune.pipeline import FINETUNE_PIPELINES, create_pipelines

__all__ = ["FINETUNE_PIPELINES", "create_pipelines"]
