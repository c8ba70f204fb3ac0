"""VQA accuracy exactly as the official ``vqaEval.py`` computes it (docs/xfm.md#vqa-accuracy).

Per question: the prediction is normalised (``\\n``/``\\t`` to space, strip, :func:`process_punctuation`,
:func:`process_digit_article`); the ten ground-truth answers get :func:`process_punctuation` only when
they are not all identical; the accuracy is the mean, over the ten leave-one-out subsets of nine
answers, of ``min(1, #matches / 3)``. The overall score is the mean over questions (the official tool
reports it x100 rounded to 2 decimals).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# fmt: off
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
# fmt: on
ARTICLES = ("a", "an", "the")
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
# The official pattern (its ``(?!<=\d)`` is a typo for a look-behind; kept so results match).
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
# The official call is ``periodStrip.sub("", text, re.UNICODE)``: its third argument is ``count``.
_PERIOD_STRIP_COUNT = int(re.UNICODE)


def process_punctuation(text: str) -> str:
    """Official ``processPunctuation``: drop punctuation next to a space (or anywhere if the text has a
    digit-comma-digit), otherwise turn it into a space; then strip periods not followed by a digit."""
    out = text
    has_digit_comma = _COMMA_STRIP.search(text) is not None
    for p in PUNCTUATION:
        if (p + " " in text or " " + p in text) or has_digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, _PERIOD_STRIP_COUNT)


def process_digit_article(text: str) -> str:
    """Official ``processDigitArticle``: lowercase, number words -> digits, drop a/an/the, fix contractions."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(answer: str) -> str:
    """The official normalisation of a predicted answer."""
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(answer))


def vqa_question_accuracy(prediction: str, gt_answers: Sequence[str]) -> float:
    """Accuracy in [0, 1] of one prediction against the human answers of one question.

    ``mean over i of min(1, #{j != i : gt_j == prediction} / 3)``. With 10 answers: 4 or more matching
    answers give 1.0, 3 give 0.9 (the three subsets that drop a match see only 2), 2 give 0.6, 1 gives
    0.3, 0 give 0.

    Raises:
        ValueError: no ground-truth answers.
    """
    if not gt_answers:
        raise ValueError("a question needs at least one ground-truth answer")
    pred = normalize_answer(prediction)
    gts = [a.replace("\n", " ").replace("\t", " ").strip() for a in gt_answers]
    if len(set(gts)) > 1:
        gts = [process_punctuation(a) for a in gts]
    matches = sum(gt == pred for gt in gts)
    total = 0.0
    for gt in gts:  # leave answer i out: the matches among the others
        total += min(1.0, (matches - (gt == pred)) / 3.0)
    return total / len(gts)


def vqa_accuracy(predictions: Sequence[str], gt_answers: Sequence[Sequence[str]]) -> float:
    """Mean VQA accuracy in [0, 1] over questions (multiply by 100 for the official percentage).

    Raises:
        ValueError: different lengths or no questions.
    """
    if len(predictions) != len(gt_answers):
        raise ValueError(f"{len(predictions)} predictions for {len(gt_answers)} questions")
    if not predictions:
        raise ValueError("no questions to score")
    return sum(vqa_question_accuracy(p, g) for p, g in zip(predictions, gt_answers, strict=True)) / len(predictions)


def vqa_accuracy_breakdown(
    predictions: Sequence[str],
    gt_answers: Sequence[Sequence[str]],
    question_types: Sequence[str] | None = None,
    answer_types: Sequence[str] | None = None,
) -> dict[str, float | dict[str, float]]:
    """Overall VQA accuracy and, as the official ``vqaEval.py`` reports them, the mean accuracy per
    question type (e.g. ``"what color is the"``) and per answer type (``"yes/no"``, ``"number"``,
    ``"other"``). All values in [0, 1], unrounded.

    Returns:
        ``{"overall": float}`` plus ``"per_question_type"`` and/or ``"per_answer_type"``
        (``{type: accuracy}``, sorted by type) for the type lists given.

    Raises:
        ValueError: lengths that disagree, or no questions.
    """
    if len(predictions) != len(gt_answers):
        raise ValueError(f"{len(predictions)} predictions for {len(gt_answers)} questions")
    if not predictions:
        raise ValueError("no questions to score")
    scores = [vqa_question_accuracy(p, g) for p, g in zip(predictions, gt_answers, strict=True)]
    out: dict[str, float | dict[str, float]] = {"overall": sum(scores) / len(scores)}
    for key, types in (("per_question_type", question_types), ("per_answer_type", answer_types)):
        if types is None:
            continue
        if len(types) != len(scores):
            raise ValueError(f"{len(types)} entries in {key.removeprefix('per_')}s for {len(scores)} questions")
        groups: dict[str, list[float]] = {}
        for t, score in zip(types, scores, strict=True):
            groups.setdefault(t, []).append(score)
        out[key] = {t: sum(s) / len(s) for t, s in sorted(groups.items())}
    return out
