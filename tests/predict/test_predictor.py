"""``xfm_pipeline.predict`` on untrained tiny task checkpoints: image inputs in every accepted form, batching,
the ``id`` echo, and the errors for bad records and unusable checkpoints."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from xfm_pipeline.model.checkpoint import CheckpointError
from xfm_pipeline.predict import TASK_SCHEMAS, PredictionInputError, load_predictor

pytestmark = pytest.mark.integration  # tiny task models predict

ANSWERS = ["red", "blue", "green", "two", "yes", "no"]
CLASSES = ["circle", "square", "star"]


def _write(directory: Path, task: str, init: Path, options: dict, data: dict) -> Path:
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer, load_pretrained
    from xfm_pipeline.tasks.base import TaskParams
    from xfm_pipeline.tasks.checkpoint import write_task_checkpoint
    from xfm_pipeline.tasks.registry import get_task

    params = TaskParams(image_size=64, eval_batch_size=2, max_tokens=30, options=options)
    model = get_task(task).build_model(load_pretrained(init), params, data)
    directory.mkdir()
    write_task_checkpoint(model.eval(), directory, params, load_checkpoint_tokenizer(init))
    return directory


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_checkpoint_without_dropout):
    """Untrained VQA and ImageNet task checkpoints (the ImageNet one built from a manifest's classes)."""
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("predictor_checkpoints")
    manifest = [{"image": f"train/{c}/1.jpg", "label": c, "split": "train"} for c in reversed(CLASSES)]
    return {
        "vqa": _write(root / "vqa", "vqa", tiny_checkpoint_without_dropout, {"augment": False, "k_test": 4}, {"answer_list": ANSWERS}),
        "imagenet": _write(root / "imagenet", "imagenet", tiny_checkpoint_without_dropout, {}, {"manifest": manifest}),
    }


@pytest.fixture(scope="module")
def vqa(checkpoints):
    return load_predictor(checkpoints["vqa"], device="cpu")


def _scene(color=(200, 30, 30), size=(80, 60)) -> Image.Image:
    image = Image.new("RGB", size, (245, 245, 245))
    image.paste(color, (20, 15, 50, 45))
    return image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # lossless: every form below decodes to the same pixels
    return buffer.getvalue()


def test_the_predictor_knows_its_task_schema_and_device(vqa, checkpoints):
    assert vqa.task == "vqa" and vqa.schema is TASK_SCHEMAS["vqa"] and str(vqa.device) == "cpu"
    assert vqa.batch_size == 2 and vqa.source == str(checkpoints["vqa"])


def test_an_image_as_path_bytes_pil_base64_or_data_uri_gives_the_same_answer(vqa, tmp_path):
    image = _scene()
    path = tmp_path / "scene.png"
    path.write_bytes(_png(image))
    encoded = base64.b64encode(_png(image)).decode()
    forms = [image, str(path), path, _png(image), encoded, "data:image/png;base64," + encoded]
    outputs = vqa.predict([{"image": form, "question": "what colour is the square?"} for form in forms])
    assert all(o == outputs[0] for o in outputs), outputs
    first = outputs[0]
    assert first["answer"] in ANSWERS and first["answers"][0] == first["answer"] and len(first["answers"]) == 4  # k_test caps top_k
    assert first["scores"] == sorted(first["scores"], reverse=True) and all(s < 0 for s in first["scores"])  # log-likelihoods
    assert json.loads(json.dumps(outputs)) == outputs


def test_top_k_the_id_echo_and_the_batch_size(vqa):
    records = [
        {"image": _scene(), "question": "what colour is the square?", "top_k": 2, "id": "q-1"},
        {"image": _scene((30, 30, 200)), "question": "is there a square?", "id": 7},
        {"image": _scene((30, 200, 30)), "question": "how many squares are there?"},
    ]
    batched = vqa.predict(records)
    assert [o.get("id") for o in batched] == ["q-1", 7, None] and len(batched[0]["answers"]) == 2
    one_by_one = vqa.predict(records, batch_size=1)
    assert [o["answer"] for o in one_by_one] == [o["answer"] for o in batched]
    for a, b in zip(one_by_one, batched, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], rel=1e-4, abs=1e-4)
    assert vqa.predict([]) == []


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"image": "IMAGE"}, "missing field(s) ['question'] for task 'vqa'"),
        ({"image": "IMAGE", "question": "   "}, "field 'question' is empty"),
        ({"image": "IMAGE", "question": 3}, "field 'question' must be a string"),
        ({"image": b"not an image", "question": "q?"}, "field 'image' cannot decode image bytes"),
        ({"image": "no/such/file.jpg", "question": "q?"}, "field 'image' 'no/such/file.jpg' is neither an existing image file nor base64"),
        ({"image": "IMAGE", "text": "the red square"}, "unexpected field(s) ['text'] for task 'vqa', which takes: image, question"),
        ({"image": "IMAGE", "question": "q?", "top_k": 0}, "field 'top_k' must be >= 1"),
        ({"image": "IMAGE", "question": "q?", "top_k": 2.5}, "field 'top_k' must be an integer"),
        ("what colour?", "must be a dict of fields, got str"),
    ],
)
def test_a_bad_record_is_refused_with_its_index_and_the_problem(vqa, record, problem):
    if isinstance(record, dict):
        record = {k: (_scene() if v == "IMAGE" else v) for k, v in record.items()}
    good = {"image": _scene(), "question": "what colour is the square?"}
    with pytest.raises(PredictionInputError) as caught:
        vqa.predict([good, record])
    assert str(caught.value).startswith("record 1: ") and problem in str(caught.value), str(caught.value)
    assert caught.value.index == 1


def test_records_must_come_as_a_list_and_batch_size_be_positive(vqa):
    with pytest.raises(PredictionInputError, match="predict takes a list of records, got dict"):
        vqa.predict({"image": _scene(), "question": "q?"})
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        vqa.predict([{"image": _scene(), "question": "q?"}], batch_size=0)


def test_a_checkpoint_of_another_task_or_no_task_checkpoint_is_refused(checkpoints, tiny_checkpoint_without_dropout, tmp_path):
    with pytest.raises(CheckpointError, match="holds a 'vqa' checkpoint, not 'grounding'"):
        load_predictor(checkpoints["vqa"], task="grounding")
    with pytest.raises(CheckpointError, match="not a task checkpoint"):
        load_predictor(tiny_checkpoint_without_dropout)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_predictor(tmp_path / "missing")


def test_an_imagenet_checkpoint_names_its_classes_and_an_old_one_without_them_is_refused(checkpoints, tmp_path):
    import shutil

    predictor = load_predictor(checkpoints["imagenet"], device="cpu")
    (out,) = predictor.predict([{"image": _scene()}])
    assert sorted(out["topk_labels"]) == CLASSES and out["label"] == out["topk_labels"][0] == CLASSES[out["topk"][0]]
    old = tmp_path / "old"
    shutil.copytree(checkpoints["imagenet"], old)
    meta = json.loads((old / "config.json").read_text())
    assert meta["params"]["options"]["classes"] == CLASSES  # stored by the task model, sorted like ImageFolder
    meta["params"]["options"]["classes"] = None
    (old / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="stores no class names .*Re-run its pipeline"):
        load_predictor(old)


def test_a_vqa_checkpoint_stores_its_answer_list(checkpoints):
    meta = json.loads((checkpoints["vqa"] / "config.json").read_text())
    assert meta["params"]["options"]["answer_list"] == ANSWERS
