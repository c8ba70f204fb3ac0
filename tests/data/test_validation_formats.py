"""Format-specific and cross-dataset checks: GLUE, COCO ground truth, ImageFolder, region boxes,
split disjointness, grounding ref ids, base64 images, dataset-level errors, parameters."""

from __future__ import annotations

import base64
import json

import pytest
from validation_world import World, build_world, jpeg_bytes

from xfm_pipeline.config import ConfigError, from_dict
from xfm_pipeline.data.validation import (
    DataValidationError,
    ValidationParams,
    build_report,
    enforce_policies,
    failure_message,
    publish_task,
    render_html,
    validate_task,
)
from xfm_pipeline.data.validation.images import clear_cache, probe_image
from xfm_pipeline.data.validation.suites import build_suite
from xfm_pipeline.data.validation.table import CheckTable


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


def _params(world: World, **overrides) -> ValidationParams:
    return from_dict(ValidationParams, world.params(**overrides))


def _reasons(outcomes, unit: str) -> dict[int, list[str]]:
    return next(o for o in outcomes if o.unit == unit).reasons


# --------------------------------------------------------------------------------------------- GLUE


def test_glue_bad_lines_are_quarantined_by_line_and_validated_files_keep_the_rest(world: World):
    glue = dict(world.raw["glue"])
    glue["CoLA/train"] = glue["CoLA/train"] + "sw03\t2\t\tA bad label.\n" + "sw03\t1\t\t   \n" + "sw03\t1\tonly three fields\n"
    glue["MNLI/dev_matched"] = glue["MNLI/dev_matched"].replace("\tneutral\n", "\tmaybe\n")
    glue["STS-B/train"] = glue["STS-B/train"].replace("2.500", "7.5")
    outcomes = validate_task("glue", {"glue": glue}, _params(world))
    cola = _reasons(outcomes, "glue/CoLA/train")
    assert sorted(cola) == [3, 4, 5]
    assert "label column 'label' is one of '0', '1'; got '2'" in cola[3][0]
    assert "'sentence' has 1 to" in cola[4][0]
    assert "the line has 3 tab-separated fields, the header 4" in cola[5][0]
    assert any("got 'maybe'" in r for r in _reasons(outcomes, "glue/MNLI/dev_matched")[1])
    assert any("'score' is between 0 and 5; got 7.5" in r for r in _reasons(outcomes, "glue/STS-B/train")[1])
    published = publish_task("glue", outcomes)
    assert published["glue_validated"]["CoLA/train"] == world.raw["glue"]["CoLA/train"]  # bad lines removed, rest verbatim
    assert published["glue_validated"]["CoLA/test"] == world.raw["glue"]["CoLA/test"]
    quarantined = [json.loads(line) for line in published["glue_quarantine"].splitlines()]
    assert {(q["unit"], q["location"]) for q in quarantined} >= {("glue/CoLA/train", "line 4"), ("glue/CoLA/train", "line 6")}
    assert len(quarantined) == 5


def test_glue_wrong_header_is_a_dataset_error_that_blocks_under_any_policy(world: World):
    glue = {"SST-2/dev": "text\tlabel\nnice\t1\n"}
    outcomes = validate_task("glue", {"glue": glue}, _params(world, default_policy="quarantine"))
    with pytest.raises(DataValidationError, match=r"(?s)glue_raw .*SST-2/dev.tsv.*expected the header \['sentence', 'label'\]"):
        enforce_policies(build_report(outcomes))


# ---------------------------------------------------------------------------------- COCO captions


