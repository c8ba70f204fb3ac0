"""Offline stand-ins for the paper's initial weights, written in the released layouts.

* :func:`write_beit_v2`: BEiT-v2 B/16 weights built from timm's own ``beitv2_base_patch16_224`` definition
  (random values, nothing downloaded), saved either as the original microsoft/unilm release
  (``beitv2_base_patch16_224_pt1k.pth``) or as timm saves its state dict (``.pth`` or ``.safetensors``).
* :func:`write_roberta_dir`: a ``RobertaForMaskedLM`` directory (``save_pretrained``) with a working
  byte-level BPE tokenizer trained on generated sentences, loadable with ``local_files_only=True``.
"""

from __future__ import annotations

import functools
import itertools
import random
from pathlib import Path

import torch

from xfm_pipeline.model.presets import ROBERTA_BASE

BEIT_FORMATS = ("original", "timm")
BEIT_V2_VOCAB = 8192  # visual tokens of the VQ-KD tokenizer: rows of the release's MIM ``lm_head``
BEIT_V2_CLS_PT_LAYERS = 2  # the release's CLS-pretraining head blocks (``--early_layers 9 --head_layers 2``)


@functools.lru_cache(maxsize=1)
def _timm_beit_v2_state(image_size: int, seed: int) -> dict[str, torch.Tensor]:
    """timm's ``beitv2_base_patch16_224`` state dict with random, non-degenerate values.

    timm initialises LayerScale at 1e-5 and the relative position tables and q/v biases at 0, which would
    make every block nearly the identity and every table equal; here they get seeded random values so
    that copying, resizing and forwarding the weights are checked on values that differ.
    """
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model("beitv2_base_patch16_224", pretrained=False, img_size=image_size)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for key, tensor in state.items():
            if key.endswith(("gamma_1", "gamma_2")):
                tensor.uniform_(0.05, 0.3)
            elif key.endswith("relative_position_bias_table"):
                tensor.normal_(0.0, 0.5)
            elif key.endswith(("q_bias", "v_bias")) or (_is_layer_norm(key) and key.endswith("bias")):
                tensor.normal_(0.0, 0.02)
            elif _is_layer_norm(key) and key.endswith("weight"):
                tensor.normal_(1.0, 0.1)
    return state


def _is_layer_norm(key: str) -> bool:
    return ".norm" in key or key.startswith(("fc_norm.", "norm."))


def _original_layout(timm_state: dict[str, torch.Tensor], image_size: int, seed: int) -> dict[str, torch.Tensor]:
    """The microsoft/unilm BEiT-v2 pretraining state dict (``VisionTransformerForMaskedImageModelingCLS``
    with a shared relative position bias, mean pooling off): ``cls_token``, ``mask_token``,
    ``patch_embed``, ``rel_pos_bias.{relative_position_bias_table, relative_position_index}``, blocks
    without tables, ``norm``, ``lm_head`` and ``cls_pt_layers``; no ``fc_norm``, no ``head``."""
    from timm.models.beit import gen_relative_position_index

    grid = image_size // 16
    table_rows = (2 * grid - 1) ** 2 + 3
    gen = torch.Generator().manual_seed(seed + 1)

    def randn(*shape: int, std: float) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * std

    block_keys = [k for k in timm_state if k.startswith("blocks.") and not k.endswith("relative_position_bias_table")]
    out = {
        "cls_token": timm_state["cls_token"],
        "mask_token": randn(1, 1, 768, std=0.02),
        "patch_embed.proj.weight": timm_state["patch_embed.proj.weight"],
        "patch_embed.proj.bias": timm_state["patch_embed.proj.bias"],
        "rel_pos_bias.relative_position_bias_table": randn(table_rows, 12, std=0.5),  # ((2g-1)^2+3, heads)
        "rel_pos_bias.relative_position_index": gen_relative_position_index((grid, grid)),  # (1+g^2, 1+g^2)
    }
    out.update({k: timm_state[k] for k in block_keys})
    out["norm.weight"] = 1.0 + randn(768, std=0.1)
    out["norm.bias"] = randn(768, std=0.02)
    out["lm_head.weight"] = randn(BEIT_V2_VOCAB, 768, std=0.02)
    out["lm_head.bias"] = torch.zeros(BEIT_V2_VOCAB)
    for i in range(BEIT_V2_CLS_PT_LAYERS):  # copies of the last blocks' shapes, values of their own
        for key in (k for k in block_keys if k.startswith("blocks.0.")):
            out[f"cls_pt_layers.{i}." + key[len("blocks.0.") :]] = randn(*timm_state[key].shape, std=0.02)
    return out


