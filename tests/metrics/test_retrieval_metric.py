"""Retrieval recall on hand-made score matrices with known ranks (docs/xfm.md#retrieval-recall)."""

from __future__ import annotations

import numpy as np
import pytest

from xfm_pipeline.metrics import retrieval
from xfm_pipeline.metrics.retrieval import retrieval_ranks, retrieval_recall

# 3 images, 6 texts: image 0 has texts 0-1, image 1 texts 2-4, image 2 text 5.
TXT2IMG = [0, 0, 1, 1, 1, 2]
IMG2TXT = [[0, 1], [2, 3, 4], [5]]
SCORES = np.array(
    [
        [0.1, 0.9, 0.8, 0.2, 0.3, 0.0],  # best GT (t1, 0.9) is first                -> TR rank 0
        [0.9, 0.5, 0.7, 0.1, 0.2, 0.3],  # best GT (t2, 0.7) behind t0 (0.9)         -> TR rank 1
        [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],  # GT t5 tied with all 5 others, pessimistic -> TR rank 5
    ]
)
# IR (columns): t0 [.1 .9 .5] gt 0 -> 2; t1 [.9 .5 .5] gt 0 -> 0; t2 [.8 .7 .5] gt 1 -> 1;
#               t3 [.2 .1 .5] gt 1 -> 2; t4 [.3 .2 .5] gt 1 -> 2; t5 [0 .3 .5] gt 2 -> 0.


def test_hand_computed_ranks():
    txt_ranks, img_ranks = retrieval_ranks(SCORES, IMG2TXT, TXT2IMG)
    assert txt_ranks.tolist() == [0, 1, 5]
    assert img_ranks.tolist() == [2, 0, 1, 2, 2, 0]


