"""The data_validation Kedro pipeline: wiring, catalog entries, and a run on the test world."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from validation_world import World, build_world

from xfm_pipeline.data.validation import DATASETS, TASKS, DataValidationError
from xfm_pipeline.data.validation.registry import IMAGE_ROOT_TASKS
from xfm_pipeline.pipelines.data_validation import create_pipeline

CONF = Path(__file__).resolve().parents[2] / "conf" / "base"
MEMORY = {"evaluation_image_index", "validation_gate", *(f"validation_outcomes_{t}" for t in TASKS)}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


def _catalog_config(data_dir: Path | None = None, raw: bool = True) -> dict:
    config = {}
    for name in ("catalog_raw.yml", "catalog_data_validation.yml") if raw else ("catalog_data_validation.yml",):
        config.update(yaml.safe_load((CONF / name).read_text()))
    if data_dir is not None:  # outputs under a temporary data/ directory
        for entry in config.values():
            for key in ("filepath", "path"):
                if key in entry and entry[key].startswith("data/0"):
                    entry[key] = str(data_dir / entry[key].removeprefix("data/"))
    return config


def _params(world: World, **overrides) -> dict:
    params = yaml.safe_load((CONF / "parameters_data_validation.yml").read_text())["data_validation"]
    return {**params, **world.params(), **overrides}


def test_pipeline_reads_every_raw_entry_and_names_every_node():
    pipeline = create_pipeline()
    raw_entries = {spec.catalog_entry for spec in DATASETS.values()}
    assert pipeline.inputs() == {"params:data_validation", "shapes_world_images", *raw_entries}
    readers_of_images = {n.name for n in pipeline.nodes if "shapes_world_images" in n.inputs}
    assert readers_of_images == {"index_evaluation_images", *(f"validate_{t}" for t in IMAGE_ROOT_TASKS)}
    names = [n.name for n in pipeline.nodes]
    assert len(names) == len(set(names)) and all(names)
    assert {f"validate_{t}" for t in TASKS} | {f"publish_{t}" for t in TASKS} <= set(names)
    expected = {spec.validated_entry for spec in DATASETS.values()} | {f"{name}_quarantine" for name in DATASETS}
    assert pipeline.outputs() == expected | {"validation_report_html"}
    assert "validation_report" in pipeline.all_outputs()  # also read by the policy gate


def test_every_output_has_a_catalog_entry_on_disk():
    from kedro.io import DataCatalog

    catalog = DataCatalog.from_config(_catalog_config())
    pipeline = create_pipeline()
    for name in pipeline.all_outputs() - MEMORY:
        described = catalog.get(name)._describe()
        path = described.get("filepath") or described.get("path")
        assert str(path).startswith(("data/02_intermediate/", "data/08_reporting/validation/")), (name, path)
    for name in pipeline.inputs() - {"params:data_validation"}:
        described = catalog.get(name)._describe()
        assert str(described.get("filepath") or described["path"]).startswith("data/01_raw/"), name
    assert str(catalog.get("vqa_train_quarantine")._describe()["filepath"]) == "data/02_intermediate/quarantine/vqa_train.jsonl"


def _run(world: World, tmp_path: Path, raw_overrides: dict, pipeline=None, **param_overrides):
    from kedro.io import DataCatalog
    from kedro.runner import SequentialRunner

    catalog = DataCatalog.from_config(_catalog_config(tmp_path / "data", raw=False))
    for name, spec in DATASETS.items():
        catalog[spec.catalog_entry] = raw_overrides.get(name, world.raw[name])
    catalog["shapes_world_images"] = {}  # the listing only orders nodes; files are read from the image root
    catalog["params:data_validation"] = _params(world, **param_overrides)
    pipeline = pipeline or create_pipeline()
    for name in pipeline.inputs():  # outcomes of tasks left out of a partial pipeline: nothing validated
        if name.startswith("validation_outcomes_"):
            catalog[name] = []
    SequentialRunner().run(pipeline, catalog)
    return tmp_path / "data"


@pytest.mark.integration  # the validation pipeline run on a catalog
def test_run_publishes_valid_records_quarantines_the_rest_and_reports(world: World, tmp_path: Path):
    vqa_train = world.copy("vqa_train")
    vqa_train[1]["image"] = "train/missing.jpg"
    data = _run(world, tmp_path, {"vqa_train": vqa_train})
    report = json.loads((data / "08_reporting/validation/report.json").read_text())
    assert report["summary"]["passed"] and report["summary"]["quarantined"] == 1
    assert report["units"]["vqa_train"]["quarantined"] == 1
    assert (data / "08_reporting/validation/index.html").read_text().startswith("<!DOCTYPE html>")
    validated = json.loads((data / "02_intermediate/vqa/train.json").read_text())
    assert validated == [r for i, r in enumerate(vqa_train) if i != 1]
    quarantine = [json.loads(line) for line in (data / "02_intermediate/quarantine/vqa_train.jsonl").read_text().splitlines()]
    assert [q["index"] for q in quarantine] == [1] and "no file at" in quarantine[0]["reasons"][0]
    assert (data / "02_intermediate/quarantine/vqa_val.jsonl").read_text() == ""
    frame = pd.read_json(data / "02_intermediate/pretrain/image_text.jsonl", lines=True, dtype=False)
    assert len(frame) == len(world.raw["pretrain_image_text"])
    assert (data / "02_intermediate/glue/CoLA/train.tsv").read_text() == world.raw["glue"]["CoLA/train"]
    assert len(json.loads((data / "02_intermediate/imagenet/manifest.json").read_text())) == len(world.raw["imagenet"])
    for name in DATASETS:  # every dataset: valid + quarantined = input
        unit_counts = [u for u in report["units"].values() if u["dataset"] == name]
        assert sum(u["valid"] + u["quarantined"] for u in unit_counts) == sum(u["records"] for u in unit_counts), name


@pytest.mark.integration  # the validation pipeline run on a catalog
def test_run_under_fail_policy_writes_the_report_then_stops(world: World, tmp_path: Path):
    vqa_test = world.copy("vqa_test")
    vqa_test[2]["answer_type"] = "colour"
    vqa_only = create_pipeline().only_nodes("validate_vqa", "report_validation", "enforce_validation_policies", "publish_vqa")
    with pytest.raises(DataValidationError) as err:
        _run(world, tmp_path, {"vqa_test": vqa_test}, vqa_only)
    message = str(err.value)
    assert "vqa_test_json_raw" in message and "vqa/test.json" in message and "record 2" in message
    assert "'answer_type' is one of" in message and "got 'colour'" in message
    data = tmp_path / "data"
    report = json.loads((data / "08_reporting/validation/report.json").read_text())
    assert report["summary"]["blocking"] == ["vqa_test"]
    assert not (data / "02_intermediate/vqa").exists()  # nothing published
