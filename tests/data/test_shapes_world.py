"""The shapes-world generator: determinism, split hygiene, balanced and correct annotations."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter

import pytest

from xfm_pipeline.config import ConfigError
from xfm_pipeline.data.shapes_world import generate_shapes_world, shapes_world_config, write_shapes_world
from xfm_pipeline.data.shapes_world.language import NUMBER_WORDS, RELATION_PHRASES, plural
from xfm_pipeline.data.shapes_world.nlvr import statements_for_split
from xfm_pipeline.data.shapes_world.render import render_scene
from xfm_pipeline.data.shapes_world.scenes import COLOURS, SHAPES, derive_rng, relation, sample_scene
from xfm_pipeline.data.shapes_world.vqa import QUESTION_TYPES, questions_for_split
from xfm_pipeline.metrics.baselines import answer_prior_accuracy, most_frequent, question_prior_accuracy, statement_prior_accuracy
from xfm_pipeline.metrics.vqa import normalize_answer, vqa_accuracy


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_different_seed_different(tiny_root, tmp_path):
    again = tmp_path / "again"
    write_shapes_world(generate_shapes_world(shapes_world_config("tiny")), again)
    first, second = _digests(tiny_root), _digests(again)
    assert first == second and len(first) > 100
    other = tmp_path / "other"
    write_shapes_world(generate_shapes_world(shapes_world_config("tiny", {"seed": 1})), other)
    third = _digests(other)
    assert set(third) == set(first)  # same layout
    changed = {k for k in first if first[k] != third[k]}
    assert {"vqa/train.json", "nlvr/test.json", "grounding/refcoco+.json", "glue/MNLI/train.tsv", "pretrain/text_only.jsonl"} <= changed
    assert sum(k.endswith(".jpg") for k in changed) > 0.9 * sum(k.endswith(".jpg") for k in first)


def test_metadata_describes_the_world(tiny_world, tiny_root):
    meta = json.loads((tiny_root / "metadata.json").read_text())
    assert meta["seed"] == 0 and meta["config"]["image_size"] == 96
    assert meta["counts"]["images"] == {"pretrain": 10, "train": 24, "val": 8, "test": 12}
    assert meta["counts"]["vqa/test"] == len(json.loads((tiny_root / "vqa/test.json").read_text()))
    assert meta["classes"] == sorted(SHAPES)
    assert "timestamp" not in json.dumps(meta)
    assert len(list((tiny_root / "images").rglob("*.jpg"))) == sum(meta["counts"]["images"].values())


def _images_of(record) -> list[str]:
    return record["images"] if "images" in record else [record["image"]]


def test_task_splits_have_disjoint_images(tiny_world):
    files = tiny_world.json_files
    split_images = {s: {sc.path for sc in tiny_world.scenes[s]} for s in ("pretrain", "train", "val", "test")}
    names = list(split_images)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not split_images[a] & split_images[b]
    expected = {
        "retrieval/train": "train", "retrieval/val": "val", "retrieval/test": "test",
        "captioning/train": "train", "captioning/val": "val", "captioning/test": "test",
        "vqa/train": "train", "vqa/val": "val", "vqa/test": "test",
        "nlvr/train": "train", "nlvr/dev": "val", "nlvr/test": "test",
    }  # fmt: skip
    for key, split in expected.items():
        used = {p for r in files[key] for p in _images_of(r)}
        assert used and used <= split_images[split], key
    grounding = files["grounding/refcoco+"]
    for ref_split, split in (("train", "train"), ("val", "val"), ("testA", "test"), ("testB", "test")):
        used = {r["image"] for r in grounding if r["split"] == ref_split}
        assert used and used <= split_images[split], ref_split
    test_a = {r["image"] for r in grounding if r["split"] == "testA"}
    test_b = {r["image"] for r in grounding if r["split"] == "testB"}
    assert not test_a & test_b


def test_pretraining_never_sees_evaluation_images(tiny_world, tiny_root):
    allowed = {sc.path for s in ("pretrain", "train") for sc in tiny_world.scenes[s]}
    evaluation = {sc.path for s in ("val", "test") for sc in tiny_world.scenes[s]}
    eval_bytes = {(tiny_root / "images" / p).read_bytes() for p in evaluation}
    n_binary = 0
    for corpus in ("image_text", "region_text", "image_only"):
        for record in tiny_world.pretrain[corpus]:
            if "image" in record:
                assert record["image"] in allowed and record["image"] not in evaluation
            else:
                n_binary += 1
                assert base64.b64decode(record["binary"]) not in eval_bytes
    assert n_binary >= 1  # the tiny world still exercises base64 records
    assert len(tiny_world.pretrain["image_only"]) == len(allowed)


def _truth(record) -> str:
    """The majority normalised answer, with annotator synonyms mapped back (grey/gray)."""
    return {"gray": "grey"}.get(a := most_frequent([normalize_answer(x) for x in record["answer"]]), a)


@pytest.fixture(scope="module")
def many_vqa():
    """VQA for 1500 train and 300 test scenes (no rendering: fast)."""
    out = {}
    for split, n in (("train", 1500), ("test", 300)):
        rng = derive_rng(0, "test-scenes", split)
        scenes = [sample_scene(rng, i, split, 96, 2, 5, 0.5) for i in range(n)]
        out[split] = (scenes, questions_for_split(scenes, 3, 0.05, derive_rng(0, "test-vqa", split)))
    return out


def test_vqa_answers_are_balanced_and_need_the_image(many_vqa):
    _, train = many_vqa["train"]
    _, test = many_vqa["test"]
    assert {r["question_type"] for r in train} == set(QUESTION_TYPES)
    for qtype in QUESTION_TYPES:
        canon = Counter(_truth(r) for r in train if r["question_type"] == qtype)
        assert max(canon.values()) <= 1.5 * min(canon.values()) + 2, (qtype, canon)
    prior = answer_prior_accuracy([(r["question_type"], r["answer"]) for r in train], [(r["question_type"], r["answer"]) for r in test])
    oracle = vqa_accuracy([most_frequent([normalize_answer(a) for a in r["answer"]]) for r in test], [r["answer"] for r in test])
    assert oracle > 0.95
    assert prior["overall"] < 0.45
    assert prior["colour"] < 0.3 and prior["shape"] < 0.3 and prior["existence"] < 0.65
    # the wording gives nothing away either: looking the question up is no better than the type prior
    lookup = question_prior_accuracy(*([(r["question"], r["question_type"], r["answer"]) for r in s] for s in (train, test)))
    for qtype in QUESTION_TYPES:
        assert lookup[qtype] < prior[qtype] + 0.05, (qtype, lookup[qtype], prior[qtype])


def test_vqa_answers_are_true_and_human_like(many_vqa):
    scenes, records = many_vqa["train"]
    by_path = {s.path: s for s in scenes}
    variants = Counter()
    for r in records:
        scene = by_path[r["image"]]
        truth = _truth(r)
        q = r["question"]
        if m := re.fullmatch(r"how many (\w+) are (?:there|in the picture)\?", q):
            shape = next(s for s in SHAPES if plural(s) == m.group(1))
            assert truth == str(sum(o.shape == shape for o in scene.objects)), q
        elif m := re.fullmatch(r"how many (\w+) (?:shapes are there|objects can you see)\?", q):
            assert truth == str(sum(o.colour == m.group(1) for o in scene.objects)), q
        elif m := re.fullmatch(r"is there a (\w+) (\w+)\?", q):
            present = any(o.colour == m.group(1) and o.shape == m.group(2) for o in scene.objects)
            assert truth == ("yes" if present else "no"), q
        elif m := re.fullmatch(r"what colou?r is the (\w+)\?", q):
            (obj,) = [o for o in scene.objects if o.shape == m.group(1)]
            assert truth == obj.colour, q
        variants.update(a for a in r["answer"] if a != truth)
        assert len(r["answer"]) == 10
    assert {"gray", "yes.", "two"} & set(variants), variants  # annotator variants occur
    assert any(w in variants for w in ("zero", "one", "two", "three", "four"))


def test_nlvr_is_balanced(tiny_world):
    for split in ("train", "dev", "test"):
        labels = Counter(r["label"] for r in tiny_world.json_files[f"nlvr/{split}"])
        assert abs(labels["True"] - labels["False"]) <= 6, (split, labels)


@pytest.fixture(scope="module")
def many_nlvr():
    """NLVR2 over 1200 train and 150 test scenes (no rendering: fast), with the scenes by path."""
    out, scenes_by_path = {}, {}
    for split, n_scenes, n_pairs in (("train", 1200, 4000), ("test", 150, 1000)):
        rng = derive_rng(0, "test-scenes", split)
        scenes = [sample_scene(rng, i, split, 96, 2, 5, 0.5) for i in range(n_scenes)]
        scenes_by_path.update((scene.path, scene) for scene in scenes)
        out[split] = statements_for_split(scenes, n_pairs, split, derive_rng(0, "test-nlvr", split))
    return out, scenes_by_path


def test_nlvr_wording_does_not_give_the_label_away(many_nlvr):
    records, _ = many_nlvr
    per_statement = {}
    for r in records["train"]:
        per_statement.setdefault(r["sentence"], Counter())[r["label"]] += 1
    assert len(per_statement) > 150
    # every statement is (about) as often true as false, so looking it up gives chance
    assert max(abs(c["True"] - c["False"]) for c in per_statement.values()) <= 1
    lookup = statement_prior_accuracy(*([(r["sentence"], r["label"]) for r in records[s]] for s in ("train", "test")))
    assert 0.46 < lookup < 0.54
    assert abs(sum(r["label"] == "True" for r in records["test"]) - 500) <= 2


def test_nlvr_labels_are_true_of_the_images(many_nlvr):
    records, scenes = many_nlvr
    checked = Counter()
    for r in records["train"]:
        left, right = (scenes[p] for p in r["images"])
        truth = r["label"] == "True"
        s = r["sentence"]
        if m := re.fullmatch(r"there is a (\w+) (\w+) in the (left|right) image", s):
            scene = left if m.group(3) == "left" else right
            assert truth == any(o.colour == m.group(1) and o.shape == m.group(2) for o in scene.objects), s
            checked["contains"] += 1
        elif m := re.fullmatch(r"the (left|right) image contains exactly (\w+) shapes", s):
            scene = left if m.group(1) == "left" else right
            assert truth == (len(scene.objects) == NUMBER_WORDS.index(m.group(2))), s
            checked["exactly n shapes"] += 1
        elif m := re.fullmatch(r"one image contains a (\w+) and the other does not", s):
            has = [any(o.shape == m.group(1) for o in scene.objects) for scene in (left, right)]
            assert truth == (has[0] != has[1]), s
            checked["one not other"] += 1
    assert len(checked) == 3 and min(checked.values()) >= 50, checked


def _resolve(expression: str, scene) -> list:
    """Objects of ``scene`` an expression refers to (an independent re-implementation of the grammar)."""
    rel_words = {phrase: name for name, phrases in RELATION_PHRASES.items() for phrase in phrases[:1]}
    for phrase, name in rel_words.items():
        if f" {phrase} " in expression:
            head, anchor = expression.split(f" {phrase} ", 1)
            (anchor_obj,) = _resolve(anchor, scene)
            return [o for o in _resolve(head, scene) if o is not anchor_obj and relation(o, anchor_obj, scene.size)[name] is True]
    words = expression.split()
    assert words[0] == "the"
    attrs = words[1:]
    return [o for o in scene.objects if all(w in (o.size, o.colour, o.shape) for w in attrs) and o.shape == attrs[-1]]


def test_grounding_expressions_have_a_single_referent(tiny_world):
    scenes = {s.path: s for split in ("train", "val", "test") for s in tiny_world.scenes[split]}
    records = tiny_world.json_files["grounding/refcoco+"]
    assert {r["split"] for r in records} == {"train", "val", "testA", "testB"}
    for r in records:
        (obj,) = _resolve(r["text"], scenes[r["image"]])
        assert list(obj.box) == r["bbox"], r
        assert (obj.shape in ("circle", "square", "triangle")) == (r["split"] == "testA") or r["split"] in ("train", "val")
    assert any(" of " in r["text"] or " above " in r["text"] or " below " in r["text"] for r in records)


def test_rendered_objects_have_their_colour(tiny_world):
    for scene in tiny_world.scenes["train"][:10]:
        image = render_scene(scene)
        for obj in scene.objects:
            x, y, w, h = obj.box
            pixel = image.getpixel((x + w // 2, y + h // 2))
            assert max(abs(p - c) for p, c in zip(pixel, COLOURS[obj.colour], strict=True)) <= 20, (obj, pixel)


def test_config_validation():
    with pytest.raises(ConfigError, match="shapes_world.images.trian"):
        shapes_world_config("tiny", {"images": {"trian": 3}})
    with pytest.raises(ValueError, match="unknown shapes-world preset"):
        shapes_world_config("huge")
    with pytest.raises(ValueError, match="imagenet.label"):
        shapes_world_config("tiny", {"imagenet": {"label": "colour"}})
    with pytest.raises(ValueError, match="at least 2 images"):
        shapes_world_config("tiny", {"images": {"val": 1}})


def test_shape_colour_classes():
    world = generate_shapes_world(shapes_world_config("tiny", {"imagenet": {"label": "shape_colour", "train_per_class": 1, "val_per_class": 1}}))
    assert len(world.metadata["classes"]) == len(SHAPES) * len(COLOURS)
    for label, scene in world.imagenet["train"]:
        colour, shape = label.split("_")
        large = [o for o in scene.objects if o.size == "large"]
        assert len(large) == 1 and (large[0].colour, large[0].shape) == (colour, shape)
        assert all(o.colour != colour and o.shape != shape for o in scene.objects if o.size == "small")
