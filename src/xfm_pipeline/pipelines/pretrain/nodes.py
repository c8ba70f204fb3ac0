"""Nodes of the pretrain_shards pipeline (validated corpora -> WebDataset shards) and of the
pretrain_vision, pretrain and pretrain_bbox pipelines (one job, three parameter blocks)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class ShardParams:
    """``params:pretrain_shards``: the size of the shards the validated corpora are written as."""

    max_samples: int = 10000  # samples per shard at most
    max_bytes: float = 1.0e9  # a shard is closed once it reaches this many bytes
    min_shards: int = 4  # shards at least (smaller shards for small corpora): every stream lane needs one


def write_pretrain_shards(corpus: str, validated: Any, params: dict[str, Any], validation: dict[str, Any]) -> Any:
    """The validated pretraining corpus ``corpus`` as WebDataset shard samples (the catalog writes them).

    Args:
        corpus: image_text | region_text | image_only | text_only.
        validated: what its validated catalog entry loads: records (a DataFrame of JSON lines, whose
            ``image`` paths are read under the validation image root of the corpus) or the sources of a
            shard directory (validated shards, re-written here).
        params: ``params:pretrain_shards`` (:class:`ShardParams`).
        validation: ``params:data_validation`` (the image root the records' paths were validated under).

    Returns:
        :class:`~xfm_pipeline.data.shards.ShardSamples` of at most ``max_samples`` samples a shard and at
        least ``min_shards`` shards (fewer only when the corpus has fewer samples).
    """
    from xfm_pipeline.config import from_dict
    from xfm_pipeline.data.formats.common import as_objects
    from xfm_pipeline.data.shards import ShardSamples, iter_samples, open_shards, samples_from_records
    from xfm_pipeline.data.validation import ValidationParams
    from xfm_pipeline.data.validation.shards import is_shard_sources

    p = from_dict(ShardParams, params, path="pretrain_shards")
    if p.max_samples < 1 or p.min_shards < 1 or p.max_bytes <= 0:
        raise ValueError(f"pretrain_shards: max_samples and min_shards must be >= 1 and max_bytes > 0, got {p}")
    if is_shard_sources(validated):  # a shard directory (its own sources only; mixed_with ones are not re-written)
        shard_set = open_shards(validated[0]["path"])
        total, samples = shard_set.samples, iter_samples(shard_set)
    else:
        records = as_objects(validated, f"pretrain_{corpus}_jsonl_validated")
        root = from_dict(ValidationParams, validation, path="data_validation").image_root_of(f"pretrain_{corpus}")
        total, samples = len(records), samples_from_records(records, root, f"pretrain_{corpus}_jsonl_validated")
    per_shard = max(1, min(p.max_samples, math.ceil(total / p.min_shards)))
    log.info("pretrain_%s: %d samples -> shards of at most %d samples", corpus, total, per_shard)
    return ShardSamples(corpus, samples, per_shard, p.max_bytes)


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
    resumes from the newest valid checkpoint in ``output_dir`` if one exists. On a node other than 0 of a
    multi-node job the node returns three ``training.launch.OnNodeZero`` markers (node 0 saves the outputs).

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
    """Run the stage's warm-up phase (``warmup``, if set) and then the stage from the phase's checkpoint.

    With a warm-up, the metrics gain ``"warmup"`` (the phase's own step, resume and loss summary) and the
    history starts with the phase's rows, every loss key prefixed ``warmup/`` (as in MLflow).
    """
    from xfm_pipeline.config import from_dict
    from xfm_pipeline.jobs.pretrain import WARMUP_PREFIX, PretrainParams, warmup_params
    from xfm_pipeline.training.launch import DistributedConfig
    from xfm_pipeline.training.loop import LoopConfig

    p = from_dict(PretrainParams, params, path=stage)
    main = {k: v for k, v in params.items() if k != "warmup"}
    if p.warmup is None:
        return _run_phase(stage, stage, init, main, image_root, run_id, corpora)
    warm = warmup_params(params, stage)
    for phase, block in ((f"{stage}.warmup", warm), (stage, main)):  # both phases' loops, before either runs
        from_dict(LoopConfig, block.get("loop"), path=f"{phase}.loop")
    if from_dict(DistributedConfig, p.distributed, path=f"{stage}.distributed").nnodes > 1:
        raise ValueError(f"{stage}.warmup runs on one node only (distributed.nnodes is {p.distributed['nnodes']}): "
                         f"set {stage}.warmup: null (the other nodes cannot know the phase's checkpoint)")  # fmt: skip
    log.info("%s: warm-up phase first (%s), then the stage from its checkpoint", stage, warm["output_dir"])
    warm_checkpoint, warm_metrics, warm_history = _run_phase(stage, f"{stage}.warmup", init, warm, image_root, run_id, corpora, WARMUP_PREFIX)
    checkpoint, metrics, history = _run_phase(stage, stage, warm_checkpoint, main, image_root, run_id, corpora)
    prefixed = [{(WARMUP_PREFIX + k if k != "step" else k): v for k, v in row.items()} for row in warm_history]
    return checkpoint, {**metrics, "warmup": warm_metrics}, prefixed + history


def _run_phase(stage: str, phase: str, init: str, params: dict[str, Any], image_root: str, run_id: str | None, corpora: dict[str, Any], log_prefix: str = ""):
    """One pretraining job (``phase``: the stage or its warm-up) -> (final checkpoint, metrics, history)."""
    from xfm_pipeline.config import from_dict
    from xfm_pipeline.data.validation.shards import is_shard_sources
    from xfm_pipeline.datasets.records import records_to_jsonl
    from xfm_pipeline.jobs.pretrain import PretrainParams, describe, loss_summary
    from xfm_pipeline.training.launch import DistributedConfig, OnNodeZero, job_directory, run_job
    from xfm_pipeline.training.loop import LoopConfig

    p = from_dict(PretrainParams, params, path=phase)
    dist = from_dict(DistributedConfig, p.distributed, path=f"{phase}.distributed")
    loop = from_dict(LoopConfig, p.loop, path=f"{phase}.loop")  # validated here, before anything is launched
    if loop.max_steps == 0:
        log.info("%s: loop.max_steps is 0, the init checkpoint passes through unchanged", phase)
        return init, {"step": 0, "resumed_from": None, "losses": {}}, []
    with job_directory(Path(p.output_dir) / "job", dist) as job_dir:
        sources = {}
        for name in p.streams():  # shard sources pass as paths; records (a JSON catalog type) as a JSON-lines file
            corpus = corpora[name]
            if is_shard_sources(corpus):
                sources[name] = corpus
            else:
                sources[name] = [{"name": f"pretrain_{name}", "path": str(records_to_jsonl(corpus, job_dir / "records" / f"{name}.jsonl"))}]
        config = {
            "stage": stage,
            "params": describe(p),
            "init_dir": str(init),
            "corpora": sources,
            "image_root": image_root,
            "run_id": run_id,
            "log_prefix": log_prefix,
        }
        result = run_job("xfm_pipeline.jobs.pretrain:run_pretraining", config, job_dir, dist)
    if result is None:
        log.info("%s: node %d is done; rank 0 on node 0 wrote the run under %s, node 0's kedro run saves the outputs", phase, dist.node_rank, p.output_dir)
        return (OnNodeZero(dist.node_rank, p.output_dir),) * 3
    metrics = {"step": result["step"], "resumed_from": result["resumed_from"], "losses": loss_summary(result["history"])}
    for key, value in metrics["losses"].items():
        log.info("%s %s: first-50 mean %.4f -> last-50 mean %.4f", phase, key, value["first"], value["last"])
    return result["final_checkpoint"], metrics, result["history"]
