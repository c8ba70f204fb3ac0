"""Parameters of data validation (``params:data_validation``) as validated dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xfm_pipeline.config import ConfigError
from xfm_pipeline.data.validation.registry import DATASETS

POLICIES = ("fail", "quarantine")


@dataclass
class TextLimits:
    """Bounds on every text field (captions, questions, sentences, answers, GLUE texts)."""

    min_chars: int = 1  # non-blank characters at least (whitespace is stripped before counting)
    max_chars: int = 2000  # characters at most (after stripping)


@dataclass
class ValidationParams:
    """``params:data_validation``."""

    raw_root: str = "data/01_raw/shapes_world"  # where the raw catalog entries live; named in messages
    sources: dict[str, str] = field(default_factory=dict)  # per-dataset path overrides for messages
    image_root: str = "data/01_raw/shapes_world/images"  # image root of every vision-language dataset
    image_roots: dict[str, str] = field(default_factory=dict)  # per-dataset image root overrides
    imagenet_root: str = "data/01_raw/shapes_world/imagenet"  # ImageFolder root (path of imagenet_raw)
    imagenet_suffix: str = ".jpg"  # filename_suffix of imagenet_raw (partition ids omit it)
    default_policy: str = "quarantine"  # fail | quarantine, for datasets not named in `policies`
    policies: dict[str, str] = field(default_factory=dict)  # dataset name -> fail | quarantine
    text: TextLimits = field(default_factory=TextLimits)
    box_tolerance_px: float = 0.0  # boxes may overhang the image border by this many pixels
    split_order: list[str] = field(default_factory=lambda: ["train", "val", "dev", "testA", "testB", "test"])
    compare_image_content: bool = True  # images are the same when paths OR file bytes (SHA-256) match
    image_workers: int = 2  # threads decoding images
    shard_workers: int = 2  # processes validating the shards of a sharded pretraining corpus in parallel
    max_listed_records: int = 20  # bad records listed per dataset in the report and the error message

    def __post_init__(self) -> None:
        if self.default_policy not in POLICIES:
            raise ConfigError(f"data_validation.default_policy: expected one of {POLICIES}, got {self.default_policy!r}")
        for key, mapping in (("policies", self.policies), ("sources", self.sources), ("image_roots", self.image_roots)):
            if not isinstance(mapping, dict):
                raise ConfigError(f"data_validation.{key}: expected a mapping, got {type(mapping).__name__}")
            unknown = sorted(set(mapping) - set(DATASETS))
            if unknown:
                raise ConfigError(f"unknown dataset(s) {', '.join(f'data_validation.{key}.{k}' for k in unknown)}; known: {', '.join(DATASETS)}")
        for name, policy in self.policies.items():
            if policy not in POLICIES:
                raise ConfigError(f"data_validation.policies.{name}: expected one of {POLICIES}, got {policy!r}")
        if self.text.min_chars < 0 or self.text.max_chars < max(self.text.min_chars, 1):
            raise ConfigError(f"data_validation.text: need 0 <= min_chars <= max_chars (max_chars >= 1), got {self.text.min_chars}..{self.text.max_chars}")
        if self.box_tolerance_px < 0:
            raise ConfigError(f"data_validation.box_tolerance_px: must be >= 0, got {self.box_tolerance_px}")
        if self.image_workers < 1 or self.shard_workers < 1 or self.max_listed_records < 1:
            raise ConfigError("data_validation.image_workers, shard_workers and max_listed_records must be >= 1")
        if not isinstance(self.split_order, list) or len(set(self.split_order)) != len(self.split_order):
            raise ConfigError(f"data_validation.split_order: expected a list of distinct split names, got {self.split_order!r}")

    def policy(self, dataset: str) -> str:
        """The policy of ``dataset`` (its entry in ``policies`` or the default)."""
        return self.policies.get(dataset, self.default_policy)

    def image_root_of(self, dataset: str) -> Path:
        """The image root that ``image`` fields of ``dataset`` are relative to."""
        if dataset == "imagenet":
            return Path(self.imagenet_root)
        return Path(self.image_roots.get(dataset, self.image_root))

    def source_of(self, dataset: str) -> str:
        """Path of the raw file (or folder) of ``dataset``, for messages."""
        if dataset in self.sources:
            return self.sources[dataset]
        if dataset == "imagenet":
            return self.imagenet_root
        return str(Path(self.raw_root) / DATASETS[dataset].relpath)
