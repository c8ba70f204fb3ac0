"""Training checkpoints: ``checkpoint-<step>/`` with the model weights, its metadata and ``training_state.pt``.

Each checkpoint is written to a temporary directory and renamed into place. On restart the newest
checkpoint that passes :func:`checkpoint_problem` is used; damaged ones (truncated weights, unreadable
state) are skipped with a warning and never loaded.
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from xfm_pipeline.model.checkpoint import atomic_directory_write

log = logging.getLogger(__name__)

PREFIX = "checkpoint-"
WEIGHTS = "model.safetensors"
STATE = "training_state.pt"


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    """``output_dir/checkpoint-0000120`` for step 120."""
    return Path(output_dir) / f"{PREFIX}{step:07d}"


def save_training_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    state: dict[str, Any],
    write_metadata: Callable[[Path, torch.nn.Module], None] | None = None,
) -> Path:
    """Atomically write ``model`` weights, ``state`` (optimizer, scheduler, step, positions) and metadata
    (``write_metadata(directory, model)``). A ``write_metadata`` that writes the weights itself (a model or
    task checkpoint writer, through the same ``save_weights``) is not followed by a second write of them."""
    from xfm_pipeline.model.checkpoint import save_weights

    def write(tmp: Path) -> None:
        if write_metadata is not None:
            write_metadata(tmp, model)
        if not (tmp / WEIGHTS).is_file():
            save_weights(model, tmp / WEIGHTS)
        torch.save(state, tmp / STATE)

    return atomic_directory_write(directory, write)


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{path.name} is truncated (no header)"
        (n,) = struct.unpack("<Q", head)
        if 8 + n > size:
            return f"{path.name} is truncated (header of {n} bytes, file of {size})"
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            return f"{path.name} has a corrupt header"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        return f"{path.name} is truncated ({size} bytes, expected {8 + n + end})"
    return None


def checkpoint_problem(directory: Path) -> str | None:
    """Why ``directory`` cannot be resumed from, or ``None`` if it is complete."""
    for name in (WEIGHTS, STATE):
        if not (directory / name).is_file():
            return f"missing {name}"
    problem = _safetensors_problem(directory / WEIGHTS)
    if problem:
        return problem
    try:
        state = torch.load(directory / STATE, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means "do not resume from here"
        return f"{STATE} unreadable ({type(err).__name__}: {err})"
    if not isinstance(state, dict) or "step" not in state:
        return f"{STATE} has no step"
    return None


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoint directories under ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdigit())


def latest_valid_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint; damaged newer ones are reported and skipped."""
    for directory in reversed(list_checkpoints(output_dir)):
        problem = checkpoint_problem(directory)
        if problem is None:
            return directory
        log.warning("skipping damaged checkpoint %s: %s", directory, problem)
    return None


def load_training_state(directory: Path, model: torch.nn.Module) -> dict[str, Any]:
    """Load weights into ``model`` (strict) and return the saved training state."""
    from safetensors.torch import load_model

    load_model(model, str(directory / WEIGHTS), strict=True)
    return torch.load(directory / STATE, map_location="cpu", weights_only=True)


def prune_checkpoints(output_dir: str | Path, keep_last: int) -> None:
    """Delete all but the ``keep_last`` newest checkpoints (``keep_last <= 0`` keeps all)."""
    if keep_last <= 0:
        return
    for directory in list_checkpoints(output_dir)[:-keep_last]:
        shutil.rmtree(directory, ignore_errors=True)
