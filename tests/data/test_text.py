"""pre_caption / pre_question (docs/xfm.md#inputs-and-augmentation, docs/xfm.md#vqa) and the tokenisation helper."""

from __future__ import annotations

import pytest

from xfm_pipeline.data.text import EmptyTextError, pre_caption, pre_question, tokenize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A Man, riding a horse!", "a man riding a horse"),
        ("it's a dog's life.", "it s a dog s life"),
        ("  two   spaces\tand\na newline  ", "two spaces and a newline"),
        ('"quoted" (paren) *star* #hash :colon; ~tilde', "quoted paren star hash colon tilde"),
        ("black-and-white / grey", "black and white grey"),
        ("<person> holding an umbrella", "person holding an umbrella"),
        ("?!Hello...", "hello"),
    ],
)
def test_pre_caption_hand_cases(raw, expected):
    assert pre_caption(raw, 30) == expected


def test_pre_caption_truncates_to_max_words():
    assert pre_caption("one two three four five", 3) == "one two three"
    assert pre_caption("one, two, three", 30) == "one two three"


@pytest.mark.parametrize("raw", ["", "   ", "?!.,", "--/"])
def test_pre_caption_empty_raises(raw):
    with pytest.raises(EmptyTextError, match="empty"):
        pre_caption(raw, 30)


def test_pre_caption_rejects_non_string():
    with pytest.raises(TypeError):
        pre_caption(None, 30)  # type: ignore[arg-type]


def test_pre_question():
    assert pre_question("What's the COLOR of the car?", 30) == "what s the color of the car"
    assert pre_question("is it <person>?", 30) == "is it <person>"  # only captions map <person>
    assert pre_question("a b c d e f", 4) == "a b c d"
    with pytest.raises(EmptyTextError):
        pre_question("???", 30)


@pytest.fixture(scope="module")
def tokenizer():
    from xfm_pipeline.model.text import load_tokenizer

    return load_tokenizer("all-minilm-l6-v2")


def test_tokenize_pads_and_truncates(tokenizer):
    out = tokenize(tokenizer, ["a red circle", "a very long caption " * 20], max_tokens=12)
    assert out.text_ids.shape == (2, 12) and out.text_atts.shape == (2, 12)
    assert out.text_ids.dtype.is_floating_point is False
    # short text: [CLS] a red circle [SEP] then padding
    n_real = int(out.text_atts[0].sum())
    assert n_real == len(tokenizer("a red circle")["input_ids"])
    assert out.text_ids[0, 0] == tokenizer.cls_token_id and out.text_ids[0, n_real - 1] == tokenizer.sep_token_id
    assert (out.text_ids[0, n_real:] == tokenizer.pad_token_id).all()
    # long text: truncated with the closing special token kept
    assert out.text_atts[1].sum() == 12 and out.text_ids[1, -1] == tokenizer.sep_token_id


def test_tokenize_longest_padding(tokenizer):
    out = tokenize(tokenizer, ["a", "a red circle left of a square"], max_tokens=40, padding="longest")
    assert out.text_ids.shape[1] == int(out.text_atts[1].sum()) < 40


def test_tokenize_rejects_bad_arguments(tokenizer):
    with pytest.raises(ValueError):
        tokenize(tokenizer, [], 10)
    with pytest.raises(ValueError):
        tokenize(tokenizer, "x", 1)
    with pytest.raises(ValueError):
        tokenize(tokenizer, "x", 10, padding="do_not_pad")  # type: ignore[arg-type]


def test_text_key_is_equal_for_equal_strings_only_and_stable_across_processes():
    import subprocess
    import sys

    from xfm_pipeline.data.text import text_key

    assert text_key("large grey star") == text_key("large grey star")
    assert len({text_key(t) for t in ("large grey star", "small grey star", "large grey sta", "")}) == 4
    assert 0 <= text_key("large grey star") < 2**63
    other = subprocess.run(
        [sys.executable, "-c", "from xfm_pipeline.data.text import text_key; print(text_key('large grey star'))"], capture_output=True, text=True, check=True
    )
    assert int(other.stdout) == text_key("large grey star")  # not Python's per-process salted hash


def test_trim_padding_cuts_aligned_tensors_to_the_longest_text():
    import torch

    from xfm_pipeline.data.text import trim_padding

    ids = torch.tensor([[101, 5, 6, 102, 0, 0], [101, 7, 102, 0, 0, 0]])
    atts = (ids != 0).long()
    masked = ids.clone()
    masked[0, 1] = 103
    got_ids, got_atts, got_masked = trim_padding(ids, atts, masked)
    assert got_ids.tolist() == [[101, 5, 6, 102], [101, 7, 102, 0]]
    assert got_atts.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert got_masked.tolist() == [[101, 103, 6, 102], [101, 7, 102, 0]]


def _bpe_tokenizer():
    """A tiny byte-level BPE tokenizer (RoBERTa conventions) trained here."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import PreTrainedTokenizerFast

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        ["a red circle left of a blue square", "two yellow squares"] * 5,
        vocab_size=280,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    backend = trainer._tokenizer
    backend.post_processor = RobertaProcessing(("</s>", backend.token_to_id("</s>")), ("<s>", backend.token_to_id("<s>")))
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_fixed_length_tokenizer_gives_the_ids_and_mask_of_tokenize(kind):
    from xfm_pipeline.data.text import FixedLengthTokenizer
    from xfm_pipeline.model.text import load_tokenizer

    tokenizer = load_tokenizer("all-minilm-l6-v2") if kind == "wordpiece" else _bpe_tokenizer()
    texts = ["a red circle", "word " * 40, "naïve café [MASK] <mask> déjà vu", "x", "unbelievable xylophones, left of 3 squares!"]
    fast = FixedLengthTokenizer(tokenizer, 12)
    for batch in (texts, texts[0]):
        want, got = tokenize(tokenizer, batch, 12), fast(batch)
        assert got.text_ids.dtype == got.text_atts.dtype == want.text_ids.dtype
        assert got.text_ids.tolist() == want.text_ids.tolist() and got.text_atts.tolist() == want.text_atts.tolist()
    want = tokenize(tokenizer, texts[:2], 12)
    assert fast.rows(texts[:2]) == (want.text_ids.tolist(), want.text_atts.tolist())
    assert want.text_atts[1].tolist() == [1] * 12 and want.text_atts[0].tolist()[-1] == 0  # truncated / padded to 12


def test_fixed_length_tokenizer_calls_a_tokenizer_without_a_rust_backend_as_tokenize_does():
    import torch

    from xfm_pipeline.data.text import FixedLengthTokenizer

    calls = []

    class Slow:
        is_fast = False

        def __call__(self, texts, **kwargs):
            calls.append((texts, kwargs["max_length"], kwargs["padding"]))
            return {"input_ids": torch.tensor([[5, 6, 0]]), "attention_mask": torch.tensor([[1, 1, 0]])}

    out = FixedLengthTokenizer(Slow(), 3)("hi")
    assert calls == [(["hi"], 3, "max_length")] and out.text_ids.tolist() == [[5, 6, 0]] and out.text_atts.tolist() == [[1, 1, 0]]
