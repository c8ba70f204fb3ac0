"""The serving module's parts without a model: names, requirements, signatures, DataFrame rows, error mapping."""

from __future__ import annotations

import math

import pytest


def test_registered_names_per_pipeline():
    from xfm_pipeline.serving import registered_model_name
    from xfm_pipeline.tasks.registry import PIPELINES

    names = {p: registered_model_name(p) for p in PIPELINES}
    assert names["finetune_vqa"] == "xfm-vqa" and names["finetune_retrieval_coco"] == "xfm-retrieval-coco"
    assert names["finetune_glue_sst2"] == "xfm-glue-sst2" and names["eval_retrieval_zeroshot"] == "xfm-eval-retrieval-zeroshot"
    assert len(set(names.values())) == len(names)  # one registered model per pipeline


def test_requirements_are_the_pyproject_runtime_pins():
    import tomllib
    from pathlib import Path

    from xfm_pipeline.serving.registry import pip_requirements

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    pins = pip_requirements()
    assert "torch==2.14.1" in pins and not any("pytest" in p or "extra" in p for p in pins)
    assert len(pins) == len(pyproject["project"]["dependencies"])


def test_every_task_schema_has_a_signature():
    from mlflow.types import DataType
    from mlflow.types.schema import Array

    from xfm_pipeline.predict import TASK_SCHEMAS
    from xfm_pipeline.serving.signature import column_type, model_signature

    for task, schema in TASK_SCHEMAS.items():
        signature = model_signature(schema)
        assert signature.inputs.input_names() == [f.name for f in schema.inputs], task
        assert signature.outputs.input_names() == [f.name for f in schema.outputs], task
    assert column_type("image") == DataType.string and column_type("integer") == DataType.long
    assert column_type("image_list") == Array(DataType.string) and column_type("number_list") == Array(DataType.double)
    with pytest.raises(KeyError, match="'tensor' has no MLflow column type"):
        column_type("tensor")


def test_vqa_input_example_is_the_schema_example_with_a_decodable_image():
    from xfm_pipeline.predict import schema_of
    from xfm_pipeline.predict.inputs import open_image
    from xfm_pipeline.serving.signature import EXAMPLE_IMAGE_SIZE, input_example

    frame = input_example(schema_of("vqa"))
    assert list(frame.columns) == ["image", "question"] and frame.loc[0, "question"] == schema_of("vqa").example["question"]
    assert open_image(frame.loc[0, "image"]).size == (EXAMPLE_IMAGE_SIZE, EXAMPLE_IMAGE_SIZE)


def test_dataframe_rows_become_plain_records_without_missing_cells():
    import numpy as np
    import pandas as pd

    from xfm_pipeline.serving.pyfunc import dataframe_records

    frame = pd.DataFrame({"question": ["a", "b"], "top_k": [3.0, math.nan], "images": [np.array(["x", "y"]), None]})
    frame["n"] = np.array([1, 2], dtype=np.int64)
    records = dataframe_records(frame)
    assert records == [{"question": "a", "top_k": 3.0, "images": ["x", "y"], "n": 1}, {"question": "b", "n": 2}]
    assert type(records[0]["n"]) is int and type(records[0]["images"]) is list


def test_a_bad_record_becomes_an_invalid_parameter_error():
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from xfm_pipeline.predict import PredictionInputError
    from xfm_pipeline.serving.pyfunc import XFMPythonModel

    class Rejecting:
        def predict(self, records):
            raise PredictionInputError(0, f"field 'question' is empty ({records})")

    model = XFMPythonModel()
    model.predictor = Rejecting()
    with pytest.raises(MlflowException) as raised:
        model.predict(None, pd.DataFrame([{"question": " "}]))
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE" and raised.value.get_http_status_code() == 400
    assert raised.value.message == "record 0: field 'question' is empty ([{'question': ' '}])"


@pytest.mark.integration  # an `mlflow models serve` subprocess that fails to start
def test_a_server_that_cannot_start_raises_with_its_log(tmp_path):
    import os

    from xfm_pipeline.serving import ScoringServer

    server = ScoringServer(
        "models:/xfm-nothing/latest", env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}, log_path=tmp_path / "log"
    )
    with pytest.raises(RuntimeError, match=r"(?s)models serve -m models:/xfm-nothing/latest .* exited with 1:.*xfm-nothing"):
        server.start()
    assert server.process.poll() is not None and not server.ping()
