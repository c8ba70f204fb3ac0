"""The one description of a downstream task that everything else is derived from.

A task module ends with its :class:`TaskSpec` (``SPEC``); ``tasks/registry.py`` lists the specs. The
fine-tune pipelines, their DVC stages (``python -m xfm_pipeline.dvc_stages``), the parameter layers, the
report's headline metric, its paper numbers and its example pictures are all read from here, so adding or
changing a task is a change to its module, one registry line and one YAML block (docs/design.md#tasks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xfm_pipeline.tasks.base import Task

DEFAULT_INIT = "pretrain_checkpoint"  # catalog checkpoint a pipeline starts from unless its spec says otherwise
DEFAULTS_BLOCK = "finetune_defaults"  # parameter block every fine-tune pipeline is layered over


@dataclass(frozen=True)
class PaperResult:
    """One published X-FM base number (arXiv 2301.05065), for orientation next to ours."""

    x4m: float  # X-FM base, 4M pretraining images
    x1b: float  # X-FM base, 1.3B pretraining images
    what: str  # benchmark and split, e.g. "VQAv2 test-dev"


@dataclass(frozen=True)
class TaskPipeline:
    """One Kedro pipeline that runs a task: ``finetune_<x>``, ``eval_<x>`` or ``linear_probe_<x>``."""

    name: str  # pipeline, namespace, parameter block and DVC stage name
    data: Mapping[str, str]  # task data key -> catalog dataset of validated records
    init: str = DEFAULT_INIT  # catalog checkpoint the pipeline starts from
    param_groups: tuple[str, ...] = ()  # parameter blocks layered between finetune_defaults and the pipeline's own
    paper: Mapping[str, PaperResult] = field(default_factory=dict)  # "<split>/<metric>" -> published number

    def param_layers(self) -> tuple[str, ...]:
        """Parameter blocks merged in this order (later wins): defaults, groups, the pipeline's own."""
        return (DEFAULTS_BLOCK, *self.param_groups, self.name)


@dataclass(frozen=True)
class Examples:
    """How the report draws a few predictions of the task on their images."""

    drawer: str  # function name in xfm_pipeline.reporting.examples: (predictions, data, image_root) -> examples
    data: tuple[str, ...]  # data keys of the pipeline the drawer reads


@dataclass(frozen=True)
class TaskSpec:
    """Everything the project needs to know about one registered task."""

    task: Task  # the task object (heads, datasets, loss, predict, evaluate)
    pipelines: tuple[TaskPipeline, ...]  # the Kedro pipelines that run it
    fraction: bool = False  # metrics stored as fractions (GLUE, ImageNet) rather than percentages
    examples: Examples | None = None  # example pictures in the report (None: metrics only)

    @property
    def name(self) -> str:
        """Registry key (``task.name``)."""
        return self.task.name

    @property
    def headline_metric(self) -> str:
        """The metric the report leads with: the validation metric that selects the checkpoint."""
        return self.task.selection_metric
