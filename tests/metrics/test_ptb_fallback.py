"""The pure-Python PTB tokenizer (metrics/ptb_python.py) against Stanford PTBTokenizer's recorded output.

``tests/fixtures/ptb/captions.txt`` is a corpus of captions with curly and straight quotes, dashes,
ellipses, emoji and symbols, times, numbers, clitics, abbreviations, URLs, accents, odd white space
...; ``ptb_tokens.txt`` is what the Java jar made of it (written by ``tests/fixtures/ptb/record.py``).
The Java tests are system tests (a Java subprocess), skipped where ``java`` is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from xfm_pipeline.metrics.captioning import caption_metrics, java_available, python_tokenize, simple_tokenize

RECORDER = Path(__file__).resolve().parents[1] / "fixtures" / "ptb" / "record.py"


def needs_java(test):
    """A system test: runs the Java PTBTokenizer in a subprocess; skipped when ``java`` is missing."""
    skip = pytest.mark.skipif(not java_available(), reason="`java` is not on PATH: the Java PTBTokenizer cannot run")
    return pytest.mark.system(skip(test))


@pytest.fixture(scope="module")
def recorder():
    """``tests/fixtures/ptb/record.py`` (not a package): the corpus and recording readers, the recorder."""
    spec = importlib.util.spec_from_file_location("ptb_record", RECORDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _differences(captions: list[str], expected: list[str], got: list[str]) -> str:
    lines = [f"line {n}: {c!r}\n    java:   {e!r}\n    python: {g!r}" for n, (c, e, g) in enumerate(zip(captions, expected, got), 1) if e != g]
    return f"{len(lines)} of {len(captions)} captions differ:\n" + "\n".join(lines)


def test_python_tokenizer_reproduces_the_recorded_java_tokens(recorder):
    captions = recorder.read_captions()
    expected = recorder.read_lines(recorder.TOKENS)
    assert len(expected) == len(captions), "ptb_tokens.txt does not have one line per caption: re-run record.py"
    got = python_tokenize(captions)
    assert got == expected, _differences(captions, expected, got)


@needs_java
def test_recording_is_up_to_date(recorder, tmp_path):
    live = tmp_path / "ptb_tokens.txt"
    recorder.record(tokens_path=live)
    captions, expected, got = recorder.read_captions(), recorder.read_lines(recorder.TOKENS), recorder.read_lines(live)
    assert got == expected, "re-run tests/fixtures/ptb/record.py; " + _differences(captions, expected, got)


def test_corpus_reader_refuses_line_breaks_and_empty_captions(recorder, tmp_path):
    corpus = tmp_path / "captions.txt"
    corpus.write_text("a dog\na cat\u2028on a mat\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"captions.txt:2: .*line-break character '\\u2028'"):
        recorder.read_captions(corpus)
    corpus.write_text("a dog\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="captions.txt:2: empty caption"):
        recorder.read_captions(corpus)
    corpus.write_text("a dog", encoding="utf-8")
    with pytest.raises(ValueError, match="must end with a newline"):
        recorder.read_captions(corpus)


def test_a_caption_depends_on_the_next_one():
    # the jar drops a lone letter's period before a sentence start, also across the line break
    assert python_tokenize(["A bottle of vitamin C.", "The dog is eating."]) == ["a bottle of vitamin c", "the dog is eating"]
    assert python_tokenize(["A bottle of vitamin C.", "the dog is eating."]) == ["a bottle of vitamin c.", "the dog is eating"]
    assert simple_tokenize("A bottle of vitamin C.") == "a bottle of vitamin c."


def test_known_tokens():
    assert simple_tokenize("“Look!” – it’s 3:00pm… ½ of a 🐶 costs €5") == "look it 's 3:00 pm 1/2 of a costs $ 5"
    assert simple_tokenize("I can't, y'all; rock'n'roll at 5 o'clock (U.S.)") == "i ca n't y' all rock 'n' roll at 5 o'clock -lrb- u.s. -rrb-"
    assert simple_tokenize("AT&T r&b #tag @me x@y.com http://a.com/b?c=d") == "at&t r & b #tag @me x@y.com http://a.com/b?c=d"
    assert simple_tokenize("Mr. Smith's dog., etc. gonna cannot") == "mr. smith 's dog. etc. gon na can not"
    assert simple_tokenize("") == ""


# captions with the constructs where the old approximation differed from the jar (quotes, dashes, ellipses,
# emoji, symbols, times, clitics, abbreviations, URLs, ampersands, smileys)
REFERENCES = {
    1: ["A sign that says “Welcome” above the door.", "The shop’s sign reads ‘Open’ — come in…", "a sign: open 9am–5pm"],
    2: ["A dog 🐶 sleeping on a bed at 3:00pm.", "The dog’s bed is red, it’s 3:00pm…", "A dog naps on its bed."],
    3: ["A menu: fish &amp; chips for £10, ½ price.", "Fish & chips on a plate, 50% off!", "A plate of fish and chips."],
    4: ["A shirt reading AT&T and #1 fan :)", "A man's AT&T shirt — #1 fan.", "A man in a shirt."],
}
PREDICTIONS = {1: "A sign that says “Open” — welcome…", 2: "A dog 🐶 on its bed, it’s 3:00pm.", 3: "Fish &amp; chips for £10!", 4: "A man’s AT&T shirt :)"}


@needs_java
def test_cider_is_the_same_with_either_tokenizer():
    java = caption_metrics(PREDICTIONS, REFERENCES, tokenizer="ptb", meteor=False)
    python = caption_metrics(PREDICTIONS, REFERENCES, tokenizer="python", meteor=False)
    assert python == java  # the same tokens, so the same floats
    assert java["cider"] > 1.0  # not a degenerate set (the old approximation scored it 25% lower)
