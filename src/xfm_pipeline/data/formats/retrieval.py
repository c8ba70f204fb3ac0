"""Image-text retrieval annotations, Karpathy COCO/Flickr30k style (docs/xfm.md#retrieval).

* train: ``[{"image": str, "caption": str, "image_id": int | str}]`` (one record per caption)
* val/test: ``[{"image": str, "caption": [str, ...]}]`` (one record per image)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfm_pipeline.data.formats.common import Fields, as_objects, load_json, parse_all


@dataclass(frozen=True)
class RetrievalTrainRecord:
    """One (image, caption) training pair; captions of one image share ``image_id``."""

    image: str
    caption: str
    image_id: int | str


@dataclass(frozen=True)
class RetrievalEvalRecord:
    """One evaluation image with all its ground-truth captions."""

    image: str
    caption: tuple[str, ...]


def _train(f: Fields) -> RetrievalTrainRecord:
    return RetrievalTrainRecord(image=f.path("image"), caption=f.string("caption"), image_id=f.identifier("image_id"))


def _eval(f: Fields) -> RetrievalEvalRecord:
    return RetrievalEvalRecord(image=f.path("image"), caption=f.texts("caption"))


def parse_retrieval_train(data: Any, source: str = "retrieval/train.json") -> list[RetrievalTrainRecord]:
    """Training records from the loaded JSON list."""
    return parse_all(as_objects(data, source), source, _train)


def parse_retrieval_eval(data: Any, source: str = "retrieval/test.json") -> list[RetrievalEvalRecord]:
    """Evaluation records (val or test) from the loaded JSON list."""
    return parse_all(as_objects(data, source), source, _eval)


def read_retrieval_train(path: str | Path) -> list[RetrievalTrainRecord]:
    """Read a retrieval training file."""
    return parse_retrieval_train(load_json(path), str(path))


def read_retrieval_eval(path: str | Path) -> list[RetrievalEvalRecord]:
    """Read a retrieval val/test file."""
    return parse_retrieval_eval(load_json(path), str(path))
