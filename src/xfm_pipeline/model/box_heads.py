"""The pointer box head: a box from the fusion CLS by pointing at the image patch that holds its centre.

X-FM regresses boxes with an MLP on the fusion CLS (``XFM.bbox_head``). At the tiny preset that head stays
at the mean box (shapes-world grounding: val 0.4-2% after 600 steps), because nothing tells the fusion
encoder which patches a phrase is about. The pointer gives that signal directly: the CLS scores every
patch token, a cross-entropy on the patch holding the gold centre trains the scores
(:func:`~xfm_pipeline.objectives.bbox.pointer_loss`), and the box is built around the pointed patch.
The region-data box stage (``pretrain_bbox``) trains it, and grounding can use it (``box_head: pointer``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from xfm_pipeline.model.heads import build_mlp, init_weights

BOX_HEADS = ("cls", "pointer")  # XFM.predict_box: X-FM's bbox_head on the fusion CLS | XFM.bbox_pointer


class PatchPointer(nn.Module):
    """A box from the fusion CLS pointing at the image patch that holds the box centre.

    ``scores = query(cls) . key(patch_i) / sqrt(dim)``; ``p = softmax(scores)``; centre =
    ``sum_i p_i centre_i`` + ``tanh(offset) / grid`` (at most one patch); ``offset`` and the size come
    from ``refine([cls, sum_i p_i patch_i])`` (size through a sigmoid).
    """

    def __init__(self, text_width: int, vision_width: int, dim: int = 256):
        super().__init__()
        self.dim = dim
        self.query = nn.Linear(text_width, dim)
        self.key = nn.Linear(vision_width, dim)
        self.refine = build_mlp(text_width + vision_width, 4)
        init_weights(self)

    def forward(self, cls: torch.Tensor, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Dt) fusion CLS, (B, N, Dv) patch tokens -> (B, N) patch scores, (B, 4) normalised (cx, cy, w, h)."""
        grid = math.isqrt(patches.shape[1])
        scores = torch.einsum("bd,bnd->bn", self.query(cls), self.key(patches)) / math.sqrt(self.dim)  # (B, N)
        weights = scores.softmax(dim=-1)  # (B, N)
        centres = patch_centres(grid, patches.device, patches.dtype)  # (N, 2) x, y
        attended = torch.einsum("bn,bnd->bd", weights, patches)  # (B, Dv)
        refined = self.refine(torch.cat([cls, attended], dim=-1))  # (B, 4)
        centre = (weights @ centres + refined[:, :2].tanh() / grid).clamp(0.0, 1.0)  # (B, 2)
        return scores, torch.cat([centre, refined[:, 2:].sigmoid()], dim=-1)


def patch_centres(grid: int, device=None, dtype=None) -> torch.Tensor:
    """(grid*grid, 2) normalised (x, y) centres of the patches of a square grid, row-major (the token order)."""
    coords = (torch.arange(grid, device=device, dtype=dtype) + 0.5) / grid  # (grid,)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=-1)


def centre_patch(boxes: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, 4) normalised (cx, cy, w, h) -> (B,) row-major index of the patch holding each centre."""
    col = (boxes[:, 0] * grid).long().clamp(0, grid - 1)
    row = (boxes[:, 1] * grid).long().clamp(0, grid - 1)
    return row * grid + col
