"""COCO caption metrics (pycocoevalcap) on hand-made captions with known answers (docs/xfm.md#caption-metrics).

Most tests use the pure-Python tokenizer and no METEOR so they run in milliseconds; the Java path
(PTBTokenizer, METEOR) is exercised by the tests marked ``needs_java``: system tests (a Java subprocess),
skipped where ``java`` is missing.
"""

from __future__ import annotations

import math

import pytest

from xfm_pipeline.metrics import captioning
from xfm_pipeline.metrics.captioning import caption_metrics, java_available, ptb_tokenize, simple_tokenize


def needs_java(test):
    """A system test: runs the Java PTBTokenizer / METEOR in a subprocess; skipped when ``java`` is missing."""
    skip = pytest.mark.skipif(not java_available(), reason="`java` is not on PATH: PTBTokenizer and METEOR cannot run")
    return pytest.mark.system(skip(test))


REFS = {
    1: ["a man riding a horse on a beach", "a person rides a horse along the shore", "a rider on a brown horse near the ocean"],
    2: ["two dogs playing with a frisbee in the park", "dogs chase a frisbee on the grass", "two dogs run after a flying disc"],
    3: ["a red bus parked on the side of the street", "a double decker bus on a city street", "a red bus stopped at a curb"],
}
IDENTICAL = {k: v[0] for k, v in REFS.items()}
GOOD = {1: "A man riding a horse on the beach.", 2: "Two dogs playing with a frisbee", 3: "a red bus on the street"}
BAD = {1: "a plate of food on a table", 2: "a cat sleeping on a couch", 3: "a man holding a cell phone"}
FAST = {"tokenizer": "python", "meteor": False}


@needs_java  # METEOR's JVM loads a 60 MB paraphrase table: 10-30 s on a busy 2-core machine
def test_identical_captions_score_perfectly_with_ptb_and_meteor():
    out = caption_metrics(IDENTICAL, REFS)  # auto: Java PTB tokenizer and METEOR
    assert list(out) == ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"]
    for n in (1, 2, 3, 4):
        assert out[f"bleu_{n}"] == pytest.approx(1.0, abs=1e-8)
    assert out["meteor"] == pytest.approx(1.0)
    assert out["rouge_l"] == pytest.approx(1.0)
    assert out["cider"] > caption_metrics(GOOD, REFS, **FAST)["cider"]


@needs_java
def test_one_meteor_process_scores_every_call_on_its_own_and_a_failure_restarts_it():
    """The METEOR process is kept between calls; a call scores the same whether it comes first or later,
    and a failed call stops the process so the next one starts clean."""
    captioning._stop_meteor()
    gts = {k: [r.lower() for r in v] for k, v in REFS.items()}
    good, bad = ({k: [v.lower()] for k, v in c.items()} for c in (GOOD, BAD))
    first_good = captioning._meteor_score(gts, good)
    process = captioning._METEOR[0].meteor_p
    first_bad = captioning._meteor_score(gts, bad)
    assert captioning._METEOR[0].meteor_p is process and process.poll() is None
    assert captioning._meteor_score(gts, good) == first_good and first_bad < first_good
    with pytest.raises(AssertionError):  # pycocoevalcap asserts the ids of both sides agree
        captioning._meteor_score(gts, {1: ["a horse"]})
    assert not captioning._METEOR and process.poll() is not None
    assert captioning._meteor_score(gts, bad) == first_bad
    captioning._stop_meteor()


def test_bleu_hand_computed():
    # hypothesis "the cat the cat" (4 words), one reference of 6 words:
    # unigrams: "the" min(2, 2) + "cat" min(2, 1) = 3 of 4; bigrams: "the cat" once of 3 ("the cat", "cat the", "the cat")
    # brevity penalty exp(1 - 6/4) = exp(-0.5)
    refs = {"a": ["The cat is on the mat."]}
    out = caption_metrics({"a": "The cat, the cat"}, refs, **FAST)
    bp = math.exp(-0.5)
    assert out["bleu_1"] == pytest.approx(0.75 * bp, rel=1e-6)
    assert out["bleu_2"] == pytest.approx(math.sqrt(0.75 * (1 / 3)) * bp, rel=1e-6)
    assert out["bleu_3"] < 1e-3  # no trigram matches ("the cat the" is not in the reference)


def test_rouge_l_hand_computed():
    # LCS("a dog runs on grass", "a dog sits on the grass") = "a dog on grass" = 4
    p, r, beta = 4 / 5, 4 / 6, 1.2
    expected = (1 + beta**2) * p * r / (r + beta**2 * p)
    out = caption_metrics({0: "A dog runs on grass."}, {0: ["a dog sits on the grass"]}, **FAST)
    assert out["rouge_l"] == pytest.approx(expected)


