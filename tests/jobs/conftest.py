"""A small pretraining world drawn in the test (independent of the shapes-world generator): JSON-lines
records with loose image files, and the same corpora as WebDataset shards."""

from __future__ import annotations

import json
import random

import pytest
from PIL import Image, ImageDraw

from xfm_pipeline.data.shards import samples_from_records, write_shards

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}


def _write_world(root, n_images: int = 32, seed: int = 0):
    rng = random.Random(seed)
    images = root / "images"
    images.mkdir(parents=True)
    image_text, region_text, image_only, text_only = [], [], [], []
    for i in range(n_images):
        colour = rng.choice(sorted(COLOURS))
        x, y, s = rng.randint(4, 40), rng.randint(4, 40), rng.randint(12, 24)
        img = Image.new("RGB", (64, 64), (245, 245, 245))
        ImageDraw.Draw(img).rectangle([x, y, x + s, y + s], fill=COLOURS[colour])
        name = f"{i:03d}.jpg"
        img.save(images / name, quality=90)
        image_text.append({"image": name, "desc": [f"a {colour} square", f"one {colour} box"]})
        region_text.append(
            {
                "image": name,
                "caption": f"a picture with a {colour} square",
                "elems": [{"bb": [x, y, s, s], "caption": f"{colour} square", "attributes": "small" if s < 18 else "large"}],
            }
        )
        image_only.append({"image": name})
        text_only.append({"desc": f"the {colour} square is at {'left' if x < 24 else 'right'}"})
    records = root / "records"
    records.mkdir()
    for name, rows in [("image_text", image_text), ("region_text", region_text), ("image_only", image_only), ("text_only", text_only)]:
        (records / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        shards = root / "shards" / name
        shards.mkdir(parents=True)
        write_shards(samples_from_records(rows, images, name), shards, name, max_samples=8)  # 4 shards a corpus
    return root


@pytest.fixture(scope="session")
def pretrain_world(tmp_path_factory):
    """Directory with images/, records/<stream>.jsonl and shards/<stream>/ for the four pretraining streams."""
    return _write_world(tmp_path_factory.mktemp("pretrain_world"))


@pytest.fixture(scope="session")
def init_dir(tiny_checkpoint_without_dropout):
    """The shared tiny checkpoint without dropout (runs on different process counts must match)."""
    return tiny_checkpoint_without_dropout
