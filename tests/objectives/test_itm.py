"""ITM: hard-negative sampling (validity, distribution, degenerate rows) and the loss vs a naive loop."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xfm_pipeline.objectives import NO_NEGATIVE, itm_loss, sample_hard_negatives


@pytest.fixture
def one_thread():
    """Thousands of tiny ops: OpenMP wake-ups dominate on a shared 2-core machine, so run them on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sims(b, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    sim = torch.randn(b, b, generator=g) * scale
    return sim, sim.t().contiguous()


def test_negatives_are_never_the_positive_nor_a_same_idx_entry(one_thread):
    idx = torch.tensor([0, 1, 0, 2, 1, 1, 3, 0])
    sim_i2t, sim_t2i = _sims(8, scale=10.0)
    sim_i2t = sim_i2t + 20 * torch.eye(8)  # positives are the most similar: the pull towards them is maximal
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        neg_text, neg_image = sample_hard_negatives(sim_i2t, sim_t2i, idx, gen)
        for rows in (neg_text, neg_image):
            assert (rows != torch.arange(8)).all()
            assert (idx[rows] != idx).all()
    for _ in range(100):
        neg_text, neg_image = sample_hard_negatives(sim_i2t, sim_t2i, None, gen)
        assert (neg_text != torch.arange(8)).all() and (neg_image != torch.arange(8)).all()


def test_sampling_frequencies_follow_the_softmax_weights(one_thread):
    sim_i2t, sim_t2i = _sims(4, seed=1, scale=1.5)
    expected = {}
    for name, sim in (("i2t", sim_i2t), ("t2i", sim_t2i)):
        w = F.softmax(sim, dim=1) + 1e-5
        w.fill_diagonal_(0)
        expected[name] = w / w.sum(1, keepdim=True)
    counts = {"i2t": torch.zeros(4, 4), "t2i": torch.zeros(4, 4)}
    gen, draws = torch.Generator().manual_seed(2), 4000
    for _ in range(draws):
        neg_text, neg_image = sample_hard_negatives(sim_i2t, sim_t2i, generator=gen)
        counts["i2t"][torch.arange(4), neg_text] += 1
        counts["t2i"][torch.arange(4), neg_image] += 1
    for name in counts:
        # each frequency has a standard deviation below 0.008 at 4000 draws: 0.03 is about 4 sigma
        torch.testing.assert_close(counts[name] / draws, expected[name], atol=0.03, rtol=0)


def test_degenerate_rows_get_no_negative():
    sim, _ = _sims(1)
    assert sample_hard_negatives(sim, sim) == (torch.tensor([NO_NEGATIVE]), torch.tensor([NO_NEGATIVE]))
    sim, sim_t = _sims(3)
    neg_text, neg_image = sample_hard_negatives(sim, sim_t, idx=torch.tensor([4, 4, 4]))
    assert neg_text.tolist() == [NO_NEGATIVE] * 3 and neg_image.tolist() == [NO_NEGATIVE] * 3
    for rows in sample_hard_negatives(sim, sim_t, idx=torch.tensor([4, 4, 5])):
        assert rows[:2].tolist() == [2, 2]  # the only pair with another id
        assert rows[2].item() in (0, 1)


def test_underflowing_softmax_still_gives_valid_negatives():
    sim = torch.eye(5) * 1e4  # off-diagonal softmax weights underflow to exactly 0
    neg_text, neg_image = sample_hard_negatives(sim, sim)
    assert (neg_text != torch.arange(5)).all() and (neg_text >= 0).all()
    assert (neg_image != torch.arange(5)).all()


def test_same_generator_seed_gives_the_same_negatives():
    sim_i2t, sim_t2i = _sims(16)
    a = sample_hard_negatives(sim_i2t, sim_t2i, generator=torch.Generator().manual_seed(7))
    b = sample_hard_negatives(sim_i2t, sim_t2i, generator=torch.Generator().manual_seed(7))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


class _FakeFusionModel(nn.Module):
    """fuse = text states + image summary (masked mean), itm head = linear on token 0; counts fuse calls."""

    def __init__(self, dim=6):
        super().__init__()
        torch.manual_seed(0)
        self.mix = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, 2)
        self.fuse_calls = 0

    def fuse(self, text_embeds, text_atts, image_embeds, image_atts=None, image_index=None):
        self.fuse_calls += 1
        if image_index is not None:
            image_embeds = image_embeds[image_index]
            image_atts = None if image_atts is None else image_atts[image_index]
        w = torch.ones(image_embeds.shape[:2]) if image_atts is None else image_atts.float()
        image = (image_embeds * w[..., None]).sum(1) / w.sum(1, keepdim=True)  # (B, D)
        text = (text_embeds * text_atts[..., None]).sum(1) / text_atts.sum(1, keepdim=True)
        return text_embeds + self.mix(image * text)[:, None, :]

    def itm_logits(self, fused):
        return self.head(fused[:, 0])


