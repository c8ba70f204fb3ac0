"""Nodes of the pretrain_vision, pretrain and pretrain_bbox pipelines (one job, three parameter blocks)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def pretrain_vision(init, params: dict[str, Any], image_root: str, **corpora):
    """Warm up the vision encoder from the ``init`` checkpoint (``params:pretrain_vision``).

    X-FM starts from a pretrained BEiT-v2; offline, this stage gives the randomly initialised vision
    encoder language-aligned patch features first: region-text ITC against the frozen pretrained text
    encoder (whose states are cached), nothing else. ``loop.max_steps: 0`` passes ``init`` through
    unchanged (e.g. for an imported official checkpoint, whose vision encoder is already trained).

    Returns:
        (warmed-up Checkpoint, metrics, per-step history), as :func:`pretrain`.
    """
    return _run_stage("pretrain_vision", init, params, image_root, corpora)


def pretrain(init, params: dict[str, Any], image_root: str, **corpora):
    """Run X-FM pretraining from the ``init`` checkpoint on the validated corpora.

    With ``distributed.nproc_per_node`` (x ``nnodes``) > 1 the job is launched under torchrun; every rank
    resumes from the newest valid checkpoint in ``output_dir`` if one exists.

    Returns:
        (final Checkpoint, metrics with first/last 50-step loss means, per-step history)
    """
    return _run_stage("pretrain", init, params, image_root, corpora)


def pretrain_bbox(init, params: dict[str, Any], image_root: str, **corpora):
    """Region-data box pretraining from the pretrained ``init`` checkpoint (``params:pretrain_bbox``).

    X-FM's bbox domain pretraining before grounding: box prediction alone on the region-text corpus.
    Here it trains the fusion encoder and the pointer box head with frozen encoders, which teaches the
    fusion encoder's cross-attention to pick out the patches a phrase names (after the short ``pretrain``
    stage it attends uniformly). Grounding and NLVR2 start from its checkpoint.

    Returns:
        (Checkpoint, metrics, per-step history), as :func:`pretrain`.
    """
    return _run_stage("pretrain_bbox", init, params, image_root, corpora)


def _run_stage(stage: str, init, params: dict[str, Any], image_root: str, corpora: dict[str, Any]):
    from xfm_pipeline.config import from_dict
    from xfm_pipeline.datasets.records import records_to_jsonl
    from xfm_pipeline.jobs.pretrain import PretrainParams, describe, loss_summary
    from xfm_pipeline.model.checkpoint import Checkpoint, load_checkpoint_tokenizer, load_pretrained, save_pretrained
    from xfm_pipeline.training.launch import DistributedConfig, run_job

    p = from_dict(PretrainParams, params, path=stage)
    dist = from_dict(DistributedConfig, p.distributed, path=f"{stage}.distributed")
    if p.loop.get("max_steps") == 0:
        log.info("%s: loop.max_steps is 0, the init checkpoint passes through unchanged", stage)
        return Checkpoint(model=init.model, tokenizer=init.tokenizer, extra={**init.extra, "stage": stage, "step": 0}), {"step": 0, "resumed_from": None, "losses": {}}, []
    run_dir = Path(p.output_dir) / "job"
    init_dir = run_dir / "init"
    save_pretrained(init.model, init_dir, tokenizer=init.tokenizer, extra=init.extra)
    for name in p.streams():
        records_to_jsonl(corpora[name], run_dir / "records" / f"{name}.jsonl")
    config = {
        "stage": stage,
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
        log.info("%s %s: first-50 mean %.4f -> last-50 mean %.4f", stage, key, value["first"], value["last"])
    checkpoint = Checkpoint(model=model, tokenizer=load_checkpoint_tokenizer(final), extra={"stage": stage, "step": result["step"]})
    return checkpoint, metrics, result["history"]
