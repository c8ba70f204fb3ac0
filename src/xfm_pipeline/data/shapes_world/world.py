"""Generate the whole shapes world in memory (:func:`generate_shapes_world`) and write it to disk
(:func:`write_shapes_world`) in the layout of docs/data_formats.md.

The Kedro ``data_ingestion`` pipeline saves the same objects through the raw catalog instead of
:func:`write_shapes_world`; both give files the readers in :mod:`xfm_pipeline.data.formats` accept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfm_pipeline.config import to_dict
from xfm_pipeline.data.formats.glue import GLUE_TASKS, parse_glue_tsv
from xfm_pipeline.data.formats.pretrain import PRETRAIN_STREAMS
from xfm_pipeline.data.images import encode_base64_image
from xfm_pipeline.data.shapes_world import glue as glue_gen
from xfm_pipeline.data.shapes_world import language, nlvr, vqa
from xfm_pipeline.data.shapes_world.config import ShapesWorldConfig
from xfm_pipeline.data.shapes_world.render import render_scene
from xfm_pipeline.data.shapes_world.scenes import (
    COLOURS,
    SHAPES,
    Scene,
    derive_rng,
    sample_dominant_scene,
    sample_objects,
    sample_scene,
)

if TYPE_CHECKING:
    from PIL import Image

FORMAT_VERSION = 1
IMAGE_SPLITS = ("pretrain", "train", "val", "test")
EVAL_SPLITS = ("val", "test")
NLVR_SPLITS = {"train": "train", "dev": "val", "test": "test"}  # NLVR2 split -> image split
# RefCOCO+ testA holds people, testB other objects; here testA refers to "round-ish" shapes.
TEST_A_SHAPES = ("circle", "square", "triangle")


@dataclass(frozen=True)
class ShapesWorld:
    """The generated world: scenes (images to render) and every dataset's records."""

    config: ShapesWorldConfig
    scenes: dict[str, tuple[Scene, ...]]  # pretrain | train | val | test -> scenes (images/<split>/...)
    imagenet: dict[str, tuple[tuple[str, Scene], ...]]  # train | val -> (class, scene)
    pretrain: dict[str, list[dict[str, Any]]]  # corpus -> JSON-lines records
    json_files: dict[str, Any]  # "<task>/<split>" (path under the world root, no .json) -> JSON object
    glue: dict[str, str]  # "<TASK>/<split>" -> TSV text
    metadata: dict[str, Any]

    def __deepcopy__(self, memo: dict) -> ShapesWorld:
        # Immutable by convention; Kedro's MemoryDataset deep-copies on every load otherwise.
        return self

    def image_partitions(self) -> dict[str, Callable[[], Image.Image]]:
        """``{"train/000123": render}`` for the ``shapes_world_images`` PartitionedDataset (lazy)."""
        return {s.key: _renderer(s) for split in IMAGE_SPLITS for s in self.scenes[split]}

    def imagenet_partitions(self) -> dict[str, Callable[[], Image.Image]]:
        """``{"train/<class>/000123": render}`` for the ``imagenet_raw`` PartitionedDataset (lazy)."""
        return {f"{split}/{label}/{scene.image_id:06d}": _renderer(scene) for split, items in self.imagenet.items() for label, scene in items}


def _renderer(scene: Scene) -> Callable[[], Image.Image]:
    return lambda: render_scene(scene)


# ------------------------------------------------------------------------------------------------ scenes


def _sample_scenes(cfg: ShapesWorldConfig) -> tuple[dict[str, tuple[Scene, ...]], dict[str, tuple[tuple[str, Scene], ...]]]:
    next_id = 1
    scenes = {}
    for split in IMAGE_SPLITS:
        rng = derive_rng(cfg.seed, "scenes", split)
        n = getattr(cfg.images, split)
        scenes[split] = tuple(
            sample_scene(rng, next_id + i, split, cfg.image_size, cfg.min_objects, cfg.max_objects, cfg.textured_background) for i in range(n)
        )
        next_id += n
    classes = [(s, None) for s in SHAPES] if cfg.imagenet.label == "shape" else [(s, c) for c in COLOURS for s in SHAPES]
    imagenet = {}
    for split, per_class in (("train", cfg.imagenet.train_per_class), ("val", cfg.imagenet.val_per_class)):
        rng = derive_rng(cfg.seed, "imagenet", split)
        items = []
        for shape, colour in classes:
            label = shape if colour is None else f"{colour}_{shape}"
            for _ in range(per_class):
                scene = sample_dominant_scene(
                    rng, next_id, f"imagenet_{split}", cfg.image_size, shape, colour, cfg.imagenet.max_distractors, cfg.textured_background
                )
                items.append((label, scene))
                next_id += 1
        imagenet[split] = tuple(items)
    return scenes, imagenet


