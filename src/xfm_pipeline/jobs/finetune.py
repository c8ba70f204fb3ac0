"""The fine-tuning job shared by every task: train on ``train``, select on ``val``, evaluate on ``test``.

:func:`resolve_params` turns a pipeline's parameter layers into a validated :class:`FinetuneParams` (in the
Kedro node, before anything is launched). :func:`run_finetune` runs on every rank; its config keys: ``task``,
``params`` (TaskParams fields), ``init_dir`` (an X-FM checkpoint directory), ``official_checkpoint`` (optional
official ``.th`` imported over it), ``data_dir`` (one JSON file per data key), ``image_root``, ``output_dir``,
``keep_runs``, ``run_id`` (MLflow, optional). Rank 0 returns metrics and predictions per split, the history
and the selected checkpoint directory.
"""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from xfm_pipeline.config import ConfigError, from_dict, merge
from xfm_pipeline.jobs.resume import DEFAULT_KEEP_RUNS
from xfm_pipeline.tasks.base import Task, TaskParams
from xfm_pipeline.training.dataloaders import LoaderSettings
from xfm_pipeline.training.distributed_eval import Ranks
from xfm_pipeline.training.launch import DistributedConfig

log = logging.getLogger(__name__)

TASK_SET_LOOP_KEYS = ("new_param_prefixes", "select_metric", "select_mode")  # the task decides these, not the YAML
LOADER_KEYS = ("num_workers", "pin_memory", "persistent_workers", "prefetch_factor", "image_memo_mb")  # TaskParams fields left out of the run key


@dataclass
class FinetuneParams(TaskParams):
    """A fine-tune pipeline's merged parameter block: the task's :class:`TaskParams` and how the job runs."""

    distributed: DistributedConfig = field(default_factory=DistributedConfig)  # processes and nodes (torchrun)
    official_checkpoint: str | None = None  # official X-FM .th imported over the starting checkpoint
    keep_runs: int = DEFAULT_KEEP_RUNS  # finished run-<key> directories kept under output_dir/train (0 = all)
    output_dir: str | None = None  # job files and runs (None: data/06_models/<pipeline>_run)
    image_root: str | None = None  # root of this pipeline's `image` paths (None: params:image_root)

    def task_params(self) -> TaskParams:
        """The part the task and its checkpoint see."""
        return TaskParams(**{f.name: getattr(self, f.name) for f in fields(TaskParams)})


def default_output_dir(pipeline: str) -> str:
    """Where ``pipeline`` keeps its job files and training runs unless ``output_dir`` says otherwise."""
    return f"data/06_models/{pipeline}_run"


def resolve_params(pipeline: str, task: Task, layers: list[dict[str, Any] | None]) -> FinetuneParams:
    """Merge ``layers`` (defaults first) and validate the result, task options included.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or a ``loop`` key the task sets itself;
            the message names the dotted key under ``pipeline``.
        ValueError: an option value the task rejects.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer or {})
    preset = sorted(set(merged.get("loop") or {}) & set(TASK_SET_LOOP_KEYS))
    if preset:
        raise ConfigError(f"{', '.join(f'{pipeline}.loop.{k}' for k in preset)}: set by the task, not by parameters")
    params = from_dict(FinetuneParams, merged, path=pipeline)
    task.options(params, where=pipeline)
    return params


def load_data(data_dir: str | Path) -> dict[str, Any]:
    """Every ``<key>.json`` in ``data_dir`` as ``{key: object}``."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(data_dir).glob("*.json"))}


def eval_loader(task, split: str, data, tokenizer, params, image_root, ranks: Ranks | None = None, settings: LoaderSettings | None = None):
    """A sequential DataLoader over this rank's shard of an evaluation split (``distributed_eval.shard``:
    whole ``eval_batch_size`` batches; the whole split in one process), with ``settings`` (default: a CPU's)."""
    from xfm_pipeline.training.dataloaders import make_loader
    from xfm_pipeline.training.distributed_eval import shard

    dataset = task.dataset(split, data, tokenizer, params, image_root, train=False)
    return make_loader(
        shard(dataset, ranks or Ranks(), params.eval_batch_size),
        settings or params.loader_settings("cpu"),
        task.collate(split, train=False),
        batch_size=params.eval_batch_size,
        shuffle=False,
    )