def test_better_captions_score_higher():
    identical, good, bad = (caption_metrics(p, REFS, **FAST) for p in (IDENTICAL, GOOD, BAD))
    for metric in ("bleu_1", "bleu_4", "rouge_l", "cider"):
        assert identical[metric] > good[metric] > bad[metric], metric
    assert identical["cider"] > 1.0  # CIDEr is not bounded by 1


def test_cider_needs_a_set_of_images():
    # document frequencies are taken over the evaluated set: with one image every n-gram has idf 0
    one = caption_metrics({1: IDENTICAL[1]}, {1: REFS[1]}, **FAST)
    assert one["cider"] == 0.0
    assert one["bleu_4"] == pytest.approx(1.0, abs=1e-8)


def test_case_and_punctuation_do_not_matter():
    plain = caption_metrics({k: v.lower().rstrip(".") for k, v in GOOD.items()}, REFS, **FAST)
    assert caption_metrics(GOOD, REFS, **FAST) == pytest.approx(plain)


ORDINARY_CAPTIONS = [
    "A man riding a wave on top of a surfboard.",
    "Two dogs playing with a frisbee in the park!",
    "A woman's hand holding a cell phone",
    'The kids aren\'t "happy" (really).',
    "a red, white and blue train; on tracks",
    "There is a cat on the couch -- sleeping.",
    "Three people at 10:30, near 1,000 birds...",
    "A black-and-white photo of a bus.",
    "He can't swim, I cannot either",
    "Mr. Smith's car isn't in the U.S. anymore",
    "A sign that says 'STOP'.",
    "dogs' toys and a 50% sale for $5 & more",
    "",
]


@needs_java
def test_python_tokenizer_matches_java_ptb_on_ordinary_captions():
    assert [simple_tokenize(c) for c in ORDINARY_CAPTIONS] == ptb_tokenize(ORDINARY_CAPTIONS)


@needs_java
def test_ptb_tokenize_keeps_one_line_per_caption():
    assert ptb_tokenize(["Hello\nworld.", "", "  ", "A\r\nB!"]) == ["hello world", "", "", "a b"]
    assert ptb_tokenize([]) == []
    # the toolkit's punctuation list is case-sensitive: lowercased bracket tokens survive, as in COCOEvalCap
    assert ptb_tokenize(["a (red) car"]) == ["a -lrb- red -rrb- car"]


@needs_java
def test_java_and_python_paths_agree_on_ordinary_captions():
    java = caption_metrics(GOOD, REFS, tokenizer="ptb", meteor=False)
    assert java == pytest.approx(caption_metrics(GOOD, REFS, **FAST))


def test_without_java_falls_back_and_leaves_meteor_out(monkeypatch, caplog):
    monkeypatch.setattr(captioning, "java_available", lambda: False)

    def no_java(*_args, **_kwargs):
        raise AssertionError("the Java tokenizer must not be called")

    monkeypatch.setattr(captioning, "ptb_tokenize", no_java)
    with caplog.at_level("WARNING", logger=captioning.__name__):
        out = caption_metrics(GOOD, REFS)
    assert list(out) == ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider"]
    assert out == pytest.approx(caption_metrics(GOOD, REFS, **FAST))
    assert "METEOR" in caplog.text and "java not found" in caplog.text
    with pytest.raises(RuntimeError, match="java"):
        caption_metrics(GOOD, REFS, tokenizer="python", meteor=True)


def test_spice_without_corenlp_raises_instead_of_downloading(monkeypatch, tmp_path):
    real = captioning._package_dir
    monkeypatch.setattr(captioning, "_package_dir", lambda sub: str(tmp_path) if sub == "spice" else real(sub))
    with pytest.raises(FileNotFoundError, match="stanford-corenlp-3.6.0"):
        caption_metrics(GOOD, REFS, spice=True, **FAST)


@pytest.mark.parametrize(
    ("predictions", "references", "error"),
    [
        ({1: "a dog"}, {2: ["a dog"]}, ValueError),
        ({}, {}, ValueError),
        ({1: "a dog"}, {1: []}, ValueError),
        ({1: "a dog"}, {1: "a dog"}, ValueError),  # a bare string is not a list of references
        ({1: ["a dog"]}, {1: ["a dog"]}, TypeError),
    ],
)
def test_invalid_inputs(predictions, references, error):
    with pytest.raises(error):
        caption_metrics(predictions, references, **FAST)
    with pytest.raises(ValueError, match="tokenizer"):
        caption_metrics({1: "a dog"}, {1: ["a dog"]}, tokenizer="spacy", meteor=False)
