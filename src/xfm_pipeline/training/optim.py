"""AdamW parameter groups and the linear warm-up / linear decay schedule (docs/xfm.md#optimizer)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from xfm_pipeline.model.frozen import is_frozen

# Parameters matched by these name fragments are never decayed, whatever their rank.
NO_DECAY_NAMES = ("relative_position_bias_table", "pos_embed", "cls_token", "mask_token", "temp")


def param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    new_param_prefixes: Iterable[str] = (),
    lr_mult: float = 2.0,
    lr_scales: Mapping[str, float] | None = None,
) -> list[dict]:
    """Split trainable parameters into {decay, no decay} x learning-rate groups.

    No decay on biases, normalisation weights, LayerScale gammas (all tensors with ndim <= 1) and on
    position tables / special tokens / temperature. Parameters whose name starts with one of
    ``new_param_prefixes`` (freshly initialised heads) get ``lr_mult`` times the learning rate.
    ``lr_scales`` maps name prefixes to a further multiplier (the longest matching prefix wins), e.g.
    ``{"vision_encoder.": 5.0, "text_encoder.": 0.1}`` trains a from-scratch vision encoder faster than
    a pretrained text encoder.
    """
    prefixes = tuple(new_param_prefixes)
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = param.ndim > 1 and not any(fragment in name for fragment in NO_DECAY_NAMES)
        new = name.startswith(prefixes) if prefixes else False
        scale = lr_scale_of(name, lr_scales)
        groups.setdefault((decay, (lr_mult if new else 1.0) * scale), []).append(param)
    return [
        {
            "params": params,
            "weight_decay": weight_decay if decay else 0.0,
            "lr": lr * multiplier,
            "name": f"{'decay' if decay else 'no_decay'}_x{multiplier:g}",
        }
        for (decay, multiplier), params in sorted(groups.items())
    ]


def lr_scale_of(name: str, lr_scales: Mapping[str, float] | None) -> float:
    """The multiplier of the longest prefix of ``name`` in ``lr_scales`` (1.0 when none matches)."""
    matches = [prefix for prefix in (lr_scales or {}) if name.startswith(prefix)]
    return lr_scales[max(matches, key=len)] if matches else 1.0


def freeze_zero_scaled(model: nn.Module, lr_scales: Mapping[str, float] | None) -> list[str]:
    """Freeze (``requires_grad=False``) every parameter whose ``lr_scales`` multiplier is 0.

    No gradient is computed for them at all, so a frozen encoder costs only its forward pass (e.g. a
    pretrained text encoder kept fixed while a vision-language task trains). Returns the frozen names.
    """
    frozen = [name for name, param in model.named_parameters() if param.requires_grad and lr_scale_of(name, lr_scales) == 0.0]
    for name, param in model.named_parameters():
        if name in frozen:
            param.requires_grad_(False)
    return frozen


def eval_frozen_submodules(model: nn.Module) -> list[str]:
    """Put every outermost submodule that :func:`is_frozen` into eval mode; returns their names.

    Call after ``model.train()``: dropout and drop-path in an encoder that ``lr_scales`` froze only add
    noise to its fixed function (a frozen MiniLM text encoder would otherwise drop 10% of its states in
    every vision-language fine-tune). Modules with any trained parameter, and parameter-free modules
    outside a frozen one, keep their mode.
    """
    names: list[str] = []
    for name, module in model.named_modules():
        inside = any(n == "" or name.startswith(f"{n}.") for n in names)  # "" = the whole model is frozen
        if not inside and is_frozen(module):
            module.eval()
            names.append(name)
    return names


def create_optimizer(groups: list[dict], betas=(0.9, 0.98), eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW with the fused kernel when every parameter is a floating tensor on CPU or CUDA."""
    params = [p for g in groups for p in g["params"]]
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(groups, betas=tuple(betas), eps=eps, fused=fused or None)


def warmup_steps_of(warmup: float, total_steps: int) -> int:
    """Warm-up given as steps (>= 1) or as a fraction of the total (0 <= warmup < 1)."""
    return int(round(warmup * total_steps)) if 0 <= warmup < 1 else int(warmup)


def linear_warmup_decay(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """LambdaLR: linear 0 -> 1 over ``warmup_steps``, then linear 1 -> 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