def predict_split(task: Task, model, loader, params: TaskParams, accelerator=None, ranks: Ranks | None = None) -> list | None:
    """Every rank predicts its shard (``loader`` from :func:`eval_loader` with the same ``ranks``) on
    ``accelerator.device`` under its autocast (without one: the model's device, no autocast), in eval mode
    without gradients (the model's mode is restored); rank 0 gets the split's predictions in dataset
    order, the other ranks None. Every rank must call it (collectives)."""
    import torch

    from xfm_pipeline.tasks.common import model_device

    ranks = ranks or Ranks()
    model.to(accelerator.device if accelerator is not None else model_device(model))
    was_training = model.training
    model.eval()
    with torch.no_grad(), accelerator.autocast() if accelerator is not None else nullcontext():
        if task.collective_predict:
            predictions = task.predict(model, loader, params, ranks=ranks)  # the whole split on every rank
        else:
            predictions = ranks.gather_list(task.predict(model, loader, params))
    model.train(was_training)
    return predictions if ranks.is_main else None


def evaluate_splits(
    task: Task,
    model,
    data: dict[str, Any],
    tokenizer,
    params: TaskParams,
    image_root: str,
    reused: dict[str, list] | None = None,
    accelerator=None,
):
    """Predict every evaluation split of ``task`` (all but ``train``) with ``model`` and score it.

    Every rank of a distributed run calls it: each predicts its shard of every split (:func:`predict_split`
    on ``accelerator``'s device and autocast), rank 0 scores the gathered predictions. ``reused`` maps a
    split to predictions already made with these weights (not recomputed; rank 0's, the same keys on
    every rank).

    Returns:
        (metrics per split, predictions per split) on rank 0; two empty dicts on the other ranks.
    """
    from xfm_pipeline.tasks.common import model_device

    ranks = Ranks.current()
    device = accelerator.device if accelerator is not None else model_device(model)
    settings = params.loader_settings(device, where=f"finetune_{task.name}")
    metrics, predictions = {}, {}
    for split in task.splits:
        if split == "train":
            continue
        if split in (reused or {}):
            predicted = reused[split]
        else:
            loader = eval_loader(task, split, data, tokenizer, params, image_root, ranks, settings)
            predicted = predict_split(task, model, loader, params, accelerator, ranks)
        if ranks.is_main:
            predictions[split] = predicted
            metrics[split] = task.evaluate(predicted, split, data)
            log.info("%s %s: %s", task.name, split, metrics[split])
    return metrics, predictions


