"""Tied weights in a state dict: keys that name a tensor already present under an earlier key.

The text encoder's MLM decoder weight is its word-embedding table, so ``state_dict()`` lists that
tensor under two keys. Checkpoint I/O (``checkpoint``) stores it once and the official import
(``official``) does not count the alias as missing: both ask this module.
"""

from __future__ import annotations


def tied_aliases(model) -> dict[str, str]:
    """``{alias: first name}`` for state-dict keys that name a tensor already present under an earlier
    name (tied weights), in state-dict order."""
    first: dict[int, str] = {}
    aliases = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in first:
            aliases[name] = first[id(tensor)]
        else:
            first[id(tensor)] = name
    return aliases


def tied_keys(model) -> set[str]:
    """State-dict keys that alias a tensor already present under another name (tied weights)."""
    return set(tied_aliases(model))
