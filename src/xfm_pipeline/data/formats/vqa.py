"""VQA v2 annotations as X-FM reads them (docs/xfm.md#vqa).

Records: ``{"question_id": int, "image": str, "question": str, "answer": [str] (VQA: 10 human answers) |
str (VG), "answer_type"?: "yes/no"|"number"|"other", "question_type"?: str, "dataset": "vqa"|"vg"}``.
Test files may carry no answers. ``answer_list.json`` is a JSON list of candidate answer strings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfm_pipeline.data.formats.common import Fields, RecordError, as_objects, load_json, parse_all

ANSWER_TYPES = ("yes/no", "number", "other")
# X-FM gives the single answer of a Visual Genome question this weight (docs/xfm.md#vqa).
VG_ANSWER_WEIGHT = 0.5


@dataclass(frozen=True)
class VQARecord:
    """One question about an image with its (possibly empty) human answers."""

    image: str
    question: str
    answer: tuple[str, ...]  # 10 human answers for VQA, one for VG, () when unknown (test-dev/std)
    question_id: int | None = None
    dataset: str = "vqa"
    answer_type: str | None = None  # yes/no | number | other
    question_type: str | None = None


def answer_weights(record: VQARecord) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Unique answers and their training weights (docs/xfm.md#vqa).

    VQA: weight(a) = count(a) / len(answers), answers in first-seen order. VG: the single answer, 0.5.

    Raises:
        ValueError: the record has no answers.
    """
    if not record.answer:
        raise ValueError(f"question {record.question_id} has no answers to weight")
    if record.dataset == "vg":
        return (record.answer[0],), (VG_ANSWER_WEIGHT,)
    counts = Counter(record.answer)
    n = len(record.answer)
    answers = tuple(dict.fromkeys(record.answer))
    return answers, tuple(counts[a] / n for a in answers)


def _parse(f: Fields) -> VQARecord:
    answer = f.texts("answer", optional=True)
    answer_type = f.string("answer_type", optional=True)
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise f.error(f"field 'answer_type' must be one of {ANSWER_TYPES}, got {answer_type!r}")
    return VQARecord(
        image=f.path("image"),
        question=f.string("question"),
        answer=answer,
        question_id=f.integer("question_id", optional=True),
        dataset=f.string("dataset", optional=True) or "vqa",
        answer_type=answer_type,
        question_type=f.string("question_type", optional=True),
    )


def parse_vqa(data: Any, source: str = "vqa.json", require_answers: bool = False) -> list[VQARecord]:
    """VQA records from the loaded JSON list; ``require_answers`` for training/local evaluation files."""
    records = parse_all(as_objects(data, source), source, _parse)
    if require_answers:
        for i, record in enumerate(records):
            if not record.answer:
                raise RecordError(source, i, "missing field 'answer'")
    return records


def read_vqa(path: str | Path, require_answers: bool = False) -> list[VQARecord]:
    """Read a VQA annotation file."""
    return parse_vqa(load_json(path), str(path), require_answers)


def parse_answer_list(data: Any, source: str = "answer_list.json") -> list[str]:
    """The candidate answers: a JSON list of distinct non-empty strings."""
    if not isinstance(data, list) or not data:
        raise RecordError(source, None, "answer list must be a non-empty JSON list of strings")
    seen: set[str] = set()
    for i, answer in enumerate(data):
        if not isinstance(answer, str) or not answer.strip():
            raise RecordError(source, i, f"answer must be a non-empty string, got {answer!r}")
        if answer in seen:
            raise RecordError(source, i, f"duplicate answer {answer!r}")
        seen.add(answer)
    return list(data)


def read_answer_list(path: str | Path) -> list[str]:
    """Read ``answer_list.json``."""
    return parse_answer_list(load_json(path), str(path))
