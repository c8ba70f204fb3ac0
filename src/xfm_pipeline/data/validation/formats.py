"""One profile per record format: the derived columns and checks that become its expectation suite.

A profile turns the records of one unit into a :class:`CheckTable`; ``suites.py`` makes a GX suite
of its checks. Formats are those of docs/data_formats.md. Checks that need other datasets (split
disjointness, evaluation images in pretraining corpora, captions of evaluation images) are added
afterwards by ``crosschecks.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from xfm_pipeline.data.validation.config import TextLimits, ValidationParams
from xfm_pipeline.data.validation.containers import Unit
from xfm_pipeline.data.validation.glue import GlueFile
from xfm_pipeline.data.validation.image_checks import (
    ImageEnv,
    check_binary_images,
    check_boxes,
    check_image_files,
    check_member_images,
    size_of,
)
from xfm_pipeline.data.validation.table import (
    MISSING,
    TEXTS,
    CheckTable,
    check_count,
    check_in_set,
    check_no_errors,
    check_row_count,
    check_text,
    check_unique,
    column_stem,
    finite_box,
    get,
    is_int,
    json_type,
    require_object,
    require_type,
    text_items,
)

VQA_ANSWER_TYPES = ("yes/no", "number", "other")
VQA_SOURCES = ("vqa", "vg")
VQA_NUM_ANSWERS = 10  # human answers of a VQA v2 question (docs/data_formats.md)
NLVR_LABELS = ("True", "False")
GROUNDING_SPLITS = ("train", "val", "testA", "testB")
_TRAILING_DIGITS = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class ProfileEnv:
    """Settings a profile needs."""

    images: ImageEnv
    text: TextLimits
    box_tolerance: float = 0.0


# Pretraining corpora whose images are checked against the evaluation images.
PRETRAIN_IMAGE_FORMATS = ("pretrain_image_text", "pretrain_region_text", "pretrain_image_only")


def profile_env(params: ValidationParams, dataset: str) -> ProfileEnv:
    """Profile settings of ``dataset``."""
    images = ImageEnv(params.image_root_of(dataset), params.image_workers, params.compare_image_content)
    return ProfileEnv(images, params.text, params.box_tolerance_px)


def _text(t: CheckTable, key: str, values, env: ProfileEnv, *, many: bool = False) -> None:
    check_text(t, key, values, env.text.min_chars, env.text.max_chars, many=many)


def _start(unit: Unit, *, objects: bool = True) -> tuple[CheckTable, list]:
    t = CheckTable(unit.suite, len(unit.records))
    check_row_count(t)
    if objects:
        require_object(t, unit.records)
    if unit.spec.split is not None:
        t.splits = [unit.spec.split] * len(unit.records)
    return t, unit.records


def _image(t: CheckTable, records, env: ProfileEnv, key: str = "image", *, optional: bool = False):
    paths = require_type(t, records, key, {"string"}, optional=optional)
    return check_image_files(t, column_stem(key), paths, env.images)


# ---------------------------------------------------------------------------------------------
# Pretraining corpora (JSON lines)


def _image_source(t: CheckTable, records, env: ProfileEnv, members: list[bytes | None] | None = None):
    """``image`` (a path) or ``binary`` (base64 image(s)), exactly one; returns per-record probes.

    ``members``: the image members of shard samples (a unit of a sharded corpus): a sample with one carries
    neither field.
    """
    images = require_type(t, records, "image", {"string"}, optional=True)
    blobs = require_type(t, records, "binary", {"string", "array of strings"}, optional=True)
    members = members if members is not None else [None] * len(records)
    errors = []
    for r, member in zip(records, members):
        given = [k for k in ("image", "binary") if isinstance(r, dict) and k in r]
        if not isinstance(r, dict) or (member is None and len(given) == 1) or (member is not None and not given):
            errors.append(None)
        elif member is not None:
            errors.append(f"the sample has an image member and an {' and '.join(repr(g) for g in given)} field")
        else:
            errors.append("both 'image' and 'binary' are given" if given else "neither 'image' nor 'binary' is given")
    check_no_errors(t, "image_source__error", errors, "exactly one of 'image' (a path), 'binary' (base64 image data) and a shard image member is given")
    _, file_probes = check_image_files(t, "image", images, env.images)
    blob_probes = check_binary_images(t, "binary", blobs, env.images)
    member_probes = check_member_images(t, "image_member", members, env.images) if any(m is not None for m in members) else [None] * len(records)
    return [f if f is not None else b if b is not None else m for f, b, m in zip(file_probes, blob_probes, member_probes)]


def profile_pretrain_image_text(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"image": str | "binary": base64, "desc": text(s)}``."""
    t, records = _start(unit)
    _image_source(t, records, env, unit.extra.get("image_members"))
    _text(t, "desc", require_type(t, records, "desc", TEXTS), env, many=True)
    return t


