"""BEiT-v2 initialisation of the vision encoder, as the paper does (docs/xfm.md#beit-v2-and-roberta-initialisation).

Two file layouts, told apart by their keys:

* ``original``: the microsoft/unilm BEiT-v2 release (``beitv2_base_patch16_224_pt1k.pth``,
  ``{'model': state_dict}``) with ONE relative position table shared by all blocks
  (``rel_pos_bias.relative_position_bias_table``), a final ``norm``, ``mask_token`` and pretraining-only
  heads (``lm_head``, ``cls_pt_layers``). The shared table is copied into every block, as the official X-FM
  loader does (``load_pretrained_beit2``).
* ``timm``: the state dict of timm's ``beitv2_base_patch16_224`` (``.pth`` or ``.safetensors``; also the
  unilm fine-tuned releases): a table per block, ``fc_norm`` (or ``norm``) and a classifier ``head``.

Tables of another grid are resized with the official cubic method (``position_resize``); the
``relative_position_index`` buffers are the encoder's own. As in official X-FM, ``fc_norm`` keeps its
fresh LayerNorm values (weight 1, bias 0) unless the file has it, and the final ``norm`` of a
pretraining checkpoint is not used (the encoder mean-pools through ``fc_norm``): the report lists
``fc_norm`` under ``initialised`` with that reason. A timm file has no ``mask_token``: ``initialised`` too.
Anything else the file lacks is ``missing``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from xfm_pipeline.model.import_report import ImportReport
from xfm_pipeline.model.position_resize import resize_position_tensor

log = logging.getLogger(__name__)

SHARED_TABLE = "rel_pos_bias.relative_position_bias_table"
BLOCK_TABLE = "attn.relative_position_bias_table"
BEIT_FORMATS = ("original", "timm")

_SKIP_RULES: tuple[tuple[str, str], ...] = (
    ("relative_position_index", "buffer, regenerated for the encoder's grid"),
    ("lm_head.", "pretraining-only MIM head (logits over the VQ-KD visual tokens)"),
    ("cls_pt_layers.", "pretraining-only CLS-pretraining head blocks"),
    ("cls_pt_norm.", "pretraining-only CLS-pretraining head norm"),
    ("cls_pt_lm_head.", "pretraining-only CLS-pretraining MIM head"),
    ("head.", "classification head; X-FM drops it"),
    ("norm.", "final LayerNorm of the BEiT model; the encoder mean-pools through fc_norm, which X-FM starts fresh"),
)


def detect_beit_format(state: dict[str, torch.Tensor], source: str = "state dict") -> str:
    """``original`` (shared relative position table) or ``timm`` (a table per block).

    Raises:
        ValueError: ``state`` has no BEiT keys or no relative position table (names ``source``).
    """
    if "patch_embed.proj.weight" not in state or "blocks.0.attn.qkv.weight" not in state:
        raise ValueError(f"{source}: no BEiT keys (patch_embed.proj.weight, blocks.0.attn.qkv.weight); is it a BEiT-v2 checkpoint?")
    if SHARED_TABLE in state:
        return "original"
    if f"blocks.0.{BLOCK_TABLE}" in state:
        return "timm"
    raise ValueError(f"{source}: BEiT keys but no relative position table ({SHARED_TABLE} or blocks.0.{BLOCK_TABLE})")


def _skip_reason(key: str) -> str | None:
    for pattern, reason in _SKIP_RULES:
        if key.startswith(pattern) or f".{pattern}" in key:
            return reason
    return None


def convert_beit_v2_state_dict(state: dict[str, torch.Tensor], encoder: nn.Module, source: str = "state dict") -> tuple[dict[str, torch.Tensor], ImportReport]:
    """Map a BEiT-v2 state dict (either layout) onto ``encoder`` (a ``VisionEncoder``).

    Returns:
        (state dict of ``encoder`` keys to load, report). The shared table of the ``original`` layout
        becomes every block's ``attn.relative_position_bias_table`` (resized once when the grid differs).

    Raises:
        ValueError: not a BEiT state dict, or a tensor whose shape cannot be reconciled (names the key
        and both shapes, e.g. another width or patch size).
    """
    fmt = detect_beit_format(state, source)
    target = encoder.state_dict()
    report = ImportReport()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key == SHARED_TABLE:
            continue
        reason = _skip_reason(key)
        if reason is not None:
            report.skipped[key] = reason
        elif key not in target:
            report.unexpected.append(key)
        else:
            out[key] = _fit(key, tensor, tuple(target[key].shape), source)
            if out[key] is not tensor:
                report.resized.append(key)
    if fmt == "original":
        tables = [k for k in target if k.endswith(BLOCK_TABLE)]
        if not tables:
            report.unexpected.append(SHARED_TABLE)
        else:
            shared = _fit(SHARED_TABLE, state[SHARED_TABLE], tuple(target[tables[0]].shape), source)  # resized once for all blocks
            out.update(dict.fromkeys(tables, shared))
            if shared is not state[SHARED_TABLE]:
                report.resized += tables
    resized = set(report.resized)
    report.loaded = [k for k in target if k in out]  # encoder order
    report.resized = [k for k in report.loaded if k in resized]
    never_in_format = FRESH_BY_FORMAT[fmt]
    report.initialised = {k: never_in_format[k] for k in target if k not in out and k in never_in_format}
    report.missing = [k for k in target if k not in out and k not in never_in_format]
    return out, report


# Encoder tensors a format never holds, and what they start as instead (ImportReport.initialised).
FRESH_BY_FORMAT: dict[str, dict[str, str]] = {
    "original": {
        "fc_norm.weight": "the release has no fc_norm (it pools through norm); official X-FM starts it at 1",
        "fc_norm.bias": "the release has no fc_norm; official X-FM starts it at 0",
    },
    "timm": {"mask_token": "timm's BEiT has no MIM mask token; it keeps its truncated-normal (std 0.02) init"},
}


def _fit(key: str, tensor: torch.Tensor, want: tuple[int, ...], source: str) -> torch.Tensor:
    """``tensor`` when it has shape ``want``, else the position tensor resized to ``want`` (a new tensor).

    Raises:
        ValueError: not a position tensor, or one that cannot be resized (names ``source`` and ``key``).
    """
    if tuple(tensor.shape) == want:
        return tensor
    try:
        resized = resize_position_tensor(key, tensor, want)
    except ValueError as err:
        raise ValueError(f"{source}: {key}: {err}") from err
    if resized is None:
        raise ValueError(f"{source}: {key} has shape {tuple(tensor.shape)}, the vision encoder {want} (another width, depth or patch size?)")
    return resized


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: ``torch.load(weights_only=True)`` (unwrapping ``{'model': ...}`` or
    ``{'module': ...}``) or safetensors, whichever reads it (the suffix picks which is tried first).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: neither reader can read it, or it holds no state dict of tensors (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BEiT-v2 weights file not found: {path}")
    readers = [_read_torch, _read_safetensors]
    if path.suffix == ".safetensors":
        readers.reverse()
    errors = []
    for reader in readers:
        try:
            blob = reader(path)
        except Exception as err:  # noqa: BLE001 - every reader's failure is reported together below
            errors.append(f"{reader.__doc__}: {err}")
            continue
        for wrapper in ("model", "module"):
            if isinstance(blob, dict) and isinstance(blob.get(wrapper), dict):
                blob = blob[wrapper]
        if not isinstance(blob, dict) or not blob or not all(isinstance(v, torch.Tensor) for v in blob.values()):
            raise ValueError(f"{path}: expected a state dict of tensors (or {{'model': state_dict}}), found {type(blob).__name__}")
        return blob
    raise ValueError(f"{path}: neither a weights-only torch file nor a safetensors file ({'; '.join(errors)})")


def _read_torch(path: Path):
    """torch.load(weights_only=True)"""
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_safetensors(path: Path):
    """safetensors"""
    from safetensors.torch import load_file

    return load_file(str(path))


def load_beit_v2(path: str | Path, encoder: nn.Module) -> ImportReport:
    """Load BEiT-v2 weights from ``path`` (either layout, see the module docstring) into ``encoder``.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_state_dict` and :func:`convert_beit_v2_state_dict`.
    """
    path = Path(path)
    state = read_state_dict(path)
    mapped, report = convert_beit_v2_state_dict(state, encoder, source=str(path))
    encoder.load_state_dict(mapped, strict=False)
    log.info("BEiT-v2 %s (%s layout): %s", path, detect_beit_format(state, str(path)), report.summary())
    if report.missing:
        log.info("BEiT-v2 %s: %d encoder tensors keep their initial values (%s)", path, len(report.missing), ", ".join(report.missing))
    return report
