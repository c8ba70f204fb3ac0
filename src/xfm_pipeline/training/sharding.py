"""FSDP2 for the training loop (``sharding: fsdp``): parameters, gradients and optimizer state sharded over ranks.

Each unit a model lists in ``fsdp_units()`` (transformer blocks) is sharded with ``torch.distributed.fsdp``'s
``fully_shard``, then the root, so a rank only holds 1/world of every weight between uses. Checkpoints
stay in the replicated format: the full state is gathered to rank 0 (on CPU) and written like a DDP run's,
so a sharded run resumes, fine-tunes and exports exactly like an unsharded one.

accelerate 1.x only enables its FSDP plugin for GPU processes; sharding with ``fully_shard`` directly (the
API accelerate's FSDP2 path calls) keeps one code path that also runs, and is tested, on CPU with gloo.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def shard_model(root: nn.Module, model: nn.Module, device_type: str, world_size: int) -> None:
    """Shard in place over ``world_size`` ranks: every ``model.fsdp_units()`` module, then ``root``.

    ``root`` is the module whose ``forward`` the loop calls (it contains ``model``): its forward hooks
    gather the remaining parameters, which the objective may use through any method of ``model``.
    0-dim parameters become ``(1,)`` (FSDP shards along dim 0); :func:`load_full_model_state` undoes it.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    for module in model.modules():  # FSDP cannot shard 0-dim parameters (X-FM's ``temp``): make them (1,)
        for name, param in list(module.named_parameters(recurse=False)):
            if param.dim() == 0:
                module.register_parameter(name, nn.Parameter(param.detach().reshape(1), requires_grad=param.requires_grad))
    mesh = init_device_mesh(device_type, (world_size,))
    units = model.fsdp_units() if hasattr(model, "fsdp_units") else []
    for unit in units:
        fully_shard(unit, mesh=mesh)
    fully_shard(root, mesh=mesh)


def _full_options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded weights on rank 0's CPU (empty on other ranks). Collective: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model, options=_full_options())


def load_full_model_state(unsharded: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load gathered ``weights`` into an unsharded copy of the model (``(1,)`` back to 0-dim parameters)."""
    own = unsharded.state_dict()
    unsharded.load_state_dict({name: value.reshape(own[name].shape) for name, value in weights.items()})


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The unsharded optimizer state keyed by parameter names, on rank 0's CPU. Collective."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=_full_options())


def load_full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a state of :func:`full_optimizer_state` into the sharded ``optimizer`` (every rank passes it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    # not strict: a parameter no objective used (weight 0) has no AdamW moments, as in an unsharded run
    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True, strict=False))