def profile_pretrain_region_text(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"image" | "binary", "caption"?: str, "elems": [{"bb": [x,y,w,h], "caption": text, "attributes"?: text}]}``."""
    t, records = _start(unit)
    probes = _image_source(t, records, env, unit.extra.get("image_members"))
    _text(t, "caption", require_type(t, records, "caption", {"string"}, optional=True), env)
    elems = require_type(t, records, "elems", {"array"})
    structure, boxes, captions = [], [], []
    for items in elems:
        error = _first_elem_error(items) if items is not None else None
        structure.append(error)
        ok = items is not None and error is None
        boxes.append([finite_box(e["bb"]) for e in items] if ok else None)
        captions.append([c for e in items for c in text_items(e["caption"])] if ok else None)
    check_no_errors(
        t,
        "elems__structure",
        structure,
        "every element of 'elems' is {'bb': [x, y, w, h] of 4 numbers, 'caption': text, 'attributes'?: text}",
    )
    _text(t, "elems.caption", captions, env, many=True)
    check_boxes(t, "elems_bb", boxes, [size_of(p) for p in probes], env.box_tolerance)
    return t


def _first_elem_error(items: list) -> str | None:
    for j, elem in enumerate(items):
        if not isinstance(elem, dict):
            return f"elems[{j}] is {json_type(elem)}, not an object"
        if finite_box(elem.get("bb")) is None:
            return f"elems[{j}].bb is {elem.get('bb', 'missing')!r}, not [x, y, w, h] of 4 finite numbers"
        if json_type(get(elem, "caption")) not in TEXTS:
            return f"elems[{j}].caption is {json_type(get(elem, 'caption'))}, not a text"
        if "attributes" in elem and json_type(elem["attributes"]) not in TEXTS:
            return f"elems[{j}].attributes is {json_type(elem['attributes'])}, not a text"
    return None


def profile_pretrain_image_only(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"image": str}`` or ``{"binary": base64}``."""
    t, records = _start(unit)
    _image_source(t, records, env, unit.extra.get("image_members"))
    return t


def profile_pretrain_text_only(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"desc": text(s)}``."""
    t, records = _start(unit)
    _text(t, "desc", require_type(t, records, "desc", TEXTS), env, many=True)
    return t


# ---------------------------------------------------------------------------------------------
# Downstream tasks (JSON lists)


def profile_retrieval_train(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"image": str, "caption": str, "image_id": int | str}`` (several captions per image)."""
    t, records = _start(unit)
    _image(t, records, env)
    _text(t, "caption", require_type(t, records, "caption", {"string"}), env)
    require_type(t, records, "image_id", {"integer", "string"})
    return t


def profile_retrieval_eval(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"image": str, "caption": [str, ...]}``, one record per image."""
    t, records = _start(unit)
    resolved, _ = _image(t, records, env)
    check_unique(t, "image", [str(p) if p is not None else None for p in resolved], "the image (resolved path)")
    _text(t, "caption", require_type(t, records, "caption", TEXTS), env, many=True)
    return t


def profile_vqa(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"question_id": int, "image", "question", "answer": [str], "answer_type"?, "question_type"?, "dataset"?}``.

    ``question_id`` is required outside training (predictions are keyed by it), ``answer`` everywhere
    but in test files (VQA v2 test-dev/std carry none); both as the readers of ``data.formats.vqa``.
    """
    t, records = _start(unit)
    split = unit.spec.split
    ids = require_type(t, records, "question_id", {"integer"}, optional=split == "train")
    check_unique(t, "question_id", ids, "question_id")
    _image(t, records, env)
    _text(t, "question", require_type(t, records, "question", {"string"}), env)
    answers = require_type(t, records, "answer", TEXTS, optional=split == "test")
    _text(t, "answer", answers, env, many=True)
    check_in_set(t, "answer_type", require_type(t, records, "answer_type", {"string"}, optional=True), VQA_ANSWER_TYPES)
    require_type(t, records, "question_type", {"string"}, optional=True)
    sources = require_type(t, records, "dataset", {"string"}, optional=True)
    check_in_set(t, "dataset", sources, VQA_SOURCES)
    check_no_errors(
        t,
        "answer__annotators",
        [_answer_count_error(a, s) for a, s in zip(answers, sources)],
        f"a VQA question has exactly {VQA_NUM_ANSWERS} human answers (a 'dataset': 'vg' question one)",
    )
    return t


