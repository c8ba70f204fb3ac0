"""The record schemas of every registered task and the checks of raw input records, without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from xfm_pipeline.predict import TASK_SCHEMAS, PredictionInputError, schema_of
from xfm_pipeline.predict.inputs import check_record, open_image
from xfm_pipeline.predict.registry import adapter_for
from xfm_pipeline.tasks.registry import TASKS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "predict"


def _scene(color=(200, 30, 30), size=(80, 60)) -> Image.Image:
    image = Image.new("RGB", size, (245, 245, 245))
    image.paste(color, (20, 15, 50, 45))
    return image


def test_every_registered_task_has_a_schema_whose_example_is_a_valid_record():
    assert set(TASK_SCHEMAS) == set(TASKS)
    image = _scene()
    for name, schema in TASK_SCHEMAS.items():
        assert schema_of(name) is schema and schema.task == name and schema.summary
        assert {f.name for f in schema.inputs} >= {"id"} and {f.name for f in schema.outputs} >= {"id"}
        record = schema.example_record(image)
        checked = check_record(record, 0, schema)
        adapter_for(name).check(checked)
        assert all(not isinstance(v, str) or v != "<image>" for v in record.values())
    assert [f.name for f in schema_of("glue_sst2").inputs] == ["text_a", "id"]
    assert [f.name for f in schema_of("glue_mnli").inputs] == ["text_a", "text_b", "id"]
    assert [f.name for f in schema_of("glue_stsb").outputs] == ["prediction", "id"]
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        schema_of("nope")


@pytest.mark.parametrize(
    ("task", "record", "problem"),
    [
        ("nlvr", {"images": ["IMAGE"], "sentence": "s"}, "field 'images' must hold exactly 2 items, got 1"),
        ("nlvr", {"images": ["IMAGE", b"x"], "sentence": "s"}, "field 'images' item 1 cannot decode image bytes"),
        ("retrieval", {"image": "IMAGE", "text": "t", "texts": ["a"]}, "a retrieval query has image+text or image+texts or text+images, got image+text+texts"),
        ("retrieval", {"text": "t", "images": []}, "field 'images' is an empty list"),
        ("retrieval", {"image": "IMAGE", "text": "t", "top_k": 3}, "'top_k' applies to gallery queries"),
        ("glue_sst2", {"text_a": "a", "text_b": "b"}, "unexpected field(s) ['text_b'] for task 'glue_sst2'"),
        ("glue_rte", {"text_a": "a"}, "missing field(s) ['text_b']"),
        ("grounding", {"image": "IMAGE", "text": "t", "id": {"a": 1}}, "field 'id' must be a string or a number"),
    ],
)
def test_task_rules_beyond_the_field_types(task, record, problem):
    """What ``Predictor.check`` applies, without loading a model."""
    record = {k: (_scene() if v == "IMAGE" else [_scene() if i == "IMAGE" else i for i in v] if isinstance(v, list) else v) for k, v in record.items()}
    with pytest.raises((PredictionInputError, ValueError)) as caught:
        adapter_for(task).check(check_record(record, 4, schema_of(task)))
    assert problem in str(caught.value), str(caught.value)


def test_every_committed_example_query_is_a_valid_record_of_its_task():
    """examples/predict/<task>.jsonl (the predict_<task> pipelines' default queries) with images/ beside them."""
    from xfm_pipeline.pipelines.predict.nodes import image_fields

    for name, schema in TASK_SCHEMAS.items():
        lines = (EXAMPLES / f"{name}.jsonl").read_text().splitlines()
        assert lines, name
        fields = image_fields(schema)
        for number, line in enumerate(lines, start=1):
            record = json.loads(line)
            for field, kind in fields.items():
                if field in record:
                    paths = [record[field]] if kind == "image" else record[field]
                    opened = [open_image(EXAMPLES / "images" / p) for p in paths]
                    record[field] = opened[0] if kind == "image" else opened
            adapter_for(name).check(check_record(record, number, schema))


def test_open_image_says_why_a_value_is_no_image(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"no jpeg")
    with pytest.raises(ValueError, match="cannot decode image file"):
        open_image(str(broken))
    with pytest.raises(ValueError, match="is neither an existing image file nor base64 image data"):
        open_image("aGVsbG8=")  # base64 of "hello": decodes, but to no image
    with pytest.raises(ValueError, match="an image must be a file path, bytes, a PIL image or base64 text, got int"):
        open_image(3)
    assert open_image(_scene().convert("L")).mode == "RGB"
    with pytest.raises(PredictionInputError, match="record 2: field 'image'"):
        check_record({"image": 3}, 2, schema_of("captioning"))
