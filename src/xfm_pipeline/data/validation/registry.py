"""The datasets that data validation knows: raw catalog entry, on-disk location, format and split.

One row per raw catalog entry of ``conf/base/catalog_raw.yml``. ``name`` is the short dataset name
used everywhere else (parameters, report, quarantine file names): the catalog entry without its
``_json_raw`` / ``_jsonl_raw`` / ``_raw`` suffix. Datasets are grouped by ``task``: splits of one
task must not share images, and one Kedro node validates one task.
"""

from __future__ import annotations

from dataclasses import dataclass

from xfm_pipeline.data.formats.pretrain import PRETRAIN_STREAMS


@dataclass(frozen=True)
class DatasetSpec:
    """One raw dataset as validation sees it."""

    name: str  # short name: "vqa_train"; key of parameters and of the quarantine file
    catalog_entry: str  # raw catalog entry: "vqa_train_json_raw"
    relpath: str  # location under the raw root, as in docs/data_formats.md (named in messages)
    fmt: str  # expectation-suite format: "vqa", "retrieval_eval", ...
    task: str  # group validated together (split disjointness, one Kedro node)
    split: str | None  # fixed split of every record; None: no split, or a per-record split
    container: str  # json_list | jsonl_frame | coco_gt | glue | imagefolder
    validated_entry: str  # catalog entry of the validated output in data/02_intermediate
    evaluation: bool = False  # its images are evaluation images (kept out of pretraining corpora)


def _json(task: str, split: str, fmt: str, *, evaluation: bool | None = None, split_of_records: bool = True) -> DatasetSpec:
    name = f"{task}_{split}"
    return DatasetSpec(
        name=name,
        catalog_entry=f"{name}_json_raw",
        relpath=f"{task}/{split}.json",
        fmt=fmt,
        task=task,
        split=split if split_of_records else None,
        container="json_list",
        validated_entry=f"{name}_json_validated",
        evaluation=(split != "train") if evaluation is None else evaluation,
    )


def _pretrain(corpus: str) -> DatasetSpec:
    return DatasetSpec(
        name=f"pretrain_{corpus}",
        catalog_entry=f"pretrain_{corpus}_jsonl_raw",
        relpath=f"pretrain/{corpus}.jsonl",
        fmt=f"pretrain_{corpus}",
        task="pretrain",
        split=None,
        container="jsonl_frame",
        validated_entry=f"pretrain_{corpus}_jsonl_validated",
    )


_SPECS: tuple[DatasetSpec, ...] = (
    *(_pretrain(c) for c in PRETRAIN_STREAMS),
    _json("retrieval", "train", "retrieval_train"),
    _json("retrieval", "val", "retrieval_eval"),
    _json("retrieval", "test", "retrieval_eval"),
    _json("vqa", "train", "vqa"),
    _json("vqa", "val", "vqa"),
    _json("vqa", "test", "vqa"),
    _json("vqa", "answer_list", "vqa_answer_list", evaluation=False, split_of_records=False),
    _json("nlvr", "train", "nlvr"),
    _json("nlvr", "dev", "nlvr"),
    _json("nlvr", "test", "nlvr"),
    DatasetSpec(
        name="grounding",
        catalog_entry="grounding_json_raw",
        relpath="grounding/refcoco+.json",
        fmt="grounding",
        task="grounding",
        split=None,  # per record ("split" field); records of non-train splits are evaluation images
        container="json_list",
        validated_entry="grounding_json_validated",
        evaluation=True,
    ),
    _json("captioning", "train", "captioning_train"),
    _json("captioning", "val", "captioning_eval"),
    _json("captioning", "test", "captioning_eval"),
    DatasetSpec(
        name="captioning_val_gt",
        catalog_entry="captioning_val_gt_json_raw",
        relpath="captioning/val_gt.json",
        fmt="captioning_gt",
        task="captioning",
        split=None,  # no images: takes no part in split disjointness
        container="coco_gt",
        validated_entry="captioning_val_gt_json_validated",
    ),
    DatasetSpec(
        name="captioning_test_gt",
        catalog_entry="captioning_test_gt_json_raw",
        relpath="captioning/test_gt.json",
        fmt="captioning_gt",
        task="captioning",
        split=None,
        container="coco_gt",
        validated_entry="captioning_test_gt_json_validated",
    ),
    DatasetSpec(
        name="glue",
        catalog_entry="glue_raw",
        relpath="glue",
        fmt="glue",
        task="glue",
        split=None,
        container="glue",
        validated_entry="glue_validated",
    ),
    DatasetSpec(
        name="imagenet",
        catalog_entry="imagenet_raw",
        relpath="imagenet",
        fmt="imagefolder",
        task="imagenet",
        split=None,  # first directory of each partition: train | val
        container="imagefolder",
        validated_entry="imagenet_json_validated",
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}

# Tasks in pipeline order; each is validated by one Kedro node.
TASKS: tuple[str, ...] = tuple(dict.fromkeys(spec.task for spec in _SPECS))

# Tasks whose records name images under the shared image root (params image_root / shapes_world_images).
IMAGE_ROOT_TASKS: tuple[str, ...] = ("pretrain", "retrieval", "vqa", "nlvr", "grounding", "captioning")


def task_datasets(task: str) -> list[DatasetSpec]:
    """The datasets of ``task`` in registry order."""
    specs = [spec for spec in _SPECS if spec.task == task]
    if not specs:
        raise KeyError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    return specs


def evaluation_datasets() -> list[DatasetSpec]:
    """Datasets whose images are evaluation images (every split but train; grounding: per record)."""
    return [spec for spec in _SPECS if spec.evaluation]
