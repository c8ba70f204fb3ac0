"""Image-text contrastive loss (ITC, docs/xfm.md#itc)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xfm_pipeline.objectives.distributed import gather_features


def itc_targets(idx: torch.Tensor) -> torch.Tensor:
    """Soft ITC targets from sample ids: row i is uniform over the entries j with ``idx[j] == idx[i]``.

    Args:
        idx: (N,) integer ids (e.g. the image id of each pair).

    Returns:
        (N, N) float rows summing to 1 (the diagonal is always included).
    """
    same = (idx.view(-1, 1) == idx.view(1, -1)).float()  # (N, N)
    return same / same.sum(dim=1, keepdim=True)


def itc_loss(
    image_feats: torch.Tensor,
    text_feats: torch.Tensor,
    temperature: torch.Tensor | float,
    idx: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE over the global batch.

    Features of every rank are gathered (``gather_features``) and every rank computes the logits of the
    whole global batch, so the returned value is the global-batch mean and is identical on all ranks;
    the local pairs are the rows ``rank*B .. rank*B+B-1``, their targets at that offset on the diagonal.

    Args:
        image_feats: (B, E) L2-normalised image features of this rank.
        text_feats: (B, E) L2-normalised text features; ``text_feats[b]`` describes ``image_feats[b]``.
        temperature: scalar divisor of the cosine similarities.
        idx: optional (B,) ids; pairs sharing an id are positives of each other (soft targets, rows
            normalised to sum 1), so duplicates of an image are not pushed apart. Without ``idx`` the
            targets are the diagonal (hard CE), as in X-FM pretraining.

    Returns:
        Scalar ``(CE(i2t) + CE(t2i)) / 2``, each averaged over the global batch.
    """
    image_all = gather_features(image_feats)  # (W*B, E)
    text_all = gather_features(text_feats)  # (W*B, E)
    logits_i2t = image_all @ text_all.t() / temperature  # (W*B, W*B)
    logits_t2i = logits_i2t.t()
    if idx is None:
        targets = torch.arange(logits_i2t.shape[0], device=logits_i2t.device)  # (W*B,)
        return (F.cross_entropy(logits_i2t, targets) + F.cross_entropy(logits_t2i, targets)) / 2
    soft = itc_targets(gather_features(idx))  # (W*B, W*B), symmetric
    loss_i2t = -(F.log_softmax(logits_i2t, dim=1) * soft).sum(dim=1).mean()
    loss_t2i = -(F.log_softmax(logits_t2i, dim=1) * soft).sum(dim=1).mean()
    return (loss_i2t + loss_t2i) / 2
