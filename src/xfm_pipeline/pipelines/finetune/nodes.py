"""The fine-tune node shared by every task pipeline."""

from __future__ import annotations

import json
import logging
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


def finetune(init: str, image_root: str, run_id: str | None, *, pipeline: str, **inputs: Any):
    """Fine-tune (or only evaluate) the task of ``pipeline`` from the checkpoint directory ``init``.

    ``inputs`` holds the pipeline's parameter layers ``params_0..params_n`` (``finetune_defaults``, its
    groups, its own block: ``TaskPipeline.param_layers``) and its validated data by task data key. The
    merged parameters are validated here, before anything is launched (``jobs.finetune.resolve_params``).
    ``run_id`` is the node's MLflow run (None when tracking is off). ``image_root`` (``params:image_root``) is the
    root of image paths unless the pipeline's block sets its own ``image_root`` (one root per source).

    Returns:
        (selected checkpoint directory, flat metrics ``{"val/<metric>": x, "test/<metric>": y}``,
        predictions per split, training history); on a node other than 0 of a multi-node job four
        ``training.launch.OnNodeZero`` markers (node 0 saves the outputs).
    """
    from xfm_pipeline.config import to_dict
    from xfm_pipeline.jobs.finetune import default_output_dir, resolve_params
    from xfm_pipeline.tasks.registry import get_pipeline
    from xfm_pipeline.training.launch import OnNodeZero, job_directory, run_job

    spec, task_pipeline = get_pipeline(pipeline)
    blocks = [inputs.pop(f"params_{i}") for i in range(len(task_pipeline.param_layers()))]
    params = resolve_params(pipeline, spec.task, blocks)
    output_dir = Path(params.output_dir or default_output_dir(pipeline))
    runs, dist = output_dir / "train", params.distributed
    with job_directory(output_dir / "job", dist) as job_dir:
        data_dir = job_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        for key, value in inputs.items():
            (data_dir / f"{key}.json").write_text(json.dumps(_plain(value)))
        config = {
            "task": spec.name,
            "params": to_dict(params.task_params()),
            "init_dir": str(init),
            "official_checkpoint": params.official_checkpoint,
            "data_dir": str(data_dir),
            "image_root": params.image_root or image_root,
            "output_dir": str(runs),
            "keep_runs": params.keep_runs,
            "run_id": run_id,
        }
        result = run_job("xfm_pipeline.jobs.finetune:run_finetune", config, job_dir, dist)
    if result is None:
        log.info("%s: node %d is done; rank 0 on node 0 wrote the run under %s, node 0's kedro run saves the outputs", pipeline, dist.node_rank, runs)
        return (OnNodeZero(dist.node_rank, str(runs)),) * 4
    metrics = {f"{split}/{k}": v for split, values in result["metrics"].items() for k, v in values.items()}
    return result["checkpoint"], metrics, result["predictions"], result["history"]
