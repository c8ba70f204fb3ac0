"""What a task's predictor module implements: its record schema and the run of checked records through the
task's own dataset, collate and predict code (one module per task family in ``xfm_pipeline.predict``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from xfm_pipeline.predict.schema import TaskSchema
    from xfm_pipeline.tasks.base import Task, TaskModel, TaskParams


@dataclass
class Loaded:
    """A task checkpoint in memory, ready to predict: eval mode, on its device."""

    task: Task
    model: TaskModel
    params: TaskParams  # as stored in the checkpoint (image size, max tokens, options)
    tokenizer: Any
    device: torch.device


class TaskAdapter(ABC):
    """Raw records of one task <-> the task's evaluation code. Stateless; one instance per registered task."""

    def __init__(self, task: Task):
        self.task = task

    @property
    @abstractmethod
    def schema(self) -> TaskSchema:
        """The task's input and output record formats."""

    def check(self, record: dict[str, Any]) -> None:
        """Constraints beyond the schema's field types (``record`` already checked against it).

        Raises:
            ValueError: the problem, without the record index.
        """
        return None  # the schema says everything for most tasks

    def check_checkpoint(self, params: TaskParams, source: str) -> None:
        """Refuse a checkpoint that lacks what inference needs (e.g. class names).

        Raises:
            xfm_pipeline.model.checkpoint.CheckpointError: what is missing and how to get a usable checkpoint.
        """
        return None  # most tasks need nothing beyond the weights

    @abstractmethod
    def run(self, loaded: Loaded, records: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
        """One JSON-ready output per checked record (images are RGB ``PIL.Image`` objects), in order."""


def image_store(images: list[Image.Image]) -> tuple[dict[str, Image.Image], list[str]]:
    """In-memory images as an image root for the tasks' datasets (``data.images.load_image`` accepts a
    mapping): ``({key: image}, keys)``, one key per image, in order."""
    keys = [f"input-{i}" for i in range(len(images))]
    return dict(zip(keys, images, strict=True)), keys


def eval_loader(dataset, collate, batch_size: int):
    """A sequential DataLoader over an evaluation dataset (the fine-tune job's kind, with ``batch_size``)."""
    import torch

    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=0)