def test_hand_computed_recall():
    r = retrieval_recall(SCORES, IMG2TXT, TXT2IMG)
    assert r["txt_r1"] == pytest.approx(100 / 3)
    assert r["txt_r5"] == pytest.approx(200 / 3)  # rank 5 is not < 5
    assert r["txt_r10"] == pytest.approx(100.0)
    assert r["img_r1"] == pytest.approx(100 / 3)
    assert r["img_r5"] == pytest.approx(100.0)
    assert r["img_r10"] == pytest.approx(100.0)
    assert r["txt_r_mean"] == pytest.approx((100 / 3 + 200 / 3 + 100) / 3)
    assert r["img_r_mean"] == pytest.approx((100 / 3 + 100 + 100) / 3)
    assert r["r_mean"] == pytest.approx((r["txt_r_mean"] + r["img_r_mean"]) / 2)
    assert list(r) == ["txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "txt_r_mean", "img_r_mean", "r_mean"]


def test_custom_ks():
    r = retrieval_recall(SCORES, IMG2TXT, TXT2IMG, ks=(2, 6))
    assert r["txt_r2"] == pytest.approx(200 / 3)
    assert r["txt_r6"] == pytest.approx(100.0)
    assert r["img_r2"] == pytest.approx(50.0)  # ranks 0, 0, 1 of 6
    assert r["txt_r_mean"] == pytest.approx((200 / 3 + 100) / 2)
    with pytest.raises(ValueError):
        retrieval_recall(SCORES, IMG2TXT, TXT2IMG, ks=(0,))


def test_ties_are_pessimistic_but_ties_among_ground_truths_do_not_hurt():
    # image 0 -> {t0}, image 1 -> {t1, t2}.
    # image 0: its GT t0 ties with the non-GT t2 at the top -> rank 1, so it is not counted in R@1.
    scores = np.array([[0.9, 0.1, 0.9], [0.2, 0.8, 0.8]])
    txt_ranks, img_ranks = retrieval_ranks(scores, [[0], [1, 2]], [0, 1, 1])
    assert txt_ranks.tolist() == [1, 0]  # image 1: its two GTs tie with each other at the top
    # IR columns: t0 [.9 .2] gt 0 -> 0; t1 [.1 .8] gt 1 -> 0; t2 [.9 .8] gt 1 -> 1.
    assert img_ranks.tolist() == [0, 0, 1]
    # an all-equal row (e.g. every score -100 outside X-FM's top-k re-ranking) ranks the GT last
    txt_ranks, _ = retrieval_ranks(np.full((2, 4), -100.0), [[0, 1], [2, 3]], [0, 0, 1, 1])
    assert txt_ranks.tolist() == [2, 2]


def test_separate_t2i_matrix_is_used_for_image_retrieval():
    perfect_t2i = np.eye(3)[TXT2IMG]  # (6, 3): each text scores its own image 1, others 0
    r = retrieval_recall(SCORES, IMG2TXT, TXT2IMG, scores_t2i=perfect_t2i)
    assert r["img_r1"] == 100.0
    assert r["txt_r1"] == pytest.approx(100 / 3)  # TR unchanged
    with pytest.raises(ValueError, match="scores_t2i"):
        retrieval_recall(SCORES, IMG2TXT, TXT2IMG, scores_t2i=SCORES)  # (3, 6) instead of (6, 3)


def _official_itm_eval(scores_i2t, scores_t2i, img2txt, txt2img):
    """X-FM's ``itm_eval`` (Retrieval.py:187-231), transcribed."""
    ranks = np.zeros(scores_i2t.shape[0])
    for index, score in enumerate(scores_i2t):
        inds = np.argsort(score)[::-1]
        rank = 1e20
        for i in img2txt[index]:
            tmp = np.where(inds == i)[0][0]
            if tmp < rank:
                rank = tmp
        ranks[index] = rank
    tr = [100.0 * len(np.where(ranks < k)[0]) / len(ranks) for k in (1, 5, 10)]
    ranks = np.zeros(scores_t2i.shape[0])
    for index, score in enumerate(scores_t2i):
        inds = np.argsort(score)[::-1]
        ranks[index] = np.where(inds == txt2img[index])[0][0]
    ir = [100.0 * len(np.where(ranks < k)[0]) / len(ranks) for k in (1, 5, 10)]
    return {
        "txt_r1": tr[0], "txt_r5": tr[1], "txt_r10": tr[2], "img_r1": ir[0], "img_r5": ir[1], "img_r10": ir[2],
        "txt_r_mean": sum(tr) / 3, "img_r_mean": sum(ir) / 3, "r_mean": (sum(tr) / 3 + sum(ir) / 3) / 2,
    }  # fmt: skip


def test_matches_official_itm_eval_without_ties_across_blocks(monkeypatch):
    monkeypatch.setattr(retrieval, "_BLOCK_ROWS", 7)  # several blocks in both directions
    rng = np.random.default_rng(0)
    n_images = 40
    n_caps = rng.integers(1, 6, size=n_images)
    txt2img = np.repeat(np.arange(n_images), n_caps)
    rng.shuffle(txt2img)
    img2txt = [np.flatnonzero(txt2img == i).tolist() for i in range(n_images)]
    # a signal so recalls are neither 0 nor 100, continuous noise so there are no ties
    signal = (txt2img[None, :] == np.arange(n_images)[:, None]).astype(float)
    scores_i2t = signal + rng.normal(scale=0.6, size=signal.shape)
    scores_t2i = signal.T + rng.normal(scale=0.6, size=signal.T.shape)
    ours = retrieval_recall(scores_i2t, img2txt, txt2img.tolist(), scores_t2i=scores_t2i)
    official = _official_itm_eval(scores_i2t, scores_t2i, img2txt, txt2img)
    assert ours == pytest.approx(official)
    assert 0 < ours["txt_r1"] < 100 and 0 < ours["img_r1"] < 100


def test_float32_and_integer_scores():
    assert retrieval_recall(SCORES.astype(np.float32), IMG2TXT, TXT2IMG) == pytest.approx(retrieval_recall(SCORES, IMG2TXT, TXT2IMG))
    ranks, _ = retrieval_ranks([[3, 1], [1, 3]], [[0], [1]], [0, 1])
    assert ranks.tolist() == [0, 0]


@pytest.mark.parametrize(
    ("img2txt", "txt2img", "scores", "match"),
    [
        ([[0, 1], [2, 3, 4], [5]], [0, 0, 1, 1, 1, 2], SCORES[:2], "img2txt has"),
        ([[0, 1], [2, 3, 4], [5]], [0, 0, 1, 1, 1], SCORES, "txt2img has"),
        ([[0, 1], [2, 3], [4, 5]], [0, 0, 1, 1, 1, 2], SCORES, "disagrees"),
        ([[0, 1], [2, 3, 4, 5], []], [0, 0, 1, 1, 1, 1], SCORES, "no ground-truth"),
        ([[0, 1], [2, 3, 4], [5]], [0, 0, 1, 1, 1, 3], SCORES, "not an image index"),
        ([[0, 1], [2, 3, 4], [5]], [0, 0, 1, 1, 1, 2], np.where(SCORES > 0.85, np.nan, SCORES), "NaN"),
        ([[0, 1], [2, 3, 4], [5]], [0, 0, 1, 1, 1, 2], SCORES.ravel(), "2-D"),
    ],
)
def test_invalid_inputs(img2txt, txt2img, scores, match):
    with pytest.raises(ValueError, match=match):
        retrieval_recall(scores, img2txt, txt2img)
