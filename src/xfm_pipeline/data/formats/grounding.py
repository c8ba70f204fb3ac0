"""Visual grounding (RefCOCO+) annotations (docs/xfm.md#grounding) in a self-contained JSON.

``[{"image": str, "text": str, "bbox": [x, y, w, h], "ref_id": int, "split": "train"|"val"|"testA"|"testB"}]``:
one record per referring expression; the expressions of one referred object share ``ref_id``. X-FM reads
the box from the REFER toolkit files at training time; :mod:`xfm_pipeline.data.formats.refer` imports
those files into this format once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfm_pipeline.data.formats.common import Fields, as_objects, load_json, parse_all

GROUNDING_SPLITS = ("train", "val", "testA", "testB")


@dataclass(frozen=True)
class GroundingRecord:
    """A referring expression and the box of its single referent."""

    image: str
    text: str
    bbox: tuple[float, float, float, float]  # [x, y, w, h] in pixels of the original image
    ref_id: int
    split: str  # train | val | testA | testB


def _parse(f: Fields) -> GroundingRecord:
    split = f.string("split")
    if split not in GROUNDING_SPLITS:
        raise f.error(f"field 'split' must be one of {GROUNDING_SPLITS}, got {split!r}")
    return GroundingRecord(image=f.path("image"), text=f.string("text"), bbox=f.box("bbox"), ref_id=f.integer("ref_id"), split=split)


def parse_grounding(data: Any, source: str = "grounding/refcoco+.json", split: str | None = None) -> list[GroundingRecord]:
    """Grounding records from the loaded JSON list, optionally only those of one ``split``."""
    if split is not None and split not in GROUNDING_SPLITS:
        raise ValueError(f"split must be one of {GROUNDING_SPLITS}, got {split!r}")
    records = parse_all(as_objects(data, source), source, _parse)
    return records if split is None else [r for r in records if r.split == split]


def read_grounding(path: str | Path, split: str | None = None) -> list[GroundingRecord]:
    """Read a grounding file (all splits, or one)."""
    return parse_grounding(load_json(path), str(path), split)
