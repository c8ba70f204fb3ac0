"""A guard for the GPU check: every module call must find its parameters, buffers and tensor inputs on one
device type (``only_on("cuda")``), so a forgotten ``.to(device)`` in a training step or an evaluation fails
the check instead of silently running on the CPU."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import torch


def _tensors(value) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


class WrongDevice(AssertionError):
    """Module calls found tensors off the expected device."""


@contextlib.contextmanager
def only_on(device_type: str, limit: int = 10) -> Iterator[list[str]]:
    """Record every module call whose own parameters/buffers or non-scalar tensor arguments are not on
    ``device_type``; raise :class:`WrongDevice` listing the first ``limit`` on exit. Yields the list."""
    problems: list[str] = []

    def check(module: torch.nn.Module, args) -> None:
        """The global pre-hook gets positional inputs only; keyword inputs are caught through the parameters
        and positional inputs of the modules they reach."""
        name = type(module).__name__
        own = itertools.chain(module.named_parameters(recurse=False), module.named_buffers(recurse=False))
        problems.extend(f"{name}.{key} on {t.device}" for key, t in own if t.device.type != device_type)
        problems.extend(f"{name} input {tuple(t.shape)} on {t.device}" for t in _tensors(args) if t.dim() > 0 and t.device.type != device_type)

    handle = torch.nn.modules.module.register_module_forward_pre_hook(check)
    try:
        yield problems
    finally:
        handle.remove()
    if problems:
        unique = list(dict.fromkeys(problems))
        raise WrongDevice(f"{len(unique)} tensors off {device_type} in module calls, e.g.:\n" + "\n".join(unique[:limit]))
