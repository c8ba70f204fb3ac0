"""Validation of sharded pretraining corpora: one unit per tar shard, shards validated in parallel processes.

A raw pretraining entry whose catalog type is :class:`~xfm_pipeline.datasets.WebDatasetShards` (our shards or
an img2dataset download) loads as a list of sources; each tar shard of its directory becomes a unit named
``<dataset>/<shard file>`` and is validated by a worker process end to end (read, decode and hash every
image member, run the format's expectation suite with GX, judge), with the same checks, fail/quarantine
policy and report entries as a JSON-lines corpus. Image members are identified by their SHA-256, so
the evaluation-image check holds on shards. A worker returns its outcome holding only the bad records
(for the quarantine file), so the main process holds no image and no valid record. Publishing writes
the valid samples of every shard as new shards (:class:`~xfm_pipeline.data.shards.ShardSamples`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xfm_pipeline.config import ConfigError
from xfm_pipeline.data.shards import Sample, ShardSamples, ShardSet, iter_shard, open_shards
from xfm_pipeline.data.validation.config import ValidationParams
from xfm_pipeline.data.validation.containers import Unit
from xfm_pipeline.data.validation.outcome import UnitOutcome, judge
from xfm_pipeline.data.validation.registry import DatasetSpec

log = logging.getLogger(__name__)

_WORKER_STATE: dict[str, Any] = {}  # evaluation index, set once per worker process


@dataclass(frozen=True)
class ShardPart:
    """The payload of a shard unit: which shard of which directory (enough to re-read its samples)."""

    shard_set: ShardSet
    shard: int


def is_shard_sources(raw: Any) -> bool:
    """Whether a raw catalog value is the source list of a shard dataset (rather than records)."""
    return isinstance(raw, list) and bool(raw) and all(isinstance(r, dict) and set(r) >= {"name", "path", "weight"} for r in raw)


def _shard_set(spec: DatasetSpec, raw: list[dict[str, Any]]) -> ShardSet:
    if len(raw) != 1:
        raise ConfigError(f"{spec.catalog_entry}: a raw corpus is one shard directory; `mixed_with` belongs to the shards pretraining reads")
    return open_shards(raw[0]["path"])


def _init_worker(evaluation_index: Mapping[str, str]) -> None:
    _WORKER_STATE["evaluation_index"] = dict(evaluation_index)


def validate_shard(spec: DatasetSpec, part: ShardPart, params: ValidationParams) -> UnitOutcome:
    """Validate one shard (in a worker process): profile, evaluation-image overlap, GX suite, verdicts."""
    from xfm_pipeline.data.validation.crosschecks import add_evaluation_overlap
    from xfm_pipeline.data.validation.formats import PRETRAIN_IMAGE_FORMATS, profile, profile_env
    from xfm_pipeline.data.validation.suites import run_checks

    start = time.perf_counter()
    source = str(part.shard_set.path(part.shard))
    samples = list(iter_shard(part.shard_set, part.shard))
    name = f"{spec.name}/{part.shard_set.shards[part.shard].file}"
    unit = Unit(
        name,
        spec,
        source,
        [s.record for s in samples],
        [f"sample {s.key}" for s in samples],
        spec.fmt,
        payload=part,
        extra={"image_members": [s.image for s in samples]},
    )
    table = profile(unit, profile_env(params, spec.name))
    if spec.fmt in PRETRAIN_IMAGE_FORMATS:
        add_evaluation_overlap(table, _WORKER_STATE.get("evaluation_index", {}))
    reasons, summaries, errors = judge(table, run_checks(table))
    bad = {i: unit.records[i] for i in reasons}
    unit.records, unit.extra = [], {}  # the main process keeps the bad records only (in the outcome)
    outcome = UnitOutcome(
        unit=name,
        dataset=spec.name,
        catalog_entry=spec.catalog_entry,
        source=source,
        suite=table.suite,
        policy=params.policy(spec.name),
        n_records=len(samples),
        locations=[f"sample {s.key}" for s in samples],
        records=bad,  # record index -> record, for the quarantine file
        reasons=reasons,
        expectations=summaries,
        dataset_errors=errors,
        data=unit,
    )
    outcome.seconds = time.perf_counter() - start
    outcome.check_invariant()
    return outcome


def validate_shards(spec: DatasetSpec, raw: list[dict[str, Any]], params: ValidationParams, evaluation_index: Mapping[str, str]) -> list[UnitOutcome]:
    """One outcome per shard of the raw shard directory of ``spec``, validated by ``params.shard_workers`` processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if not params.compare_image_content:
        raise ConfigError(f"{spec.name}: a sharded corpus is checked against evaluation images by content; set data_validation.compare_image_content: true")
    shard_set = _shard_set(spec, raw)
    parts = [ShardPart(shard_set, i) for i in range(len(shard_set.shards))]
    start = time.perf_counter()
    if params.shard_workers <= 1 or len(parts) == 1:
        _init_worker(evaluation_index)
        outcomes = [validate_shard(spec, part, params) for part in parts]
    else:
        workers = min(params.shard_workers, len(parts))
        # the platform's default start method: fork on Linux (workers inherit the imported GX), spawn elsewhere
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(), initializer=_init_worker, initargs=(dict(evaluation_index),)) as pool:
            outcomes = list(pool.map(validate_shard, [spec] * len(parts), parts, [params] * len(parts)))
    seconds = time.perf_counter() - start
    n = sum(o.n_records for o in outcomes)
    log.info(
        "%s: %d shards, %d samples, %d failed (%s) in %.1fs (%.0f samples/s)",
        spec.name,
        len(parts),
        n,
        sum(len(o.reasons) for o in outcomes),
        params.policy(spec.name),
        seconds,
        n / max(seconds, 1e-9),
    )
    return outcomes


def _valid_samples(units: Sequence[Unit], valid: Mapping[str, list[int]]) -> Iterator[Sample]:
    for unit in units:
        part: ShardPart = unit.payload
        keep = set(valid[unit.name])
        for i, sample in enumerate(iter_shard(part.shard_set, part.shard)):
            if i in keep:
                yield sample


def assemble_shards(spec: DatasetSpec, units: Sequence[Unit], valid: Mapping[str, list[int]]) -> ShardSamples:
    """The validated corpus of a sharded raw corpus: its valid samples, to be written as shards of the raw
    shards' largest size."""
    largest = max(u.payload.shard_set.shards[u.payload.shard].samples for u in units)
    count = sum(len(valid[u.name]) for u in units)
    return ShardSamples(spec.fmt.removeprefix("pretrain_"), _valid_samples(units, valid), max_samples=max(largest, 1), count=count)
