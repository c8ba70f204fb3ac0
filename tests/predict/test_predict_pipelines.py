"""The generated ``predict_<task>`` and ``evaluate_<pipeline>`` pipelines: registered for every task and task
pipeline (outside the demo chain and ``dvc.yaml``), their catalog entries, and runs in a temporary Kedro project
with tiny trained checkpoints (VQA and GLUE MRPC): predictions equal the fine-tune job's, bad queries are
quarantined with their reason, and evaluation reproduces the job's metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from xfm_pipeline.tasks.registry import PIPELINES, TASKS

REPO = Path(__file__).resolve().parents[2]


def test_every_task_and_task_pipeline_has_its_generated_pipeline_outside_the_demo_chain():
    from xfm_pipeline.pipeline_registry import register_pipelines
    from xfm_pipeline.predict import TASK_SCHEMAS

    pipelines = register_pipelines()
    assert {f"predict_{task}" for task in TASKS} | {f"evaluate_{name}" for name in PIPELINES} <= set(pipelines)
    default = {node.name for node in pipelines["__default__"].nodes}
    for task in TASKS:
        (node,) = pipelines[f"predict_{task}"].nodes
        assert node.name == f"predict_{task}" and node.name not in default
        with_images = any(f.type in ("image", "image_list") for f in TASK_SCHEMAS[task].inputs)
        expected = {f"predict_{task}_queries", "params:predict"} | ({f"predict_{task}_images"} if with_images else set())
        assert set(node.inputs) == expected and set(node.outputs) == {f"predict_{task}_predictions", f"predict_{task}_quarantine"}
    for name, (_, spec) in PIPELINES.items():
        evaluate = pipelines[f"evaluate_{name}"]
        assert {node.name for node in evaluate.nodes} == {f"evaluate_{name}.evaluate"} and not default & {f"evaluate_{name}.evaluate"}
        assert evaluate.inputs() == {*spec.data.values(), "params:image_root", "params:evaluate", *(f"params:{b}" for b in spec.param_layers())}
        assert evaluate.outputs() == {f"evaluate_{name}_metrics", f"evaluate_{name}_predictions"}
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert not [s for s in stages if s.startswith(("predict_", "evaluate_"))]


def test_the_catalog_puts_their_inputs_and_outputs_where_the_docs_say():
    """These names also match the fine-tune and validation patterns; the more specific ones must win."""
    from xfm_pipeline.dvc_stages import catalog_paths

    path_of = catalog_paths(REPO)
    assert path_of("predict_vqa_queries") == "examples/predict/vqa.jsonl"
    assert path_of("predict_imagenet_images") == "examples/predict/images"
    assert path_of("predict_vqa_predictions") == "data/07_model_output/predict_vqa/predictions.jsonl"
    assert path_of("predict_vqa_quarantine") == "data/07_model_output/predict_vqa/quarantine.jsonl"
    assert path_of("evaluate_finetune_vqa_metrics") == "data/08_reporting/evaluate/finetune_vqa.json"
    assert path_of("evaluate_finetune_vqa_predictions") == "data/07_model_output/evaluate_finetune_vqa/predictions.json"
    assert path_of("finetune_vqa_predictions") == "data/07_model_output/finetune_vqa/predictions.json"  # unchanged


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def project(tmp_path_factory, trained, shapes_world):
    """A Kedro project whose validated data are the tiny jobs' data and whose fine-tune checkpoints are theirs:
    ``data/02_intermediate/vqa/*.json``, ``glue/MRPC/*.tsv`` and ``data/06_models/finetune_{vqa,glue_mrpc}``."""
    from kedro_project import make_project

    vqa, mrpc = trained("vqa"), trained("glue_mrpc")
    root = make_project(tmp_path_factory.mktemp("predict_project") / "project")
    (root / "data").mkdir()
    (root / "data" / "01_raw").symlink_to(shapes_world.root / "data" / "01_raw")  # params:image_root is relative
    validated = root / "data" / "02_intermediate"
    (validated / "vqa").mkdir(parents=True)
    for key, value in vqa.data.items():
        (validated / "vqa" / f"{key}.json").write_text(json.dumps(value))
    (validated / "glue" / "MRPC").mkdir(parents=True)
    for key, text in mrpc.data["glue"].items():
        (validated / "glue" / f"{key}.tsv").write_text(text)
    for pipeline, t in (("finetune_vqa", vqa), ("finetune_glue_mrpc", mrpc)):
        shutil.copytree(t.checkpoint, root / "data" / "06_models" / pipeline)
    return root


@pytest.mark.integration
def test_predict_vqa_writes_the_jobs_answers_and_quarantines_bad_queries_with_their_reason(project, trained, shapes_world):
    from kedro_project import run_pipelines

    vqa = trained("vqa")
    good = [{"id": r["question_id"], "image": r["image"], "question": r["question"]} for r in vqa.data["val"]]
    bad = [
        ('{"image": "val/', "not a JSON record"),
        (json.dumps({"image": "val/no_such.jpg", "question": "what colour?"}), "image 'val/no_such.jpg' is not in the images folder"),
        (json.dumps({"image": good[0]["image"]}), "missing field(s) ['question']"),
        (json.dumps({"image": good[0]["image"], "text": "the red square"}), "unexpected field(s) ['text']"),
        (json.dumps(["a", "list"]), "a query must be a JSON object, got list"),
    ]
    queries = [json.dumps(good[0]), bad[0][0], *[json.dumps(g) for g in good[1:]], *[line for line, _ in bad[1:]], ""]
    (project / "examples" / "predict").mkdir(parents=True, exist_ok=True)
    (project / "examples" / "predict" / "vqa.jsonl").write_text("\n".join(queries) + "\n")
    local = {"predict_vqa_images": {"type": "partitions.PartitionedDataset", "path": shapes_world.image_root, "dataset": "pillow.ImageDataset"}}
    (project / "conf" / "local" / "catalog.yml").write_text(yaml.safe_dump(local))
    run_pipelines(project, ["predict_vqa"])

    out = project / "data" / "07_model_output" / "predict_vqa"
    predictions = _lines(out / "predictions.jsonl")
    assert [p["line"] for p in predictions] == [1, 3, 4][: len(good)]
    assert [p["id"] for p in predictions] == [g["id"] for g in good]
    assert [p["answer"] for p in predictions] == [p["answer"] for p in vqa.predictions["val"]]
    quarantined = _lines(out / "quarantine.jsonl")
    assert [q["location"] for q in quarantined] == ["line 2", "line 5", "line 6", "line 7", "line 8"]
    for entry, (line, reason) in zip(quarantined, bad, strict=True):
        assert entry["dataset"] == "predict_vqa_queries" and len(entry["reasons"]) == 1 and reason in entry["reasons"][0], entry
        assert entry["record"] == (line if reason == "not a JSON record" else json.loads(line))


@pytest.mark.integration
def test_evaluate_reproduces_the_jobs_metrics_and_predictions(project, trained):
    from kedro_project import run_pipelines

    run_pipelines(project, ["evaluate_finetune_vqa", "evaluate_finetune_glue_mrpc"])
    for pipeline, task in (("finetune_vqa", "vqa"), ("finetune_glue_mrpc", "glue_mrpc")):
        t = trained(task)
        metrics = json.loads((project / "data" / "08_reporting" / "evaluate" / f"{pipeline}.json").read_text())
        assert metrics == {f"{split}/{k}": pytest.approx(v) for split, values in t.metrics.items() for k, v in values.items()}
        predictions = json.loads((project / "data" / "07_model_output" / f"evaluate_{pipeline}" / "predictions.json").read_text())
        assert predictions == t.predictions


@pytest.mark.integration
def test_predict_glue_runs_on_texts_alone_and_a_checkpoint_of_another_task_is_refused(project, trained):
    from kedro_project import run_pipelines

    from xfm_pipeline.tasks.registry import get_task

    mrpc = trained("glue_mrpc")
    examples = get_task("glue_mrpc").examples("val", mrpc.data)
    lines = [json.dumps({"text_a": ex.text_a, "text_b": ex.text_b}) for ex in examples] + [json.dumps({"text_a": "only one text"})]
    (project / "examples" / "predict").mkdir(parents=True, exist_ok=True)
    (project / "examples" / "predict" / "glue_mrpc.jsonl").write_text("\n".join(lines) + "\n")
    run_pipelines(project, ["predict_glue_mrpc"])
    out = project / "data" / "07_model_output" / "predict_glue_mrpc"
    assert [p["prediction"] for p in _lines(out / "predictions.jsonl")] == [p["prediction"] for p in mrpc.predictions["val"]]
    assert "missing field(s) ['text_b']" in _lines(out / "quarantine.jsonl")[0]["reasons"][0]

    (project / "conf" / "local" / "parameters_predict.yml").write_text(
        yaml.safe_dump({"predict": {"checkpoint": str(project / "data/06_models/finetune_vqa")}})
    )
    try:
        with pytest.raises(Exception, match="holds a 'vqa' checkpoint, not 'glue_mrpc'"):
            run_pipelines(project, ["predict_glue_mrpc"])
    finally:
        (project / "conf" / "local" / "parameters_predict.yml").unlink()
