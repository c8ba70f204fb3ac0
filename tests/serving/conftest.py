"""A tiny VQA model fine-tuned by the ``finetune_vqa`` pipeline with MLflow tracking on, so that the tracking hook
logs and registers it (``xfm-vqa``) in a sqlite store in a temporary directory."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

# Two training steps and the shapes world's few VQA questions: the model only has to exist and answer.
QUESTIONS = {"train": 16, "val": 8, "test": 8}
FINETUNE = {"finetune_vqa": {"batch_size": 4, "eval_batch_size": 32, "loop": {"max_steps": 2, "eval_every": 2, "progress": False}}}


@dataclass(frozen=True)
class RegisteredVQA:
    """The project the model was trained in and the tracking store it was registered in."""

    root: Path  # the Kedro project
    tracking_uri: str  # sqlite:///<root>/mlflow.db; artifacts under <root>/mlruns

    @property
    def image_root(self) -> Path:
        return self.root / "data" / "01_raw" / "shapes_world" / "images"


@pytest.fixture(scope="module")
def registered_vqa(tmp_path_factory, shapes_world, tiny_checkpoint_without_dropout) -> RegisteredVQA:
    """``kedro run --pipeline finetune_vqa`` (in-process) from the tiny checkpoint on the session's shapes world,
    tracked in ``<project>/mlflow.db``: the hook registers version 1 of ``xfm-vqa``."""
    from kedro.framework.project import configure_project
    from kedro.framework.session import KedroSession
    from kedro_project import make_project

    root = make_project(tmp_path_factory.mktemp("serving") / "project", {"parameters_finetune.yml": FINETUNE})
    for layer in ("01_raw", "02_intermediate"):
        shutil.copytree(shapes_world.root / "data" / layer, root / "data" / layer)
    for split, count in QUESTIONS.items():  # fewer questions: the fine-tune evaluates val and test
        path = root / "data" / "02_intermediate" / "vqa" / f"{split}.json"
        path.write_text(json.dumps(json.loads(path.read_text())[:count]))
    shutil.copytree(tiny_checkpoint_without_dropout, root / "data" / "06_models" / "pretrain")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("XFM_MLFLOW", "1")
        mp.chdir(root)  # a new store's artifact root is ./mlruns of the working directory
        configure_project("xfm_pipeline")
        with KedroSession.create(project_path=root) as session:
            session.run(pipeline_names=["finetune_vqa"])
    return RegisteredVQA(root, uri)
