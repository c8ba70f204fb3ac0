"""Pretraining corpora (docs/xfm.md#data-streams): JSON-lines image-text, region-text, image-only and text-only.

Lines, one JSON object each (a corpus may be a directory of ``*.jsonl`` shards):

* image-text  ``{"image": str | "binary": base64 | [base64, ...], "desc": str | [str] | {lang: str}}``
* region-text ``{"image" | "binary", "caption"?: str, "elems": [{"bb": [x,y,w,h], "caption": str | [str],
  "attributes"?: str | [str]}]}``
* image-only  ``{"image" | "binary"}``
* text-only   ``{"desc": str | [str]}``

``iter_corpus`` streams the records of JSON-lines files; ``read_corpus`` returns a list; ``parse_corpus``
takes what the Kedro catalog loads (a DataFrame) or a list of dicts; ``parse_sample`` reads the record of
one WebDataset shard sample (:mod:`xfm_pipeline.data.shards`), whose image is a member of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfm_pipeline.data.formats.common import Fields, as_objects, iter_jsonl, parse_all


@dataclass(frozen=True)
class ImageTextRecord:
    """One image-text pair source: an image (path or base64) and one or more descriptions."""

    desc: tuple[str, ...]  # captions of the image (one is drawn per sample)
    image: str | None = None  # path relative to the corpus image root
    binary: tuple[str, ...] = ()  # base64 JPEG(s); when several, one is drawn and a prefix prepended


@dataclass(frozen=True)
class RegionElem:
    """One described region of an image."""

    bb: tuple[float, float, float, float]  # [x, y, w, h] in pixels of the original image
    caption: tuple[str, ...]  # descriptions of the region
    attributes: tuple[str, ...] = ()  # optional attribute phrases, prepended as "<attributes> <caption>"


@dataclass(frozen=True)
class RegionTextRecord:
    """An image with described regions and an optional image-level caption."""

    elems: tuple[RegionElem, ...]
    caption: str | None = None  # whole-image caption (box = the full image, is_image=1)
    image: str | None = None
    binary: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageOnlyRecord:
    """An image for the image-only (MIM) stream."""

    image: str | None = None
    binary: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextOnlyRecord:
    """A text for the text-only MLM stream."""

    desc: tuple[str, ...]


def _image_source(f: Fields, embedded: bool) -> tuple[str | None, tuple[str, ...]]:
    """(image path, base64 images) of a record; an ``embedded`` record's image is the shard sample's image
    member, so it must carry neither field (a record of several base64 images keeps them instead)."""
    image = f.path("image", optional=True)
    binary = f.texts("binary", optional=True)
    if embedded:
        if image is not None or binary:
            raise f.error("has an image member in its shard and an 'image' or 'binary' field too")
        return None, ()
    if (image is None) == (not binary):
        raise f.error("needs exactly one of 'image' (a path) and 'binary' (base64 image data)")
    return image, binary


def _parse_image_text(f: Fields, embedded: bool = False) -> ImageTextRecord:
    image, binary = _image_source(f, embedded)
    return ImageTextRecord(desc=f.texts("desc"), image=image, binary=binary)


def _parse_elem(f: Fields, i: int, elem: Any) -> RegionElem:
    sub = Fields(elem, f.source, f"{f.index} elems[{i}]")
    return RegionElem(bb=sub.box("bb"), caption=sub.texts("caption"), attributes=sub.texts("attributes", optional=True))


def _parse_region_text(f: Fields, embedded: bool = False) -> RegionTextRecord:
    image, binary = _image_source(f, embedded)
    elems = f.obj.get("elems")
    if not isinstance(elems, (list, tuple)) or not elems:
        raise f.error("field 'elems' must be a non-empty list of {bb, caption, attributes?}")
    return RegionTextRecord(
        elems=tuple(_parse_elem(f, i, e) for i, e in enumerate(elems)),
        caption=f.string("caption", optional=True),
        image=image,
        binary=binary,
    )


def _parse_image_only(f: Fields, embedded: bool = False) -> ImageOnlyRecord:
    image, binary = _image_source(f, embedded)
    return ImageOnlyRecord(image=image, binary=binary)


def _parse_text_only(f: Fields, embedded: bool = False) -> TextOnlyRecord:
    return TextOnlyRecord(desc=f.texts("desc"))


# corpus name (as in the catalog entry ``pretrain_{corpus}_jsonl_raw``) -> parser of one record
CORPUS_PARSERS = {
    "image_text": _parse_image_text,
    "region_text": _parse_region_text,
    "image_only": _parse_image_only,
    "text_only": _parse_text_only,
}
# The pretraining streams, in the order every optimizer step runs them (defined here, once).
PRETRAIN_STREAMS: tuple[str, ...] = tuple(CORPUS_PARSERS)


def _parser(corpus: str):
    try:
        return CORPUS_PARSERS[corpus]
    except KeyError:
        raise ValueError(f"unknown pretraining corpus {corpus!r}; expected one of {sorted(CORPUS_PARSERS)}") from None


def parse_corpus(data: Any, corpus: str, source: str | None = None) -> list:
    """Records of ``corpus`` from a DataFrame (Kedro ``pandas.JSONDataset``) or a list of dicts."""
    source = source or f"pretrain/{corpus}"
    return parse_all(as_objects(data, source), source, _parser(corpus))


def parse_sample(obj: Any, corpus: str, source: str, key: str, has_image: bool) -> Any:
    """The record of one shard sample (:mod:`xfm_pipeline.data.shards`): ``has_image`` when the sample holds
    the image bytes, which then take the place of the ``image`` / ``binary`` field."""
    return _parser(corpus)(Fields(obj, source, f"sample {key}"), embedded=has_image)


def iter_corpus(path: str | Path, corpus: str) -> Iterator:
    """Stream the records of a JSON-lines file or a directory of ``*.jsonl`` shards (sorted by name)."""
    parse = _parser(corpus)
    for file, line_no, obj in iter_jsonl(path):
        yield parse(Fields(obj, file, f"line {line_no}"))


def read_corpus(path: str | Path, corpus: str) -> list:
    """All records of a JSON-lines corpus (file or directory of shards)."""
    return list(iter_corpus(path, corpus))
