"""Relative-position table resize: the official bicubic spline on BEiT's geometric grid, checked on tables
with known answers."""

import numpy as np
import pytest
import torch

from xfm_pipeline.model.position_resize import geometric_offsets, resize_rel_pos_table


def _bicubic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A bicubic polynomial p(x, y) on the grid (len(y), len(x)); a cubic spline through it reproduces it."""
    u, v = x[None, :] / 13.0, y[:, None] / 13.0
    return 0.7 * u**3 - 0.4 * u * v**2 + 0.2 * v**3 + 0.5 * u**2 * v - u + 0.3 * v + 0.1 + 0.05 * (u * v) ** 3


def _table(side: int, heads: int, offsets: np.ndarray) -> torch.Tensor:
    """((side)^2 + 3, heads) float64 table whose head h is (h+1) * p on ``offsets`` (row = y, column = x)."""
    grid = _bicubic(offsets, offsets).reshape(-1)
    cls_rows = np.arange(3 * heads, dtype=np.float64).reshape(3, heads)
    return torch.from_numpy(np.concatenate([np.stack([(h + 1) * grid for h in range(heads)], 1), cls_rows]))


def test_a_bicubic_polynomial_on_the_source_grid_is_resized_exactly():
    src, dst = 2 * 14 - 1, 2 * 24 - 1  # 224 -> 384 px with 16 px patches
    x, t = geometric_offsets(src, dst)
    table = _table(src, 4, x)
    resized = resize_rel_pos_table(table, (dst**2 + 3, 4))
    expected = _table(dst, 4, t)
    # every target offset inside the source extent; the outermost ring (+-23) lies a hair beyond the last source
    # offset (22.9999...), where the spline, like interp2d, is evaluated at the boundary instead of extrapolating
    inside = torch.from_numpy(np.abs(t) <= x[-1])
    rows = torch.cat([(inside[:, None] & inside[None, :]).reshape(-1), torch.ones(3, dtype=torch.bool)])
    assert rows.sum() == 45 * 45 + 3
    torch.testing.assert_close(resized[rows], expected[rows], rtol=0, atol=1e-9)
    assert resized.dtype == torch.float64


def test_linear_interpolation_fails_the_same_known_answer():
    """timm's linear resize on the same grid (what the project used before): off by far more than 1e-4."""
    from timm.layers import resize_rel_pos_bias_table

    src, dst = 27, 47
    x, t = geometric_offsets(src, dst)
    linear = resize_rel_pos_bias_table(_table(src, 2, x).float(), new_window_size=(24, 24), new_bias_shape=(dst**2 + 3, 2))
    assert (linear.double() - _table(dst, 2, t)).abs().max() > 1e-3


def test_geometric_offsets_reach_the_target_extent():
    x, t = geometric_offsets(27, 47)
    assert len(x) == 27 and x[13] == 0 and np.allclose(x, -x[::-1])
    assert np.all(np.diff(x) > 0) and np.diff(x)[13] == 1.0  # unit step next to the centre, growing outwards
    assert abs(x[-1] - 23) < 1e-3  # the largest source offset lands on the largest target offset
    np.testing.assert_array_equal(t, np.arange(-23, 24))


def test_identity_on_the_same_grid_and_cls_rows_kept():
    table = torch.randn(732, 12)
    assert resize_rel_pos_table(table, (732, 12)) is table
    big = resize_rel_pos_table(table, (2212, 12))
    torch.testing.assert_close(big[-3:], table[-3:])
    torch.testing.assert_close(big[(47 * 47) // 2], table[(27 * 27) // 2], atol=1e-5, rtol=0)  # zero offset kept


def test_shapes_that_are_not_a_beit_table_are_refused():
    with pytest.raises(ValueError, match="not a BEiT relative position table"):
        resize_rel_pos_table(torch.randn(730, 12), (2212, 12))
    with pytest.raises(ValueError, match="12 heads, the model 6"):
        resize_rel_pos_table(torch.randn(732, 12), (2212, 6))
