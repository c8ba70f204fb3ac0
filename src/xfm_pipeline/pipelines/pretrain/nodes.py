"""Nodes of the pretrain pipeline."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def pretrain(init, params: dict[str, Any], image_root: str, **corpora):
    """Run X-FM pretraining from the ``init`` checkpoint on the validated corpora.

    With ``distributed.nproc_per_node`` (x ``nnodes``) > 1 the job is launched under torchrun; every rank
    resumes from the newest valid checkpoint in ``output_dir`` if one exists.

    Returns:
        (final Checkpoint, metrics with first/last 50-step loss means, per-step history)
    """
    from xfm_pipeline.config import from_dict
    from xfm_pipeline.datasets.records import records_to_jsonl
    from xfm_pipeline.jobs.pretrain import PretrainParams, describe, loss_summary
    from xfm_pipeline.model.checkpoint import Checkpoint, load_checkpoint_tokenizer, load_pretrained, save_pretrained
    from xfm_pipeline.training.launch import DistributedConfig, run_job

    p = from_dict(PretrainParams, params, path="pretrain")
    dist = from_dict(DistributedConfig, p.distributed, path="pretrain.distributed")
    run_dir = Path(p.output_dir) / "job"
    init_dir = run_dir / "init"
    save_pretrained(init.model, init_dir, tokenizer=init.tokenizer, extra=init.extra)
    for name in p.streams():
        records_to_jsonl(corpora[name], run_dir / "records" / f"{name}.jsonl")
    config = {
        "params": describe(p),
        "init_dir": str(init_dir),
        "records_dir": str(run_dir / "records"),
        "image_root": image_root,
        "run_id": os.environ.get("XFM_MLFLOW_RUN_ID"),
    }
    result = run_job("xfm_pipeline.jobs.pretrain:run_pretraining", config, run_dir, dist)
    final = result["final_checkpoint"]
    model = load_pretrained(final)
    metrics = {"step": result["step"], "resumed_from": result["resumed_from"], "losses": loss_summary(result["history"])}
    for key, value in metrics["losses"].items():
        log.info("%s: first-50 mean %.4f -> last-50 mean %.4f", key, value["first"], value["last"])
    checkpoint = Checkpoint(model=model, tokenizer=load_checkpoint_tokenizer(final), extra={"stage": "pretrain", "step": result["step"]})
    return checkpoint, metrics, result["history"]
