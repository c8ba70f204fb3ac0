"""Nodes of the pretrain_vision, pretrain and pretrain_bbox pipelines (one job, three parameter blocks)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def pretrain_vision(init: str, params: dict[str, Any], image_root: str, run_id: str | None, **corpora):
    """Warm up the vision encoder from the ``init`` checkpoint (``params:pretrain_vision``).

    X-FM starts from a pretrained BEiT-v2; offline, this stage gives the randomly initialised vision
    encoder language-aligned patch features first: region-text ITC against the frozen pretrained text
    encoder (whose states are cached), nothing else. ``loop.max_steps: 0`` passes ``init`` through
    unchanged (e.g. for an imported official checkpoint, whose vision encoder is already trained).

    Returns:
        (warmed-up checkpoint directory, metrics, per-step history), as :func:`pretrain`.
    """
    return _run_stage("pretrain_vision", init, params, image_root, run_id, corpora)


def pretrain(init: str, params: dict[str, Any], image_root: str, run_id: str | None, **corpora):
    """Run X-FM pretraining from the ``init`` checkpoint on the validated corpora.

    With ``distributed.nproc_per_node`` (x ``nnodes``) > 1 the job is launched under torchrun; every rank
    resumes from the newest valid checkpoint in ``output_dir`` if one exists.

    ``init`` is the starting checkpoint's directory and ``run_id`` the node's MLflow run (None when
    tracking is off); the returned directory is the run's final checkpoint, which the catalog copies once.

    Returns:
        (final checkpoint directory, metrics with first/last 50-step loss means, per-step history)
    """
    return _run_stage("pretrain", init, params, image_root, run_id, corpora)


def pretrain_bbox(init: str, params: dict[str, Any], image_root: str, run_id: str | None, **corpora):
    """Region-data box pretraining from the pretrained ``init`` checkpoint (``params:pretrain_bbox``).

    X-FM's bbox domain pretraining before grounding: box prediction alone on the region-text corpus.
    Here it trains the fusion encoder and the pointer box head with frozen encoders, which teaches the
    fusion encoder's cross-attention to pick out the patches a phrase names (after the short ``pretrain``
    stage it attends uniformly). Grounding and NLVR2 start from its checkpoint.

    Returns:
        (checkpoint directory, metrics, per-step history), as :func:`pretrain`.
    """
    return _run_stage("pretrain_bbox", init, params, image_root, run_id, corpora)


def _run_stage(stage: str, init: str, params: dict[str, Any], image_root: str, run_id: str | None, corpora: dict[str, Any]):
    from xfm_pipeline.config import from_dict
    from xfm_pipeline.datasets.records import records_to_jsonl
    from xfm_pipeline.jobs.pretrain import PretrainParams, describe, loss_summary
    from xfm_pipeline.training.launch import DistributedConfig, run_job
    from xfm_pipeline.training.loop import LoopConfig

    p = from_dict(PretrainParams, params, path=stage)
    dist = from_dict(DistributedConfig, p.distributed, path=f"{stage}.distributed")
    loop = from_dict(LoopConfig, p.loop, path=f"{stage}.loop")  # validated here, before anything is launched
    if loop.max_steps == 0:
        log.info("%s: loop.max_steps is 0, the init checkpoint passes through unchanged", stage)
        return init, {"step": 0, "resumed_from": None, "losses": {}}, []
    run_dir = Path(p.output_dir) / "job"
    for name in p.streams():
        records_to_jsonl(corpora[name], run_dir / "records" / f"{name}.jsonl")
    config = {
        "stage": stage,
        "params": describe(p),
        "init_dir": str(init),
        "records_dir": str(run_dir / "records"),
        "image_root": image_root,
        "run_id": run_id,
    }
    result = run_job("xfm_pipeline.jobs.pretrain:run_pretraining", config, run_dir, dist)
    metrics = {"step": result["step"], "resumed_from": result["resumed_from"], "losses": loss_summary(result["history"])}
    for key, value in metrics["losses"].items():
        log.info("%s %s: first-50 mean %.4f -> last-50 mean %.4f", stage, key, value["first"], value["last"])
    return result["final_checkpoint"], metrics, result["history"]
