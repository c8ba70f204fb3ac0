"""Task checkpoints: a directory with the task model's weights, its config and the tokenizer.

``config.json`` holds the format tag, the registered task, the :class:`~xfm_pipeline.tasks.base.TaskParams`
it was trained with (its ``options`` as the task model resolved them, e.g. ImageNet's class names and VQA's
answer list) and the backbone's model config: enough to rebuild the task model with no other input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xfm_pipeline.tasks.base import TaskModel, TaskParams

TASK_FORMAT = "xfm_pipeline/task-checkpoint"


def write_task_checkpoint(model: TaskModel, directory: Path, params: TaskParams, tokenizer=None) -> None:
    """Write a task model into an existing directory: weights, config (backbone + task) and tokenizer.

    The stored options are the model's (``model.options``: every option resolved, with what the task took
    from its data, such as class names), not ``params.options``.
    """
    from dataclasses import replace

    from xfm_pipeline.config import to_dict
    from xfm_pipeline.model.checkpoint import model_config_dict, save_weights

    stored = to_dict(replace(params, options=dict(model.options)))
    meta = {"format": TASK_FORMAT, "version": 2, "task": model.task, "params": stored, "model": model_config_dict(model.xfm)}
    save_weights(model, directory / "model.safetensors")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory / "tokenizer"))
    (directory / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True))


def load_task_checkpoint(directory: str | Path, data: dict[str, Any] | None = None) -> TaskModel:
    """Rebuild a task model from its checkpoint directory (strict weights)."""
    from safetensors.torch import load_model

    from xfm_pipeline.config import from_dict
    from xfm_pipeline.model import XFM, XFMConfig
    from xfm_pipeline.tasks.registry import get_task

    directory = Path(directory)
    meta = _task_checkpoint_meta(directory)
    model = get_task(meta["task"]).build_model(XFM(from_dict(XFMConfig, meta["model"])), load_task_params(directory), data or {})
    load_model(model, str(directory / "model.safetensors"), strict=True)
    return model


def load_task_params(directory: str | Path) -> TaskParams:
    """The fine-tuning parameters a task checkpoint was trained with (its ``config.json``)."""
    from xfm_pipeline.config import from_dict

    return from_dict(TaskParams, _task_checkpoint_meta(Path(directory))["params"])


def checkpoint_task(directory: str | Path) -> str:
    """The registered task a task checkpoint holds (its ``config.json``).

    Raises:
        CheckpointError: ``directory`` holds no task checkpoint (e.g. a pretraining checkpoint).
    """
    return _task_checkpoint_meta(Path(directory))["task"]


def _task_checkpoint_meta(directory: Path) -> dict[str, Any]:
    from xfm_pipeline.model.checkpoint import CheckpointError

    meta = json.loads((directory / "config.json").read_text())
    if meta.get("format") != TASK_FORMAT:
        raise CheckpointError(f"{directory}: not a task checkpoint (format {meta.get('format')!r})")
    return meta
