"""Each corruption is caught under both policies, with a message naming file, record and problem.

``fail``: one DataValidationError naming the catalog entry, the file, the record index and the failed
expectation; nothing is published. ``quarantine``: the bad record goes to the quarantine text with
its reasons, the others are published untouched, and valid + quarantined = input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from validation_world import H, W, World, build_world

from xfm_pipeline.config import from_dict
from xfm_pipeline.data.validation import (
    DATASETS,
    DataValidationError,
    ValidationParams,
    build_report,
    enforce_policies,
    evaluation_datasets,
    index_evaluation_images,
    publish_task,
    validate_task,
)
from xfm_pipeline.data.validation.images import clear_cache


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


@dataclass(frozen=True)
class Case:
    dataset: str
    corrupt: Callable[[World, Any], None]  # mutates the dataset copy; the bad record is index BAD
    problem: str  # expected in the reason
    bad: tuple[int, ...] = (2,)


BAD = 2


def _set(field: str, value: Any) -> Callable[[World, Any], None]:
    def corrupt(world: World, records: Any) -> None:
        if isinstance(records, pd.DataFrame):
            records.loc[BAD, field] = value
        else:
            records[BAD][field] = value

    return corrupt


def _truncated(world: World, records: list) -> None:
    path = world.image_root / "train/truncated.jpg"
    data = (world.image_root / records[BAD]["image"]).read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    records[BAD]["image"] = "train/truncated.jpg"


def _not_an_image(world: World, records: list) -> None:
    (world.image_root / "train/notes.jpg").write_text("these are not pixels\n")
    records[BAD]["image"] = "train/notes.jpg"


def _dotdot(world: World, records: list) -> None:
    outside = world.root / "outside.jpg"  # exists, but outside the image root
    outside.write_bytes((world.image_root / records[BAD]["image"]).read_bytes())
    records[BAD]["image"] = "train/../../outside.jpg"


def _absolute(world: World, records: list) -> None:
    records[BAD]["image"] = str((world.image_root / records[BAD]["image"]).resolve())


def _delete(field: str) -> Callable[[World, list], None]:
    def corrupt(world: World, records: list) -> None:
        del records[BAD][field]

    return corrupt


def _duplicate_question_id(world: World, records: list) -> None:
    records[BAD]["question_id"] = records[0]["question_id"]


def _eval_image(world: World, frame: pd.DataFrame) -> None:
    frame.loc[BAD, "image"] = world.raw["vqa_test"][1]["image"]  # an evaluation image


CASES = {
    "truncated_jpeg": Case("vqa_train", _truncated, "truncated image"),
    "non_image_file": Case("vqa_train", _not_an_image, "not an image"),
    "missing_file": Case("vqa_train", _set("image", "train/no_such_file.jpg"), "no file at"),
    "dotdot_escape": Case("vqa_train", _dotdot, "contains '..'"),
    "absolute_path": Case("vqa_train", _absolute, "absolute path"),
    "box_outside_image": Case("grounding", _set("bbox", [W - 10, 5, 20, 10]), "box ends inside the image (x + w <= image width)"),
    "box_below_image": Case("grounding", _set("bbox", [5, H - 5, 10, 10]), "box ends inside the image (y + h <= image height)"),
    "zero_size_box": Case("grounding", _set("bbox", [5, 5, 0, 10]), "box width w is positive"),
    "missing_field": Case("vqa_train", _delete("question"), "field 'question' is present"),
    "wrong_type": Case("vqa_val", _set("question_id", "201"), "field 'question_id' is present and an integer; got 'string'"),
    "duplicate_id": Case("vqa_val", _duplicate_question_id, "question_id is unique", bad=(0, 2)),
    "empty_text": Case("retrieval_train", _set("caption", "   "), "'caption' has 1 to"),
    "label_outside_set": Case("nlvr_train", _set("label", "maybe"), "'label' is one of 'True', 'False'; got 'maybe'"),
    "eval_image_in_pretraining": Case("pretrain_image_only", _eval_image, "the image is an evaluation image ("),
}


def _run(world: World, case: Case, policy: str):
    clear_cache()  # corrupted files are rewritten in place between cases
    spec = DATASETS[case.dataset]
    raw = world.copy(case.dataset)
    case.corrupt(world, raw)
    params = from_dict(ValidationParams, world.params(default_policy=policy))
    index = None
    if spec.task == "pretrain":
        index = index_evaluation_images({s.name: world.raw[s.name] for s in evaluation_datasets()}, params)
    outcomes = validate_task(spec.task, {case.dataset: raw}, params, index)
    return raw, params, outcomes


def _records(raw: Any) -> list:
    return json.loads(raw.to_json(orient="records")) if isinstance(raw, pd.DataFrame) else raw


@pytest.mark.parametrize("name", list(CASES))
def test_fail_policy_stops_with_one_actionable_message(world: World, name: str):
    case = CASES[name]
    _, params, outcomes = _run(world, case, "fail")
    report = build_report(outcomes)
    assert report["summary"]["blocking"] == [case.dataset]
    with pytest.raises(DataValidationError) as err:
        enforce_policies(report)
    message = str(err.value)
    spec = DATASETS[case.dataset]
    assert spec.catalog_entry in message
    assert params.source_of(case.dataset) in message
    for index in case.bad:
        assert f"record {index}" in message
    assert case.problem in message
    assert message.count("  record ") == len(case.bad), message  # only the bad records are listed
    with pytest.raises(DataValidationError):
        publish_task(spec.task, outcomes)  # nothing is published under a violated fail policy


@pytest.mark.parametrize("name", list(CASES))
def test_quarantine_policy_keeps_valid_records_and_explains_the_rest(world: World, name: str):
    case = CASES[name]
    raw, _, outcomes = _run(world, case, "quarantine")
    (outcome,) = outcomes
    assert outcome.bad_indices == list(case.bad)
    assert enforce_policies(build_report(outcomes))["passed"]
    spec = DATASETS[case.dataset]
    published = publish_task(spec.task, outcomes)
    lines = [json.loads(line) for line in published[f"{case.dataset}_quarantine"].splitlines()]
    assert [q["index"] for q in lines] == list(case.bad)
    for q in lines:
        assert any(case.problem in reason for reason in q["reasons"]), q["reasons"]
    records = _records(raw)
    valid = _records(published[spec.validated_entry])
    expected_valid = [r for i, r in enumerate(records) if i not in case.bad]
    assert valid == expected_valid  # the others, untouched
    assert [q["record"] for q in lines] == [_records(raw)[i] for i in case.bad]
    assert len(valid) + len(lines) == len(records)  # valid + quarantined = input


def test_cases_cover_the_required_corruptions():
    required = {
        "truncated_jpeg",
        "non_image_file",
        "missing_file",
        "dotdot_escape",
        "absolute_path",
        "box_outside_image",
        "zero_size_box",
        "missing_field",
        "wrong_type",
        "duplicate_id",
        "empty_text",
        "label_outside_set",
        "eval_image_in_pretraining",
    }
    assert required <= set(CASES)


def test_clean_datasets_of_the_cases_pass(world: World, tmp_path: Path):
    params = from_dict(ValidationParams, world.params(default_policy="fail"))
    index = index_evaluation_images({s.name: world.raw[s.name] for s in evaluation_datasets()}, params)
    for name in sorted({c.dataset for c in CASES.values()}):
        spec = DATASETS[name]
        outcomes = validate_task(spec.task, {name: world.copy(name)}, params, index if spec.task == "pretrain" else None)
        assert [o.bad_indices for o in outcomes] == [[]], name
