"""Captioning annotations: Karpathy COCO JSON plus COCO-caption ground truth (docs/xfm.md#captioning).

* train: ``[{"image": str, "caption": str, "image_id": int}]``
* val/test: ``[{"image": str, "image_id"?: int, "caption"?: [str]}]``; without ``image_id`` the id is
  parsed from the file name (``val2014/COCO_val2014_000000184613.jpg`` -> 184613), as X-FM does.
* ``{val,test}_gt.json``: ``{"images": [{"id"}], "annotations": [{"image_id", "id", "caption"}]}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from xfm_pipeline.data.formats.common import Fields, RecordError, as_objects, load_json, parse_all

_TRAILING_DIGITS = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class CaptionTrainRecord:
    """One (image, reference caption) training pair."""

    image: str
    caption: str
    image_id: int | str


@dataclass(frozen=True)
class CaptionEvalRecord:
    """An image to caption at evaluation time."""

    image: str
    image_id: int
    caption: tuple[str, ...] = ()  # references when the Karpathy file carries them


@dataclass(frozen=True)
class CaptionReferences:
    """COCO-caption ground truth: reference captions per image id."""

    refs: dict[int, tuple[str, ...]]  # image_id -> reference captions

    def __len__(self) -> int:
        return len(self.refs)


def image_id_from_filename(image: str) -> int | None:
    """The trailing integer of a file stem (``COCO_val2014_000000184613.jpg`` -> 184613), or None."""
    match = _TRAILING_DIGITS.search(PurePosixPath(image).stem)
    return int(match.group(1)) if match else None


def _train(f: Fields) -> CaptionTrainRecord:
    return CaptionTrainRecord(image=f.path("image"), caption=f.string("caption"), image_id=f.identifier("image_id"))


def _eval(f: Fields) -> CaptionEvalRecord:
    image = f.path("image")
    image_id = f.integer("image_id", optional=True)
    if image_id is None:
        image_id = image_id_from_filename(image)
        if image_id is None:
            raise f.error(f"no 'image_id' and none can be parsed from the file name {image!r}")
    return CaptionEvalRecord(image=image, image_id=image_id, caption=f.texts("caption", optional=True))


def parse_caption_train(data: Any, source: str = "captioning/train.json") -> list[CaptionTrainRecord]:
    """Training records from the loaded JSON list."""
    return parse_all(as_objects(data, source), source, _train)


def parse_caption_eval(data: Any, source: str = "captioning/test.json") -> list[CaptionEvalRecord]:
    """Evaluation records (val/test) from the loaded JSON list."""
    return parse_all(as_objects(data, source), source, _eval)


def parse_coco_caption_gt(data: Any, source: str = "captioning/test_gt.json") -> CaptionReferences:
    """Reference captions per image from a COCO-caption ground-truth object.

    Raises:
        RecordError: missing keys, an annotation for an unknown image, or an image without captions.
    """
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise RecordError(source, None, "COCO caption ground truth needs 'images' and 'annotations' lists")
    ids: list[int] = []
    for i, image in enumerate(data["images"]):
        ids.append(Fields(image, f"{source} images", i).integer("id"))
    refs: dict[int, list[str]] = {i: [] for i in ids}
    if len(refs) != len(ids):
        raise RecordError(source, None, "duplicate image ids in 'images'")
    for i, ann in enumerate(data["annotations"]):
        f = Fields(ann, f"{source} annotations", i)
        image_id = f.integer("image_id")
        f.integer("id")
        if image_id not in refs:
            raise f.error(f"image_id {image_id} is not listed in 'images'")
        refs[image_id].append(f.string("caption"))
    empty = [i for i, captions in refs.items() if not captions]
    if empty:
        raise RecordError(source, None, f"{len(empty)} image(s) without reference captions, e.g. id {empty[0]}")
    return CaptionReferences(refs={k: tuple(v) for k, v in refs.items()})


def read_caption_train(path: str | Path) -> list[CaptionTrainRecord]:
    """Read a captioning training file."""
    return parse_caption_train(load_json(path), str(path))


def read_caption_eval(path: str | Path) -> list[CaptionEvalRecord]:
    """Read a captioning val/test file."""
    return parse_caption_eval(load_json(path), str(path))


def read_coco_caption_gt(path: str | Path) -> CaptionReferences:
    """Read a COCO-caption ground-truth file."""
    return parse_coco_caption_gt(load_json(path), str(path))
