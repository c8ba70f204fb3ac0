"""The interface every downstream task implements, and the task model/checkpoint plumbing.

A task turns validated records into datasets, wraps the pretrained :class:`~xfm_pipeline.model.XFM`
into a task model (backbone + its head), defines the training loss, predicts on an evaluation split
and scores predictions with the official metric. The fine-tune job (``jobs.finetune``) drives it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from xfm_pipeline.training.dataloaders import LoaderSettings, resolve_loader_settings
from xfm_pipeline.training.loop import LoopConfig


@dataclass
class TaskParams:
    """What a task reads of its ``params:<pipeline>`` block (after the layers are merged).

    ``loop`` is the training loop's own schema (:class:`~xfm_pipeline.training.loop.LoopConfig`, the same
    as pretraining's ``loop:``); ``options`` holds the task's own settings (its ``options_class``).
    """

    image_size: int | None = None  # fine-tuning resolution (None = the checkpoint's; rel-pos tables resized)
    batch_size: int = 16  # global training batch
    eval_batch_size: int = 32  # evaluation batch (per process)
    max_tokens: int = 40  # text length incl. specials
    num_workers: int | None = None  # DataLoader workers per rank (None = auto: 0 on a CPU, min(8, CPUs per rank) on CUDA)
    pin_memory: bool | None = None  # page-locked batches for faster host-to-GPU copies (None = auto: on CUDA only)
    persistent_workers: bool | None = None  # keep a loader's workers between passes (None = auto: when there are workers)
    prefetch_factor: int | None = None  # batches each worker loads ahead (None = PyTorch's 2; needs workers)
    image_memo_mb: int = 512  # transformed images a dataset keeps per process while unaugmented (tasks.common.ImageMemo; 0 = none)
    loop: LoopConfig = field(default_factory=LoopConfig)  # optimiser, schedule, steps, seed, validation period
    options: dict[str, Any] = field(default_factory=dict)  # task-specific settings (validated by options_class)

    @property
    def seed(self) -> int:
        """Data order, augmentation and head initialisation seed (``loop.seed``)."""
        return self.loop.seed

    def loader_settings(self, device: str | torch.device, where: str = "") -> LoaderSettings:
        """The DataLoader settings of a rank whose batches go to ``device`` ("auto" values resolved;
        ``where`` names the parameter block in errors)."""
        return resolve_loader_settings(device, self.num_workers, self.pin_memory, self.persistent_workers, self.prefetch_factor, where=where)


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
    options_class: type  # dataclass of ``params.options`` (unknown keys rejected); every task sets it
    collective_predict: bool = False  # predict(..., ranks=) splits the work over the ranks itself (see predict)

    def options(self, params: TaskParams, where: str = ""):
        """``params.options`` as ``options_class`` (``where``: the dotted parameter path for messages).

        Raises:
            ConfigError / ValueError: an unknown key or a bad value, naming ``<where>.options.<key>``.
        """
        from xfm_pipeline.config import from_dict

        return from_dict(self.options_class, params.options, path=f"{where or 'finetune_' + self.name}.options")

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
        """Predictions of the items of ``loader`` (a sequential loader over an evaluation split or this rank's
        shard of it, ``training.distributed_eval.shard``), one JSON-ready record per item, in loader order;
        batches go to the model's device. A task with ``collective_predict`` takes a ``ranks`` argument
        too, runs its own collectives and returns the predictions of the whole split on every rank."""

    @abstractmethod
    def evaluate(self, predictions: list[dict[str, Any]], split: str, data: dict[str, Any]) -> dict[str, float]:
        """The task's official metrics of ``predictions`` against ``split``'s references."""

    def new_parameters(self, model: TaskModel) -> list[str]:
        """Name prefixes of ``model``'s freshly initialised parameters (trained at ``lr_mult`` x the lr): the
        task's ``new_param_prefixes`` plus the ``fresh_keys`` a submodule declares (a decoder's weights that
        could not be copied from the fusion encoder)."""
        fresh = [f"{name}.{key}" for name, module in model.named_modules() for key in getattr(module, "fresh_keys", ())]
        return [*self.new_param_prefixes, *fresh]
