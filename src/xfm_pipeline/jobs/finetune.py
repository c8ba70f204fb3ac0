"""The fine-tuning job shared by every task: train on ``train``, select on ``val``, evaluate on ``test``.

Config keys: ``task``, ``params`` (TaskParams fields), ``init_dir`` (an X-FM checkpoint directory),
``data_dir`` (one JSON file per data key written by the Kedro node), ``image_root``, ``output_dir``,
``run_id`` (MLflow, optional). Returns (rank 0) metrics per split, predictions per split, the history
and the selected checkpoint directory.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def load_data(data_dir: str | Path) -> dict[str, Any]:
    """Every ``<key>.json`` in ``data_dir`` as ``{key: object}``."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(data_dir).glob("*.json"))}


def eval_loader(task, split: str, data, tokenizer, params, image_root):
    """A plain sequential DataLoader over an evaluation split."""
    import torch

    dataset = task.dataset(split, data, tokenizer, params, image_root, train=False)
    return torch.utils.data.DataLoader(dataset, batch_size=params.eval_batch_size, shuffle=False, collate_fn=task.collate(split, train=False), num_workers=params.num_workers)


def run_finetune(config: dict[str, Any]) -> dict[str, Any]:
    """Job entry point (every rank)."""
    import torch

    from xfm_pipeline.config import from_dict
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer, load_pretrained
    from xfm_pipeline.tasks.base import TaskParams, load_task_checkpoint, write_task_checkpoint
    from xfm_pipeline.tasks.registry import get_task
    from xfm_pipeline.tracking import MlflowStepLogger
    from xfm_pipeline.training.loop import LoopConfig, Stream, make_accelerator, train
    from xfm_pipeline.training.sampling import StreamSampler

    task = get_task(config["task"])
    params = from_dict(TaskParams, config["params"], path=f"finetune_{task.name}")
    data = load_data(config["data_dir"])
    image_root = config["image_root"]
    from xfm_pipeline.jobs.resume import DEFAULT_KEEP_RUNS, prune_runs, run_directory

    inputs = [Path(config["init_dir"]) / "model.safetensors", *sorted(Path(config["data_dir"]).glob("*.json"))]
    output_dir = run_directory(config["output_dir"], {"task": config["task"], **config["params"]}, inputs)
    torch.manual_seed(params.seed)
    accelerator = make_accelerator()
    backbone = load_pretrained(config["init_dir"], image_size=params.image_size)
    if params.image_size is None:  # tasks build their image transforms from params.image_size
        params.image_size = backbone.config.vision.image_size
    tokenizer = load_checkpoint_tokenizer(config["init_dir"])
    model = task.build_model(backbone, params, data)
    on_log = MlflowStepLogger(config.get("run_id")) if accelerator.is_main_process else None

    def metadata(directory: Path, trained) -> None:
        write_task_checkpoint(trained, directory, params, tokenizer)

    history, selected = [], None
    validated: dict[int, Any] = {}  # step -> val predictions of each validation run in this process
    reused_val = None  # the selected checkpoint's val predictions, when this process computed them
    if params.max_steps > 0:
        train_set = task.dataset("train", data, tokenizer, params, image_root, train=True)
        sampler = StreamSampler(len(train_set), params.batch_size, seed=params.seed, rank=accelerator.process_index, world_size=accelerator.num_processes)
        loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, collate_fn=task.collate("train", train=True), num_workers=params.num_workers)
        loop = LoopConfig(
            max_steps=params.max_steps, lr=params.lr, weight_decay=params.weight_decay, betas=[0.9, 0.999], eps=1e-8,
            warmup=params.warmup, lr_mult=params.lr_mult, new_param_prefixes=task.new_parameters(model), lr_scales=dict(params.lr_scales),
            grad_clip=params.grad_clip, seed=params.seed, log_every=max(1, params.max_steps // 20), progress=True,
            eval_every=params.eval_every, select_metric=task.selection_metric, keep_last=1,
        )  # fmt: skip

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
    prune_runs(output_dir, config.get("keep_runs", DEFAULT_KEEP_RUNS))
    model.eval()
    metrics, predictions = {}, {}
    for split in task.splits:
        if split == "train":
            continue
        if split == "val" and reused_val is not None:  # the same weights were validated during training
            predictions[split] = reused_val
        else:
            with torch.no_grad():
                predictions[split] = task.predict(model, eval_loader(task, split, data, tokenizer, params, image_root), params)
        metrics[split] = task.evaluate(predictions[split], split, data)
        log.info("%s %s: %s", task.name, split, metrics[split])
    if selected is None:  # evaluation-only run: save the evaluated model for the catalog
        from xfm_pipeline.model.checkpoint import atomic_directory_write

        selected = str(atomic_directory_write(output_dir / "evaluated", lambda directory: metadata(directory, model)))
    return {"metrics": metrics, "predictions": predictions, "history": history, "checkpoint": selected}
