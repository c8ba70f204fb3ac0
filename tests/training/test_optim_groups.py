"""AdamW parameter groups: decay split, new-head multiplier, per-module learning-rate scales."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xfm_pipeline.training.optim import eval_frozen_submodules, freeze_zero_scaled, param_groups


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.vision_encoder = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
        self.vision_encoder_extra = nn.Linear(2, 2)  # shares the string prefix, not the module
        self.text_encoder = nn.Linear(2, 2)
        self.itm_head = nn.Linear(2, 2)


def _lr_and_decay_of(groups) -> dict[int, tuple[float, float]]:
    return {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


def test_every_parameter_gets_its_scaled_learning_rate_and_decay():
    model = _Toy()
    groups = param_groups(
        model, lr=1e-3, weight_decay=0.01, new_param_prefixes=["itm_head."], lr_mult=2.0,
        lr_scales={"vision_encoder.": 5.0, "vision_encoder.1.": 0.5, "text_encoder.": 0.1},
    )  # fmt: skip
    got = _lr_and_decay_of(groups)
    expected = {
        model.vision_encoder[0].weight: (5e-3, 0.01),
        model.vision_encoder[0].bias: (5e-3, 0.0),
        model.vision_encoder[1].weight: (5e-4, 0.0),  # the longest prefix wins; norms never decay
        model.vision_encoder_extra.weight: (1e-3, 0.01),  # "vision_encoder." does not match "vision_encoder_extra"
        model.text_encoder.weight: (1e-4, 0.01),
        model.itm_head.weight: (2e-3, 0.01),
        model.itm_head.bias: (2e-3, 0.0),
    }
    for param, (lr, decay) in expected.items():
        assert got[id(param)] == (pytest.approx(lr), decay)
    assert len(got) == sum(1 for _ in model.parameters())  # every parameter is in exactly one group


def test_position_tables_and_special_tokens_are_never_decayed():
    model = nn.Module()
    for name in ("pos_embed", "cls_token", "mask_token", "relative_position_bias_table"):
        model.register_parameter(name, nn.Parameter(torch.zeros(1, 3, 4)))
    model.proj = nn.Linear(4, 4)
    got = _lr_and_decay_of(param_groups(model, lr=1e-3, weight_decay=0.05, new_param_prefixes=[], lr_mult=2.0))
    assert {name: got[id(p)][1] for name, p in model.named_parameters()} == {
        "pos_embed": 0.0, "cls_token": 0.0, "mask_token": 0.0, "relative_position_bias_table": 0.0, "proj.weight": 0.05, "proj.bias": 0.0,
    }  # fmt: skip


def test_frozen_parameters_are_left_out():
    model = _Toy()
    model.text_encoder.requires_grad_(False)
    got = _lr_and_decay_of(param_groups(model, lr=1e-3, weight_decay=0.01))
    assert id(model.text_encoder.weight) not in got and id(model.itm_head.weight) in got


def test_a_zero_scale_freezes_the_parameters_and_no_gradient_reaches_them():
    import torch

    model = _Toy()
    frozen = freeze_zero_scaled(model, {"text_encoder.": 0.0, "vision_encoder.": 3.0})
    assert frozen == ["text_encoder.weight", "text_encoder.bias"]
    loss = model.itm_head(model.text_encoder(torch.ones(1, 2))).sum()
    loss.backward()
    assert model.text_encoder.weight.grad is None and model.itm_head.weight.grad is not None
    assert id(model.text_encoder.weight) not in _lr_and_decay_of(param_groups(model, 1e-3, 0.01))


def test_frozen_submodules_run_in_eval_mode_and_trained_ones_keep_training():
    model = nn.ModuleDict(
        {
            "text_encoder": nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))),
            "fusion": nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 4)),
            "dropout": nn.Dropout(0.1),
        }
    )
    freeze_zero_scaled(model, {"text_encoder.": 0.0})
    model.train()
    assert eval_frozen_submodules(model) == ["text_encoder"]
    assert not any(m.training for m in model["text_encoder"].modules())  # nested dropout included
    assert all(m.training for m in model["fusion"].modules()) and model["dropout"].training and model.training
    model["fusion"][0].weight.requires_grad_(False)  # one frozen tensor does not freeze its module
    model.train()
    assert eval_frozen_submodules(model) == ["text_encoder"]
    model["fusion"][0].bias.requires_grad_(False)  # now every tensor of fusion.0 is
    model.train()
    assert eval_frozen_submodules(model) == ["text_encoder", "fusion.0"]
    assert model["fusion"].training and model["fusion"][1].training
    for param in model.parameters():
        param.requires_grad_(False)
    model.train()
    assert eval_frozen_submodules(model) == [""] and not any(m.training for m in model.modules())  # listed once
