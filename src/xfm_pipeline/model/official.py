"""Import of the official X-FM checkpoint (``.th`` file, ``{'model': state_dict}``; docs/xfm.md#official-checkpoint).

An explicit key map (timm's ``checkpoint_filter_fn`` pattern): every official key is either mapped
to a key of this model, resized (relative position tables when the image size differs), or skipped
with a recorded reason. The report lists loaded, resized, skipped, unexpected and missing keys.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from xfm_pipeline.model.import_report import ImportReport
from xfm_pipeline.model.position_resize import resize_position_tensor
from xfm_pipeline.model.tied_weights import tied_keys

log = logging.getLogger(__name__)

_SKIP_RULES: tuple[tuple[str, str], ...] = (
    (".relative_position_index", "buffer, regenerated for the target image size"),
    ("embeddings.position_ids", "buffer, regenerated"),
    (".lm_cap_head.", "unused captioning head of the official code (docs/xfm.md#fix-unused-heads)"),
    ("fusion_encoder.lm_head.decoder.", "tied to the fusion word table (fusion_encoder.roberta.embeddings.word_embeddings) and lm_head.bias"),
    ("text_encoder.lm_head.decoder.", "tied to the text word embeddings"),
)


# The official fusion encoder's embedding block: its word table is the fusion MLM decoder (trained through that
# tie); position/type embeddings and LayerNorm are never used by the encoder but start the VQA decoder.
FUSION_EMBEDDINGS = "fusion_encoder.roberta.embeddings."

# Parts of this model that the official checkpoint cannot fill: they keep their initial values.
NOT_IN_XFM = ("bbox_pointer.",)  # the pointer box head (model.box_heads), trained by pretrain_bbox


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
    if key == FUSION_EMBEDDINGS + "token_type_embeddings.weight":  # (1, D) table of RoBERTa's single type
        return "fusion_encoder.embeddings.token_type_embedding"
    if key.startswith(FUSION_EMBEDDINGS):
        return "fusion_encoder.embeddings." + key[len(FUSION_EMBEDDINGS) :]
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


def convert_official_state_dict(official: dict[str, torch.Tensor], model) -> tuple[dict[str, torch.Tensor], ImportReport]:
    """Map an official X-FM state dict onto ``model`` (an ``XFM``); tensors are not copied.

    Raises:
        ValueError: a mapped tensor has a shape that cannot be reconciled (names the key and both shapes).
    """
    own_table = FUSION_EMBEDDINGS + "word_embeddings.weight"
    if own_table in official and model.config.fusion.word_embeddings != "own":
        raise ValueError(
            f"the official checkpoint has the fusion encoder's own word table ({own_table}), which its fusion MLM "
            "decoder and VQA decoder use; build the model with fusion.word_embeddings: own to import it"
        )
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
        if new_key == "fusion_encoder.embeddings.token_type_embedding":
            tensor = tensor[0]  # row 0: the only token type
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


def official_over_checkpoint(directory: str | Path, path: str | Path, image_size: int | None = None):
    """The official weights at ``path`` in the architecture of the checkpoint ``directory`` (its config at
    ``image_size``, with ``fusion.word_embeddings: own``); tensors the official file cannot fill (the pointer
    box head, anything missing) keep the checkpoint's values.

    Returns:
        (XFM, ImportReport)
    """
    import copy

    from xfm_pipeline.model.checkpoint import load_pretrained
    from xfm_pipeline.model.xfm import XFM

    start = load_pretrained(directory, image_size=image_size)
    config = copy.deepcopy(start.config)
    config.fusion.word_embeddings = "own"
    model = XFM(config)
    report = load_official_checkpoint(path, model)
    kept = start.state_dict()
    model.load_state_dict({k: kept[k] for k in [*report.not_in_xfm, *report.missing] if k in kept}, strict=False)
    return model, report


def _is_buffer(model, key: str) -> bool:
    return key in dict(model.named_buffers())
