"""Import of the official X-FM checkpoint (``.th`` file, ``{'model': state_dict}``; docs/xfm.md#official-checkpoint).

An explicit key map (timm's ``checkpoint_filter_fn`` pattern): every official key is either mapped
to a key of this model, resized (relative position tables when the image size differs), or skipped
with a recorded reason. The report lists loaded, resized, skipped, unexpected and missing keys.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from xfm_pipeline.model.tied_weights import tied_keys

log = logging.getLogger(__name__)

_SKIP_RULES: tuple[tuple[str, str], ...] = (
    (".relative_position_index", "buffer, regenerated for the target image size"),
    ("embeddings.position_ids", "buffer, regenerated"),
    (".lm_cap_head.", "unused captioning head of the official code (docs/xfm.md#fix-unused-heads)"),
    ("fusion_encoder.roberta.embeddings.", "fusion input is the text-encoder output; its embeddings are unused"),
    ("fusion_encoder.lm_head.decoder.", "fusion MLM decoder is tied to the text word embeddings (docs/xfm.md#fix-fusion-mlm-decoder)"),
    ("text_encoder.lm_head.decoder.", "tied to the text word embeddings"),
)


# Parts of this model that the official checkpoint cannot fill: they keep their initial values.
NOT_IN_XFM = ("bbox_pointer.",)  # the pointer box head (model.box_heads), trained by pretrain_bbox


@dataclass
class ImportReport:
    """What happened to every key of an imported state dict."""

    loaded: list[str] = field(default_factory=list)  # model keys filled from the file
    resized: list[str] = field(default_factory=list)  # subset of loaded that were interpolated
    skipped: dict[str, str] = field(default_factory=dict)  # official key -> reason
    unexpected: list[str] = field(default_factory=list)  # official keys with no place in this model
    missing: list[str] = field(default_factory=list)  # model keys left at their initial values
    not_in_xfm: list[str] = field(default_factory=list)  # model keys of parts X-FM does not have (initial values)

    def summary(self) -> str:
        """One line per category, for logs."""
        return (
            f"loaded {len(self.loaded)} (resized {len(self.resized)}), skipped {len(self.skipped)}, "
            f"unexpected {len(self.unexpected)}, missing {len(self.missing)}, not in X-FM {len(self.not_in_xfm)}"
        )

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "loaded": self.loaded,
            "resized": self.resized,
            "skipped": self.skipped,
            "unexpected": self.unexpected,
            "missing": self.missing,
            "not_in_xfm": self.not_in_xfm,
        }


def map_official_key(key: str, text_prefix: str) -> str | None:
    """Official key -> this model's key (``None`` when a skip rule applies).

    ``text_prefix`` is the text encoder's base-model attribute (``roberta`` or ``bert``).
    """
    for pattern, _ in _SKIP_RULES:
        if pattern in key:
            return None
    if key.startswith("visual_encoder."):  # X-VLM era name
        key = "vision_encoder." + key[len("visual_encoder.") :]
    if key.startswith("fusion_encoder.roberta.encoder.layer."):
        return "fusion_encoder.layer." + key[len("fusion_encoder.roberta.encoder.layer.") :]
    if key.startswith("text_encoder."):
        rest = key[len("text_encoder.") :]
        if rest.startswith("roberta."):
            rest = rest[len("roberta.") :]
        if rest.startswith(("embeddings.", "encoder.")):  # fine-tuned checkpoints have no `roberta.`
            return f"text_encoder.{text_prefix}.{rest}"
        return f"text_encoder.{rest}"
    return key


def skip_reason(key: str) -> str | None:
    """The reason an official key is skipped, or ``None``."""
    for pattern, reason in _SKIP_RULES:
        if pattern in key:
            return reason
    return None


def resize_rel_pos_table(table: torch.Tensor, target_shape: tuple[int, ...]) -> torch.Tensor:
    """Resize a BEiT relative position table ((2g-1)^2 + 3, H) to ``target_shape`` (3 extra rows kept).

    Uses timm's geometric-spacing interpolation, the BEiT recipe the official code implements with
    scipy's removed ``interp2d`` (docs/xfm.md#change-relative-position-resize).
    """
    from timm.layers import resize_rel_pos_bias_table

    side = int(round((target_shape[0] - 3) ** 0.5))
    new_window = ((side + 1) // 2, (side + 1) // 2)
    return resize_rel_pos_bias_table(table, new_window_size=new_window, new_bias_shape=tuple(target_shape))


def resize_abs_pos_embed(pos_embed: torch.Tensor, target_shape: tuple[int, ...]) -> torch.Tensor:
    """Resample an absolute position embedding (1, 1+g^2, D) to ``target_shape`` (1, 1+G^2, D): the
    patch grid bicubically (timm's ``resample_abs_pos_embed``), the CLS slot as is."""
    from timm.layers import resample_abs_pos_embed

    side = math.isqrt(target_shape[1] - 1)
    return resample_abs_pos_embed(pos_embed, new_size=[side, side], num_prefix_tokens=1)


def resize_position_tensor(key: str, tensor: torch.Tensor, target_shape: tuple[int, ...]) -> torch.Tensor | None:
    """``tensor`` resized to ``target_shape`` when ``key`` names a vision position tensor (a block's
    relative position table or the absolute ``pos_embed``), else None: the one rule for loading a
    vision encoder at another resolution."""
    if key.endswith("relative_position_bias_table"):
        return resize_rel_pos_table(tensor, target_shape)
    if key == "vision_encoder.pos_embed":
        return resize_abs_pos_embed(tensor, target_shape)
    return None


def convert_official_state_dict(official: dict[str, torch.Tensor], model) -> tuple[dict[str, torch.Tensor], ImportReport]:
    """Map an official X-FM state dict onto ``model`` (an ``XFM``); tensors are not copied.

    Raises:
        ValueError: a mapped tensor has a shape that cannot be reconciled (names the key and both shapes).
    """
    report = ImportReport()
    target = model.state_dict()
    text_prefix = model.text_encoder.base_model_prefix
    out: dict[str, torch.Tensor] = {}
    for key, tensor in official.items():
        reason = skip_reason(key)
        if reason is not None:
            report.skipped[key] = reason
            continue
        new_key = map_official_key(key, text_prefix)
        if new_key not in target:
            report.unexpected.append(key)
            continue
        want = tuple(target[new_key].shape)
        if tuple(tensor.shape) != want:
            resized = resize_position_tensor(new_key, tensor, want)
            if resized is None:
                raise ValueError(f"official key {key} -> {new_key}: shape {tuple(tensor.shape)} != model {want}")
            tensor = resized
            report.resized.append(new_key)
        out[new_key] = tensor
        report.loaded.append(new_key)
    tied = tied_keys(model)
    left = sorted(k for k in target if k not in out and k not in tied and not _is_buffer(model, k))
    report.not_in_xfm = [k for k in left if k.startswith(NOT_IN_XFM)]
    report.missing = [k for k in left if not k.startswith(NOT_IN_XFM)]
    return out, report


def load_official_checkpoint(path: str | Path, model) -> ImportReport:
    """Load the official ``.th`` file at ``path`` into ``model`` (``torch.load(weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official X-FM checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path}: cannot be read as a weights-only torch checkpoint ({err})") from err
    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected {{'model': state_dict}} or a raw state dict of tensors")
    mapped, report = convert_official_state_dict(state, model)
    model.load_state_dict(mapped, strict=False)
    log.info("imported %s: %s", path, report.summary())
    return report


def _is_buffer(model, key: str) -> bool:
    return key in dict(model.named_buffers())
