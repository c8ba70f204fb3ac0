"""The interface every downstream task implements, and the task model/checkpoint plumbing.

A task turns validated records into datasets, wraps the pretrained :class:`~xfm_pipeline.model.XFM`
into a task model (backbone + its head), defines the training loss, predicts on an evaluation split
and scores predictions with the official metric. The fine-tune job (``jobs.finetune``) drives it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


@dataclass
class TaskParams:
    """Parameters shared by every task (``params:finetune_<task>``); ``options`` holds task-specific ones."""

    image_size: int | None = None  # fine-tuning resolution (None = the checkpoint's; rel-pos tables resized)
    batch_size: int = 16  # global training batch
    eval_batch_size: int = 32  # evaluation batch (per process)
    max_steps: int = 100  # optimizer steps (0 = evaluation only, e.g. zero-shot retrieval)
    lr: float = 5e-5  # peak learning rate (heads get lr_mult x)
    weight_decay: float = 0.01  # AdamW weight decay
    warmup: float = 0.1  # warm-up fraction or steps
    lr_mult: float = 2.0  # new heads' learning-rate multiplier
    lr_scales: dict[str, float] = field(default_factory=dict)  # task-model name prefix -> lr multiplier
    grad_clip: float = 1.0  # global-norm clip (0 = off)
    eval_every: int = 50  # validation period in steps (model selection on val, never test)
    max_tokens: int = 40  # text length incl. specials
    seed: int = 42  # data order, augmentation and initialisation of the head
    num_workers: int = 0  # DataLoader workers
    options: dict[str, Any] = field(default_factory=dict)  # task-specific settings (validated by the task)


class TaskModel(nn.Module):
    """A task model: the X-FM backbone ``xfm`` plus task modules registered by the task.

    ``encodings`` caches a frozen encoder's outputs per input key (``model.encoder_cache``); tasks pass
    keys only for inputs that are a function of the key (no random augmentation).
    """

    def __init__(self, xfm: nn.Module, task: str, options: dict[str, Any]):
        from xfm_pipeline.model.encoder_cache import FrozenEncodings

        super().__init__()
        self.xfm = xfm
        self.task = task
        self.options = dict(options)
        self.encodings = FrozenEncodings()


class Task(ABC):
    """One downstream task. Subclasses are stateless; everything run-specific comes in as arguments."""

    name: str  # registry key, e.g. "vqa"
    splits: tuple[str, ...] = ("train", "val", "test")  # data splits the task reads
    selection_metric: str = ""  # validation metric that selects the checkpoint (higher is better)
    new_param_prefixes: tuple[str, ...] = ()  # task-model parameters created fresh (lr x lr_mult)

    @abstractmethod
    def build_model(self, xfm: nn.Module, params: TaskParams, data: dict[str, Any]) -> TaskModel:
        """Wrap the backbone with this task's head(s)."""

    @abstractmethod
    def dataset(self, split: str, data: dict[str, Any], tokenizer, params: TaskParams, image_root: str, train: bool) -> torch.utils.data.Dataset:
        """The dataset of ``split``; training datasets take ``(index, sample_seed)`` items."""

    @abstractmethod
    def collate(self, split: str, train: bool):
        """The collate function of ``split`` (dict batches)."""

    @abstractmethod
    def loss(self, model: TaskModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Training losses, with the total under ``"loss"``."""

    @abstractmethod
    def predict(self, model: TaskModel, loader, params: TaskParams) -> list[dict[str, Any]]:
        """Predictions on an evaluation split, as JSON-ready records."""

    @abstractmethod
    def evaluate(self, predictions: list[dict[str, Any]], split: str, data: dict[str, Any]) -> dict[str, float]:
        """The task's official metrics of ``predictions`` against ``split``'s references."""

    def new_parameters(self, model: TaskModel) -> list[str]:
        """Name prefixes of ``model``'s freshly initialised parameters (trained at ``lr_mult`` x the lr): the
        task's ``new_param_prefixes`` plus the ``fresh_keys`` a submodule declares (a decoder's weights that
        could not be copied from the fusion encoder)."""
        fresh = [f"{name}.{key}" for name, module in model.named_modules() for key in getattr(module, "fresh_keys", ())]
        return [*self.new_param_prefixes, *fresh]


# ---------------------------------------------------------------------------------------- checkpoints
TASK_FORMAT = "xfm_pipeline/task-checkpoint"


def write_task_checkpoint(model: TaskModel, directory: Path, params: TaskParams, tokenizer=None) -> None:
    """Write a task model into an existing directory: weights, config (backbone + task) and tokenizer."""
    from xfm_pipeline.config import to_dict
    from xfm_pipeline.model.checkpoint import model_config_dict, save_weights

    meta = {"format": TASK_FORMAT, "version": 1, "task": model.task, "params": to_dict(params), "model": model_config_dict(model.xfm)}
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


def _task_checkpoint_meta(directory: Path) -> dict[str, Any]:
    from xfm_pipeline.model.checkpoint import CheckpointError

    meta = json.loads((directory / "config.json").read_text())
    if meta.get("format") != TASK_FORMAT:
        raise CheckpointError(f"{directory}: not a task checkpoint (format {meta.get('format')!r})")
    return meta
