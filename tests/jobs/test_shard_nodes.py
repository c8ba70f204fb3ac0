"""The pretrain_shards pipeline: validated corpora -> WebDataset shards in the catalog, which the pretraining
stages read; the catalog dataset writes atomically and lists a stream's sources with their weights."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DatasetError

from xfm_pipeline.data.shards import iter_samples, open_shards
from xfm_pipeline.datasets import WebDatasetShards
from xfm_pipeline.pipelines.pretrain import create_pipeline, create_shards_pipeline
from xfm_pipeline.pipelines.pretrain.nodes import write_pretrain_shards

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def _frame(n=10):
    rows = [{"image": f"{i:03d}.jpg", "desc": [f"caption {i}"]} for i in range(n)]
    rows[3] = {"binary": None, **rows[3]}  # a null cell, as pandas writes an absent field
    return pd.DataFrame.from_records(rows)


def test_the_sharding_node_writes_at_least_min_shards_of_at_most_max_samples(pretrain_world, tmp_path):
    validation = {"image_root": str(pretrain_world / "images")}
    samples = write_pretrain_shards("image_text", _frame(), {"max_samples": 100, "min_shards": 4}, validation)
    dataset = WebDatasetShards(str(tmp_path / "shards" / "image_text"), mixed_with={"extra": {"path": "/data/cc3m", "weight": 3}})
    dataset.save(samples)
    written = open_shards(tmp_path / "shards" / "image_text")
    assert [s.samples for s in written.shards] == [3, 3, 3, 1]  # ceil(10 / 4) a shard
    first = next(iter_samples(written))
    assert first.record == {"desc": ["caption 0"]} and first.image == (pretrain_world / "images" / "000.jpg").read_bytes()
    assert dataset.load() == [
        {"name": "image_text", "path": str(tmp_path / "shards" / "image_text"), "weight": 1.0},
        {"name": "extra", "path": "/data/cc3m", "weight": 3.0, "image_root": None},
    ]
    capped = write_pretrain_shards("image_text", _frame(), {"max_samples": 2, "min_shards": 1}, validation)
    assert capped.max_samples == 2
    with pytest.raises(DatasetError, match="expected ShardSamples to write as shards, got DataFrame"):
        dataset.save(_frame())
    with pytest.raises(ValueError, match="mixed_with.bad: needs 'path'"):
        WebDatasetShards("x", mixed_with={"bad": {"weight": 1}})


def test_validated_shards_are_resharded_and_the_pretraining_stages_read_the_shards():
    pretrain_inputs = create_pipeline().inputs()
    assert {f"pretrain_{c}_shards" for c in ("image_text", "region_text", "image_only", "text_only")} <= pretrain_inputs
    assert not any(name.endswith("_jsonl_validated") for name in pretrain_inputs)
    shards = create_shards_pipeline()
    assert shards.outputs() == {f"pretrain_{c}_shards" for c in ("image_text", "region_text", "image_only", "text_only")}
    catalog = yaml.safe_load((REPO / "conf/base/catalog_pretrain.yml").read_text())
    assert catalog["pretrain_{corpus}_shards"]["type"] == "xfm_pipeline.datasets.WebDatasetShards"
