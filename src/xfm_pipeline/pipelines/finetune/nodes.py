"""The fine-tune node shared by every task pipeline."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """Catalog data -> JSON-ready: DataFrames to records, partition loaders called."""
    from xfm_pipeline.datasets.records import as_record_list

    if hasattr(value, "to_dict"):
        return as_record_list(value)
    if isinstance(value, dict):
        return {k: (v() if callable(v) else v) for k, v in value.items()}
    return value


def finetune(init, params: dict[str, Any], image_root: str, **data):
    """Fine-tune (or only evaluate) one task from ``init``; returns checkpoint dir, metrics, predictions, history.

    ``params`` = ``{task: <registered task>, ...TaskParams fields..., distributed: {...}, output_dir, official_checkpoint,
    keep_runs}`` (``keep_runs``: finished ``run-<key>`` directories kept under ``output_dir``, default ``DEFAULT_KEEP_RUNS``, 0 = all).
    Metrics are flat ``{"val/<metric>": x, "test/<metric>": y}`` (paper names), predictions per split.
    """
    from xfm_pipeline.jobs.resume import DEFAULT_KEEP_RUNS
    from xfm_pipeline.model.checkpoint import save_pretrained
    from xfm_pipeline.model.official import load_official_checkpoint
    from xfm_pipeline.training.launch import DistributedConfig, run_job
    from xfm_pipeline.config import from_dict

    params = dict(params)
    task = params.pop("task")
    output_dir = Path(params.pop("output_dir"))
    dist = from_dict(DistributedConfig, params.pop("distributed", {}), path="finetune.distributed")
    official = params.pop("official_checkpoint", None)
    keep_runs = int(params.pop("keep_runs", DEFAULT_KEEP_RUNS))  # run-<key> directories kept (0 = all); not in the run key
    run_dir = output_dir / "job"
    model = init.model
    if official:
        report = load_official_checkpoint(official, model)
        log.info("initialised from the official checkpoint %s: %s", official, report.summary())
    save_pretrained(model, run_dir / "init", tokenizer=init.tokenizer)
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        (data_dir / f"{key}.json").write_text(json.dumps(_plain(value)))
    config = {
        "task": task,
        "params": params,
        "init_dir": str(run_dir / "init"),
        "data_dir": str(data_dir),
        "image_root": image_root,
        "output_dir": str(output_dir / "train"),
        "keep_runs": keep_runs,
        "run_id": os.environ.get("XFM_MLFLOW_RUN_ID"),
    }
    result = run_job("xfm_pipeline.jobs.finetune:run_finetune", config, run_dir, dist)
    metrics = {f"{split}/{k}": v for split, values in result["metrics"].items() for k, v in values.items()}
    return result["checkpoint"], metrics, result["predictions"], result["history"]
