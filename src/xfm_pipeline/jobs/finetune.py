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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from xfm_pipeline.config import ConfigError, from_dict, merge
from xfm_pipeline.jobs.resume import DEFAULT_KEEP_RUNS
from xfm_pipeline.tasks.base import Task, TaskParams
from xfm_pipeline.training.launch import DistributedConfig

log = logging.getLogger(__name__)

TASK_SET_LOOP_KEYS = ("new_param_prefixes", "select_metric", "select_mode")  # the task decides these, not the YAML


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


def eval_loader(task, split: str, data, tokenizer, params, image_root):
    """A plain sequential DataLoader over an evaluation split."""
    import torch

    dataset = task.dataset(split, data, tokenizer, params, image_root, train=False)
    return torch.utils.data.DataLoader(
        dataset, batch_size=params.eval_batch_size, shuffle=False, collate_fn=task.collate(split, train=False), num_workers=params.num_workers
    )


def evaluate_splits(task: Task, model, data: dict[str, Any], tokenizer, params: TaskParams, image_root: str, reused: dict[str, list] | None = None):
    """Predict every evaluation split of ``task`` (all but ``train``) with ``model`` in eval mode and score it.

    ``reused`` maps a split to predictions already made with these weights (not recomputed).

    Returns:
        (metrics per split, predictions per split)
    """
    import torch

    model.eval()
    metrics, predictions = {}, {}
    for split in task.splits:
        if split == "train":
            continue
        if split in (reused or {}):
            predictions[split] = reused[split]
        else:
            with torch.no_grad():
                predictions[split] = task.predict(model, eval_loader(task, split, data, tokenizer, params, image_root), params)
        metrics[split] = task.evaluate(predictions[split], split, data)
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
    from xfm_pipeline.training.loop import Stream, make_accelerator, train
    from xfm_pipeline.training.sampling import StreamSampler

    task = get_task(config["task"])
    params = from_dict(TaskParams, config["params"], path=f"finetune_{task.name}")
    data = load_data(config["data_dir"])
    image_root = config["image_root"]
    official = config.get("official_checkpoint")
    inputs = [Path(config["init_dir"]) / "model.safetensors", *([official] if official else []), *sorted(Path(config["data_dir"]).glob("*.json"))]
    output_dir = run_directory(config["output_dir"], {"task": config["task"], **config["params"]}, inputs)
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
    validated: dict[int, Any] = {}  # step -> val predictions of each validation run in this process
    reused_val = None  # the selected checkpoint's val predictions, when this process computed them
    if start.selected is not None:  # a finished run of this code: its selected weights, evaluated again
        selected = str(start.selected)
        history_file = output_dir / "history.json"
        history = json.loads(history_file.read_text()) if history_file.is_file() else []
        if accelerator.is_main_process:
            model = load_task_checkpoint(selected, data)
    elif params.loop.max_steps > 0:
        train_set = task.dataset("train", data, tokenizer, params, image_root, train=True)
        sampler = StreamSampler(len(train_set), params.batch_size, seed=params.seed, rank=accelerator.process_index, world_size=accelerator.num_processes)
        loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, collate_fn=task.collate("train", train=True), num_workers=params.num_workers)
        loop = replace(params.loop, new_param_prefixes=task.new_parameters(model), select_metric=task.selection_metric)

        def validate(m, step: int) -> dict[str, float]:
            validated[step] = task.predict(m, eval_loader(task, "val", data, tokenizer, params, image_root), params)
            return task.evaluate(validated[step], "val", data)

        stream = Stream(loader, sampler, weight=1.0, samples_per_batch=params.batch_size)
        result = train(model, task.loss, {"train": stream}, loop, output_dir, accelerator, metadata, on_log, validate if "val" in task.splits else None)
        history = result.history
        selected = result.best_checkpoint or result.final_checkpoint
        if accelerator.is_main_process and result.best_checkpoint:
            model = load_task_checkpoint(result.best_checkpoint, data)
            reused_val = validated.get(result.best_step)  # None when validated before a resume
    if not accelerator.is_main_process:
        return {}
    prune_runs(output_dir, config["keep_runs"])
    reused = {"val": reused_val} if reused_val is not None else {}  # the same weights were validated during training
    metrics, predictions = evaluate_splits(task, model, data, tokenizer, params, image_root, reused)
    if selected is None:  # evaluation-only run: save the evaluated model for the catalog
        from xfm_pipeline.model.checkpoint import atomic_directory_write

        selected = str(atomic_directory_write(output_dir / "evaluated", lambda directory: metadata(directory, model)))
    finish_run(output_dir, selected)
    return {"metrics": metrics, "predictions": predictions, "history": history, "checkpoint": selected}
