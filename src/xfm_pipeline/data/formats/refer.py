"""Import the REFER toolkit files of RefCOCO/RefCOCO+/RefCOCOg into the self-contained grounding JSON.

Inputs (``refcoco+/`` of the REFER data release): ``refs(unc).p``, a pickled list of
``{"ref_id", "ann_id", "image_id", "split", "sentences": [{"sent", "raw"?, ...}], ...}``, and
``instances.json`` (COCO layout: ``images`` with ``id``/``file_name``, ``annotations`` with
``id``/``image_id``/``bbox``). The pickle is read with a restricted unpickler that only rebuilds plain
containers and scalars: it refuses every other class, so a crafted file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path, PurePosixPath
from typing import Any

from xfm_pipeline.data.formats.common import Fields, RecordError, load_json
from xfm_pipeline.data.formats.grounding import GROUNDING_SPLITS

# The only globals a pickle of plain data may reference (Python 3 and Python 2 module names).
_SAFE_GLOBALS = (
    {("builtins", name) for name in ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "bool", "complex")}
    | {("__builtin__", name) for name in ("dict", "list", "tuple", "set", "frozenset", "str", "unicode", "int", "long", "float", "bool")}
    | {
        ("collections", "OrderedDict"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle references a class or function outside the allowed plain containers."""


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            if module == "__builtin__":
                module = "builtins"
                name = {"unicode": "str", "long": "int"}.get(name, name)
            return super().find_class(module, name)
        raise UnsafePickleError(f"refusing to unpickle {module}.{name}: only plain containers and scalars are allowed")


def load_plain_pickle(path: str | Path) -> Any:
    """Unpickle a file that holds only plain data (dict/list/tuple/set/str/int/float/bool/None).

    Python 2 pickles (the REFER release) are decoded as UTF-8, falling back to Latin-1.

    Raises:
        UnsafePickleError: the pickle references any other class or function.
    """
    data = Path(path).read_bytes()
    try:
        return _PlainDataUnpickler(io.BytesIO(data), encoding="utf-8").load()
    except UnicodeDecodeError:
        return _PlainDataUnpickler(io.BytesIO(data), encoding="latin1").load()


def import_refer(
    refs_path: str | Path,
    instances_path: str | Path,
    image_prefix: str = "",
    splits: tuple[str, ...] = GROUNDING_SPLITS,
) -> list[dict[str, Any]]:
    """Build the grounding JSON records (``image``, ``text``, ``bbox``, ``ref_id``, ``split``) from REFER files.

    Args:
        refs_path: ``refs(unc).p``.
        instances_path: ``instances.json``.
        image_prefix: folder of the COCO images relative to the image root (e.g. ``"train2014"``).
        splits: splits to keep; refs of other splits (e.g. RefCOCOg's ``test`` under another split-by) are skipped.

    Returns:
        One record per sentence, sorted by (split order, ref_id, sentence order).

    Raises:
        RecordError: a ref points at a missing annotation or image, or has no sentences.
        UnsafePickleError: the refs file is not a plain-data pickle.
    """
    refs_source = str(refs_path)
    refs = load_plain_pickle(refs_path)
    if not isinstance(refs, list):
        raise RecordError(refs_source, None, f"expected a pickled list of refs, got {type(refs).__name__}")
    instances = load_json(instances_path)
    if not isinstance(instances, dict) or "images" not in instances or "annotations" not in instances:
        raise RecordError(str(instances_path), None, "instances.json needs 'images' and 'annotations'")
    images = {}
    for i, image in enumerate(instances["images"]):
        f = Fields(image, f"{instances_path} images", i)
        images[f.integer("id")] = f.string("file_name")
    boxes = {}
    for i, ann in enumerate(instances["annotations"]):
        f = Fields(ann, f"{instances_path} annotations", i)
        boxes[f.integer("id")] = f.box("bbox")

    order = {split: k for k, split in enumerate(splits)}
    records = []
    for i, ref in enumerate(refs):
        f = Fields(ref, refs_source, i)
        split = f.string("split")
        if split not in order:
            continue
        ref_id, ann_id, image_id = f.integer("ref_id"), f.integer("ann_id"), f.integer("image_id")
        if ann_id not in boxes:
            raise f.error(f"ann_id {ann_id} is not in {instances_path}")
        if image_id not in images:
            raise f.error(f"image_id {image_id} is not in {instances_path}")
        sentences = ref.get("sentences")
        if not isinstance(sentences, list) or not sentences:
            raise f.error("ref has no 'sentences'")
        image = str(PurePosixPath(image_prefix) / images[image_id]) if image_prefix else images[image_id]
        f.check_path(image, "image")
        for j, sentence in enumerate(sentences):
            s = Fields(sentence, refs_source, f"{i} sentences[{j}]")
            text = s.string("sent", optional=True) or s.string("raw")
            records.append({"image": image, "text": text, "bbox": list(boxes[ann_id]), "ref_id": ref_id, "split": split})
    records.sort(key=lambda r: (order[r["split"]], r["ref_id"]))  # stable: sentence order kept
    return records
