"""Text masking (whole words for WordPiece and byte-level BPE, counts, specials, 80/10/10, spans) and
BEiT block masks (exact counts, block sizes, grid scaling)."""

import random

import pytest
import torch

from xfm_pipeline.data.masking import (
    IGNORE_INDEX,
    BlockMaskGenerator,
    TextMasker,
    encoding_word_ids,
    scaled_mask_sizes,
)

SENTENCES = [
    "a red circle left of a blue square",
    "two yellow squares above a purple triangle",
    "the small green star is below the large orange circle",
    "a picture of shapes on a grey background",
]
# Texts with words the tokenizers split into several tokens (xylophone, squarely, orbit ...).
TEXTS = [
    "a red squarely circle orbits the xylophone",
    "purple squares orbit the xylophone near a triangle",
    "the unbelievably small star",
    "grey",
]


@pytest.fixture(scope="module")
def wordpiece():
    from xfm_pipeline.model.text import load_tokenizer

    return load_tokenizer("all-minilm-l6-v2")


@pytest.fixture(scope="module")
def bpe():
    """A tiny byte-level BPE tokenizer (RoBERTa conventions: <s> ... </s>, Ġ word starts) trained here."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import PreTrainedTokenizerFast

    trainer = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer.train_from_iterator(SENTENCES * 5, vocab_size=300, special_tokens=specials, show_progress=False)
    backend = trainer._tokenizer
    bos, eos = backend.token_to_id("<s>"), backend.token_to_id("</s>")
    backend.post_processor = RobertaProcessing(("</s>", eos), ("<s>", bos))
    names = dict(bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
    return PreTrainedTokenizerFast(tokenizer_object=backend, **names)


def _encode(tokenizer, texts=TEXTS, length=32):
    return tokenizer(texts, padding="max_length", truncation=True, max_length=length, return_tensors="pt")


def _words(word_ids_row):
    """{word id: [positions]} of one row of word ids."""
    words = {}
    for pos, w in enumerate(word_ids_row):
        if w >= 0:
            words.setdefault(w, []).append(pos)
    return words


def _masked_sets(out):
    return [{p for p, t in zip(pos.tolist(), ids.tolist(), strict=True) if t != IGNORE_INDEX} for pos, ids in zip(out.masked_pos, out.masked_ids, strict=True)]


@pytest.mark.parametrize("name", ["wordpiece", "bpe"])
def test_word_ids_from_tokens_match_the_fast_tokenizer(request, name):
    tokenizer = request.getfixturevalue(name)
    enc = _encode(tokenizer)
    masker = TextMasker(tokenizer, mask_prob=0.5, max_masks=10)
    derived = masker.word_ids(enc["input_ids"], enc["attention_mask"])
    assert torch.equal(derived, encoding_word_ids(enc, enc["input_ids"].shape[1]))
    assert any(len(p) > 1 for row in derived.tolist() for p in _words(row).values())  # real multi-token words


@pytest.mark.parametrize("name", ["wordpiece", "bpe"])
@pytest.mark.parametrize("pass_word_ids", [False, True])
def test_whole_words_are_masked_together(request, name, pass_word_ids):
    tokenizer = request.getfixturevalue(name)
    enc = _encode(tokenizer)
    word_ids = encoding_word_ids(enc, enc["input_ids"].shape[1])
    masker = TextMasker(tokenizer, mask_prob=0.3, max_masks=10)
    rng, multi_token_words_masked = random.Random(0), 0
    for _ in range(60):
        out = masker(enc["input_ids"], enc["attention_mask"], word_ids if pass_word_ids else None, rng=rng)
        for row, masked in zip(word_ids.tolist(), _masked_sets(out), strict=True):
            for positions in _words(row).values():
                hit = masked & set(positions)
                assert not hit or hit == set(positions), f"word {positions} partly masked: {sorted(masked)}"
                multi_token_words_masked += bool(hit) and len(positions) > 1
    assert multi_token_words_masked > 20


def test_token_level_masking_can_split_words(wordpiece):
    """The whole-word check above can fail: without whole words, words do get split."""
    enc = _encode(wordpiece)
    word_ids = encoding_word_ids(enc, enc["input_ids"].shape[1])
    masker = TextMasker(wordpiece, mask_prob=0.3, max_masks=10, mask_whole_word=False)
    split = 0
    for seed in range(30):
        out = masker(enc["input_ids"], enc["attention_mask"], word_ids, rng=random.Random(seed))
        for row, masked in zip(word_ids.tolist(), _masked_sets(out), strict=True):
            split += sum(0 < len(masked & set(p)) < len(p) for p in _words(row).values())
    assert split > 0


def test_number_of_predictions(wordpiece):
    text_stream = TextMasker(wordpiece, mask_prob=0.15, max_masks=20)
    assert [text_stream.num_predictions(n) for n in (0, 1, 3, 10, 30, 200)] == [0, 1, 1, 2, 4, 20]
    captions = TextMasker(wordpiece, mask_prob=0.5, max_masks=15)
    assert [captions.num_predictions(n) for n in (1, 2, 5, 9, 40)] == [1, 1, 2, 4, 15]  # round half to even


def test_exact_counts(wordpiece):
    enc = _encode(wordpiece)
    word_ids = encoding_word_ids(enc, enc["input_ids"].shape[1]).tolist()
    maskable = (enc["attention_mask"].sum(1) - 2).tolist()  # [CLS] and [SEP] are not maskable
    token_level = TextMasker(wordpiece, mask_prob=0.5, max_masks=6, mask_whole_word=False)
    whole_word = TextMasker(wordpiece, mask_prob=0.5, max_masks=6)
    short_rows = 0
    for seed in range(40):
        for masker in (token_level, whole_word):
            out = masker(enc["input_ids"], enc["attention_mask"], rng=random.Random(seed))
            for b, masked in enumerate(_masked_sets(out)):
                wanted = masker.num_predictions(maskable[b])
                if masker is token_level:
                    assert len(masked) == wanted
                    continue
                # words are never split: the count falls short only when every word left unmasked is
                # longer than the remaining budget (as in BERT's whole-word masking)
                assert len(masked) <= wanted
                left = [p for p in _words(word_ids[b]).values() if not masked & set(p)]
                assert all(len(p) > wanted - len(masked) for p in left) or len(masked) == wanted
                short_rows += len(masked) < wanted
    assert short_rows > 0  # TEXTS[2] (8 tokens, 4 to mask, one 5-token word) cannot be filled exactly


def test_specials_and_padding_are_never_masked_nor_used_as_replacements(bpe):
    enc = _encode(bpe, length=20)  # includes truncation (no </s> lost) and padding
    ids, atts = enc["input_ids"], enc["attention_mask"]
    special = torch.isin(ids, torch.tensor(bpe.all_special_ids)) | (atts == 0)
    masker = TextMasker(bpe, mask_prob=0.5, max_masks=10)
    rng, random_replacements = random.Random(0), 0
    for _ in range(300):
        out = masker(ids, atts, rng=rng)
        for b, masked in enumerate(_masked_sets(out)):
            assert not any(special[b, p] for p in masked)
        changed = out.text_ids_masked != ids
        assert not (changed & special).any()
        replaced = out.text_ids_masked[changed & (out.text_ids_masked != bpe.mask_token_id)]
        random_replacements += replaced.numel()
        assert not torch.isin(replaced, torch.tensor(bpe.all_special_ids)).any()
    # 5 of 300 ids are special: drawing from the whole vocabulary would have hit one ~ 1.7% of the time
    assert random_replacements > 600


def test_replacements_are_80_10_10(wordpiece):
    enc = _encode(wordpiece)
    ids = enc["input_ids"]
    masker = TextMasker(wordpiece, mask_prob=0.5, max_masks=10)
    rng, counts = random.Random(1), {"mask": 0, "random": 0, "same": 0}
    for _ in range(400):
        out = masker(ids, enc["attention_mask"], rng=rng)
        for b, masked in enumerate(_masked_sets(out)):
            for p in masked:
                new = out.text_ids_masked[b, p].item()
                counts["mask" if new == masker.mask_token_id else "same" if new == ids[b, p] else "random"] += 1
    total = sum(counts.values())
    assert total > 5000
    assert counts["mask"] / total == pytest.approx(0.8, abs=0.025)
    assert counts["random"] / total == pytest.approx(0.1, abs=0.02)
    assert counts["same"] / total == pytest.approx(0.1, abs=0.02)


def test_output_layout_and_determinism(wordpiece):
    enc = _encode(wordpiece)
    ids = enc["input_ids"]
    masker = TextMasker(wordpiece, mask_prob=0.5, max_masks=7)
    out = masker(ids, enc["attention_mask"], rng=random.Random(3))
    assert out.text_ids_masked.shape == ids.shape and out.masked_pos.shape == out.masked_ids.shape == (4, 7)
    for b in range(4):
        real = out.masked_ids[b] != IGNORE_INDEX
        pos = out.masked_pos[b][real]
        assert (out.masked_pos[b][~real] == 0).all()
        assert pos.tolist() == sorted(set(pos.tolist()))
        assert torch.equal(out.masked_ids[b][real], ids[b, pos])
    again = masker(ids, enc["attention_mask"], rng=random.Random(3))
    other = masker(ids, enc["attention_mask"], rng=random.Random(4))
    assert all(torch.equal(a, b) for a, b in zip(vars(out).values(), vars(again).values(), strict=True))
    assert not torch.equal(out.masked_pos, other.masked_pos)


def test_span_lengths_and_frequency(wordpiece):
    units = [[p] for p in range(1, 201)]  # 200 single-token words
    masker = TextMasker(wordpiece, mask_prob=0.1, max_masks=20, skipgram_prb=0.2, skipgram_size=3)
    rng, lengths = random.Random(0), []
    for _ in range(300):
        spans = masker.select_spans(units, rng)
        assert sum(len(s) for s in spans) == 20
        for span in spans:
            positions = [p for unit in span for p in unit]
            assert positions == list(range(positions[0], positions[0] + len(positions)))  # contiguous
            lengths.append(len(span))
    assert min(lengths) >= 1 and max(lengths) == 3
    # 20% of picks start a span; a few are cut short by a neighbour already masked or the budget
    assert 0.15 < sum(n > 1 for n in lengths) / len(lengths) < 0.21
    no_spans = TextMasker(wordpiece, mask_prob=0.1, max_masks=20, skipgram_prb=0.0)
    assert all(len(s) == 1 for s in no_spans.select_spans(units, random.Random(1)))


def test_invalid_settings_are_rejected(wordpiece):
    with pytest.raises(ValueError, match="mask_prob"):
        TextMasker(wordpiece, mask_prob=0.0, max_masks=5)
    with pytest.raises(ValueError, match="max_masks"):
        TextMasker(wordpiece, mask_prob=0.5, max_masks=0)


# ---------------------------------------------------------------------------------------- block masks
def _component_sizes(mask, height, width):
    """Sizes of the 4-connected components of True cells."""
    seen, sizes = set(), []
    for start in range(height * width):
        if not mask[start] or start in seen:
            continue
        stack, size = [start], 0
        seen.add(start)
        while stack:
            cell = stack.pop()
            size += 1
            i, j = divmod(cell, width)
            for ni, nj in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
                n = ni * width + nj
                if 0 <= ni < height and 0 <= nj < width and mask[n] and n not in seen:
                    seen.add(n)
                    stack.append(n)
        sizes.append(size)
    return sizes


@pytest.mark.parametrize(
    "generator",
    [BlockMaskGenerator(14, 75), BlockMaskGenerator.for_grid(8), BlockMaskGenerator((6, 10), 30, min_num_patches=4)],
    ids=["14x14", "8x8", "6x10"],
)
def test_block_masks_have_exactly_k_cells_mostly_in_large_blocks(generator):
    masks = generator(150, random.Random(0))
    assert masks.shape == (150, generator.num_patches) and masks.dtype == torch.bool
    assert (masks.sum(1) == generator.num_masking_patches).all()
    in_large_blocks = []
    for mask in masks.tolist():
        sizes = _component_sizes(mask, generator.height, generator.width)
        in_large_blocks.append(sum(s for s in sizes if s >= generator.min_num_patches) / sum(sizes))
    assert sum(in_large_blocks) / len(in_large_blocks) > 0.9


def test_block_mask_edge_counts_and_determinism():
    assert not BlockMaskGenerator(8, 0)(3, random.Random(0)).any()
    assert BlockMaskGenerator(8, 64, min_num_patches=5)(3, random.Random(0)).all()
    g = BlockMaskGenerator.for_grid(8)
    assert torch.equal(g(5, random.Random(2)), g(5, random.Random(2)))
    assert not torch.equal(g(5, random.Random(2)), g(5, random.Random(3)))
    assert g(0).shape == (0, 64)
    with pytest.raises(ValueError, match="num_masking_patches"):
        BlockMaskGenerator(8, 65)


def test_mask_sizes_scale_from_75_of_196():
    assert scaled_mask_sizes(196) == (75, 16)  # X-FM / BEiT at 224 px
    assert scaled_mask_sizes(64) == (24, 5)  # tiny preset, 8x8
    assert scaled_mask_sizes(576) == (220, 16)  # 24x24 (384 px): the minimum block stays BEiT's 16
    g = BlockMaskGenerator.for_grid(8)
    assert (g.num_masking_patches, g.min_num_patches, g.height, g.width) == (24, 5, 8, 8)


def test_masks_for_a_seed_are_pinned(wordpiece):
    """The draws of a seed are part of a run's data (resumed runs rely on them): these are the masks of
    the first implementation, which the faster list/bitmask code must reproduce exactly."""
    g = BlockMaskGenerator(8, 24, min_num_patches=5)
    assert g.sample(random.Random(0)).nonzero().flatten().tolist() == [8, 9, 10, 12, 13, 16, 17, 18, 24, 25, 26, 30, 31, 32, 33, 34, 38, 39, 40, 41, 42, 48, 49, 50]  # fmt: skip
    g = BlockMaskGenerator((6, 10), 30, min_num_patches=4)
    assert g.sample(random.Random(1)).nonzero().flatten().tolist() == [
        3, 4, 5, 6, 7, 8, 13, 14, 15, 16, 17, 18, 24, 25, 27, 28, 34, 35, 36, 37, 38, 40, 41, 42, 43, 46, 47, 48, 56, 57
    ]  # fmt: skip
    assert BlockMaskGenerator(5, 3, min_num_patches=2).sample(random.Random(0)).nonzero().flatten().tolist() == [15, 17, 20]  # free cells drawn
    enc = _encode(wordpiece, ["a red squarely circle orbits the xylophone", "grey"], 12)
    out = TextMasker(wordpiece, mask_prob=0.5, max_masks=6)(enc["input_ids"], enc["attention_mask"], rng=random.Random(7))
    assert out.masked_pos.tolist() == [[6, 7, 8, 9, 10, 0], [1, 0, 0, 0, 0, 0]]  # "orbits the xylophone" (3 tokens), "grey"
    assert out.masked_ids.tolist() == [[20347, 1996, 1060, 8516, 25232, IGNORE_INDEX], [4462] + [IGNORE_INDEX] * 5]
    assert out.text_ids_masked.tolist() == [[101, 1037, 2417, 2675, 2135, 4418, 103, 103, 103, 103, 103, 102], [101, 103, 102] + [0] * 9]


def test_mask_rows_are_the_batch_call_without_tensors(bpe):
    masker = TextMasker(bpe, mask_prob=0.5, max_masks=5)
    enc = _encode(bpe)
    out = masker(enc["input_ids"], enc["attention_mask"], rng=random.Random(2))
    rows = masker.mask_rows(enc["input_ids"].tolist(), enc["attention_mask"].tolist(), random.Random(2))
    assert rows == (out.text_ids_masked.tolist(), out.masked_pos.tolist(), out.masked_ids.tolist())
