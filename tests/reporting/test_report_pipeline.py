"""The report pipeline with the project's catalog: tolerant inputs (pipelines and the ablation not run), atomic
report directory, and runs where only one fine-tune pipeline has been run (the others are listed as not run),
with and without the ablation table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from kedro.io import DataCatalog, DatasetError
from PIL import Image

from xfm_pipeline.datasets import OptionalJSONDataset
from xfm_pipeline.pipelines.report import create_pipeline
from xfm_pipeline.pipelines.report.datasets import ReportDirectoryDataset
from xfm_pipeline.tasks.registry import PIPELINES

CONF = Path(__file__).resolve().parents[2] / "conf" / "base"


def project_catalog() -> DataCatalog:
    config = {}
    for path in sorted(CONF.glob("catalog*.yml")):
        config.update(yaml.safe_load(path.read_text()) or {})
    return DataCatalog.from_config(config)


def test_optional_json_dataset_loads_none_when_missing_and_saves_atomically(tmp_path):
    ds = OptionalJSONDataset(str(tmp_path / "sub" / "m.json"))
    assert ds.load() is None and not ds.exists()
    ds.save({"val/x": 1.0})
    assert ds.load() == {"val/x": 1.0} and ds.exists()
    with pytest.raises(DatasetError, match="not JSON serializable"):
        ds.save({"val/x": object()})
    assert ds.load() == {"val/x": 1.0}
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.json"]


def test_report_directory_is_replaced_as_a_whole(tmp_path):
    ds = ReportDirectoryDataset(str(tmp_path / "report"))
    ds.save({"index.html": "<p>one</p>", "plots/a.png": b"\x89PNG a", "examples/old.png": b"old"})
    assert ds.load() == {"index.html": b"<p>one</p>", "plots/a.png": b"\x89PNG a", "examples/old.png": b"old"}
    ds.save({"index.html": "<p>two</p>", "plots/a.png": b"\x89PNG b"})
    assert ds.load() == {"index.html": b"<p>two</p>", "plots/a.png": b"\x89PNG b"}  # stale example gone
    with pytest.raises(DatasetError, match="expected bytes or str"):  # fails after writing index.html: a crash
        ds.save({"index.html": "<p>three</p>", "plots/bad.png": 3})
    with pytest.raises(DatasetError, match="escapes the report directory"):
        ds.save({"index.html": "x", "../escape.html": "x"})
    assert ds.load() == {"index.html": b"<p>two</p>", "plots/a.png": b"\x89PNG b"}  # the previous report, intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary directories left
    assert not (tmp_path / "escape.html").exists()


def test_report_consumes_every_fine_tune_output_as_an_edge():
    catalog = project_catalog()
    report = create_pipeline()
    for name in PIPELINES:
        for kind in ("metrics", "history"):
            assert isinstance(catalog.get(f"{name}_{kind}"), OptionalJSONDataset), (name, kind)
            assert f"{name}_{kind}" in report.inputs(), (name, kind)  # ordered after the fine-tunes
    from xfm_pipeline.pipeline_registry import register_pipelines

    assert isinstance(catalog.get("ablation_table"), OptionalJSONDataset) and "ablation_table" in report.inputs()
    default = register_pipelines()["__default__"]
    order = [n.name for n in default.nodes]
    assert max(order.index(f"{name}.finetune") for name in PIPELINES) < order.index("report.build_results_table")


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_validated_data() -> None:
    """Validated records of every task: a grounding split with one expression, the others empty (no baseline)."""
    write_json(
        Path("data/02_intermediate/grounding/refcoco+.json"),
        [
            {"image": "val/000001.jpg", "text": "the square", "bbox": [8, 8, 20, 20], "ref_id": 1, "split": "val"},
            {"image": "train/000002.jpg", "text": "the circle", "bbox": [8, 8, 20, 20], "ref_id": 2, "split": "train"},
        ],
    )
    for task, split in [(t, s) for t in ("vqa", "retrieval", "captioning", "nlvr") for s in ("train", "val", "test")] + [
        ("vqa", "answer_list"),
        ("nlvr", "dev"),
    ]:
        write_json(Path(f"data/02_intermediate/{task}/{split}.json"), [])
    for split in ("val_gt", "test_gt"):
        write_json(Path(f"data/02_intermediate/captioning/{split}.json"), {"images": [], "annotations": []})
    write_json(Path("data/02_intermediate/imagenet/manifest.json"), [])
    Path("data/02_intermediate/glue/SST-2").mkdir(parents=True)
    Path("data/02_intermediate/glue/SST-2/train.tsv").write_text("sentence\tlabel\na\t1\n")


@pytest.mark.integration  # the report pipeline run on the project's catalog
@pytest.mark.parametrize("with_ablation", [False, True])
def test_report_runs_when_only_grounding_was_run(tmp_path, monkeypatch, with_ablation):
    from ablation_fixture import TABLE
    from kedro.runner import SequentialRunner

    monkeypatch.chdir(tmp_path)  # the catalog's paths are relative to the project root
    root = Path("data/01_raw/shapes_world/images")
    (root / "val").mkdir(parents=True)
    Image.new("RGB", (48, 48), (240, 240, 240)).save(root / "val/000001.jpg")
    history = [{"image_text/loss_itc": 2.0 - 0.01 * s, "image_text/loss": 3.0 - 0.01 * s, "step": s} for s in range(1, 41)]
    write_json(Path("data/08_reporting/pretrain_history.json"), history)
    write_json(
        Path("data/08_reporting/pretrain_metrics.json"),
        {"losses": {"image_text/loss": {"first": 3.0, "last": 2.6}, "image_text/loss_itc": {"first": 2.0, "last": 1.6}}},
    )
    write_json(Path("data/08_reporting/pretrain_vision_metrics.json"), {"losses": {"region_text/loss": {"first": 2.0, "last": 0.9}}})
    write_json(Path("data/08_reporting/pretrain_bbox_metrics.json"), {"step": 0, "resumed_from": None, "losses": {}})
    write_json(Path("data/08_reporting/metrics/finetune_grounding.json"), {"val/grounding_acc": 50.0})
    write_json(Path("data/08_reporting/history/finetune_grounding.json"), [{"train/loss": 1.0 / s, "step": s} for s in range(1, 11)])
    write_json(
        Path("data/07_model_output/finetune_grounding/predictions.json"),
        {"val": [{"index": 0, "ref_id": 1, "image": "val/000001.jpg", "text": "the square", "pred_bbox": [10, 10, 20, 20]}]},
    )
    write_validated_data()
    if with_ablation:
        write_json(Path("data/08_reporting/ablation.json"), TABLE)

    catalog = project_catalog()
    catalog["params:image_root"] = str(root)
    SequentialRunner().run(create_pipeline(), catalog)

    report = Path("data/08_reporting/report")
    page = (report / "index.html").read_text()
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (report / src).is_file(), src
    shipped = {p.relative_to(report).as_posix() for p in report.rglob("*.png")}
    assert shipped == set(re.findall(r'<img src="([^"]+)"', page))
    assert {"plots/pretrain_losses.png", "plots/finetune_losses.png", "plots/headline_metrics.png", "examples/finetune_grounding_01.png"} <= shipped
    assert ("plots/ablation.png" in shipped) == with_ablation
    not_run = sorted(set(PIPELINES) - {"finetune_grounding"})
    for name in not_run:
        assert f"<code>{name}</code>" in page, name
    results = json.loads(Path("data/08_reporting/results.json").read_text())
    assert results["not_run"] == not_run
    assert "<td>finetune_grounding</td><td>val/grounding_acc</td><td class=num>50.00</td>" in page  # the collapsed full list
    assert "<td>finetune_grounding</td><td>val/grounding_acc</td><td class=num>50.00</td><td>100.00 mean training box</td>" in page  # summary
    markdown = Path("data/08_reporting/results.md").read_text()
    assert "## Pipelines not run" in markdown
    if with_ablation:
        assert results["ablation"] == TABLE and "+5.00 vs init; +2.00 vs warm-up" in markdown
        assert "<td>finetune_vqa</td><td>test/vqa_acc</td><td class=num>40.00 ± 1.00</td>" in page
    else:
        assert results["ablation"] is None and "Not run: run `kedro run --pipeline ablation`." in markdown
    scores = {p.name: json.loads(p.read_text()) for p in Path("data/08_reporting/scores").iterdir()}
    assert scores == {"finetune_grounding.json": {"val": 50.0}, "pretrain.json": {"image_text": 2.6}, "pretrain_vision.json": {"region_text": 0.9}}