def beit_v2_state_dict(fmt: str = "original", image_size: int = 224, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict :func:`write_beit_v2` writes (``fmt``: ``original`` or ``timm``; both share the block
    weights of one seed). The tensors are cached: do not modify them in place."""
    if fmt not in BEIT_FORMATS:
        raise ValueError(f"BEiT-v2 format must be one of {BEIT_FORMATS}, got {fmt!r}")
    timm_state = _timm_beit_v2_state(image_size, seed)
    return dict(timm_state) if fmt == "timm" else _original_layout(timm_state, image_size, seed)


def write_beit_v2(path: str | Path, fmt: str = "original", image_size: int = 224, seed: int = 0) -> Path:
    """Write BEiT-v2 B/16 weights to ``path`` and return it.

    ``fmt="original"``: ``{'model': state_dict}`` as in ``beitv2_base_patch16_224_pt1k.pth`` (shared
    relative position table, ``norm``, ``mask_token``, ``lm_head``, ``cls_pt_layers``). ``fmt="timm"``:
    the state dict of timm's ``beitv2_base_patch16_224`` (per-block tables, ``fc_norm``, ``head``), a
    torch file, or a safetensors file when ``path`` ends in ``.safetensors``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = beit_v2_state_dict(fmt, image_size, seed)
    if fmt == "timm" and path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif fmt == "timm":
        torch.save(state, path)
    else:
        torch.save({"model": state}, path)
    return path


# roberta-base's architecture, as the base preset builds it (model_type dropped: RobertaConfig sets it)
ROBERTA_BASE_CONFIG = {k: v for k, v in ROBERTA_BASE.items() if k != "model_type"}
ROBERTA_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4; roberta-base: 0, 1, 2, 3 (and 50264)


def _sentences(count: int, seed: int) -> list[str]:
    """``count`` generated captions over a small scene vocabulary."""
    rng = random.Random(seed)
    colours = "red green blue yellow purple orange black white grey brown".split()
    shapes = "circle square triangle star cross ring diamond hexagon".split()
    relations = ["left of", "right of", "above", "below", "next to", "far from", "inside", "behind"]
    verbs = ["there is", "we see", "the picture shows", "a photo of", "look at"]
    out = []
    for _ in range(count):
        a, b = rng.sample(list(itertools.product(colours, shapes)), 2)
        out.append(f"{rng.choice(verbs)} a {a[0]} {a[1]} {rng.choice(relations)} a {b[0]} {b[1]}.")
    return out


def write_roberta_dir(path: str | Path, **config_overrides) -> Path:
    """Write a random-weight ``RobertaForMaskedLM`` and a byte-level BPE tokenizer into directory ``path``.

    The config is roberta-base's (vocab 50265 although the trained BPE has fewer tokens, hidden 768,
    12 layers) with ``config_overrides`` applied (e.g. ``hidden_size=64`` for speed). The tokenizer is a
    ``RobertaTokenizerFast`` trained offline on a few hundred generated sentences; ``<s>``, ``<pad>``,
    ``</s>``, ``<unk>`` are ids 0-3 as in roberta-base. Returns ``path``.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = RobertaConfig(**{**ROBERTA_BASE_CONFIG, **config_overrides})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = RobertaForMaskedLM(config)
    model.save_pretrained(path)

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_sentences(400, seed=0), vocab_size=400, min_frequency=2, special_tokens=ROBERTA_SPECIAL_TOKENS, show_progress=False)
    vocab = bpe.get_vocab()
    tokenizer = RobertaTokenizerFast(vocab=vocab, merges=_bpe_merges(bpe), model_max_length=config.max_position_embeddings - 2)
    tokenizer.save_pretrained(path)
    return path


def _bpe_merges(bpe) -> list[tuple[str, str]]:
    """The merges of a trained ``ByteLevelBPETokenizer``, in rank order."""
    import json

    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]]