def test_caption_ground_truth_entries_and_coverage(world: World):
    gt = world.copy("captioning_val_gt")
    gt["annotations"].append({"image_id": 999, "id": 1, "caption": "an orphan"})
    gt["annotations"].append({"image_id": gt["images"][0]["id"], "id": gt["annotations"][0]["id"], "caption": "a duplicate id"})
    val = world.copy("captioning_val")
    val.append({"image": "val/0.jpg", "image_id": 2999})  # no ground truth for this image (and image reused)
    outcomes = validate_task("captioning", {"captioning_val": val, "captioning_val_gt": gt}, _params(world))
    gt_reasons = _reasons(outcomes, "captioning_val_gt")
    n_images = len(gt["images"])
    orphan, dup = n_images + len(gt["annotations"]) - 2, n_images + len(gt["annotations"]) - 1
    assert any("image_id 999 is not among the ids of 'images'" in r for r in gt_reasons[orphan])
    assert any("annotations[].id is unique" in r for r in gt_reasons[dup])
    val_reasons = _reasons(outcomes, "captioning_val")
    assert list(val_reasons) == [3]
    assert "image_id 2999 has no captions in captioning_val_gt" in " ".join(val_reasons[3])
    published = publish_task("captioning", outcomes)
    assert published["captioning_val_gt_json_validated"]["info"] == gt["info"]
    annotations = published["captioning_val_gt_json_validated"]["annotations"]
    assert len(annotations) == len(gt["annotations"]) - 3  # the orphan and both duplicates


def test_caption_eval_image_id_may_come_from_the_file_name(world: World):
    val = [{"image": "val/0.jpg"}, {"image": "val/1.jpg", "image_id": 0}]  # val/0.jpg -> id 0: duplicate
    outcomes = validate_task("captioning", {"captioning_val": val}, _params(world))
    reasons = _reasons(outcomes, "captioning_val")
    assert sorted(reasons) == [0, 1] and "image_id is unique" in reasons[0][0]


# ------------------------------------------------------------------------------------ ImageFolder


def test_imagefolder_checks_files_layout_and_classes(world: World):
    raw = dict(world.raw["imagenet"])
    (world.imagenet_root / "val/bird").mkdir(parents=True, exist_ok=True)
    (world.imagenet_root / "val/bird/0.jpg").write_bytes(jpeg_bytes(777))
    (world.imagenet_root / "val/cat/1.jpg").write_bytes((world.imagenet_root / "train/cat/0.jpg").read_bytes())  # leaked copy
    raw.update({"val/bird/0": None, "val/cat/1": None, "stray": None})
    outcomes = validate_task("imagenet", {"imagenet": raw}, _params(world))
    (outcome,) = outcomes
    by_location = {outcome.locations[i]: r for i, r in outcome.reasons.items()}
    assert "class 'bird' of split 'val' has no training images" in " ".join(by_location["val/bird/0.jpg"])
    assert "is not <split>/<class>/<file>" in " ".join(by_location["stray.jpg"])
    assert "also used by split 'val'" in " ".join(by_location["train/cat/0.jpg"])  # the training copy is removed
    assert "val/cat/1.jpg" not in by_location
    manifest = publish_task("imagenet", outcomes)["imagenet_json_validated"]
    assert {"image": "val/cat/1.jpg", "label": "cat", "split": "val"} in manifest
    assert len(manifest) == len(raw) - 3


# --------------------------------------------------------------------------- pretraining corpora


def test_region_boxes_binary_images_and_image_source(world: World):
    frame = world.copy("pretrain_region_text")
    frame.at[1, "elems"] = [{"bb": [0, 0, 64, 48], "caption": "all"}, {"bb": [60, 40, 10, 10], "caption": "overhang"}]
    frame.at[2, "elems"] = [{"bb": [1, 2, 3], "caption": "three numbers"}]
    outcomes = validate_task("pretrain", {"pretrain_region_text": frame}, _params(world), {})
    reasons = _reasons(outcomes, "pretrain_region_text")
    assert "x + w <= image width" in " ".join(reasons[1]) and "in a 64x48 image" in " ".join(reasons[1])
    assert "elems[0].bb is [1, 2, 3]" in " ".join(reasons[2])

    image_text = world.copy("pretrain_image_text")
    image_text.at[0, "binary"] = base64.b64encode(jpeg_bytes(5)[:300]).decode()  # both sources, truncated blob
    image_text.at[2, "binary"] = "%%% not base64 %%%"
    tolerated = _params(world, box_tolerance_px=6.0)
    outcomes = validate_task("pretrain", {"pretrain_image_text": image_text, "pretrain_region_text": frame}, tolerated, {})
    reasons = _reasons(outcomes, "pretrain_image_text")
    assert "both 'image' and 'binary' are given" in " ".join(reasons[0])
    assert "truncated image" in " ".join(reasons[0])
    assert "is not valid base64" in " ".join(reasons[2])
    assert 1 not in _reasons(outcomes, "pretrain_region_text")  # 6 px overhang tolerated


