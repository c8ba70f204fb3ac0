"""Small heads shared by pretraining and tasks."""

from __future__ import annotations

from torch import nn


def build_mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    """X-FM's head: Linear(in, 2in) -> LayerNorm(2in) -> GELU -> Linear(2in, out) (state keys .0 .1 .3)."""
    return nn.Sequential(
        nn.Linear(in_dim, 2 * in_dim),
        nn.LayerNorm(2 * in_dim),
        nn.GELU(),
        nn.Linear(2 * in_dim, out_dim),
    )


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT-style init for freshly created modules: N(0, std) weights, zero biases, LayerNorm 1/0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
