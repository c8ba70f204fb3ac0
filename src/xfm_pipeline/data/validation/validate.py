"""Validate the datasets of one task: profile, cross-check, run the GX suites, judge every record.

Entry points (what the Kedro nodes call):

* :func:`index_evaluation_images` - identities of every evaluation image (for the pretraining check);
* :func:`validate_task` - one :class:`UnitOutcome` per unit of a task's datasets (a sharded pretraining
  corpus: one per shard, validated in parallel processes by ``shards.validate_shards``);
* :func:`publish_task` - validated outputs and quarantine files of a task (invariant asserted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from xfm_pipeline.data.shards import ShardSamples
from xfm_pipeline.data.validation.config import ValidationParams
from xfm_pipeline.data.validation.containers import Unit, assemble, to_units
from xfm_pipeline.data.validation.crosschecks import (
    Profiled,
    add_caption_coverage,
    add_evaluation_overlap,
    add_split_overlap,
    evaluation_image_index,
)
from xfm_pipeline.data.validation.formats import PRETRAIN_IMAGE_FORMATS, caption_image_id, profile, profile_env
from xfm_pipeline.data.validation.outcome import DataValidationError, UnitOutcome, judge, quarantine_lines
from xfm_pipeline.data.validation.registry import DATASETS, DatasetSpec, evaluation_datasets, task_datasets
from xfm_pipeline.data.validation.shards import ShardPart, assemble_shards, is_shard_sources, validate_shards
from xfm_pipeline.data.validation.suites import run_checks
from xfm_pipeline.data.validation.table import CheckTable

log = logging.getLogger(__name__)


def _specs(raw_by_name: Mapping[str, Any], allowed: list[DatasetSpec]) -> list[DatasetSpec]:
    names = {s.name for s in allowed}
    unknown = sorted(set(raw_by_name) - names)
    if unknown:
        raise KeyError(f"datasets {unknown} do not belong here; expected some of {sorted(names)}")
    return [s for s in allowed if s.name in raw_by_name]


def _profile_all(raw_by_name: Mapping[str, Any], specs: list[DatasetSpec], params: ValidationParams) -> list[tuple[Unit, CheckTable | None, float]]:
    out = []
    for spec in specs:
        env = profile_env(params, spec.name)
        for unit in to_units(spec, raw_by_name[spec.name], params):
            start = time.perf_counter()
            table = None if unit.dataset_errors and not unit.records else profile(unit, env)
            out.append((unit, table, time.perf_counter() - start))
    return out


def index_evaluation_images(raw_by_name: Mapping[str, Any], params: ValidationParams) -> dict[str, str]:
    """Identity key of every image of every evaluation split -> first record using it.

    ``raw_by_name`` maps evaluation dataset names (``registry.evaluation_datasets()``) to raw data.
    """
    specs = _specs(raw_by_name, evaluation_datasets())
    profiled = [Profiled(u.name, t, u.locations) for u, t, _ in _profile_all(raw_by_name, specs, params) if t is not None]
    index = evaluation_image_index(profiled)
    log.info("evaluation images: %d identities from %d datasets", len(index), len(specs))
    return index


def validate_task(
    task: str,
    raw_by_name: Mapping[str, Any],
    params: ValidationParams,
    evaluation_index: Mapping[str, str] | None = None,
) -> list[UnitOutcome]:
    """Validate the given datasets of ``task`` (a subset is fine); one outcome per unit.

    Args:
        task: registry task ("pretrain", "vqa", ...).
        raw_by_name: dataset name -> what its raw catalog entry loads.
        params: validation parameters.
        evaluation_index: from :func:`index_evaluation_images`; required for "pretrain" (pass {} to
            skip the contamination check knowingly).
    """
    specs = _specs(raw_by_name, task_datasets(task))
    if task == "pretrain" and evaluation_index is None:
        raise ValueError("validating pretraining corpora needs the evaluation image index (pass {} to skip that check)")
    sharded = [s for s in specs if s.container == "jsonl_frame" and is_shard_sources(raw_by_name[s.name])]
    shard_outcomes = [o for s in sharded for o in validate_shards(s, raw_by_name[s.name], params, evaluation_index or {})]
    specs = [s for s in specs if s not in sharded]
    profiled = _profile_all(raw_by_name, specs, params)
    tables = {u.name: t for u, t, _ in profiled if t is not None}
    units = {u.name: u for u, _, _ in profiled}

    add_split_overlap([Profiled(u.name, t, u.locations) for u, t, _ in profiled if t is not None], params.split_order)
    for name, table in tables.items():
        fmt = units[name].spec.fmt
        if fmt in PRETRAIN_IMAGE_FORMATS:
            add_evaluation_overlap(table, dict(evaluation_index or {}))
        if fmt == "captioning_eval":
            gt = units.get(f"{name}_gt")
            if gt is not None and gt.extra.get("kinds") is not None:
                ids = [caption_image_id(r) for r in units[name].records]
                add_caption_coverage(table, ids, gt.name, gt.records, gt.extra["kinds"])

    outcomes = []
    for unit, table, seconds in profiled:
        start = time.perf_counter()
        outcome = UnitOutcome(
            unit=unit.name,
            dataset=unit.spec.name,
            catalog_entry=unit.spec.catalog_entry,
            source=unit.source,
            suite=table.suite if table else unit.suite,
            policy=params.policy(unit.spec.name),
            n_records=len(unit.records),
            locations=unit.locations,
            records=unit.records,
            dataset_errors=list(unit.dataset_errors),
            data=unit,
        )
        if table is not None:
            reasons, summaries, errors = judge(table, run_checks(table))
            outcome.reasons, outcome.expectations = reasons, summaries
            outcome.dataset_errors += errors
        outcome.seconds = seconds + time.perf_counter() - start
        outcome.check_invariant()
        log.info(
            "%s: %d records, %d failed (%s), %.2fs",
            unit.name,
            outcome.n_records,
            len(outcome.reasons),
            outcome.policy,
            outcome.seconds,
        )
        outcomes.append(outcome)
    return shard_outcomes + outcomes


def publish_task(task: str, outcomes: list[UnitOutcome]) -> dict[str, Any]:
    """Validated output and quarantine text of every dataset of ``outcomes``.

    Returns:
        ``{validated catalog entry: data in the raw format, "<dataset>_quarantine": JSON lines}``.

    Raises:
        DataValidationError: an outcome is blocking (the policy gate should have stopped the run).
    """
    blocking = [o.unit for o in outcomes if o.blocking]
    if blocking:
        raise DataValidationError(f"refusing to publish {task}: {blocking} failed validation under the 'fail' policy")
    out: dict[str, Any] = {}
    by_dataset: dict[str, list[UnitOutcome]] = {}
    for o in outcomes:
        by_dataset.setdefault(o.dataset, []).append(o)
    for dataset, group in by_dataset.items():
        spec = DATASETS[dataset]
        for o in group:
            o.check_invariant()
        units: list[Unit] = [o.data for o in group]
        valid = {o.unit: o.valid_indices for o in group}
        output = assemble_shards(spec, units, valid) if isinstance(units[0].payload, ShardPart) else assemble(spec, units, valid)
        quarantine = quarantine_lines(group)
        # Counted from what is written: published records + quarantine lines must be the input records.
        n_out, n_quarantined = _count(spec, output, units), quarantine.count("\n")
        n_in = sum(o.n_records for o in group)
        if n_out + n_quarantined != n_in:
            raise AssertionError(f"{dataset}: {n_out} published + {n_quarantined} quarantined != {n_in} input records")
        out[spec.validated_entry] = output
        out[f"{dataset}_quarantine"] = quarantine
    return out


def _count(spec: DatasetSpec, output: Any, units: list[Unit]) -> int:
    """Records in a validated output, counted from the output itself (shards: the valid samples that will be
    written, which are only read while the catalog writes them)."""
    if isinstance(output, ShardSamples):
        return output.count
    if spec.container == "coco_gt":
        return len(output["images"]) + len(output["annotations"])
    if spec.container == "glue":
        headers = {u.name.removeprefix("glue/"): u.payload.header_raw is not None for u in units}
        return sum(text.count("\n") - headers[partition] for partition, text in output.items())
    return len(output)
