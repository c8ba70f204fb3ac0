"""The X-FM model in pure PyTorch: encoders, heads, presets and checkpoint I/O (no Kedro/MLflow imports)."""

from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer, load_pretrained, save_pretrained
from xfm_pipeline.model.config import FusionConfig, TextConfig, VisionConfig, XFMConfig
from xfm_pipeline.model.import_report import ImportReport
from xfm_pipeline.model.official import convert_official_state_dict, load_official_checkpoint
from xfm_pipeline.model.presets import PRESETS, build_config
from xfm_pipeline.model.xfm import XFM

__all__ = [
    "PRESETS",
    "XFM",
    "FusionConfig",
    "ImportReport",
    "TextConfig",
    "VisionConfig",
    "XFMConfig",
    "build_config",
    "convert_official_state_dict",
    "load_checkpoint_tokenizer",
    "load_official_checkpoint",
    "load_pretrained",
    "save_pretrained",
]
