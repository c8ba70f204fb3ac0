"""The ``evaluate_<pipeline>`` node: score a task checkpoint on the pipeline's evaluation splits, no training.

The fine-tune job's own evaluation (:func:`xfm_pipeline.jobs.finetune.evaluate_splits`) runs on the
checkpoint's stored parameters (image size, text length, task options), so evaluating the checkpoint a
fine-tune pipeline selected gives the metrics and predictions that pipeline wrote.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def _records(value: Any) -> Any:
    """Catalog data -> what the task reads: DataFrames to record lists, partition loaders called."""
    from xfm_pipeline.datasets.records import as_record_list

    if hasattr(value, "to_dict"):
        return as_record_list(value)
    if isinstance(value, dict):
        return {k: (v() if callable(v) else v) for k, v in value.items()}
    return value


def evaluate_checkpoint(image_root: str, settings: dict[str, Any], *, pipeline: str, **inputs: Any) -> tuple[dict[str, float], dict[str, list]]:
    """Evaluate the task checkpoint of ``settings`` (default: ``pipeline``'s fine-tuned one) on its splits.

    ``inputs`` holds the pipeline's parameter layers ``params_0..params_n`` (for its ``image_root``) and its
    validated data by task data key, as the fine-tune node gets them.

    Returns:
        (flat metrics ``{"<split>/<metric>": x}``, predictions per split)

    Raises:
        ConfigError: a bad ``evaluate`` block or pipeline parameters.
        CheckpointError: the checkpoint holds another task than the pipeline's.
        FileNotFoundError: no checkpoint at the path.
    """
    import torch

    from xfm_pipeline.jobs.finetune import evaluate_splits, resolve_params
    from xfm_pipeline.model.checkpoint import CheckpointError, load_checkpoint_tokenizer
    from xfm_pipeline.pipelines.predict.settings import EvaluateSettings, default_checkpoint, read_settings
    from xfm_pipeline.predict.predictor import default_device
    from xfm_pipeline.tasks.checkpoint import checkpoint_task, load_task_checkpoint, load_task_params
    from xfm_pipeline.tasks.registry import get_pipeline

    spec, task_pipeline = get_pipeline(pipeline)
    config = read_settings(EvaluateSettings, settings, "evaluate")
    blocks = [inputs.pop(f"params_{i}") for i in range(len(task_pipeline.param_layers()))]
    root = resolve_params(pipeline, spec.task, blocks).image_root or image_root
    checkpoint = config.checkpoint or default_checkpoint(pipeline)
    found = checkpoint_task(checkpoint)
    if found != spec.name:
        raise CheckpointError(f"{checkpoint} holds a {found!r} checkpoint; {pipeline} evaluates {spec.name!r}")
    data = {key: _records(value) for key, value in inputs.items()}
    device = torch.device(config.device or default_device())
    model = load_task_checkpoint(checkpoint, data).to(device)
    params = load_task_params(checkpoint)
    metrics, predictions = evaluate_splits(spec.task, model, data, load_checkpoint_tokenizer(checkpoint), params, root)
    flat = {f"{split}/{k}": v for split, values in metrics.items() for k, v in values.items()}
    log.info("%s: %s evaluated on %s: %s", pipeline, checkpoint, sorted(metrics), flat)
    return flat, predictions
