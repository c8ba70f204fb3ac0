"""Checkpoint directories: ``model.safetensors`` + ``config.json`` (+ ``tokenizer/``), written atomically.

A checkpoint is rebuilt from its directory alone: ``config.json`` holds the full model configuration
with the text encoder's architecture inlined (no reference to the pretrained directory it came from).
Writes go to a hidden temporary sibling that is renamed into place, so an interrupted write never
leaves a directory that looks valid.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xfm_pipeline.config import from_dict, to_dict
from xfm_pipeline.model.config import TextConfig, XFMConfig
from xfm_pipeline.model.tied_weights import tied_aliases, tied_keys

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
TOKENIZER_DIR = "tokenizer"
FORMAT = "xfm_pipeline/checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A model with what travels beside it in a checkpoint directory."""

    model: Any  # XFM (or a task model exposing .config)
    tokenizer: Any = None  # transformers tokenizer, saved under tokenizer/
    extra: dict[str, Any] = field(default_factory=dict)  # JSON metadata (provenance, import report ...)


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete or inconsistent."""


def atomic_directory_write(directory: str | Path, write_fn) -> Path:
    """Call ``write_fn(tmp_dir)`` then rename ``tmp_dir`` to ``directory`` (replacing it).

    On any exception the temporary directory is removed and ``directory`` is left untouched.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write_fn(tmp)
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        old = None
        if directory.exists():
            old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def model_config_dict(model) -> dict[str, Any]:
    """The model's config with the text encoder's architecture inlined (self-contained)."""
    from xfm_pipeline.model.text import text_config_dict

    cfg = to_dict(model.config)
    cfg["text"] = to_dict(TextConfig(pretrained=None, hf_config=text_config_dict(model.text_encoder)))
    return cfg


def save_weights(model, path: str | Path) -> None:
    """Write ``model``'s state dict to a safetensors file whose bytes depend on the weights alone.

    Like ``safetensors.torch.save_model``, a tied tensor is stored once, under its first name in state-dict
    order; loaders that know the model (``load_pretrained``, ``safetensors.torch.load_model``) restore the
    aliases. ``save_model`` also lists every alias as its own header metadata entry, and safetensors
    writes a multi-entry metadata map in random order: the same weights hashed differently from save to
    save, which changed run keys (finished runs retrained) and DVC hashes. Here the aliases are one
    entry, ``tied``, a JSON object with sorted keys.
    """
    from safetensors.torch import save_file

    aliases = tied_aliases(model)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k not in aliases}
    save_file(state, str(path), metadata={"tied": json.dumps(aliases, sort_keys=True)})


def write_pretrained(model, directory: Path, tokenizer=None, extra: dict[str, Any] | None = None) -> None:
    """Write weights, config (and tokenizer) into an existing directory (not atomic; see save_pretrained)."""
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "model": model_config_dict(model), "extra": extra or {}}
    save_weights(model, directory / WEIGHTS_NAME)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
    (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True))


def save_pretrained(model, directory: str | Path, tokenizer=None, extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (an ``XFM`` or a task model exposing ``.config``) to ``directory`` atomically.

    Args:
        model: the module; all its parameters and persistent buffers are saved.
        directory: target directory (replaced if it exists).
        tokenizer: optional transformers tokenizer saved under ``tokenizer/``.
        extra: optional JSON-serialisable metadata stored in ``config.json`` under ``extra``.
    """
    out = atomic_directory_write(directory, lambda tmp: write_pretrained(model, tmp, tokenizer, extra))
    log.info("saved checkpoint %s", out)
    return out


def read_checkpoint_config(directory: str | Path) -> dict[str, Any]:
    """Read and check ``config.json`` of a checkpoint directory."""
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint directory (missing {CONFIG_NAME})")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: invalid JSON ({err})") from err
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if not (directory / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{directory}: missing {WEIGHTS_NAME}")
    return meta


def load_pretrained(directory: str | Path, image_size: int | None = None):
    """Rebuild an ``XFM`` from ``directory`` (strict: every tensor must match).

    With ``image_size`` different from the saved one, the model is built at the new resolution and the
    per-block relative position tables (and an absolute ``pos_embed``, if any) are resized (fine-tuning
    at 384/480 px, docs/xfm.md#relative-position-tables).
    """
    from safetensors.torch import load_file

    from xfm_pipeline.model.position_resize import resize_position_tensor
    from xfm_pipeline.model.xfm import XFM

    meta = read_checkpoint_config(directory)
    config = from_dict(XFMConfig, meta["model"])
    if image_size is not None:
        config.vision.image_size = image_size
    model = XFM(config)
    state = load_file(str(Path(directory) / WEIGHTS_NAME))
    target = model.state_dict()
    for key, tensor in state.items():
        if key in target and tensor.shape != target[key].shape:
            resized = resize_position_tensor(key, tensor, tuple(target[key].shape))
            if resized is not None:  # any other shape mismatch makes load_state_dict raise
                state[key] = resized
    missing, unexpected = model.load_state_dict(state, strict=False)
    aliases = tied_keys(model)  # safetensors stores a tied tensor once
    missing = [k for k in missing if k not in aliases]
    if missing or unexpected:
        raise CheckpointError(f"{directory}/{WEIGHTS_NAME} does not match its config: missing {sorted(missing)[:10]}, unexpected {sorted(unexpected)[:10]}")
    return model


def load_checkpoint_tokenizer(directory: str | Path):
    """The tokenizer saved with a checkpoint."""
    from xfm_pipeline.model.text import load_tokenizer

    path = Path(directory) / TOKENIZER_DIR
    if not path.is_dir():
        raise CheckpointError(f"{directory}: no {TOKENIZER_DIR}/ saved with this checkpoint")
    return load_tokenizer(path)
