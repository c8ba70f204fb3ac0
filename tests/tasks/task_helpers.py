"""Plain helpers of the task tests (fixtures live in ``conftest.py``). Import with
``from task_helpers import ...`` (``tests/tasks`` is on ``sys.path`` for its test modules)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

GLUE_ROWS = 24  # rows kept per GLUE file in the GLUE task cases (tests/tasks/conftest.py)
IMAGENET_PER_CLASS = {"train": 10, "val": 2}  # manifest records kept per class and manifest split in the ImageNet cases


def load_backbone(tiny_init):
    """A fresh copy of the tiny backbone (in train mode)."""
    from xfm_pipeline.model.checkpoint import load_pretrained

    return load_pretrained(tiny_init)


def build(case, tiny_init, **options):
    """``case``'s task model on a fresh tiny backbone (``options`` merged into the case's options)."""
    from xfm_pipeline.tasks.registry import get_task

    case = case.with_options(**options) if options else case
    return get_task(case.name).build_model(load_backbone(tiny_init), case.params, case.data)


def train_batch(case, tokenizer, seed: int = 0, n: int | None = None) -> dict:
    """The first ``n`` (default: a batch) training items of ``case``, item ``i`` drawn with sample seed ``seed + i``, collated."""
    from xfm_pipeline.tasks.registry import get_task

    task = get_task(case.name)
    dataset = task.dataset("train", case.data, tokenizer, case.params, case.image_root, train=True)
    n = min(len(dataset), case.params.batch_size) if n is None else n
    return task.collate("train", True)([dataset[(i, seed + i)] for i in range(n)])


def eval_loader(case, split: str, tokenizer):
    """The fine-tune job's sequential loader over ``case``'s ``split``."""
    from xfm_pipeline.jobs.finetune import eval_loader as job_eval_loader
    from xfm_pipeline.tasks.registry import get_task

    return job_eval_loader(get_task(case.name), split, case.data, tokenizer, case.params, case.image_root)


def write_data_dir(directory: Path, data: dict) -> Path:
    """One ``<key>.json`` per data key, as the fine-tune node writes them for the job."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        (directory / f"{key}.json").write_text(json.dumps(value))
    return directory


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


def run_job(case, init_dir, directory: Path, data: dict | None = None, loop: dict | None = None, keep_runs: int = 1, **params) -> dict:
    """The fine-tune job (``jobs.finetune.run_finetune``) on ``case``: 2 steps, validation at step 2 unless
    ``loop`` says otherwise; ``params`` override the case's ``TaskParams`` fields; ``data`` replaces its data.
    Data files go to ``directory/data``, runs to ``directory/out``."""
    from xfm_pipeline.config import to_dict
    from xfm_pipeline.jobs.finetune import run_finetune

    job_params = {**to_dict(case.params), **params}
    job_params["loop"] = {**job_params["loop"], "max_steps": 2, "eval_every": 2, "progress": False, **(loop or {})}
    return run_finetune({
        "task": case.name, "params": job_params, "init_dir": str(init_dir), "image_root": case.image_root, "run_id": None,
        "data_dir": str(write_data_dir(directory / "data", case.data if data is None else data)), "output_dir": str(directory / "out"),
        "keep_runs": keep_runs,
    })  # fmt: skip
