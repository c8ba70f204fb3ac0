"""Resizing a vision encoder's position tensors to another image size (docs/xfm.md#relative-position-tables).

Used by every loader that puts vision weights into an encoder of a different grid: the official X-FM
import (``official``), BEiT-v2 initialisation (``pretrained_vision``) and task checkpoints loaded at a new
resolution (``checkpoint``).

* Relative position tables, BEiT's recipe as the official code runs it: the (2g-1)^2 offsets of the
  source grid are placed on a geometric progression (1, 1+q, 1+q+q^2, ...; q chosen by bisection so
  that the largest source offset lands on the largest target offset), and each head is interpolated
  with a bicubic spline onto the integer target offsets. The official code calls
  ``scipy.interpolate.interp2d(kind="cubic")``, removed from SciPy 1.14; ``RectBivariateSpline`` with
  ``kx = ky = 3, s = 0`` on the same coordinates gives the same values. (timm's
  ``resize_rel_pos_bias_table`` uses the same grid but interpolates linearly: 7.6e-4 off on the vision
  tokens of the base model at 384 px.)
* Absolute position embeddings: the patch grid bicubically (timm's ``resample_abs_pos_embed``), the CLS
  slot as is.
"""

from __future__ import annotations

import math

import numpy as np
import torch

NUM_EXTRA_REL_POS = 3  # cls->token, token->cls, cls->cls rows at the end of a BEiT table


def geometric_offsets(src_side: int, dst_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Source and target coordinates of BEiT's relative-position resize.

    Args:
        src_side: 2g-1 for the source grid g (offsets per axis).
        dst_side: 2G-1 for the target grid G.

    Returns:
        (x, t): ``src_side`` increasing source coordinates on the geometric progression, and ``dst_side``
        integer target coordinates ``-dst_side//2 .. dst_side//2``.
    """
    half = src_side // 2
    left, right = 1.01, 1.5
    q = left
    while right - left > 1e-6:  # bisection: sum_{i<half} q^i ~ dst_side // 2
        q = (left + right) / 2.0
        if (1.0 - q**half) / (1.0 - q) > dst_side // 2:
            right = q
        else:
            left = q
    distances = np.cumsum([1.0] + [q ** (i + 1) for i in range(half - 1)])  # 1, 1+q, 1+q+q^2, ...
    x = np.concatenate([-distances[::-1], [0.0], distances])  # (src_side,)
    t = dst_side // 2
    return x, np.arange(-t, t + 0.1, 1.0)


def resize_rel_pos_table(table: torch.Tensor, target_shape: tuple[int, ...]) -> torch.Tensor:
    """Resize a BEiT relative position table ((2g-1)^2 + 3, H) to ``target_shape`` ((2G-1)^2 + 3, H).

    Each head's (2g-1) x (2g-1) offset grid is interpolated with the official bicubic spline on BEiT's
    geometric coordinates (module docstring); the three CLS rows are kept. Identity when the shapes agree.
    """
    if tuple(table.shape) == tuple(target_shape):
        return table
    from scipy.interpolate import RectBivariateSpline

    src_side = math.isqrt(table.shape[0] - NUM_EXTRA_REL_POS)
    dst_side = math.isqrt(target_shape[0] - NUM_EXTRA_REL_POS)
    if src_side**2 + NUM_EXTRA_REL_POS != table.shape[0] or dst_side**2 + NUM_EXTRA_REL_POS != target_shape[0]:
        raise ValueError(f"not a BEiT relative position table resize: {tuple(table.shape)} -> {tuple(target_shape)}")
    if table.shape[1] != target_shape[1]:
        raise ValueError(f"relative position table has {table.shape[1]} heads, the model {target_shape[1]}")
    x, t = geometric_offsets(src_side, dst_side)
    grid = table[: src_side**2].detach().to(torch.float64).cpu().numpy()  # ((2g-1)^2, H)
    heads = []
    for h in range(grid.shape[1]):
        z = grid[:, h].reshape(src_side, src_side)  # z[row = y offset, col = x offset]
        spline = RectBivariateSpline(x, x, z.T, kx=3, ky=3, s=0)  # interp2d(x, y, z, kind="cubic")
        heads.append(spline(t, t).T.reshape(-1))  # (dst_side^2,)
    resized = torch.from_numpy(np.stack(heads, axis=1)).to(table.dtype)  # ((2G-1)^2, H)
    return torch.cat([resized, table[src_side**2 :].cpu()], dim=0).to(table.device)


def resize_abs_pos_embed(pos_embed: torch.Tensor, target_shape: tuple[int, ...]) -> torch.Tensor:
    """Resample an absolute position embedding (1, 1+g^2, D) to ``target_shape`` (1, 1+G^2, D): the
    patch grid bicubically (timm's ``resample_abs_pos_embed``), the CLS slot as is."""
    from timm.layers import resample_abs_pos_embed

    side = math.isqrt(target_shape[1] - 1)
    return resample_abs_pos_embed(pos_embed, new_size=[side, side], num_prefix_tokens=1)


def resize_position_tensor(key: str, tensor: torch.Tensor, target_shape: tuple[int, ...]) -> torch.Tensor | None:
    """``tensor`` resized to ``target_shape`` when ``key`` names a vision position tensor (a block's
    relative position table or the absolute ``pos_embed``), else None: the one rule for loading a
    vision encoder at another resolution."""
    if key.endswith("relative_position_bias_table"):
        return resize_rel_pos_table(tensor, target_shape)
    if key.endswith("pos_embed"):
        return resize_abs_pos_embed(tensor, target_shape)
    return None
