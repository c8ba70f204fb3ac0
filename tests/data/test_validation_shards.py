"""Sharded pretraining corpora: every shard is a unit, validated in parallel processes with the checks,
policies and report of JSON lines; images are judged (and compared with evaluation images) by content."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile

import pytest
from validation_world import World, build_world, jpeg_bytes

from xfm_pipeline.config import from_dict
from xfm_pipeline.data.shards import Sample, iter_samples, open_shards, samples_from_records, write_shards
from xfm_pipeline.data.validation import (
    DataValidationError,
    ValidationParams,
    build_report,
    enforce_policies,
    evaluation_datasets,
    index_evaluation_images,
    publish_task,
    validate_task,
)

pytestmark = pytest.mark.integration  # spawns validation worker processes


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


def _params(world: World, **overrides) -> ValidationParams:
    return from_dict(ValidationParams, world.params(**overrides))


def _sharded_image_text(world: World, directory) -> list[dict]:
    """The world's image-text corpus as shards of 4 samples, plus three bad samples (records 4-6)."""
    records = [{k: v for k, v in r.items() if v == v} for r in world.raw["pretrain_image_text"].to_dict(orient="records")]
    samples = list(samples_from_records(records, world.image_root, "image_text"))
    evaluation_image = (world.image_root / world.raw["vqa_test"][1]["image"]).read_bytes()
    samples += [
        Sample("000000004", {"desc": "a truncated picture"}, jpeg_bytes(99)[:300]),
        Sample("000000005", {"desc": "a test picture"}, evaluation_image),  # leaked evaluation image
        Sample("000000006", {"desc": "two image sources", "image": "pretrain/0.jpg"}, jpeg_bytes(98)),
    ]
    directory.mkdir()
    write_shards(samples, directory, "image_text", max_samples=4)
    return [{"name": "image_text", "path": str(directory), "weight": 1.0}]


def test_each_shard_is_validated_in_parallel_and_only_valid_samples_are_published(world: World, tmp_path):
    sources = _sharded_image_text(world, tmp_path / "raw")
    params = _params(world, shard_workers=2)
    index = index_evaluation_images({s.name: world.raw[s.name] for s in evaluation_datasets()}, params)
    outcomes = validate_task("pretrain", {"pretrain_image_text": sources}, params, index)

    assert [(o.unit, o.n_records, o.policy) for o in outcomes] == [
        ("pretrain_image_text/shard-000000.tar", 4, "quarantine"),
        ("pretrain_image_text/shard-000001.tar", 3, "quarantine"),
    ]
    reasons = outcomes[1].reasons
    assert sorted(reasons) == [0, 1, 2] and not outcomes[0].reasons
    assert "image member is an image that decodes fully" in reasons[0][0] and "truncated" in reasons[0][0]
    assert "the image is an evaluation image (" in " ".join(reasons[1])  # found by its SHA-256
    assert "an image member and an 'image' field" in " ".join(reasons[2])

    report = build_report(outcomes, max_listed=5)
    assert report["units"]["pretrain_image_text/shard-000001.tar"]["failed"] == 3
    published = publish_task("pretrain", outcomes)
    quarantined = [json.loads(line) for line in published["pretrain_image_text_quarantine"].splitlines()]
    assert [(q["unit"], q["location"], q["record"]["desc"]) for q in quarantined] == [
        ("pretrain_image_text/shard-000001.tar", "sample 000000004", "a truncated picture"),
        ("pretrain_image_text/shard-000001.tar", "sample 000000005", "a test picture"),
        ("pretrain_image_text/shard-000001.tar", "sample 000000006", "two image sources"),
    ]
    validated = published["pretrain_image_text_jsonl_validated"]
    (tmp_path / "validated").mkdir()
    written = validated.write(tmp_path / "validated")
    assert written.samples == validated.count == 4
    assert [s.key for s in iter_samples(open_shards(tmp_path / "validated"))] == ["000000000", "000000001", "000000002", "000000003"]

    # under the fail policy the same verdicts stop the run, naming the shard and its samples
    failing = [dataclasses.replace(o, policy="fail") for o in outcomes]
    with pytest.raises(DataValidationError, match=r"unit pretrain_image_text/shard-000001.tar.*\n.*sample 000000004"):
        enforce_policies(build_report(failing, max_listed=5))


def test_an_img2dataset_download_validates_with_its_text_members_as_captions(world: World, tmp_path):
    directory = tmp_path / "cc"
    directory.mkdir()
    members = {"000010000.jpg": jpeg_bytes(201), "000010000.txt": b"a dog on a beach", "000010001.jpg": jpeg_bytes(202), "000010001.txt": b"   "}
    with tarfile.open(directory / "00000.tar", "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sources = [{"name": "cc", "path": str(directory), "weight": 1.0}]
    (outcome,) = validate_task("pretrain", {"pretrain_image_text": sources}, _params(world, shard_workers=1), {})
    assert outcome.n_records == 2 and list(outcome.reasons) == [1]
    assert "'desc' has" in outcome.reasons[1][0]
