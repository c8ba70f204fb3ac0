"""Classification accuracy (ImageNet top-1 / top-k, NLVR2) on class scores (docs/xfm.md#classification-accuracy).

Top-k ties are resolved **pessimistically**: the label counts as within the top k only when fewer than
k OTHER classes score at least as high as it. ``torch.topk`` breaks ties by position instead, so on
exactly tied scores the two can differ; without ties they agree. A ``k`` larger than the number of
classes is clamped to it (every prediction is then correct), as timm's ``accuracy`` does.

Note: the official ``Imagenet.py`` logs ``topk=(1, 2)`` under the name "Acc@5"; here ``k`` means k.
Values are fractions in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(predictions, labels) -> float:
    """Fraction of predicted class ids (N,) equal to ``labels`` (N,) (NLVR2: argmax of the 2 logits)."""
    preds, gold = np.asarray(predictions), np.asarray(labels)
    if preds.ndim != 1 or preds.shape != gold.shape:
        raise ValueError(f"predictions {preds.shape} and labels {gold.shape} must both be (N,)")
    if len(preds) == 0:
        raise ValueError("no examples to score")
    return float(np.mean(preds == gold))


def topk_accuracy(scores, labels, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Top-k accuracy for each ``k`` in ``ks``.

    Args:
        scores: (N, C) logits, probabilities or any scores (higher = more likely).
        labels: (N,) class ids in ``[0, C)``.
        ks: the cut-offs (positive ints; values above C are clamped to C).

    Returns:
        ``{k: fraction}`` with the keys exactly as given in ``ks``.
    """
    s = np.asarray(scores, dtype=np.float64)
    gold = np.asarray(labels, dtype=np.int64)
    if s.ndim != 2 or gold.shape != (s.shape[0],):
        raise ValueError(f"scores must be (N, C) and labels (N,), got {s.shape} and {gold.shape}")
    if s.shape[0] == 0:
        raise ValueError("no examples to score")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    n, c = s.shape
    if gold.min() < 0 or gold.max() >= c:
        raise ValueError(f"labels must lie in [0, {c})")
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive, got {tuple(ks)}")
    gold_score = s[np.arange(n), gold]  # (N,)
    rank = (s >= gold_score[:, None]).sum(axis=1) - 1  # other classes scoring >= the label (pessimistic)
    return {k: float(np.mean(rank < min(int(k), c))) for k in ks}
