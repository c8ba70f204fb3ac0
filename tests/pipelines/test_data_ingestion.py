"""data_ingestion through Kedro: a tiny shapes world saved by the raw catalog reads back like the
direct writer's files; the ``real`` switch refuses to overwrite; parameters are strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kedro_project import make_project, run_pipelines

from xfm_pipeline.config import ConfigError
from xfm_pipeline.pipelines.data_ingestion.nodes import RealSourceError, generate_shapes_world

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "images": {"pretrain": 6, "train": 10, "val": 4, "test": 6},
    "nlvr": {"train": 10, "dev": 4, "test": 4},
    "imagenet": {"train_per_class": 2, "val_per_class": 1},
    "glue": {"train": 8, "dev": 4, "test": 4},
    "pretrain": {"text_only": 10},
}


def test_real_source_refuses_to_generate():
    with pytest.raises(RealSourceError, match="would overwrite"):
        generate_shapes_world({"source": "real"})


def test_parameters_are_strict():
    with pytest.raises(ConfigError, match="data_ingestion.shapes_world.sed"):
        generate_shapes_world({"shapes_world": {"sed": 1}})
    with pytest.raises(ValueError, match="source must be one of"):
        generate_shapes_world({"source": "coco"})


def test_base_parameters_are_the_generator_defaults():
    from xfm_pipeline.config import to_dict
    from xfm_pipeline.data.shapes_world import ShapesWorldConfig

    params = yaml.safe_load((REPO / "conf/base/parameters_data_ingestion.yml").read_text())["data_ingestion"]
    assert params["source"] == "shapes_world"
    assert params["shapes_world"] == to_dict(ShapesWorldConfig())


def test_raw_catalog_image_entries_can_save_jpeg(tmp_path):
    """The pillow save_args of catalog_raw.yml must be accepted by kedro_datasets' ImageDataset
    (it passes ``format`` itself, from the file suffix)."""
    from kedro.io import DataCatalog
    from PIL import Image

    config = yaml.safe_load((REPO / "conf/base/catalog_raw.yml").read_text())
    for name in ("shapes_world_images", "imagenet_raw"):
        entry = dict(config[name], path=str(tmp_path / name))
        DataCatalog.from_config({name: entry}).save(name, {"train/x/000001": Image.new("RGB", (4, 4))})
        assert (tmp_path / name / "train/x/000001.jpg").read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.integration  # the pipeline in a Kedro session
def test_kedro_session_writes_the_raw_layer(tmp_path):
    from xfm_pipeline.data import formats
    from xfm_pipeline.data.shapes_world import generate_shapes_world as generate
    from xfm_pipeline.data.shapes_world import shapes_world_config, write_shapes_world

    project = make_project(tmp_path / "project", {"parameters_data_ingestion.yml": {"data_ingestion": {"shapes_world": {"seed": 5, **TINY}}}})
    run_pipelines(project, ["data_ingestion"])
    raw = project / "data/01_raw/shapes_world"

    direct = tmp_path / "direct"
    write_shapes_world(generate(shapes_world_config("default", {"seed": 5, **TINY})), direct)
    direct_files = sorted(p.relative_to(direct).as_posix() for p in direct.rglob("*") if p.is_file())
    raw_files = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file())
    assert raw_files == direct_files
    for rel in direct_files:
        if rel.endswith((".jpg", ".tsv")):  # same pixels, same JPEG settings -> same bytes
            assert (raw / rel).read_bytes() == (direct / rel).read_bytes(), rel
        elif rel.endswith(".json"):
            assert json.loads((raw / rel).read_text()) == json.loads((direct / rel).read_text()), rel
    for corpus in ("image_text", "region_text", "image_only", "text_only"):  # pandas writes nulls for absent keys
        assert formats.read_corpus(raw / f"pretrain/{corpus}.jsonl", corpus) == formats.read_corpus(direct / f"pretrain/{corpus}.jsonl", corpus)
    meta = json.loads((raw / "metadata.json").read_text())
    assert meta["seed"] == 5 and meta["counts"]["images"] == TINY["images"]
    assert formats.read_grounding(raw / "grounding/refcoco+.json")
    assert len(formats.read_image_folder(raw / "imagenet/train")) == 12
