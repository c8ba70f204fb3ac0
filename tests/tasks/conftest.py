"""Task tests run on the demo data: generate it (shapes world, validation, tiny init) when missing.

A fresh clone has no ``data/``; the session fixture runs the ``data_ingestion``, ``data_validation``
and ``model_init`` pipelines once (about a minute), exactly as ``make demo`` would.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {
    ("data_ingestion", "data_validation"): REPO / "data" / "02_intermediate" / "imagenet" / "manifest.json",
    ("model_init",): REPO / "data" / "06_models" / "init" / "config.json",
}


@pytest.fixture(scope="session", autouse=True)
def demo_data():
    """Make sure the validated shapes world and the tiny init checkpoint exist under ``data/``."""
    missing = [names for names, marker in REQUIRED.items() if not marker.is_file()]
    if not missing:
        return
    from kedro.framework.project import configure_project
    from kedro.framework.session import KedroSession

    previous = os.environ.get("XFM_MLFLOW")
    os.environ["XFM_MLFLOW"] = "0"
    cwd = os.getcwd()
    try:
        os.chdir(REPO)
        configure_project("xfm_pipeline")
        for names in missing:
            for name in names:
                with KedroSession.create(project_path=REPO) as session:
                    session.run(pipeline_names=[name])
    finally:
        os.chdir(cwd)
        if previous is None:
            os.environ.pop("XFM_MLFLOW", None)
        else:
            os.environ["XFM_MLFLOW"] = previous
    for marker in REQUIRED.values():
        assert marker.is_file(), f"{marker} still missing after running the demo data pipelines"
