"""A small clean world of every raw dataset, built in a temporary directory for the validation tests.

Every dataset is returned the way its raw catalog entry loads it (docs/data_formats.md): JSON lists,
pandas DataFrames of JSON lines, the COCO caption dict, GLUE partitions {"CoLA/train": loader},
ImageFolder partitions {"train/cat/0": loader}. Images are small random-noise JPEGs, so no two share
their bytes.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

W, H = 64, 48  # size of every generated image


def jpeg_bytes(seed: int, size: tuple[int, int] = (W, H)) -> bytes:
    """A random-noise JPEG (distinct bytes per seed)."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def jsonl_frame(records: list[dict[str, Any]], path: Path) -> pd.DataFrame:
    """Write JSON lines and load them back as the raw catalog entry does (pandas, dtype=False).

    (The catalog also passes convert_dates=False, which pandas 3 deprecates; dtype=False implies it.)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return pd.read_json(path, lines=True, orient="records", dtype=False)


@dataclass
class World:
    """Raw datasets by short name, plus where things live."""

    root: Path  # tmp directory
    image_root: Path
    imagenet_root: Path
    raw_root: Path
    raw: dict[str, Any] = field(default_factory=dict)

    def params(self, **overrides: Any) -> dict[str, Any]:
        """``params:data_validation`` for this world."""
        return {
            "raw_root": str(self.raw_root),
            "image_root": str(self.image_root),
            "imagenet_root": str(self.imagenet_root),
            "image_workers": 1,
            **overrides,
        }

    def copy(self, name: str) -> Any:
        """A deep copy of one raw dataset (DataFrames copied too)."""
        value = self.raw[name]
        return value.copy(deep=True) if isinstance(value, pd.DataFrame) else copy.deepcopy(value)

    def image(self, rel: str, seed: int) -> str:
        """Write a JPEG under the image root; returns ``rel``."""
        path = self.image_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg_bytes(seed))
        return rel


def _glue_partitions() -> dict[str, str]:
    from xfm_pipeline.data.formats.glue import GLUE_TASKS

    def tsv(header, rows):
        lines = (["\t".join(header)] if header else []) + ["\t".join(r) for r in rows]
        return "".join(line + "\n" for line in lines)

    stsb = GLUE_TASKS["STS-B"].header("train")
    mnli = GLUE_TASKS["MNLI"].header("dev_matched")

    def stsb_row(i, score):
        return [str(i), "main-captions", "x", "2012", str(i), "none", "none", f"A red circle {i}.", "A red circle.", score]

    def mnli_row(i, label):
        return [str(i), "1", f"{i}e", "fiction", "(a)", "(b)", "(a)", "(b)", f"Premise {i}.", "Hypothesis.", label, label, label, label, label, label]

    return {
        "CoLA/train": tsv(
            None,
            [
                ["sw01", "1", "", "The red circle is above the square."],
                ["sw02", "0", "*", "The red circle are above square the."],
                ["sw01", "1", "", "There are two blue squares."],
            ],
        ),
        "CoLA/test": tsv(("index", "sentence"), [["0", "A circle is red."], ["1", "Two squares are blue."]]),
        "SST-2/dev": tsv(("sentence", "label"), [["what a lovely circle ", "1"], ["the square looks dull ", "0"]]),
        "STS-B/train": tsv(stsb, [stsb_row(0, "5.000"), stsb_row(1, "2.500"), stsb_row(2, "0.000")]),
        "MNLI/dev_matched": tsv(mnli, [mnli_row(0, "entailment"), mnli_row(1, "neutral"), mnli_row(2, "contradiction")]),
    }


def build_world(tmp: Path) -> World:
    """Write images and return every raw dataset, all valid."""
    world = World(tmp, tmp / "images", tmp / "imagenet", tmp / "raw")
    seed = iter(range(10_000))
    img = {
        split: [world.image(f"{split}/{i}.jpg", next(seed)) for i in range(n)]
        for split, n in (("pretrain", 4), ("train", 4), ("val", 3), ("test", 3), ("testB", 2))
    }
    r = world.raw
    binary = base64.b64encode(jpeg_bytes(next(seed))).decode()
    r["pretrain_image_text"] = jsonl_frame(
        [
            {"image": img["pretrain"][0], "desc": "a red circle"},
            {"image": img["pretrain"][1], "desc": ["two squares", "blue squares"]},
            {"binary": binary, "desc": "a green triangle"},
            {"image": img["pretrain"][2], "desc": "a small star"},
        ],
        world.raw_root / "pretrain/image_text.jsonl",
    )
    two_regions = [{"bb": [2, 3, 20, 10], "caption": "a red circle"}, {"bb": [30, 20, 34, 28], "caption": "a square", "attributes": "blue"}]
    r["pretrain_region_text"] = jsonl_frame(
        [
            {"image": img["pretrain"][0], "caption": "shapes", "elems": two_regions},
            {"image": img["pretrain"][3], "elems": [{"bb": [0, 0, 64, 48], "caption": "the whole picture"}]},
            {"image": img["pretrain"][1], "elems": [{"bb": [10.5, 4, 12, 12.25], "caption": "a star"}]},
        ],
        world.raw_root / "pretrain/region_text.jsonl",
    )
    r["pretrain_image_only"] = jsonl_frame([{"image": p} for p in img["pretrain"]], world.raw_root / "pretrain/image_only.jsonl")
    texts = ["a circle left of a square", "three stars", "one blue square"]
    r["pretrain_text_only"] = jsonl_frame([{"desc": d} for d in texts], world.raw_root / "pretrain/text_only.jsonl")
    r["retrieval_train"] = [{"image": p, "caption": f"picture {i}", "image_id": i} for i, p in enumerate(img["train"])]
    r["retrieval_train"].append({"image": img["train"][0], "caption": "another caption of picture 0", "image_id": 0})
    for split in ("val", "test"):
        r[f"retrieval_{split}"] = [{"image": p, "caption": [f"{split} {i}", f"{split} {i} again"]} for i, p in enumerate(img[split])]

    def vqa(split, base):
        return [
            {
                "question_id": base + i,
                "image": p,
                "question": f"what colour is shape {i}?",
                "answer": ["red"] * 9 + ["blue"],
                "answer_type": "other",
                "dataset": "vqa",
            }
            for i, p in enumerate(img[split])
        ]

    r["vqa_train"], r["vqa_val"], r["vqa_test"] = vqa("train", 100), vqa("val", 200), vqa("test", 300)
    r["vqa_answer_list"] = ["red", "blue", "two", "yes"]
    for split, src in (("train", "train"), ("dev", "val"), ("test", "test")):
        ps = img[src]
        r[f"nlvr_{split}"] = [
            {
                "images": [ps[i], ps[(i + 1) % len(ps)]],
                "sentence": f"the left image has {i} circles",
                "label": "True" if i % 2 else "False",
                "identifier": f"{split}-{i}-0-0",
            }
            for i in range(len(ps))
        ]
    grounding = []
    for split, src, paths in (
        ("train", "train", img["train"][:3]),
        ("val", "val", img["val"][:2]),
        ("testA", "test", img["test"][:2]),
        ("testB", "testB", img["testB"]),
    ):
        for i, p in enumerate(paths):
            grounding.append({"image": p, "text": f"the shape {i} of {src}", "bbox": [4 + i, 5, 20, 15], "ref_id": len(grounding), "split": split})
    grounding.append({**grounding[0], "text": "another expression for the same shape"})  # shares ref_id 0
    r["grounding"] = grounding
    r["captioning_train"] = [{"image": p, "caption": f"a picture {i}", "image_id": 1000 + i} for i, p in enumerate(img["train"])]
    for split in ("val", "test"):
        items = [{"image": p, "image_id": (2000 if split == "val" else 3000) + i} for i, p in enumerate(img[split])]
        r[f"captioning_{split}"] = items
        r[f"captioning_{split}_gt"] = {
            "info": {"description": "test world"},
            "images": [{"id": it["image_id"]} for it in items],
            "annotations": [{"image_id": it["image_id"], "id": 10 * it["image_id"] + k, "caption": f"caption {k}"} for it in items for k in range(2)],
        }
    r["glue"] = _glue_partitions()
    imagenet = {}
    for split, n in (("train", 2), ("val", 1)):
        for cls in ("cat", "dog"):
            for i in range(n):
                path = world.imagenet_root / split / cls / f"{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(jpeg_bytes(next(seed)))
                imagenet[f"{split}/{cls}/{i}"] = lambda: None  # the catalog's lazy loaders; validation never calls them
    r["imagenet"] = imagenet
    return world
