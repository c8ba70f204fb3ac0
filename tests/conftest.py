"""Shared fixtures (offline environment, tiny models, a generated shapes world) and the test tiers."""

from __future__ import annotations

import os

from xfm_pipeline.offline import use_offline_environment

use_offline_environment()  # inherited by every subprocess a test starts (kedro, dvc, torchrun, jupyter)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# ------------------------------------------------------------------------------------------------ tiers
# Every test gets exactly one tier (markers registered in pyproject.toml): an explicit @pytest.mark.<tier>
# (function, class or module ``pytestmark``) wins; else a test using a SYSTEM_FIXTURES fixture is a system
# test; else its directory's default below; else unit. `make test-fast` runs `-m unit`.
TIERS = ("unit", "integration", "system")
DIRECTORY_TIERS = {
    "readme": "system",  # README commands: kedro, dvc, mlflow, make subprocesses and servers
    "dvc": "system",  # `dvc repro` of the whole chain
    "notebooks": "system",  # a Jupyter kernel runs the walkthrough
    "viz": "system",  # `kedro viz` subprocesses and headless Chromium
    "jobs": "integration",  # pretraining jobs: data, model, objectives and the loop together
}
SYSTEM_FIXTURES = frozenset({"base_model"})  # builds the 327M-parameter base preset
TESTS = Path(__file__).resolve().parent


def tier_of(item: pytest.Item) -> tuple[str, bool]:
    """``(tier, explicit)`` of a collected test.

    Raises:
        pytest.UsageError: the test is marked with more than one tier.
    """
    explicit = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
    if len(explicit) > 1:
        raise pytest.UsageError(f"{item.nodeid}: marked with several tiers {sorted(explicit)}; give it exactly one")
    if explicit:
        return explicit.pop(), True
    if SYSTEM_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "system", False
    parts = item.path.resolve().relative_to(TESTS).parts
    return (DIRECTORY_TIERS.get(parts[0], "unit") if len(parts) > 1 else "unit"), False


def pytest_collection_modifyitems(config, items):
    """Give every test without an explicit tier its default one (see ``tier_of``); skip ``gpu`` tests, with the
    reason, where there is no CUDA device (`make gpu-check` runs them on a machine with one)."""
    import torch

    no_gpu = pytest.mark.skip(reason="needs a CUDA device (run `make gpu-check` on a GPU machine)")
    for item in items:
        tier, explicit = tier_of(item)
        if not explicit:
            item.add_marker(tier)
        if item.get_closest_marker("gpu") is not None and not torch.cuda.is_available():
            item.add_marker(no_gpu)


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def shapes_world(tmp_path_factory):
    """A temporary Kedro project with a small shapes world generated and validated (``data_ingestion`` and
    ``data_validation`` run in-process, ~15 s): the validated records and images of the task and notebook
    tests. Nothing is written into the repository's ``data/``."""
    from kedro_project import make_demo_world

    return make_demo_world(tmp_path_factory.mktemp("shapes_world") / "project")


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny-preset X-FM in eval mode (MiniLM text encoder loaded from site-packages)."""
    import torch

    from xfm_pipeline.model import XFM, build_config

    torch.manual_seed(0)
    return XFM(build_config("tiny")).eval()


@pytest.fixture(scope="session")
def base_model():
    """The base preset (327.3M parameters), built once per session."""
    import torch

    from xfm_pipeline.model import XFM, build_config

    torch.manual_seed(0)
    return XFM(build_config("base")).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint_without_dropout(tmp_path_factory):
    """A tiny-preset checkpoint (with tokenizer) with every dropout at 0, so repeated forwards and runs on
    different process counts agree exactly."""
    import torch

    from xfm_pipeline.model import XFM, build_config, save_pretrained
    from xfm_pipeline.model.text import load_tokenizer

    torch.manual_seed(0)
    model = XFM(build_config("tiny", {"fusion": {"dropout": 0.0}}))
    model.text_encoder.config.hidden_dropout_prob = 0.0
    model.text_encoder.config.attention_probs_dropout_prob = 0.0
    directory = tmp_path_factory.mktemp("tiny_no_dropout") / "ckpt"
    save_pretrained(model, directory, tokenizer=load_tokenizer("all-minilm-l6-v2"))
    return directory


@pytest.fixture
def benchmark_module(monkeypatch):
    """``benchmark_module("pretrain_step")`` imports ``benchmarks/pretrain_step.py`` (not a package) for the
    test; it is registered in ``sys.modules`` meanwhile, where dataclasses look their module up."""
    import importlib.util
    import sys
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load