def test_pretraining_needs_the_evaluation_index(world: World):
    with pytest.raises(ValueError, match="evaluation image index"):
        validate_task("pretrain", {"pretrain_image_only": world.copy("pretrain_image_only")}, _params(world))


# ------------------------------------------------------------------------ splits and references


def test_an_image_shared_by_two_splits_is_removed_from_the_earlier_one(world: World):
    train, test = world.copy("nlvr_train"), world.copy("nlvr_test")
    train[1]["images"][1] = test[0]["images"][0]
    copy_path = world.image_root / "train/copy_of_test0.jpg"  # same bytes under another name
    copy_path.write_bytes((world.image_root / test[2]["images"][0]).read_bytes())
    train[3]["images"][0] = "train/copy_of_test0.jpg"
    outcomes = validate_task("nlvr", {"nlvr_train": train, "nlvr_test": test}, _params(world))
    reasons = _reasons(outcomes, "nlvr_train")
    assert sorted(reasons) == [1, 3]
    assert "also used by split 'test' (nlvr_test[0])" in reasons[1][0]
    assert _reasons(outcomes, "nlvr_test") == {}
    by_path_only = validate_task("nlvr", {"nlvr_train": train, "nlvr_test": test}, _params(world, compare_image_content=False))
    assert sorted(_reasons(by_path_only, "nlvr_train")) == [1]


def test_grounding_ref_ids_splits_and_overlap(world: World):
    records = world.copy("grounding")
    records[1]["split"] = "minival"
    records[2]["ref_id"] = records[0]["ref_id"]  # same ref_id, different image
    records[4]["image"] = records[6]["image"]  # a val record using a testA image
    outcomes = validate_task("grounding", {"grounding": records}, _params(world))
    reasons = _reasons(outcomes, "grounding")
    assert "'split' is one of 'train', 'val', 'testA', 'testB'; got 'minival'" in " ".join(reasons[1])
    assert f"ref_id {records[0]['ref_id']} names image" in " ".join(reasons[2])
    assert "also used by split 'testA'" in " ".join(reasons[4])
    assert sorted(reasons) == [1, 2, 4]


def test_structural_errors_are_dataset_errors(world: World):
    outcomes = validate_task("vqa", {"vqa_answer_list": {"red": 1}, "vqa_val": []}, _params(world, default_policy="quarantine"))
    message = failure_message(build_report(outcomes))
    assert "vqa_answer_list_json_raw" in message and "expected a JSON list of records, got dict" in message
    assert "vqa_val_json_raw" in message and "at least 1 record" in message


# ---------------------------------------------------------------------------------------------- VQA


def test_a_vqa_question_without_exactly_ten_answers_is_quarantined_and_fails_an_evaluation_split(world: World):
    records = world.copy("vqa_train")
    records[0]["answer"] = records[0]["answer"][:9]  # nine annotators
    records[1]["answer"] = "red"  # one answer, but a VQA (not VG) question
    records[2].update(answer="red", dataset="vg")  # Visual Genome: one answer is right
    outcomes = validate_task("vqa", {"vqa_train": records}, _params(world))
    reasons = _reasons(outcomes, "vqa_train")
    assert sorted(reasons) == [0, 1]
    assert "exactly 10 human answers" in reasons[0][0] and reasons[0][0].endswith(": 9 answers for a vqa question; expected 10")
    assert reasons[1][0].endswith(": 1 answer for a vqa question; expected 10")
    published = publish_task("vqa", outcomes)
    assert published["vqa_train_json_validated"] == records[2:]

    val = world.copy("vqa_val")
    val[0]["answer"] = val[0]["answer"] + ["red"]  # eleven
    report = build_report(validate_task("vqa", {"vqa_val": val}, _params(world, policies={"vqa_val": "fail"})), max_listed=5)
    with pytest.raises(DataValidationError, match="11 answers for a vqa question; expected 10"):
        enforce_policies(report)


