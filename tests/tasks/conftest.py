"""Set-up shared by the task tests: the tiny checkpoint, its tokenizer, and every registered task on a few
records of the session's shapes world (``shapes_world``, a temporary Kedro project: nothing is read from or
written to the repository's ``data/``).

``task_case(name)`` is the one place that says which records and which tiny parameters a task is tested with;
the contract test (``test_task_contract.py``) and each task's own tests take their data from it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest
from task_helpers import GLUE_ROWS, IMAGENET_PER_CLASS

if TYPE_CHECKING:
    from xfm_pipeline.tasks.base import TaskParams


@dataclass(frozen=True)
class TaskCase:
    """One registered task on a few shapes-world records, with parameters small enough for a CPU test."""

    name: str  # registry key
    data: dict[str, Any]  # task data keys -> records, as the fine-tune node hands them to the job
    params: TaskParams  # image size 64, tiny batches
    image_root: str  # the job's image_root

    def with_options(self, **options) -> TaskCase:
        """The same case with ``options`` merged into ``params.options``."""
        return replace(self, params=replace(self.params, options={**self.params.options, **options}))


def _params(**fields) -> TaskParams:
    from xfm_pipeline.tasks.base import TaskParams

    return TaskParams(**fields)


def _vqa(world) -> tuple[dict, TaskParams]:
    data = {
        "train": world.records("vqa/train.json")[:6],
        "val": world.records("vqa/val.json")[:5],
        "test": world.records("vqa/test.json")[:4],
        "answer_list": world.records("vqa/answer_list.json"),
    }
    return data, _params(image_size=64, batch_size=6, eval_batch_size=5, max_tokens=30, options={"augment": False, "k_test": 4})


def _coco_gt_subset(gt: dict, ids: set) -> dict:
    return {"images": [i for i in gt["images"] if i["id"] in ids], "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}


def _captioning(world) -> tuple[dict, TaskParams]:
    val, test = world.records("captioning/val.json")[:4], world.records("captioning/test.json")[:3]
    data = {
        "train": world.records("captioning/train.json")[:6],
        "val": val,
        "test": test,
        "val_gt": _coco_gt_subset(world.records("captioning/val_gt.json"), {r["image_id"] for r in val}),
        "test_gt": _coco_gt_subset(world.records("captioning/test_gt.json"), {r["image_id"] for r in test}),
    }
    options = {"augment": False, "beam_size": 2, "max_len": 6, "min_len": 2}
    return data, _params(image_size=64, batch_size=6, eval_batch_size=4, max_tokens=30, options=options)


def _retrieval(world) -> tuple[dict, TaskParams]:
    data = {
        "train": world.records("retrieval/train.json")[:8],  # 4 images x 2 captions
        "val": world.records("retrieval/val.json")[:4],  # 4 images x 5 captions
        "test": world.records("retrieval/test.json")[:3],
    }
    options = {"k_test": 3, "rerank_batch": 7, "augment": True}
    return data, _params(image_size=64, batch_size=8, eval_batch_size=3, max_tokens=30, options=options)


def _nlvr(world) -> tuple[dict, TaskParams]:
    from xfm_pipeline.tasks.common import mentions_left_right

    train = world.records("nlvr/train.json")
    left_right = [i for i, r in enumerate(train) if mentions_left_right(r["sentence"])][:3]
    other = [i for i, r in enumerate(train) if not mentions_left_right(r["sentence"])][:3]
    assert len(left_right) == len(other) == 3, "the shapes world must have NLVR2 statements with and without left/right"
    train = [train[i] for i in sorted(left_right + other)]  # 3 statements that say left/right, 3 that do not
    train[1] = {**train[1], "label": train[1]["label"] == "True"}  # booleans are accepted too
    data = {"train": train, "val": world.records("nlvr/dev.json")[:5], "test": world.records("nlvr/test.json")[:4]}
    return data, _params(image_size=64, batch_size=6, eval_batch_size=4, max_tokens=30, options={"augment": True})


def _grounding(world) -> tuple[dict, TaskParams]:
    refs = world.records("grounding/refcoco+.json")
    keep = {"train": 6, "val": 4, "testA": 3, "testB": 3}
    data = {"refs": []}
    for split, n in keep.items():
        data["refs"] += [r for r in refs if r["split"] == split][:n]
    return data, _params(image_size=64, batch_size=6, eval_batch_size=4, max_tokens=30, options={"augment": True})


def _glue(world) -> tuple[dict, TaskParams]:
    """{"glue": {"CoLA/train": text, ...}}: the first GLUE_ROWS rows of every validated GLUE file."""
    glue = {}
    for path in sorted((world.validated / "glue").glob("*/*.tsv")):
        headerless = path.parent.name == "CoLA" and path.stem != "test"
        rows = path.read_text().splitlines(keepends=True)
        glue[f"{path.parent.name}/{path.stem}"] = "".join(rows[: GLUE_ROWS + (0 if headerless else 1)])
    return {"glue": glue}, _params(batch_size=8, eval_batch_size=16, max_tokens=48)


def _imagenet(world) -> tuple[dict, TaskParams]:
    """IMAGENET_PER_CLASS records per class and manifest split (the held-out "val" comes from "train")."""
    manifest, count = [], {}
    for r in world.records("imagenet/manifest.json"):
        key = (r["split"], r["label"])
        if count.get(key, 0) < IMAGENET_PER_CLASS[r["split"]]:
            manifest.append(r)
            count[key] = count.get(key, 0) + 1
    return {"manifest": manifest}, _params(image_size=64, batch_size=8, eval_batch_size=16, options={"image_root": world.imagenet_root})


CASES = {"vqa": _vqa, "captioning": _captioning, "retrieval": _retrieval, "nlvr": _nlvr, "grounding": _grounding, "glue": _glue, "imagenet": _imagenet}


def case_family(name: str) -> str:
    """The CASES key of a registered task: ``glue_cola`` -> ``glue``, ``imagenet_linear_probe`` -> ``imagenet``."""
    for family in CASES:
        if name == family or name.startswith(f"{family}_"):
            return family
    raise KeyError(f"no test case for the registered task {name!r}: add one to CASES in tests/tasks/conftest.py")


@pytest.fixture(scope="session")
def task_case(shapes_world):
    """``task_case(name)``: the :class:`TaskCase` of the registered task ``name`` (records read once per
    family; every call gets its own copy, so a test may change it)."""
    built: dict[str, tuple[dict, TaskParams]] = {}

    def case(name: str) -> TaskCase:
        family = case_family(name)
        if family not in built:
            built[family] = CASES[family](shapes_world)
        data, params = built[family]
        return TaskCase(name, copy.deepcopy(data), copy.deepcopy(params), shapes_world.image_root)

    return case


@pytest.fixture
def case(request, task_case) -> TaskCase:
    """The :class:`TaskCase` of the test module's ``TASK``."""
    return task_case(request.module.TASK.name)


@pytest.fixture(scope="session")
def tiny_init(tiny_checkpoint_without_dropout):
    """The tiny init checkpoint (with tokenizer), dropout 0 so repeated forwards agree."""
    return tiny_checkpoint_without_dropout


@pytest.fixture(scope="session")
def tokenizer(tiny_init):
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer

    return load_checkpoint_tokenizer(tiny_init)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run the module's torch work on one thread (restored after): on a shared 2-core machine, two OpenMP
    threads competing with other processes spin-wait and run 10x slower than one."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def no_java(monkeypatch):
    """Captioning scores with the pure-Python PTB approximation and no METEOR: the Java tools take seconds
    per call (tests/metrics checks METEOR itself)."""
    monkeypatch.setattr("xfm_pipeline.metrics.captioning.java_available", lambda: False)
