"""A throw-away Kedro project for tests: the repository's ``conf/`` and ``pyproject.toml`` in a temporary
directory, run in-process with ``KedroSession``; every catalog path (``data/...``) resolves there, so no
test writes into the repository's ``data/``.

The package is installed (editable), so pipelines run without sources in the project; ``src`` is linked in
for code that calls ``bootstrap_project`` (the notebook, ``kedro viz``). Import from a test module or a conftest with
``from kedro_project import make_project, run_pipelines`` (``tests/`` is on ``sys.path``, as the directory
of the root conftest).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

# The shapes world of the task and notebook tests: the default generator with fewer items, enough for the
# first few records of every split the tests take (generation + validation: ~15 s instead of ~40 s).
MINI_WORLD = {
    "images": {"pretrain": 8, "train": 24, "val": 12, "test": 12},
    "nlvr": {"train": 12, "dev": 8, "test": 8},
    "imagenet": {"train_per_class": 12, "val_per_class": 2},
    "glue": {"train": 24, "dev": 24, "test": 24},
    "pretrain": {"text_only": 10},
}


@dataclass(frozen=True)
class DemoWorld:
    """A Kedro project after ``data_ingestion`` and ``data_validation``: the raw and the validated layers."""

    root: Path  # the project directory

    @property
    def validated(self) -> Path:
        """``data/02_intermediate``: the validated records, ``<task>/<split>.json``."""
        return self.root / "data" / "02_intermediate"

    @property
    def image_root(self) -> str:
        """The image root of every vision-language record (``params:image_root``)."""
        return str(self.root / "data" / "01_raw" / "shapes_world" / "images")

    @property
    def imagenet_root(self) -> str:
        """The ImageFolder tree the ImageNet manifest's paths are relative to."""
        return str(self.root / "data" / "01_raw" / "shapes_world" / "imagenet")

    def records(self, relative: str):
        """The parsed validated file ``data/02_intermediate/<relative>`` (e.g. ``"vqa/train.json"``)."""
        return json.loads((self.validated / relative).read_text())


def make_project(directory: Path, local: dict[str, dict] | None = None) -> Path:
    """Create the project at ``directory``: ``conf/base`` copied, ``conf/local`` holding only ``local``
    (``{"parameters_data_ingestion.yml": {...}}``: file name -> YAML content), ``pyproject.toml`` copied."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "conf", directory / "conf", ignore=shutil.ignore_patterns("local"))
    (directory / "conf" / "local").mkdir()
    for name, content in (local or {}).items():
        (directory / "conf" / "local" / name).write_text(yaml.safe_dump(content, sort_keys=False))
    shutil.copy(REPO / "pyproject.toml", directory / "pyproject.toml")
    (directory / "src").mkdir()
    for package in (REPO / "src").iterdir():  # read-only use: bootstrap_project wants the sources in the project
        if package.is_dir() and not package.name.endswith(".egg-info"):
            (directory / "src" / package.name).symlink_to(package)
    return directory


@contextlib.contextmanager
def inside(directory: Path) -> Iterator[None]:
    """Run in ``directory`` (the catalog's relative paths are relative to the working directory) with MLflow
    tracking off; the working directory and ``XFM_MLFLOW`` are restored after."""
    previous_cwd, previous_flag = os.getcwd(), os.environ.get("XFM_MLFLOW")
    os.environ["XFM_MLFLOW"] = "0"
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        if previous_flag is None:
            os.environ.pop("XFM_MLFLOW", None)
        else:
            os.environ["XFM_MLFLOW"] = previous_flag


def run_pipelines(directory: Path, names: list[str]) -> None:
    """Run the registered pipelines ``names`` one after the other, each in its own session of the project."""
    from kedro.framework.project import configure_project
    from kedro.framework.session import KedroSession

    with inside(directory):
        configure_project("xfm_pipeline")  # the installed package; bootstrap_project would want its sources here
        for name in names:
            with KedroSession.create(project_path=directory) as session:
                session.run(pipeline_names=[name])


def make_demo_world(directory: Path) -> DemoWorld:
    """A project at ``directory`` with the ``MINI_WORLD`` shapes world generated and validated."""
    make_project(directory, {"parameters_data_ingestion.yml": {"data_ingestion": {"shapes_world": MINI_WORLD}}})
    run_pipelines(directory, ["data_ingestion", "data_validation"])
    return DemoWorld(directory)