def run_finetune(config: dict[str, Any]) -> dict[str, Any]:
    """Job entry point (every rank)."""
    import torch

    from xfm_pipeline.jobs.resume import finish_run, prune_runs, run_directory, start_run
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer, load_pretrained
    from xfm_pipeline.model.official import official_over_checkpoint
    from xfm_pipeline.tasks.checkpoint import load_task_checkpoint, write_task_checkpoint
    from xfm_pipeline.tasks.registry import get_task
    from xfm_pipeline.tracking import MlflowStepLogger
    from xfm_pipeline.training.dataloaders import make_loader
    from xfm_pipeline.training.loop import Stream, make_accelerator, train
    from xfm_pipeline.training.sampling import StreamSampler

    task = get_task(config["task"])
    params = from_dict(TaskParams, config["params"], path=f"finetune_{task.name}")
    data = load_data(config["data_dir"])
    image_root = config["image_root"]
    official = config.get("official_checkpoint")
    inputs = [Path(config["init_dir"]) / "model.safetensors", *([official] if official else []), *sorted(Path(config["data_dir"]).glob("*.json"))]
    keyed = {k: v for k, v in config["params"].items() if k not in LOADER_KEYS}  # loaders change no result
    output_dir = run_directory(config["output_dir"], {"task": config["task"], **keyed}, inputs)
    torch.manual_seed(params.seed)
    accelerator = make_accelerator(params.loop.mixed_precision)
    start = start_run(output_dir, accelerator.is_main_process)
    accelerator.wait_for_everyone()
    if official:
        backbone, report = official_over_checkpoint(config["init_dir"], official, image_size=params.image_size)
        log.info("initialised from the official checkpoint %s: %s", official, report.summary())
    else:
        backbone = load_pretrained(config["init_dir"], image_size=params.image_size)
    if params.image_size is None:  # tasks build their image transforms from params.image_size
        params.image_size = backbone.config.vision.image_size
    tokenizer = load_checkpoint_tokenizer(config["init_dir"])
    model = task.build_model(backbone, params, data)
    on_log = MlflowStepLogger(config.get("run_id")) if accelerator.is_main_process else None
    if on_log is not None:
        on_log.set_tags(start.tags())

    def metadata(directory: Path, trained) -> None:
        write_task_checkpoint(trained, directory, params, tokenizer)

    history, selected = [], None
    ranks = Ranks.current()
    settings = params.loader_settings(accelerator.device, where=f"finetune_{task.name}")
    validated: dict[int, Any] = {}  # step -> val predictions of each validation run in this process (rank 0's; None elsewhere)
    reused: dict[str, Any] = {}  # split -> predictions of the selected weights made during training (same keys on every rank)
    if start.selected is not None:  # a finished run of this code: its selected weights, evaluated again
        selected = str(start.selected)
        history_file = output_dir / "history.json"
        history = json.loads(history_file.read_text()) if history_file.is_file() else []
        model = load_task_checkpoint(selected, data)
    elif params.loop.max_steps > 0:
        train_set = task.dataset("train", data, tokenizer, params, image_root, train=True)
        sampler = StreamSampler(len(train_set), params.batch_size, seed=params.seed, rank=accelerator.process_index, world_size=accelerator.num_processes)
        loader = make_loader(train_set, settings, task.collate("train", train=True), batch_sampler=sampler)
        loop = replace(params.loop, new_param_prefixes=task.new_parameters(model), select_metric=task.selection_metric)
        val_loader = eval_loader(task, "val", data, tokenizer, params, image_root, ranks, settings) if "val" in task.splits else None

        def validate(m, step: int) -> dict[str, float]:
            validated[step] = predict_split(task, m, val_loader, params, accelerator, ranks)
            return task.evaluate(validated[step], "val", data) if ranks.is_main else {}

        stream = Stream(loader, sampler, weight=1.0, samples_per_batch=params.batch_size)
        result = train(model, task.loss, {"train": stream}, loop, output_dir, accelerator, metadata, on_log, validate if val_loader is not None else None)
        accelerator.free_memory()  # the DDP wrapper and the optimizer state: only weights are evaluated from here
        history = result.history
        selected = result.best_checkpoint or result.final_checkpoint
        if result.best_checkpoint:  # every rank evaluates the selected weights
            model = load_task_checkpoint(result.best_checkpoint, data)
            if result.best_step in validated:  # not when it was validated before a resume
                reused["val"] = validated[result.best_step]
    metrics, predictions = evaluate_splits(task, model, data, tokenizer, params, image_root, reused, accelerator)
    if not accelerator.is_main_process:
        return {}
    prune_runs(output_dir, config["keep_runs"])
    if selected is None:  # evaluation-only run: save the evaluated model for the catalog
        from xfm_pipeline.model.checkpoint import atomic_directory_write

        selected = str(atomic_directory_write(output_dir / "evaluated", lambda directory: metadata(directory, model)))
    finish_run(output_dir, selected)
    return {"metrics": metrics, "predictions": predictions, "history": history, "checkpoint": selected}