def _naive_itm(model, image_embeds, image_atts, text_embeds, text_atts, neg_text, neg_image):
    """Pair by pair: CE(label 1) on positives, CE(label 0) on each existing negative, mean over all."""
    terms, correct = [], []

    def score(i, t, label):
        atts = None if image_atts is None else image_atts[i : i + 1]
        fused = model.fuse(text_embeds[t : t + 1], text_atts[t : t + 1], image_embeds[i : i + 1], atts)
        logits = model.itm_logits(fused)[0]
        terms.append(torch.logsumexp(logits, 0) - logits[label])
        correct.append(float(logits.argmax().item() == label))

    b = image_embeds.shape[0]
    for k in range(b):
        score(k, k, 1)
    for t in range(b):
        if neg_image[t] != NO_NEGATIVE:
            score(int(neg_image[t]), t, 0)
    for i in range(b):
        if neg_text[i] != NO_NEGATIVE:
            score(i, int(neg_text[i]), 0)
    return sum(terms) / len(terms), sum(correct) / len(correct)


@pytest.mark.parametrize("with_atts,idx", [(False, None), (True, None), (True, [0, 1, 0, 2, 2])])
def test_itm_loss_matches_naive_reference(with_atts, idx):
    g = torch.Generator().manual_seed(3)
    b, n_img, n_txt, dim = 5, 4, 3, 6
    image_embeds = torch.randn(b, n_img, dim, generator=g)
    text_embeds = torch.randn(b, n_txt, dim, generator=g)
    text_atts = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]])
    image_atts = (torch.rand(b, n_img, generator=g) > 0.4).long() if with_atts else None
    if image_atts is not None:
        image_atts[:, 0] = 1
    idx = None if idx is None else torch.tensor(idx)
    sim_i2t, sim_t2i = _sims(b, seed=4)
    model = _FakeFusionModel(dim)
    out = itm_loss(model, image_embeds, image_atts, text_embeds, text_atts, sim_i2t, sim_t2i, idx, torch.Generator().manual_seed(9))
    assert model.fuse_calls == 1
    neg_text, neg_image = sample_hard_negatives(sim_i2t, sim_t2i, idx, torch.Generator().manual_seed(9))
    ref_loss, ref_acc = _naive_itm(model, image_embeds, image_atts, text_embeds, text_atts, neg_text, neg_image)
    torch.testing.assert_close(out.loss, ref_loss)
    assert out.accuracy.item() == pytest.approx(ref_acc)
    assert not out.accuracy.requires_grad


def test_itm_loss_with_no_negative_uses_the_positives_only():
    model = _FakeFusionModel(4)
    image_embeds, text_embeds = torch.randn(2, 3, 4), torch.randn(2, 2, 4, requires_grad=True)
    text_atts = torch.ones(2, 2, dtype=torch.long)
    sim = torch.zeros(2, 2)
    out = itm_loss(model, image_embeds, None, text_embeds, text_atts, sim, sim, idx=torch.tensor([1, 1]))
    positives = model.itm_logits(model.fuse(text_embeds, text_atts, image_embeds))
    torch.testing.assert_close(out.loss, F.cross_entropy(positives, torch.ones(2, dtype=torch.long)))
    out.loss.backward()
    assert torch.isfinite(text_embeds.grad).all()