# ------------------------------------------------------------------------------------------ annotations


def _caption_sets(cfg: ShapesWorldConfig, scenes: dict[str, tuple[Scene, ...]]) -> dict[int, list[str]]:
    out = {}
    for split in ("train", *EVAL_SPLITS):
        rng = derive_rng(cfg.seed, "captions", split)
        k = cfg.train_captions_per_image if split == "train" else cfg.captions_per_image
        for scene in scenes[split]:
            out[scene.image_id] = language.captions(scene, rng, k)
    return out


def _retrieval_and_captioning(scenes, caps) -> dict[str, Any]:
    files: dict[str, Any] = {}
    train = [{"image": s.path, "caption": c, "image_id": s.image_id} for s in scenes["train"] for c in caps[s.image_id]]
    files["retrieval/train"] = train
    files["captioning/train"] = [dict(r) for r in train]
    for split in EVAL_SPLITS:
        files[f"retrieval/{split}"] = [{"image": s.path, "caption": caps[s.image_id]} for s in scenes[split]]
        files[f"captioning/{split}"] = [{"image": s.path, "image_id": s.image_id} for s in scenes[split]]
        annotations = []
        for s in scenes[split]:
            for k, c in enumerate(caps[s.image_id]):
                annotations.append({"image_id": s.image_id, "id": s.image_id * 100 + k, "caption": c})
        files[f"captioning/{split}_gt"] = {"images": [{"id": s.image_id} for s in scenes[split]], "annotations": annotations}
    return files


def _vqa(cfg: ShapesWorldConfig, scenes) -> dict[str, Any]:
    from xfm_pipeline.metrics.vqa import normalize_answer

    files = {}
    for split in ("train", *EVAL_SPLITS):
        rng = derive_rng(cfg.seed, "vqa", split)
        files[f"vqa/{split}"] = vqa.questions_for_split(list(scenes[split]), cfg.vqa_questions_per_image, cfg.vqa_wrong_answer_rate, rng)
    counts: dict[str, int] = {}
    for record in files["vqa/train"]:
        for answer in record["answer"]:
            a = normalize_answer(answer)
            counts[a] = counts.get(a, 0) + 1
    canonical = set(COLOURS) | set(SHAPES) | {"yes", "no"} | {str(i) for i in range(vqa.MAX_COUNT + 1)}
    keep = {a for a, c in counts.items() if c >= 2} | canonical
    files["vqa/answer_list"] = sorted(keep, key=lambda a: (-counts.get(a, 0), a))
    return files


def _nlvr(cfg: ShapesWorldConfig, scenes) -> dict[str, Any]:
    return {
        f"nlvr/{split}": nlvr.statements_for_split(list(scenes[image_split]), getattr(cfg.nlvr, split), split, derive_rng(cfg.seed, "nlvr", split))
        for split, image_split in NLVR_SPLITS.items()
    }


def _grounding(cfg: ShapesWorldConfig, scenes) -> list[dict[str, Any]]:
    rng = derive_rng(cfg.seed, "grounding")
    records = []
    ref_id = 0
    for split in ("train", "val", "test"):
        for position, scene in enumerate(scenes[split]):
            ref_split = split if split != "test" else ("testA" if position % 2 == 0 else "testB")
            objects = list(scene.objects)
            if ref_split == "testA":
                objects = [o for o in objects if o.shape in TEST_A_SHAPES]
            elif ref_split == "testB":
                objects = [o for o in objects if o.shape not in TEST_A_SHAPES]
            rng.shuffle(objects)
            referred = 0
            for obj in objects:
                if referred == cfg.grounding_refs_per_image:
                    break
                expressions = []
                attribute = language.unique_attribute_expression(obj, scene)
                if attribute:
                    expressions.append(attribute)
                relational = language.relation_expressions(obj, scene)
                if relational:
                    expressions.append(rng.choice(relational))
                if not expressions:
                    continue
                rng.shuffle(expressions)
                for text in expressions[: rng.randint(1, 2)]:
                    records.append({"image": scene.path, "text": text, "bbox": list(obj.box), "ref_id": ref_id, "split": ref_split})
                ref_id += 1
                referred += 1
    return records


