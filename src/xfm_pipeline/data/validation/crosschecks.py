"""Checks that look across datasets, added as error columns before GX runs.

* splits of one task share no image (train < val/dev < test: the record in the earlier split is
  flagged, so evaluation sets stay intact and training loses the leaked image);
* pretraining corpora use no image of any evaluation split of any task;
* captioning evaluation images have ground-truth captions.

Images are the same when their resolved paths match or, with ``compare_image_content``, when the
SHA-256 of their bytes match (a copy under another name is still the same image).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xfm_pipeline.data.validation.table import CheckTable, check_no_errors, get, is_int


@dataclass
class Profiled:
    """A unit's check table with what messages about its records need."""

    unit: str  # unit name
    table: CheckTable
    locations: list[str]


def where_is(unit: str, index: int, location: str) -> str:
    """How messages point at a record of another unit: "vqa_test[3]", "glue/CoLA/dev record 4 (line 6)"."""
    return f"{unit}{location}" if location == f"[{index}]" else f"{unit} record {index} ({location})"


def _rank(split: str, order: Sequence[str], present: Sequence[str]) -> int:
    """Position of ``split``: listed splits by ``order``, others after them alphabetically."""
    if split in order:
        return order.index(split)
    extras = sorted(s for s in present if s not in order)
    return len(order) + extras.index(split)


def add_split_overlap(profiled: Sequence[Profiled], order: Sequence[str]) -> None:
    """Add ``image__split_overlap`` to every table of one task that has splits.

    A record is flagged when one of its images also appears in a LATER split (by ``order``).
    """
    with_splits = [p for p in profiled if any(s is not None for s in p.table.splits)]
    where: dict[str, dict[str, str]] = {}  # split -> image key -> first "unit location"
    for p in with_splits:
        for i, (keys, split, loc) in enumerate(zip(p.table.image_keys, p.table.splits, p.locations)):
            if split is None:
                continue
            seen = where.setdefault(split, {})
            for key in keys:
                seen.setdefault(key, where_is(p.unit, i, loc))
    present = list(where)
    ranked = sorted(present, key=lambda s: _rank(s, order, present))
    later_splits = {s: ranked[ranked.index(s) + 1 :] for s in ranked}
    for p in with_splits:
        errors: list[str | None] = []
        for keys, split in zip(p.table.image_keys, p.table.splits):
            error = None
            if split is not None:
                for other in later_splits[split]:
                    hit = next((where[other][k] for k in sorted(keys) if k in where[other]), None)
                    if hit:
                        error = f"the image of this {split!r} record is also used by split {other!r} ({hit})"
                        break
            errors.append(error)
        check_no_errors(
            p.table,
            "image__split_overlap",
            errors,
            f"the image is not used by a later split of the task (order {' < '.join(order)})",
        )


def evaluation_image_index(profiled: Sequence[Profiled]) -> dict[str, str]:
    """Image key -> first evaluation record using it, over evaluation units.

    Records whose split is "train" (grounding keeps all splits in one file) are left out.
    """
    index: dict[str, str] = {}
    for p in profiled:
        for i, (keys, split, loc) in enumerate(zip(p.table.image_keys, p.table.splits, p.locations)):
            if split == "train":
                continue
            for key in keys:
                index.setdefault(key, where_is(p.unit, i, loc))
    return index


def add_evaluation_overlap(table: CheckTable, index: dict[str, str]) -> None:
    """Add ``image__evaluation_overlap``: a pretraining record must not use an evaluation image."""
    errors = []
    for keys in table.image_keys:
        hit = next((index[k] for k in sorted(keys) if k in index), None)
        errors.append(f"the image is an evaluation image ({hit})" if hit else None)
    check_no_errors(table, "image__evaluation_overlap", errors, "the image is not used by any evaluation split of any task")


def add_caption_coverage(table: CheckTable, image_ids: Sequence[int | None], gt_name: str, gt_records: Sequence, gt_kinds: Sequence[str]) -> None:
    """Add ``image_id__ground_truth``: every captioning evaluation image has captions in ``gt_name``.

    ``image_ids`` holds each evaluation record's image id (None when it has none; reported elsewhere).
    """
    covered = {get(r, "image_id") for r, k in zip(gt_records, gt_kinds) if k == "annotation"}
    covered = {int(i) for i in covered if is_int(i)}
    errors = [None if image_id is None or image_id in covered else f"image_id {image_id} has no captions in {gt_name}" for image_id in image_ids]
    check_no_errors(table, "image_id__ground_truth", errors, f"the image has ground-truth captions in {gt_name}")
