"""Nodes of the ``ablation`` pipeline: one fine-tune per (row, start) repeated over seeds, then the table.

A row is a registered fine-tune pipeline (``finetune_vqa`` ...); a start is a catalog checkpoint. Each seed
fine-tunes with the pipeline's own parameters (budget, options) and only ``loop.seed`` and the run directory
changed, in a run directory of its own under ``params:ablation.output_dir`` that is deleted once its metrics
are read: the ablation keeps numbers, not weights (72 tiny-preset runs would hold ~9 GB). Each (row, start)
writes its metrics to its own file (catalog ``ablation.{run}``), so an interrupted or partial ablation
(``--nodes``) keeps what it finished and the table is made from whatever has run.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

from xfm_pipeline.config import merge

log = logging.getLogger(__name__)


def seed_values(ablation: dict[str, Any], count: int, row: str) -> list[int]:
    """The first ``count`` of ``ablation["seeds"]``.

    Raises:
        ValueError: fewer seeds configured than the row needs (naming ``ablation.seeds`` and the row).
    """
    seeds = list(ablation.get("seeds") or [])
    if len(seeds) < count:
        raise ValueError(f"ablation.seeds: {row} runs {count} seeds, {len(seeds)} configured ({seeds})")
    return [int(s) for s in seeds[:count]]


def finetune_from_start(init: str, image_root: str, ablation: dict[str, Any], *, row: str, start: str, seeds: int, **inputs: Any) -> dict[str, Any]:
    """Fine-tune pipeline ``row`` from checkpoint ``init`` (start ``start``) once per seed.

    ``inputs`` are the row's parameter layers ``params_0..params_n`` and its validated data, as the fine-tune
    node takes them; the last layer gets ``loop.seed`` and ``output_dir`` set for each seed.

    Returns:
        ``{"row", "start", "seeds": [...], "runs": [flat metrics of each seed]}``
    """
    from xfm_pipeline.pipelines.finetune.nodes import finetune
    from xfm_pipeline.tasks.registry import get_pipeline

    last = f"params_{len(get_pipeline(row)[1].param_layers()) - 1}"
    values, runs = seed_values(ablation, seeds, row), []
    for seed in values:
        output_dir = Path(ablation["output_dir"]) / row / start / f"seed{seed}"
        layers = dict(inputs, **{last: merge(inputs[last] or {}, {"loop": {"seed": seed}, "output_dir": str(output_dir), "keep_runs": 1})})
        log.info("ablation %s from %s, seed %d", row, start, seed)
        _, metrics, _, _ = finetune(init, image_root, None, pipeline=row, **layers)
        runs.append(metrics)
        shutil.rmtree(output_dir, ignore_errors=True)
    return {"row": row, "start": start, "seeds": values, "runs": runs}


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


WARMUP, PRETRAINED, INITIAL = "pretrain_vision", "pretrain", "init"  # the starts the gains compare


def summarise(**runs: dict[str, Any] | None) -> dict[str, Any]:
    """The ablation table from the runs of :func:`finetune_from_start` (any keyword names); a ``None`` (a run
    file not written yet: ``kedro run --pipeline ablation --nodes ...`` ran a subset) is listed under ``not_run``.

    Each row's headline metric (its task's checkpoint-selection metric on the test split, or validation where a
    task has no test split (GLUE), in percent like the results table) per start: the values of every seed, their mean and sample standard deviation; the row's gains are
    ``mean(pretrain) - mean(init)`` and ``mean(pretrain) - mean(pretrain_vision)`` (None without those starts).

    Raises:
        KeyError: a run lacks its row's headline metric (the message names row, start and seed).
    """
    from xfm_pipeline.reporting.headline import headline
    from xfm_pipeline.tasks.registry import get_pipeline

    results = [run for run in runs.values() if run is not None]
    tasks: dict[str, dict[str, Any]] = {}
    for result in results:
        row, start = result["row"], result["start"]
        spec = get_pipeline(row)[0]
        values, names = [], set()
        for seed, metrics in zip(result["seeds"], result["runs"]):
            found = headline(spec.headline_metric, metrics, fraction=spec.fraction)
            if found is None:
                raise KeyError(f"ablation {row} from {start}, seed {seed}: no {spec.headline_metric!r} in {sorted(metrics)}")
            names.add(found[0])
            values.append(round(found[1], 4))
        mean, std = _mean_std(values)
        entry = tasks.setdefault(row, {"pipeline": row, "task": spec.name, "metric": min(names), "higher_is_better": True, "starts": {}})
        entry["starts"][start] = {"seeds": result["seeds"], "values": values, "mean": round(mean, 4), "std": round(std, 4)}
    for entry in tasks.values():
        starts = entry["starts"]

        def gain(over: str, starts=starts) -> float | None:
            return round(starts[PRETRAINED]["mean"] - starts[over]["mean"], 4) if PRETRAINED in starts and over in starts else None

        entry["gain_over_init"], entry["gain_over_warmup"] = gain(INITIAL), gain(WARMUP)
    seeds = sorted({s for r in results for s in r["seeds"]})
    not_run = sorted(name for name, run in runs.items() if run is None)
    budget = "each row's own fine-tune parameters (conf/<env>/parameters_finetune.yml)"
    return {"tasks": list(tasks.values()), "seeds": seeds, "budget": budget, "not_run": not_run}