def _pretraining(cfg: ShapesWorldConfig, scenes) -> dict[str, list[dict[str, Any]]]:
    images = [s for split in ("pretrain", "train") for s in scenes[split]]  # never val/test images
    rng = derive_rng(cfg.seed, "pretrain", "image_text")
    image_text = []
    for scene in images:
        desc = language.captions(scene, rng, cfg.pretrain.captions_per_image)
        record: dict[str, Any] = {}
        if rng.random() < cfg.pretrain.binary_fraction:
            record["binary"] = encode_base64_image(render_scene(scene), cfg.jpeg_quality)
        else:
            record["image"] = scene.path
        record["desc"] = desc[0] if len(desc) == 1 else desc
        image_text.append(record)
    rng = derive_rng(cfg.seed, "pretrain", "region_text")
    region_text = []
    for scene in images:
        record = {"image": scene.path}
        if rng.random() < cfg.pretrain.image_caption_fraction:
            record["caption"] = language.captions(scene, rng, 1)[0]
        elems = []
        for obj in scene.objects:
            caption, attributes = language.region_caption(obj, scene, rng)
            elems.append({"bb": list(obj.box), "caption": caption, "attributes": attributes})
        record["elems"] = elems
        region_text.append(record)
    image_only = [{"image": s.path} for s in images]
    rng = derive_rng(cfg.seed, "pretrain", "text_only")
    text_only = []
    for _ in range(cfg.pretrain.text_only):
        objs = sample_objects(rng, rng.randint(cfg.min_objects, cfg.max_objects))
        scene = Scene(image_id=-1, split="text", size=96, background=rng.choice(("white", "beige")), texture="plain", texture_seed=0, objects=objs)
        sentences = [c[0].upper() + c[1:] + "." for c in language.captions(scene, rng, rng.randint(1, 3))]
        text_only.append({"desc": " ".join(sentences)})
    return {"image_text": image_text, "region_text": region_text, "image_only": image_only, "text_only": text_only}


def _glue(cfg: ShapesWorldConfig) -> dict[str, str]:
    out = {}
    for task, spec in GLUE_TASKS.items():
        for split in spec.splits:
            n = getattr(cfg.glue, split.split("_")[0])
            out[f"{task}/{split}"] = glue_gen.glue_tsv(task, split, n, derive_rng(cfg.seed, "glue", task, split))
    return out


# --------------------------------------------------------------------------------------------- metadata


def _baselines(files: dict[str, Any], glue: dict[str, str]) -> dict[str, Any]:
    from xfm_pipeline.metrics.baselines import answer_prior_accuracy, majority_accuracy, question_prior_accuracy, statement_prior_accuracy
    from xfm_pipeline.metrics.vqa import vqa_accuracy

    def triples(split):
        return [(r["question"], r["question_type"], r["answer"]) for r in files[f"vqa/{split}"]]

    def pairs(split):
        return [(question_type, answers) for _, question_type, answers in triples(split)]

    test = files["vqa/test"]
    glue_majority = {}
    for key in sorted(glue):
        task, split = key.split("/")
        if split not in ("dev", "dev_matched") or GLUE_TASKS[task].is_regression:
            continue
        train = [e.label for e in parse_glue_tsv(glue[f"{task}/train"], task, "train")]
        dev = [e.label for e in parse_glue_tsv(glue[key], task, split)]
        glue_majority[key] = majority_accuracy(train, dev)
    return {
        "vqa_text_prior_test": answer_prior_accuracy(pairs("train"), pairs("test")),
        # the most frequent training answer of the same question: what the wording alone gives away
        "vqa_question_prior_test": question_prior_accuracy(triples("train"), triples("test")),
        # the canonical answer scored like a prediction: the ceiling set by annotator noise
        "vqa_oracle_test": vqa_accuracy([_canonical(r) for r in test], [r["answer"] for r in test]),
        "nlvr_majority_test": majority_accuracy([r["label"] for r in files["nlvr/train"]], [r["label"] for r in files["nlvr/test"]]),
        # the most frequent training label of the same statement: what the wording alone gives away
        "nlvr_statement_prior_test": statement_prior_accuracy(*([(r["sentence"], r["label"]) for r in files[f"nlvr/{s}"]] for s in ("train", "test"))),
        "glue_majority_dev": glue_majority,
    }


