"""NLVR2 annotations (docs/xfm.md#nlvr2): ``[{"images": [left, right], "sentence": str, "label": "True"|"False",
"identifier"?: str}]``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfm_pipeline.data.formats.common import Fields, as_objects, load_json, parse_all


@dataclass(frozen=True)
class NLVRRecord:
    """A statement about a pair of images and whether it is true."""

    images: tuple[str, str]  # (left, right) paths relative to the image root
    sentence: str
    label: bool  # "True" -> True, "False" -> False
    identifier: str | None = None


def _parse(f: Fields) -> NLVRRecord:
    images = f.obj.get("images")
    if not isinstance(images, (list, tuple)) or len(images) != 2:
        raise f.error(f"field 'images' must be a list of exactly two paths, got {images!r}")
    paths = []
    for i, image in enumerate(images):
        if not isinstance(image, str) or not image.strip():
            raise f.error(f"field 'images' item {i} must be a non-empty string, got {image!r}")
        paths.append(f.check_path(image, f"images[{i}]"))
    label = f.obj.get("label")
    if label == "True" or label is True:
        value = True
    elif label == "False" or label is False:
        value = False
    else:
        raise f.error(f'field \'label\' must be "True" or "False", got {label!r}')
    identifier = f.obj.get("identifier")
    return NLVRRecord(
        images=(paths[0], paths[1]),
        sentence=f.string("sentence"),
        label=value,
        identifier=None if identifier is None else str(identifier),
    )


def parse_nlvr(data: Any, source: str = "nlvr.json") -> list[NLVRRecord]:
    """NLVR2 records from the loaded JSON list."""
    return parse_all(as_objects(data, source), source, _parse)


def read_nlvr(path: str | Path) -> list[NLVRRecord]:
    """Read an NLVR2 annotation file (train, dev or test)."""
    return parse_nlvr(load_json(path), str(path))
