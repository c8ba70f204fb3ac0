"""Parameters of the shapes world (``params:data_ingestion.shapes_world``) and named size presets.

The defaults are the embedded demo world (~2,950 images of 96 px, generated in well under a minute on
2 cores). ``PRESETS["tiny"]`` is for tests; ``PRESETS["large"]`` is the documented larger setting
(224 px, ~75k images), applied as overrides in ``conf/local/parameters_data_ingestion.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xfm_pipeline.config import from_dict, merge, to_dict


@dataclass
class ImageCounts:
    """Images per split. Task splits (train/val/test) have disjoint images; ``pretrain`` images are seen
    only by the pretraining corpora, which also use ``train`` images but never val/test ones."""

    pretrain: int = 500
    train: int = 1200
    val: int = 100
    test: int = 150


@dataclass
class NLVRCounts:
    """Image-pair statements per NLVR2 split (train on train images, dev on val, test on test)."""

    train: int = 6000
    dev: int = 600
    test: int = 2000


@dataclass
class ImageNetConfig:
    """The ImageFolder classification set (its own images, under ``imagenet/``)."""

    label: str = "shape"  # shape (6 classes) | shape_colour (36 classes): the dominant object's
    train_per_class: int = 100
    val_per_class: int = 15
    max_distractors: int = 2  # small objects of other shapes around the dominant one


@dataclass
class GlueCounts:
    """Examples per GLUE split, for every task (MNLI: per matched/mismatched file)."""

    train: int = 500
    dev: int = 100
    test: int = 100


@dataclass
class PretrainConfig:
    """The four pretraining corpora."""

    captions_per_image: int = 2  # ``desc`` list length of image-text records
    binary_fraction: float = 0.1  # share of image-text records carrying base64 ``binary`` instead of ``image``
    image_caption_fraction: float = 0.6  # share of region-text records with an image-level ``caption``
    text_only: int = 2000  # lines of the text-only corpus


@dataclass
class ShapesWorldConfig:
    """Everything that determines the generated world; the same config and seed give the same bytes."""

    seed: int = 0
    image_size: int = 96  # pixels per side of every image
    jpeg_quality: int = 90  # must equal the raw catalog's pillow save_args quality
    min_objects: int = 2
    max_objects: int = 5
    textured_background: float = 0.5  # probability of a lightly textured (noise/stripes/grid) background
    images: ImageCounts = field(default_factory=ImageCounts)
    train_captions_per_image: int = 2  # retrieval/captioning train records per image
    captions_per_image: int = 5  # references per val/test image (retrieval, captioning)
    vqa_questions_per_image: int = 3
    vqa_wrong_answer_rate: float = 0.05  # chance that one of the ten annotators answers wrongly
    nlvr: NLVRCounts = field(default_factory=NLVRCounts)
    grounding_refs_per_image: int = 2  # referred objects per image (1-2 expressions each)
    imagenet: ImageNetConfig = field(default_factory=ImageNetConfig)
    glue: GlueCounts = field(default_factory=GlueCounts)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {self.image_size}")
        if not 1 <= self.min_objects <= self.max_objects <= 8:
            raise ValueError(f"need 1 <= min_objects <= max_objects <= 8, got {self.min_objects}, {self.max_objects}")
        if self.imagenet.label not in ("shape", "shape_colour"):
            raise ValueError(f"imagenet.label must be 'shape' or 'shape_colour', got {self.imagenet.label!r}")
        for name, value in (("textured_background", self.textured_background), ("vqa_wrong_answer_rate", self.vqa_wrong_answer_rate),
                            ("pretrain.binary_fraction", self.pretrain.binary_fraction)):  # fmt: skip
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if min(self.images.train, self.images.val, self.images.test) < 2:
            raise ValueError("images.train, images.val and images.test need at least 2 images each (NLVR2 pairs)")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be in [1, 95], got {self.jpeg_quality}")


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "images": {"pretrain": 10, "train": 24, "val": 8, "test": 12},
        "nlvr": {"train": 24, "dev": 8, "test": 12},
        "imagenet": {"train_per_class": 3, "val_per_class": 1},
        "glue": {"train": 16, "dev": 8, "test": 8},
        "pretrain": {"text_only": 20},
    },
    "default": {},
    "large": {
        "image_size": 224,
        "images": {"pretrain": 20000, "train": 40000, "val": 5000, "test": 5000},
        "nlvr": {"train": 40000, "dev": 5000, "test": 5000},
        "imagenet": {"train_per_class": 1000, "val_per_class": 100},
        "glue": {"train": 20000, "dev": 2000, "test": 2000},
        "pretrain": {"text_only": 200000},
    },
}


def shapes_world_config(preset: str = "default", overrides: dict[str, Any] | None = None) -> ShapesWorldConfig:
    """A config from a preset name plus nested overrides (unknown keys are rejected)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown shapes-world preset {preset!r}; expected one of {sorted(PRESETS)}")
    base = to_dict(ShapesWorldConfig())
    return from_dict(ShapesWorldConfig, merge(merge(base, PRESETS[preset]), overrides), path="shapes_world")