def _canonical(record: dict[str, Any]) -> str:
    from xfm_pipeline.metrics.baselines import most_frequent
    from xfm_pipeline.metrics.vqa import normalize_answer

    return most_frequent([normalize_answer(a) for a in record["answer"]])


def _counts(scenes, imagenet, pretrain, files, glue) -> dict[str, Any]:
    counts: dict[str, Any] = {"images": {split: len(scenes[split]) for split in IMAGE_SPLITS}}
    counts["imagenet"] = {split: len(items) for split, items in imagenet.items()}
    counts["pretrain"] = {corpus: len(records) for corpus, records in pretrain.items()}
    for key, obj in sorted(files.items()):
        counts[key] = len(obj["annotations"]) if isinstance(obj, dict) else len(obj)
    counts["glue"] = {key: text.count("\n") - (GLUE_TASKS[key.split("/")[0]].header(key.split("/")[1]) is not None) for key, text in sorted(glue.items())}
    return counts


def generate_shapes_world(config: ShapesWorldConfig) -> ShapesWorld:
    """Sample every scene and build every dataset's records; images are rendered lazily on save."""
    scenes, imagenet = _sample_scenes(config)
    caps = _caption_sets(config, scenes)
    files = _retrieval_and_captioning(scenes, caps)
    files.update(_vqa(config, scenes))
    files.update(_nlvr(config, scenes))
    files["grounding/refcoco+"] = _grounding(config, scenes)
    pretrain = _pretraining(config, scenes)
    glue = _glue(config)
    metadata = {
        "generator": "xfm_pipeline.data.shapes_world",
        "format_version": FORMAT_VERSION,
        "seed": config.seed,
        "config": to_dict(config),
        "image_root": "images",
        "imagenet_root": "imagenet",
        "classes": sorted({label for items in imagenet.values() for label, _ in items}),
        "counts": _counts(scenes, imagenet, pretrain, files, glue),
        "baselines": _baselines(files, glue),
    }
    return ShapesWorld(config=config, scenes=scenes, imagenet=imagenet, pretrain=pretrain, json_files=files, glue=glue, metadata=metadata)


# ------------------------------------------------------------------------------------------------ writer


def write_shapes_world(world: ShapesWorld, root: str | Path) -> list[Path]:
    """Write ``world`` under ``root`` in the layout of docs/data_formats.md; returns the files written.

    JPEG quality is ``world.config.jpeg_quality``; JSON is UTF-8 with sorted output order fixed by the
    generator, so the same world always gives the same bytes.
    """
    root = Path(root)
    written: list[Path] = []

    def put(rel: str, data: bytes) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)

    from xfm_pipeline.data.images import jpeg_bytes

    q = world.config.jpeg_quality
    for key, render in sorted(world.image_partitions().items()):
        put(f"images/{key}.jpg", jpeg_bytes(render(), q))
    for key, render in sorted(world.imagenet_partitions().items()):
        put(f"imagenet/{key}.jpg", jpeg_bytes(render(), q))
    for corpus in PRETRAIN_STREAMS:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in world.pretrain[corpus])
        put(f"pretrain/{corpus}.jsonl", lines.encode("utf-8"))
    for key, obj in sorted(world.json_files.items()):
        put(f"{key}.json", json.dumps(obj, ensure_ascii=False, indent=2).encode("utf-8"))
    for key, text in sorted(world.glue.items()):
        put(f"glue/{key}.tsv", text.encode("utf-8"))
    put("metadata.json", json.dumps(world.metadata, ensure_ascii=False, indent=2).encode("utf-8"))
    return written
