"""From what a raw catalog entry loads to validation units, and from valid records back to that format.

A *unit* is what one expectation suite validates: a whole JSON file, a JSON-lines corpus, the
entries of a COCO ground-truth file, one GLUE TSV partition, an ImageFolder listing. The validated
output of a dataset has the raw format with only the valid records, so readers serve both layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xfm_pipeline.data.validation.config import ValidationParams
from xfm_pipeline.data.validation.glue import GlueFile, parse_glue, render_glue
from xfm_pipeline.data.validation.registry import DatasetSpec


class DatasetStructureError(ValueError):
    """A raw dataset is not even a container of records (e.g. a JSON object where a list belongs)."""


@dataclass
class Unit:
    """Records of one dataset (or one GLUE partition) ready to be profiled."""

    name: str  # "vqa_train", "glue/CoLA/train"
    spec: DatasetSpec
    source: str  # file or folder, for messages
    records: list[Any]  # as written to quarantine files
    locations: list[str]  # where each record is, for messages: "[5]", "line 18", "annotations[2]", a file
    suite: str  # format of the expectation suite: "vqa", "glue_CoLA", ...
    payload: Any = None  # what rebuilding the validated output needs (frame, COCO dict, GlueFile)
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific inputs of the profile
    dataset_errors: list[str] = field(default_factory=list)  # problems no record can be blamed for


def _json_list(spec: DatasetSpec, raw: Any, source: str) -> list[Unit]:
    if not isinstance(raw, list):
        raise DatasetStructureError(f"expected a JSON list of records, got {type(raw).__name__}")
    return [Unit(spec.name, spec, source, raw, [f"[{i}]" for i in range(len(raw))], spec.fmt, payload=raw)]


def _row_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A JSON-lines record from a DataFrame row: absent keys (NaN/None fill) are dropped."""
    out = {}
    for key, value in row.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        out[key] = value.item() if hasattr(value, "item") and not hasattr(value, "__len__") else value
    return out


def _jsonl_frame(spec: DatasetSpec, raw: Any, source: str) -> list[Unit]:
    import pandas as pd

    if not isinstance(raw, pd.DataFrame):
        raise DatasetStructureError(f"expected a pandas DataFrame of JSON lines, got {type(raw).__name__}")
    frame = raw.reset_index(drop=True)
    records = [_row_dict(row) for row in frame.to_dict(orient="records")]
    locations = [f"line {i + 1}" for i in range(len(records))]
    return [Unit(spec.name, spec, source, records, locations, spec.fmt, payload=frame)]


def _coco_gt(spec: DatasetSpec, raw: Any, source: str) -> list[Unit]:
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), list) for k in ("images", "annotations")):
        raise DatasetStructureError("expected a COCO caption object with 'images' and 'annotations' lists")
    images, annotations = raw["images"], raw["annotations"]
    records = list(images) + list(annotations)
    kinds = ["image"] * len(images) + ["annotation"] * len(annotations)
    locations = [f"images[{i}]" for i in range(len(images))] + [f"annotations[{i}]" for i in range(len(annotations))]
    return [Unit(spec.name, spec, source, records, locations, spec.fmt, payload=raw, extra={"kinds": kinds})]


def _glue(spec: DatasetSpec, raw: Any, source: str) -> list[Unit]:
    if not isinstance(raw, dict) or not raw:
        raise DatasetStructureError("expected GLUE partitions {'<TASK>/<split>': TSV text}, got none")
    units = []
    for partition in sorted(raw):
        text = raw[partition]
        text = text() if callable(text) else text
        where = f"{source}/{partition}.tsv"
        parsed = parse_glue(partition, text)
        records = [row.record for row in parsed.rows]
        locations = [f"line {row.line}" for row in parsed.rows]
        units.append(
            Unit(
                f"glue/{partition}",
                spec,
                where,
                records,
                locations,
                f"glue_{parsed.layout.task}",
                payload=parsed,
                extra={"glue": parsed},
                dataset_errors=list(parsed.errors),
            )
        )
    return units


def _imagefolder(spec: DatasetSpec, raw: Any, source: str, suffix: str) -> list[Unit]:
    if not isinstance(raw, dict) or not raw:
        raise DatasetStructureError("expected ImageFolder partitions {'<split>/<class>/<id>': image}, got none")
    records = []
    for key in sorted(raw):
        parts = key.split("/")
        records.append(
            {
                "image": f"{key}{suffix}",
                "label": parts[1] if len(parts) == 3 else None,
                "split": parts[0] if len(parts) == 3 else None,
            }
        )
    return [Unit(spec.name, spec, source, records, [r["image"] for r in records], spec.fmt, payload=None)]


def to_units(spec: DatasetSpec, raw: Any, params: ValidationParams) -> list[Unit]:
    """Turn a loaded raw dataset into validation units (a structure error becomes a dataset error)."""
    source = params.source_of(spec.name)
    readers: dict[str, Callable[..., list[Unit]]] = {
        "json_list": _json_list,
        "jsonl_frame": _jsonl_frame,
        "coco_gt": _coco_gt,
        "glue": _glue,
    }
    try:
        if spec.container == "imagefolder":
            return _imagefolder(spec, raw, source, params.imagenet_suffix)
        return readers[spec.container](spec, raw, source)
    except DatasetStructureError as exc:
        return [Unit(spec.name, spec, source, [], [], spec.fmt, dataset_errors=[str(exc)])]


def assemble(spec: DatasetSpec, units: Sequence[Unit], valid: dict[str, list[int]]) -> Any:
    """The validated output of ``spec``: its raw format holding only the records at ``valid[unit]``."""
    if spec.container == "json_list":
        (unit,) = units
        return [unit.records[i] for i in valid[unit.name]]
    if spec.container == "jsonl_frame":
        (unit,) = units
        return unit.payload.iloc[valid[unit.name]].reset_index(drop=True)
    if spec.container == "coco_gt":
        (unit,) = units
        keep = set(valid[unit.name])
        kinds = unit.extra["kinds"]
        out = {k: v for k, v in unit.payload.items() if k not in ("images", "annotations")}
        out["images"] = [r for i, (r, k) in enumerate(zip(unit.records, kinds)) if k == "image" and i in keep]
        out["annotations"] = [r for i, (r, k) in enumerate(zip(unit.records, kinds)) if k == "annotation" and i in keep]
        return out
    if spec.container == "glue":
        return {unit.name.removeprefix("glue/"): render_glue(unit.payload, valid[unit.name]) for unit in units}
    if spec.container == "imagefolder":
        (unit,) = units
        return [unit.records[i] for i in valid[unit.name]]
    raise ValueError(f"unknown container {spec.container!r}")


__all__ = ["DatasetStructureError", "GlueFile", "Unit", "assemble", "to_units"]
