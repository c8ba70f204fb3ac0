"""The ``predict`` and ``evaluate`` parameter blocks (``conf/base/parameters_predict.yml``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHECKPOINT_DIR = "data/06_models/{pipeline}"  # where finetune_<task> writes its checkpoint (conf/base/catalog_finetune.yml)


@dataclass
class PredictSettings:
    """``params:predict``: one ``predict_<task>`` run."""

    checkpoint: str | None = None  # task checkpoint directory; None = that of the task's first pipeline
    batch_size: int | None = None  # records per forward pass; None = the checkpoint's eval_batch_size
    device: str | None = None  # None = cuda when available, else cpu


@dataclass
class EvaluateSettings:
    """``params:evaluate``: one ``evaluate_<pipeline>`` run."""

    checkpoint: str | None = None  # task checkpoint directory; None = the pipeline's fine-tuned checkpoint
    device: str | None = None  # None = cuda when available, else cpu


def read_settings(cls: type, block: dict[str, Any] | None, where: str):
    """``block`` as ``cls`` (unknown keys and wrong types raise ConfigError naming ``<where>.<key>``)."""
    from xfm_pipeline.config import from_dict

    return from_dict(cls, block or {}, path=where)


def default_checkpoint(pipeline: str) -> str:
    """The checkpoint directory the fine-tune/eval pipeline ``pipeline`` writes."""
    return CHECKPOINT_DIR.format(pipeline=pipeline)