def _answer_count_error(answer, source: str | None) -> str | None:
    """Why the answers of a VQA record are not 10 (one for Visual Genome); None when fine or absent."""
    if answer is None or source not in (None, *VQA_SOURCES):
        return None  # absent (test files), of the wrong type or of an unknown source: reported elsewhere
    n = 1 if isinstance(answer, str) else len(answer)
    expected = 1 if source == "vg" else VQA_NUM_ANSWERS
    if n == expected:
        return None
    return f"{n} answer{'s' if n != 1 else ''} for a {source or 'vqa'} question; expected {expected}"


def profile_vqa_answer_list(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``[str, ...]``: distinct candidate answers."""
    t, records = _start(unit, objects=False)
    types = [json_type(r) for r in records]
    t.add("answer__type", types, "expect_column_values_to_be_in_set", "every candidate answer is a string", value_set=["string"])
    answers = [r if ty == "string" else None for r, ty in zip(records, types)]
    _text(t, "answer", answers, env)
    check_unique(t, "answer", answers, "the candidate answer")
    return t


def profile_nlvr(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"images": [left, right], "sentence": str, "label": "True" | "False", "identifier"?: str}``."""
    t, records = _start(unit)
    pairs = require_type(t, records, "images", {"array of strings"})
    check_count(t, "images", pairs, 2, 2)
    for side in (0, 1):
        paths = [p[side] if p is not None and len(p) == 2 else None for p in pairs]
        check_image_files(t, f"images_{side}", paths, env.images)
    _text(t, "sentence", require_type(t, records, "sentence", {"string"}), env)
    labels = require_type(t, records, "label", {"string", "boolean"})
    check_in_set(t, "label", [str(v) if isinstance(v, bool) else v for v in labels], NLVR_LABELS)
    ids = require_type(t, records, "identifier", {"string"}, optional=True)
    check_unique(t, "identifier", ids, "identifier")
    return t


def profile_grounding(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"image", "text", "bbox": [x,y,w,h], "ref_id": int, "split": train | val | testA | testB}``.

    One record per referring expression: the expressions of one object share ``ref_id``, so
    ``ref_id`` must identify one (image, bbox, split) rather than one record.
    """
    t, records = _start(unit)
    _, probes = _image(t, records, env)
    _text(t, "text", require_type(t, records, "text", {"string"}), env)
    raw_boxes = [get(r, "bbox") for r in records]
    shape = [
        None if not isinstance(r, dict) or finite_box(b) else "'bbox' is missing" if b is MISSING else f"'bbox' is {b!r}" for r, b in zip(records, raw_boxes)
    ]
    check_no_errors(t, "bbox__shape", shape, "'bbox' is [x, y, w, h] of 4 finite numbers")
    boxes = [[finite_box(b)] if finite_box(b) else None for b in raw_boxes]
    check_boxes(t, "bbox", boxes, [size_of(p) for p in probes], env.box_tolerance)
    ref_ids = require_type(t, records, "ref_id", {"integer"})
    splits = require_type(t, records, "split", {"string"})
    check_in_set(t, "split", splits, GROUNDING_SPLITS)
    first: dict[int, tuple[int, tuple]] = {}
    conflicts = []
    for i, (r, ref) in enumerate(zip(records, ref_ids)):
        if ref is None:
            conflicts.append(None)
            continue
        target = (get(r, "image"), finite_box(get(r, "bbox")), get(r, "split"))
        j, seen = first.setdefault(ref, (i, target))
        conflicts.append(None if seen == target else f"ref_id {ref} names image {seen[0]!r}, bbox {seen[1]}, split {seen[2]!r} in record {j}")
    check_no_errors(t, "ref_id__conflict", conflicts, "records sharing a ref_id refer to the same image, bbox and split")
    t.splits = [s if s in GROUNDING_SPLITS else None for s in splits]
    return t


def profile_captioning_train(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"image": str, "caption": str, "image_id": int | str}``."""
    t, records = _start(unit)
    _image(t, records, env)
    _text(t, "caption", require_type(t, records, "caption", {"string"}), env)
    require_type(t, records, "image_id", {"integer", "string"})
    return t


def profile_captioning_eval(unit: Unit, env: ProfileEnv) -> CheckTable:
    """``{"image": str, "image_id"?: int, "caption"?: texts}``, one record per image.

    Without ``image_id`` the id is the trailing number of the file name (as X-FM and the readers do).
    """
    t, records = _start(unit)
    _image(t, records, env)
    given = require_type(t, records, "image_id", {"integer"}, optional=True)
    ids = [int(g) if g is not None else caption_image_id(r) for r, g in zip(records, given)]
    unknown = [
        f"no 'image_id' and none in the file name {get(r, 'image')!r}" if isinstance(r, dict) and i is None and "image_id" not in r else None
        for r, i in zip(records, ids)
    ]
    check_no_errors(t, "image_id__unknown", unknown, "the record has an image_id (given, or the trailing number of its file name)")
    check_unique(t, "image_id", ids, "image_id")
    _text(t, "caption", require_type(t, records, "caption", TEXTS, optional=True), env, many=True)
    return t


def caption_image_id(record) -> int | None:
    """The image id of a captioning evaluation record: ``image_id``, or the file name's trailing number."""
    value = get(record, "image_id")
    if is_int(value):
        return int(value)
    image = get(record, "image")
    match = _TRAILING_DIGITS.search(PurePosixPath(image).stem) if isinstance(image, str) else None
    return int(match.group(1)) if match else None


def profile_captioning_gt(unit: Unit, env: ProfileEnv) -> CheckTable:
    """COCO caption ground truth: ``images: [{"id"}]`` and ``annotations: [{"image_id", "id", "caption"}]``."""
    t, records = _start(unit)
    kinds = unit.extra["kinds"]
    images = [r if k == "image" else None for r, k in zip(records, kinds)]
    anns = [r if k == "annotation" else None for r, k in zip(records, kinds)]

    def _typed(entries, kind, key, allowed):
        types = [json_type(get(r, key)) if isinstance(r, dict) else None for r in entries]
        t.add(
            f"{kind}_{key}__type",
            types,
            "expect_column_values_to_be_in_set",
            f"every entry of '{kind}' has field '{key}' of type {' or '.join(sorted(allowed))}",
            value_set=sorted(allowed),
        )
        return [get(r, key) if ty in allowed else None for r, ty in zip(entries, types)]

    image_ids = _typed(images, "images", "id", {"integer"})
    check_unique(t, "images_id", image_ids, "images[].id")
    ann_ids = _typed(anns, "annotations", "id", {"integer"})
    check_unique(t, "annotations_id", ann_ids, "annotations[].id")
    ann_image_ids = _typed(anns, "annotations", "image_id", {"integer"})
    known = {i for i in image_ids if i is not None}
    captioned = {i for i in ann_image_ids if i is not None}
    check_no_errors(
        t,
        "annotations_image_id__unknown",
        [f"image_id {i} is not among the ids of 'images'" if i is not None and i not in known else None for i in ann_image_ids],
        "every annotation refers to an entry of 'images'",
    )
    check_no_errors(
        t,
        "images_id__uncaptioned",
        [f"image {i} has no annotation" if i is not None and i not in captioned else None for i in image_ids],
        "every entry of 'images' has at least one caption annotation",
    )
    captions = _typed(anns, "annotations", "caption", {"string"})
    _text(t, "annotations.caption", captions, env)
    return t


# ---------------------------------------------------------------------------------------------
# GLUE and ImageFolder


def profile_glue(unit: Unit, env: ProfileEnv) -> CheckTable:
    """One GLUE TSV partition: field counts, texts, labels (or STS-B scores) and row ids."""
    parsed: GlueFile = unit.extra["glue"]
    layout = parsed.layout
    t, _ = _start(unit, objects=False)
    t.suite = f"glue_{layout.task}" + ("" if parsed.labelled or not layout.label else "_unlabelled")
    width = len(parsed.columns)
    check_no_errors(
        t,
        "row__fields",
        [None if len(r.fields) == width else f"the line has {len(r.fields)} tab-separated fields, the header {width}" for r in parsed.rows],
        f"every line has the {width} tab-separated fields of the header",
    )
    for column in layout.texts:
        if column in parsed.columns:
            _text(t, column, [r.record.get(column) for r in parsed.rows], env)
    if parsed.labelled:
        raw = [r.record.get(layout.label) for r in parsed.rows]
        raw = [v.strip() if isinstance(v, str) else None for v in raw]
        if layout.labels is not None:
            check_in_set(t, layout.label, raw, layout.labels, f"label column {layout.label!r}")
        elif layout.label_range is not None:
            low, high = layout.label_range
            values = [_float_or_none(v) for v in raw]
            check_no_errors(
                t,
                f"{column_stem(layout.label)}__not_a_number",
                [f"{v!r} is not a finite number" if v is not None and x is None else None for v, x in zip(raw, values)],
                f"{layout.label!r} is a number",
            )
            t.add(
                f"{column_stem(layout.label)}__value",
                values,
                "expect_column_values_to_be_between",
                f"{layout.label!r} is between {low:g} and {high:g}",
                min_value=low,
                max_value=high,
            )
    if parsed.id_column:
        ids = [r.record.get(parsed.id_column) for r in parsed.rows]
        check_unique(t, parsed.id_column, ids, f"row id {parsed.id_column!r}")
    return t


def _float_or_none(value: str | None) -> float | None:
    try:
        out = float(value) if value is not None else None
    except ValueError:
        return None
    return out if out is not None and math.isfinite(out) else None


def profile_imagefolder(unit: Unit, env: ProfileEnv) -> CheckTable:
    """ImageFolder ``<split>/<class>/<file>``: decodable images; classes of evaluation splits seen in training."""
    t, records = _start(unit, objects=False)
    layout_ok = [r["split"] is not None for r in records]
    check_no_errors(
        t,
        "image__layout",
        [None if ok else f"{r['image']!r} is not <split>/<class>/<file>" for r, ok in zip(records, layout_ok)],
        "the file sits at <split>/<class>/<file> under the ImageFolder root",
    )
    check_image_files(t, "image", [r["image"] for r in records], env.images)
    train_classes = {r["label"] for r in records if r["split"] == "train"}
    unknown = [
        f"class {r['label']!r} of split {r['split']!r} has no training images" if ok and r["split"] != "train" and r["label"] not in train_classes else None
        for r, ok in zip(records, layout_ok)
    ]
    check_no_errors(t, "label__unknown", unknown, "every class of an evaluation split has training images")
    t.splits = [r["split"] for r in records]
    return t


PROFILES: dict[str, Callable[[Unit, ProfileEnv], CheckTable]] = {
    "pretrain_image_text": profile_pretrain_image_text,
    "pretrain_region_text": profile_pretrain_region_text,
    "pretrain_image_only": profile_pretrain_image_only,
    "pretrain_text_only": profile_pretrain_text_only,
    "retrieval_train": profile_retrieval_train,
    "retrieval_eval": profile_retrieval_eval,
    "vqa": profile_vqa,
    "vqa_answer_list": profile_vqa_answer_list,
    "nlvr": profile_nlvr,
    "grounding": profile_grounding,
    "captioning_train": profile_captioning_train,
    "captioning_eval": profile_captioning_eval,
    "captioning_gt": profile_captioning_gt,
    "glue": profile_glue,
    "imagefolder": profile_imagefolder,
}


def profile(unit: Unit, env: ProfileEnv) -> CheckTable:
    """The check table of ``unit`` (dispatch on its dataset's format)."""
    return PROFILES[unit.spec.fmt](unit, env)
