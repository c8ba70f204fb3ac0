"""The REFER importer (refs(unc).p + instances.json) and its restricted unpickler."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from xfm_pipeline.data.formats import RecordError, UnsafePickleError, import_refer, load_plain_pickle, parse_grounding

REFS = [
    {
        "ref_id": 7, "ann_id": 100, "image_id": 581857, "split": "testB", "category_id": 1,
        "file_name": "COCO_train2014_000000581857_100.jpg",
        "sentences": [{"sent": "lady in red", "raw": "Lady in red.", "sent_id": 1}, {"sent": "woman left", "raw": "woman left", "sent_id": 2}],
    },
    {
        "ref_id": 3, "ann_id": 101, "image_id": 98304, "split": "train", "category_id": 2,
        "file_name": "COCO_train2014_000000098304_101.jpg",
        "sentences": [{"raw": "The dog", "sent_id": 3}],
    },
    {
        "ref_id": 9, "ann_id": 101, "image_id": 98304, "split": "test", "category_id": 2,  # not a RefCOCO+ split
        "sentences": [{"sent": "ignored", "sent_id": 4}],
    },
]  # fmt: skip
INSTANCES = {
    "images": [
        {"id": 581857, "file_name": "COCO_train2014_000000581857.jpg", "height": 480, "width": 640},
        {"id": 98304, "file_name": "COCO_train2014_000000098304.jpg", "height": 480, "width": 640},
    ],
    "annotations": [
        {"id": 100, "image_id": 581857, "bbox": [10.5, 20.0, 100.0, 200.25], "category_id": 1},
        {"id": 101, "image_id": 98304, "bbox": [1, 2, 3, 4], "category_id": 2},
    ],
    "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
}


@pytest.fixture
def refer_dir(tmp_path):
    with open(tmp_path / "refs(unc).p", "wb") as f:
        pickle.dump(REFS, f, protocol=2)
    (tmp_path / "instances.json").write_text(json.dumps(INSTANCES))
    return tmp_path


def test_import_refer(refer_dir):
    records = import_refer(refer_dir / "refs(unc).p", refer_dir / "instances.json", image_prefix="train2014")
    assert records == [
        {"image": "train2014/COCO_train2014_000000098304.jpg", "text": "The dog", "bbox": [1.0, 2.0, 3.0, 4.0], "ref_id": 3, "split": "train"},
        {"image": "train2014/COCO_train2014_000000581857.jpg", "text": "lady in red", "bbox": [10.5, 20.0, 100.0, 200.25], "ref_id": 7, "split": "testB"},
        {"image": "train2014/COCO_train2014_000000581857.jpg", "text": "woman left", "bbox": [10.5, 20.0, 100.0, 200.25], "ref_id": 7, "split": "testB"},
    ]
    parsed = parse_grounding(json.loads(json.dumps(records)))
    assert [r.split for r in parsed] == ["train", "testB", "testB"]


def test_import_refer_missing_annotation(refer_dir):
    refs = [dict(REFS[0], ann_id=999)]
    with open(refer_dir / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f)
    with pytest.raises(RecordError, match=r"refs\(unc\)\.p: record 0: ann_id 999"):
        import_refer(refer_dir / "refs(unc).p", refer_dir / "instances.json")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.p"
    with open(path, "wb") as f:
        pickle.dump([{"ref_id": 1}, _Evil()], f)
    with pytest.raises(UnsafePickleError, match="system"):
        load_plain_pickle(path)


def test_restricted_unpickler_accepts_plain_data(tmp_path):
    data = {"a": [1, 2.5, None, True], "b": (1, "x"), "c": {3, 4}, "d": frozenset({5})}
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"plain{protocol}.p"
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=protocol)
        assert load_plain_pickle(path) == data
