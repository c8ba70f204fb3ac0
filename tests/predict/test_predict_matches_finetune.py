"""For every registered task, ``load_predictor(checkpoint).predict`` on raw inputs (image paths, texts) gives the
predictions the fine-tune job wrote for the same inputs with the same checkpoint, on each evaluation split.

Class labels, answers, captions and rankings must be equal; scores, probabilities and boxes equal up to float
rounding (retrieval re-ranks a query's candidates in other fusion batches than the job, which mixes queries).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from xfm_pipeline.tasks.registry import TASKS, get_task

pytestmark = pytest.mark.integration

TOL = {"rel": 1e-5, "abs": 1e-5}


def _path(root: str, relative: str) -> str:
    return os.path.join(root, relative)


def _vqa(t, split):
    records = [{"image": _path(t.image_root, r["image"]), "question": r["question"]} for r in t.data[split]]

    def check(outputs, expected):
        assert [o["answer"] for o in outputs] == [p["answer"] for p in expected]
        assert all(o["answers"][0] == o["answer"] and len(o["answers"]) == len(o["scores"]) == 5 for o in outputs)
        assert all(s == sorted(s, reverse=True) for s in (o["scores"] for o in outputs))

    return records, check


def _captioning(t, split):
    records = [{"image": _path(t.image_root, r["image"])} for r in t.data[split]]

    def check(outputs, expected):
        assert [o["caption"] for o in outputs] == [p["caption"] for p in expected]

    return records, check


def _retrieval(t, split):
    images = [_path(t.image_root, r["image"]) for r in t.data[split]]
    texts = [caption for r in t.data[split] for caption in r["caption"]]
    records = [{"image": image, "texts": texts} for image in images] + [{"text": text, "images": images} for text in texts]

    def check(outputs, expected):
        expected = [p for p in expected if p["query"] == "image"] + [p for p in expected if p["query"] == "text"]
        assert [o["top"] for o in outputs] == [p["top"] for p in expected]
        for o, p in zip(outputs, expected, strict=True):
            assert o["scores"] == pytest.approx(p["scores"], **TOL)

    return records, check


def _nlvr(t, split):
    records = [{"images": [_path(t.image_root, path) for path in r["images"]], "sentence": r["sentence"]} for r in t.data[split]]

    def check(outputs, expected):
        assert [o["prediction"] for o in outputs] == [p["prediction"] for p in expected]
        assert [o["prob_true"] for o in outputs] == pytest.approx([p["prob_true"] for p in expected], **TOL)

    return records, check


def _grounding(t, split):
    refs = [r for r in t.data["refs"] if r["split"] == split]
    records = [{"image": _path(t.image_root, r["image"]), "text": r["text"]} for r in refs]

    def check(outputs, expected):
        for o, p in zip(outputs, expected, strict=True):
            assert o["bbox"] == pytest.approx(p["pred_bbox"], **TOL)
            width, height = o["image_size"]
            assert o["bbox_normalized"] == pytest.approx([o["bbox"][0] / width, o["bbox"][1] / height, o["bbox"][2] / width, o["bbox"][3] / height])

    return records, check


def _glue(t, split):
    task = get_task(t.task)
    examples = task.examples(split, t.data)
    records = [{"text_a": ex.text_a, **({"text_b": ex.text_b} if ex.text_b is not None else {})} for ex in examples]

    def check(outputs, expected):
        if task.spec.is_regression:
            assert [o["prediction"] for o in outputs] == pytest.approx([p["prediction"] for p in expected], **TOL)
        else:
            assert [o["prediction"] for o in outputs] == [p["prediction"] for p in expected]
            assert [o["label"] for o in outputs] == [task.spec.label_names[p["prediction"]] for p in expected]

    return records, check


def _imagenet(t, split):
    from xfm_pipeline.tasks.imagenet import split_records

    root = get_task(t.task).options(_params(t)).image_root
    rows = split_records(t.data["manifest"], split, 0.1)
    records = [{"image": _path(root, r["image"])} for r in rows]

    def check(outputs, expected):
        classes = sorted({r["label"] for r in t.data["manifest"]})
        assert [o["topk"] for o in outputs] == [p["topk"] for p in expected]
        assert [o["label"] for o in outputs] == [classes[p["topk"][0]] for p in expected]
        for o, p in zip(outputs, expected, strict=True):
            assert o["topk_scores"] == pytest.approx(p["topk_scores"], **TOL)

    return records, check


def _params(t):
    from xfm_pipeline.tasks.checkpoint import load_task_params

    return load_task_params(t.checkpoint)


def _family(name: str):
    for prefix, build in (("glue_", _glue), ("imagenet", _imagenet)):
        if name.startswith(prefix):
            return build
    return {"vqa": _vqa, "captioning": _captioning, "retrieval": _retrieval, "nlvr": _nlvr, "grounding": _grounding}[name]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_predict_on_raw_inputs_gives_the_fine_tune_jobs_predictions(name, trained):
    from xfm_pipeline.predict import load_predictor

    t = trained(name)
    predictor = load_predictor(t.checkpoint, device="cpu", task=name)
    assert predictor.task == name
    splits = [split for split in get_task(name).splits if split != "train"]
    assert set(t.predictions) == set(splits)
    for split in splits:
        records, check = _family(name)(t, split)
        assert records, (name, split)
        outputs: list[dict[str, Any]] = predictor.predict(records)
        assert len(outputs) == len(records)
        check(outputs, t.predictions[split])
