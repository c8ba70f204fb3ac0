"""Shared fixtures of the retrieval / NLVR2 / grounding task tests (tiny model, validated shapes-world records).

Import into a test module with ``from understanding_fixtures import tiny_init, tokenizer``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VALIDATED = REPO / "data" / "02_intermediate"
IMAGE_ROOT = str(REPO / "data" / "01_raw" / "shapes_world" / "images")


def validated(relative: str) -> list:
    """Records of a validated shapes-world file (skips the test when the world has not been generated)."""
    path = VALIDATED / relative
    if not path.is_file():
        pytest.skip(f"{path} missing: run `kedro run --pipeline data_ingestion` and `data_validation` first")
    return json.loads(path.read_text())


def write_data_dir(directory: Path, data: dict) -> Path:
    """One ``<key>.json`` per data key, as the fine-tune node writes them for the job."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        (directory / f"{key}.json").write_text(json.dumps(value))
    return directory


@pytest.fixture(scope="module")
def tiny_init(tiny_checkpoint_without_dropout):
    """The shared tiny checkpoint without dropout, so repeated forwards agree."""
    return tiny_checkpoint_without_dropout


@pytest.fixture(scope="module")
def tokenizer(tiny_init):
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer

    return load_checkpoint_tokenizer(tiny_init)


def load_backbone(tiny_init):
    """A fresh copy of the tiny backbone (in train mode)."""
    from xfm_pipeline.model.checkpoint import load_pretrained

    return load_pretrained(tiny_init)


def train_steps(task, model, batch, steps: int, lr: float = 1e-4) -> tuple[float, float]:
    """``steps`` AdamW steps on one fixed batch; the loss before and after, both under the same seed."""
    import torch

    def measure() -> float:
        with torch.no_grad():
            torch.manual_seed(1234)
            return float(task.loss(model, batch)["loss"])

    model.train()
    before = measure()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(steps):
        torch.manual_seed(step)
        loss = task.loss(model, batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, measure()


@pytest.fixture(scope="module", autouse=False)
def one_thread():
    """Run the module's torch work on one thread (restored after): on a shared 2-core machine, two OpenMP
    threads competing with other processes spin-wait and run 10x slower than one."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@contextlib.contextmanager
def vision_inputs(model):
    """Collect every image batch the task model's vision encoder receives (a forward pre-hook)."""
    seen: list = []
    handle = model.xfm.vision_encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        yield seen
    finally:
        handle.remove()


def assert_noise_hid_the_images(seen: list) -> None:
    """``seen`` holds three equal passes over a split: real images, noise with a seed, the same seed again."""
    import torch

    n = len(seen) // 3
    real, noise, noise_again = torch.cat(seen[:n]), torch.cat(seen[n : 2 * n]), torch.cat(seen[2 * n :])
    assert real.shape == noise.shape and not torch.allclose(real, noise)
    torch.testing.assert_close(noise, noise_again)
