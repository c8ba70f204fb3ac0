"""Image-text retrieval recall, as X-FM's ``itm_eval`` computes it (docs/xfm.md#retrieval-recall).

Text retrieval (TR, image -> text): each image has several ground-truth captions; its rank is the best
(smallest) rank of any of them in its row of scores sorted in descending order. Image retrieval
(IR, text -> image): each text has one ground-truth image; its rank is that image's rank in the text's
row of the text-to-image scores. ``R@K = 100 * #{rank < K} / #queries`` (ranks are 0-based).

Ties. The official code ranks with ``np.argsort`` (quicksort), whose order among equal scores is
arbitrary, so a tie between a ground truth and another candidate can land either way. Here ties are
resolved **pessimistically**: every wrong candidate that scores *at least as high* as the best ground
truth is ranked before it. Ties therefore never inflate recall, and the result does not depend on the
sort algorithm. Ties among ground-truth captions of one image do not matter (the best one counts).
Without ties the ranks equal the official ones exactly. This matters in practice: X-FM fills every
score outside the top-``k_test`` re-ranked candidates with -100, so a ground truth that missed the
top-k ties with every other -100 entry and is ranked last among them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RETRIEVAL_KS = (1, 5, 10)
# Rows scored per block: bounds the temporary boolean/float arrays to (block, n_candidates).
_BLOCK_ROWS = 256


def _as_scores(scores, name: str) -> np.ndarray:
    array = np.asarray(scores)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN")
    return array


def _check_gt(img2txt: Sequence[Sequence[int]], txt2img: Sequence[int], n_images: int, n_texts: int) -> None:
    """``img2txt`` and ``txt2img`` must describe the same image-caption pairs, every image having a caption."""
    if len(img2txt) != n_images:
        raise ValueError(f"img2txt has {len(img2txt)} entries for {n_images} images")
    if len(txt2img) != n_texts:
        raise ValueError(f"txt2img has {len(txt2img)} entries for {n_texts} texts")
    expected: list[set[int]] = [set() for _ in range(n_images)]
    for t, i in enumerate(txt2img):
        if not 0 <= int(i) < n_images:
            raise ValueError(f"txt2img[{t}] = {i} is not an image index in [0, {n_images})")
        expected[int(i)].add(t)
    for i, texts in enumerate(img2txt):
        if len(texts) == 0:
            raise ValueError(f"image {i} has no ground-truth caption")
        if {int(t) for t in texts} != expected[i]:
            raise ValueError(f"img2txt[{i}] = {sorted(int(t) for t in texts)} disagrees with txt2img, which gives {sorted(expected[i])} for image {i}")


def retrieval_ranks(
    scores_i2t,
    img2txt: Sequence[Sequence[int]],
    txt2img: Sequence[int],
    scores_t2i=None,
) -> tuple[np.ndarray, np.ndarray]:
    """0-based ranks of the ground truth for every query, ties resolved pessimistically (module doc).

    Args:
        scores_i2t: (n_images, n_texts) scores, higher = better match.
        img2txt: for each image, the indices of its ground-truth texts (at least one).
        txt2img: for each text, the index of its ground-truth image.
        scores_t2i: optional (n_texts, n_images) scores for the text -> image direction (X-FM re-ranks
            each direction separately); defaults to ``scores_i2t.T``.

    Returns:
        ``(txt_ranks, img_ranks)``: int arrays of shape (n_images,) and (n_texts,). ``txt_ranks[i]`` is
        the number of non-ground-truth texts scoring >= image i's best ground-truth text;
        ``img_ranks[t]`` the number of other images scoring >= text t's ground-truth image.

    Raises:
        ValueError: bad shapes, NaN scores, an image without captions, or ``img2txt`` and ``txt2img``
            that disagree.
    """
    s_i2t = _as_scores(scores_i2t, "scores_i2t")
    n_images, n_texts = s_i2t.shape
    s_t2i = s_i2t.T if scores_t2i is None else _as_scores(scores_t2i, "scores_t2i")
    if s_t2i.shape != (n_texts, n_images):
        raise ValueError(f"scores_t2i has shape {s_t2i.shape}, expected {(n_texts, n_images)}")
    _check_gt(img2txt, txt2img, n_images, n_texts)

    gt_image = np.asarray(txt2img, dtype=np.int64)  # (n_texts,)
    txt_ranks = np.empty(n_images, dtype=np.int64)
    for start in range(0, n_images, _BLOCK_ROWS):
        block = s_i2t[start : start + _BLOCK_ROWS]  # (b, n_texts)
        is_gt = gt_image[None, :] == np.arange(start, start + len(block))[:, None]  # (b, n_texts)
        best_gt = np.where(is_gt, block, -np.inf).max(axis=1)  # (b,)
        txt_ranks[start : start + len(block)] = ((block >= best_gt[:, None]) & ~is_gt).sum(axis=1)

    img_ranks = np.empty(n_texts, dtype=np.int64)
    for start in range(0, n_texts, _BLOCK_ROWS):
        block = s_t2i[start : start + _BLOCK_ROWS]  # (b, n_images)
        gt_score = block[np.arange(len(block)), gt_image[start : start + len(block)]]  # (b,)
        img_ranks[start : start + len(block)] = (block >= gt_score[:, None]).sum(axis=1) - 1  # minus the GT itself
    return txt_ranks, img_ranks


def retrieval_recall(
    scores_i2t,
    img2txt: Sequence[Sequence[int]],
    txt2img: Sequence[int],
    ks: Sequence[int] = RETRIEVAL_KS,
    scores_t2i=None,
) -> dict[str, float]:
    """Recall@K in percent for text retrieval (``txt_r{K}``) and image retrieval (``img_r{K}``).

    Args: as :func:`retrieval_ranks`, plus ``ks``: the cut-offs (positive ints).

    Returns:
        ``txt_r{K}`` and ``img_r{K}`` for every K, ``txt_r_mean`` / ``img_r_mean`` (mean over the ``ks``)
        and ``r_mean`` (mean of the two means), all in [0, 100], as X-FM's ``itm_eval`` reports them.
        ``r_mean`` is what X-FM selects checkpoints by.
    """
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    txt_ranks, img_ranks = retrieval_ranks(scores_i2t, img2txt, txt2img, scores_t2i=scores_t2i)
    out: dict[str, float] = {}
    for k in ks:
        out[f"txt_r{k}"] = 100.0 * float(np.mean(txt_ranks < k))
    for k in ks:
        out[f"img_r{k}"] = 100.0 * float(np.mean(img_ranks < k))
    out["txt_r_mean"] = sum(out[f"txt_r{k}"] for k in ks) / len(ks)
    out["img_r_mean"] = sum(out[f"img_r{k}"] for k in ks) / len(ks)
    out["r_mean"] = (out["txt_r_mean"] + out["img_r_mean"]) / 2.0
    return out
