"""Nodes of the data_ingestion pipeline: build the shapes world, then hand each dataset to the catalog.

The work happens in :mod:`xfm_pipeline.data.shapes_world`; these functions only pick the parts of the
world that each raw catalog entry stores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xfm_pipeline.config import from_dict
from xfm_pipeline.data.shapes_world.config import ShapesWorldConfig

if TYPE_CHECKING:
    import pandas as pd

    from xfm_pipeline.data.shapes_world import ShapesWorld

log = logging.getLogger(__name__)

SOURCES = ("shapes_world", "real")


@dataclass
class DataIngestionParams:
    """``params:data_ingestion``."""

    source: str = "shapes_world"  # shapes_world: generate the raw layer | real: your copies are the raw layer
    shapes_world: ShapesWorldConfig = field(default_factory=ShapesWorldConfig)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"data_ingestion.source must be one of {SOURCES}, got {self.source!r}")


class RealSourceError(RuntimeError):
    """``source: real`` was selected but the ingestion pipeline (which writes the raw layer) was run."""


def generate_shapes_world(params: dict[str, Any]) -> ShapesWorld:
    """Build the shapes world described by ``params:data_ingestion`` (images are rendered on save).

    Raises:
        RealSourceError: ``source`` is ``real``: every output of this pipeline is a raw catalog entry, so
            running it would overwrite the real datasets those entries point at.
    """
    import time

    from xfm_pipeline.data.shapes_world import generate_shapes_world as generate

    p = from_dict(DataIngestionParams, params, path="data_ingestion")
    if p.source == "real":
        raise RealSourceError(
            "data_ingestion.source is 'real': the raw catalog entries point at your datasets and this pipeline "
            "would overwrite them. Skip it and run the downstream pipelines, e.g. "
            "`kedro run --pipelines data_validation` (see docs/real_datasets.md)."
        )
    start = time.perf_counter()
    world = generate(p.shapes_world)
    base = world.metadata["baselines"]
    log.info(
        "shapes world (seed %d, %d px): %d images + %d ImageNet images, %d VQA / %d NLVR2 / %d grounding records in %.1f s; "
        "text-only VQA priors %.1f%% (answer type) / %.1f%% (question lookup), NLVR2 %.1f%% (majority) / %.1f%% (statement lookup) on test",
        p.shapes_world.seed,
        p.shapes_world.image_size,
        sum(len(v) for v in world.scenes.values()),
        sum(len(v) for v in world.imagenet.values()),
        sum(len(world.json_files[f"vqa/{s}"]) for s in ("train", "val", "test")),
        sum(len(world.json_files[f"nlvr/{s}"]) for s in ("train", "dev", "test")),
        len(world.json_files["grounding/refcoco+"]),
        time.perf_counter() - start,
        100 * base["vqa_text_prior_test"]["overall"],
        100 * base["vqa_question_prior_test"]["overall"],
        100 * base["nlvr_majority_test"],
        100 * base["nlvr_statement_prior_test"],
    )
    return world


def export_images(world: ShapesWorld) -> dict[str, Any]:
    """``shapes_world_images``: ``{"train/000123": lazy image}`` (rendered while the catalog saves)."""
    return world.image_partitions()


def export_imagenet(world: ShapesWorld) -> dict[str, Any]:
    """``imagenet_raw``: ``{"train/<class>/000123": lazy image}``."""
    return world.imagenet_partitions()


def export_pretraining_corpora(world: ShapesWorld) -> dict[str, pd.DataFrame]:
    """The four JSON-lines corpora as DataFrames (absent fields are null cells), keyed by corpus name."""
    import pandas as pd

    return {corpus: pd.DataFrame.from_records(records) for corpus, records in world.pretrain.items()}


def export_retrieval(world: ShapesWorld) -> tuple[list, list, list]:
    """``retrieval/{train,val,test}.json``."""
    return tuple(world.json_files[f"retrieval/{s}"] for s in ("train", "val", "test"))  # type: ignore[return-value]


def export_vqa(world: ShapesWorld) -> tuple[list, list, list, list]:
    """``vqa/{train,val,test,answer_list}.json``."""
    return tuple(world.json_files[f"vqa/{s}"] for s in ("train", "val", "test", "answer_list"))  # type: ignore[return-value]


def export_nlvr(world: ShapesWorld) -> tuple[list, list, list]:
    """``nlvr/{train,dev,test}.json``."""
    return tuple(world.json_files[f"nlvr/{s}"] for s in ("train", "dev", "test"))  # type: ignore[return-value]


def export_grounding(world: ShapesWorld) -> list:
    """``grounding/refcoco+.json`` (all four splits in one file)."""
    return world.json_files["grounding/refcoco+"]


def export_captioning(world: ShapesWorld) -> tuple[list, list, list, dict, dict]:
    """``captioning/{train,val,test}.json`` and the COCO-format ``{val,test}_gt.json``."""
    return tuple(world.json_files[f"captioning/{s}"] for s in ("train", "val", "test", "val_gt", "test_gt"))  # type: ignore[return-value]


def export_glue(world: ShapesWorld) -> dict[str, str]:
    """``glue_raw``: ``{"CoLA/train": tsv text, "MNLI/dev_matched": ..., ...}``."""
    return dict(world.glue)


def describe_shapes_world(world: ShapesWorld) -> dict[str, Any]:
    """``shapes_world_metadata``: the generator parameters, seed, counts and input-blind baselines."""
    return world.metadata