# ------------------------------------------------------------------------------- report, suites


def test_report_and_html_describe_every_expectation(world: World):
    records = world.copy("vqa_val")
    records[1]["answer_type"] = "colour"
    outcomes = validate_task("vqa", {"vqa_val": records}, _params(world, policies={"vqa_val": "fail"}))
    report = build_report(outcomes, max_listed=1)
    unit = report["units"]["vqa_val"]
    counts = (unit["records"], unit["valid"], unit["failed"], unit["quarantined"])
    assert counts == (3, 2, 1, 0)  # policy fail: nothing quarantined
    failed = [e for e in unit["expectations"] if not e["success"]]
    assert [(e["expectation"], e["column"], e["unexpected_count"]) for e in failed] == [("expect_column_values_to_be_in_set", "answer_type__value", 1)]
    json.dumps(report)  # plain JSON
    html = render_html(report)
    assert "answer_type__value" in html and "vqa_val_json_raw" in html and "<table>" in html


def test_suite_holds_one_expectation_per_check():
    table = CheckTable("demo", 2)
    table.add("x__type", ["integer", "string"], "expect_column_values_to_be_in_set", "x is an integer", value_set=["integer"])
    table.add("x__chars", [1, 0], "expect_column_values_to_be_between", "x has characters", min_value=1)
    suite = build_suite(table)
    types = [e.expectation_type for e in suite.expectations]
    assert types == ["expect_column_values_to_be_in_set", "expect_column_values_to_be_between"]
    assert [e.meta["check"] for e in suite.expectations] == [0, 1]
    with pytest.raises(ValueError, match="duplicate check"):
        table.check("expect_column_values_to_be_in_set", "x__type", "again", value_set=["integer"])


def test_truncated_images_are_caught_even_when_pillow_is_told_to_load_them(world: World, tmp_path):
    from PIL import ImageFile

    data = jpeg_bytes(3)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    clear_cache()
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        assert "truncated" in probe_image(path).error
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    assert ImageFile.LOAD_TRUNCATED_IMAGES is previous


# ------------------------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"policies": {"vqa_trian": "fail"}}, "data_validation.policies.vqa_trian"),
        ({"policies": {"vqa_train": "drop"}}, "data_validation.policies.vqa_train"),
        ({"default_policy": "ignore"}, "data_validation.default_policy"),
        ({"image_roots": {"cifar": "/x"}}, "data_validation.image_roots.cifar"),
        ({"text": {"min_chars": 5, "max_chars": 2}}, "data_validation.text"),
        ({"surprise": 1}, "data_validation.surprise"),
    ],
)
def test_parameters_are_checked(world: World, overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        from_dict(ValidationParams, world.params(**overrides), path="data_validation")


# ------------------------------------------------------------------------------------- invariant


def test_publishing_refuses_to_lose_or_invent_records(world: World, monkeypatch):
    from xfm_pipeline.data.validation import validate as validate_module

    records = world.copy("retrieval_train")
    records[0]["caption"] = ""
    outcomes = validate_task("retrieval", {"retrieval_train": records}, _params(world))
    published = publish_task("retrieval", outcomes)
    quarantined = published["retrieval_train_quarantine"].splitlines()
    assert len(published["retrieval_train_json_validated"]) + len(quarantined) == len(records)

    real_assemble = validate_module.assemble
    monkeypatch.setattr(validate_module, "assemble", lambda *a: real_assemble(*a)[1:])  # silently drops one record
    with pytest.raises(AssertionError, match=r"retrieval_train: 3 published \+ 1 quarantined != 5 input records"):
        publish_task("retrieval", outcomes)
    monkeypatch.undo()

    outcomes[0].reasons[len(records)] = ["an index GX never returned"]
    with pytest.raises(AssertionError, match="input records"):
        outcomes[0].check_invariant()
