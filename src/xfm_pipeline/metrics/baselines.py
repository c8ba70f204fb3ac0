"""Input-blind baselines that show how much a task needs its inputs.

* :func:`answer_prior_accuracy`: the text-only VQA prior: predict, for every question, the most frequent
  (normalised) training answer of its question type, scored with the official VQA accuracy.
* :func:`question_prior_accuracy`: a stronger text-only VQA baseline: predict the most frequent training
  answer of the same question (normalised text), falling back to the type prior for unseen questions. It
  catches answers that the wording gives away, which the per-type prior cannot see.
* :func:`majority_accuracy`: predict the most frequent training label (NLVR2, GLUE, ...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

from xfm_pipeline.metrics.vqa import normalize_answer, vqa_question_accuracy


def most_frequent(values: Sequence[Hashable]) -> Hashable:
    """The most frequent value; ties go to the smallest value (by ``str``), so the choice is deterministic."""
    if not values:
        raise ValueError("no values")
    counts = Counter(values)
    best = max(counts.values())
    return min((v for v, c in counts.items() if c == best), key=str)


def answer_prior(train: Sequence[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """Most frequent normalised answer per question type, from ``(question_type, answers)`` pairs."""
    per_type: dict[str, list[str]] = {}
    for question_type, answers in train:
        per_type.setdefault(question_type, []).extend(normalize_answer(a) for a in answers)
    return {t: most_frequent(a) for t, a in sorted(per_type.items())}


def answer_prior_accuracy(
    train: Sequence[tuple[str, Sequence[str]]], test: Sequence[tuple[str, Sequence[str]]]
) -> dict[str, float]:
    """Text-only prior baseline: VQA accuracy (in [0, 1]) overall and per question type on ``test``.

    Question types never seen in training are answered with the overall most frequent answer.
    """
    if not test:
        raise ValueError("no test questions")
    guess = _type_prior_guess(train)
    return _accuracy_per_type([(t, guess(t), answers) for t, answers in test])


def question_prior_accuracy(
    train: Sequence[tuple[str, str, Sequence[str]]], test: Sequence[tuple[str, str, Sequence[str]]]
) -> dict[str, float]:
    """Question-lookup baseline: VQA accuracy (in [0, 1]) overall and per question type on ``test``.

    Args:
        train, test: ``(question, question_type, answers)`` triples.

    Every test question is answered with the most frequent normalised training answer of the same
    question (lower-cased, whitespace collapsed); questions never seen in training get their type's prior
    (:func:`answer_prior`), or the overall most frequent answer for an unseen type.
    """
    if not test:
        raise ValueError("no test questions")
    per_question: dict[str, list[str]] = {}
    for question, _, answers in train:
        per_question.setdefault(_question_key(question), []).extend(normalize_answer(a) for a in answers)
    lookup = {q: most_frequent(a) for q, a in per_question.items()}
    type_guess = _type_prior_guess([(t, answers) for _, t, answers in train])
    scored = []
    for question, question_type, answers in test:
        key = _question_key(question)
        scored.append((question_type, lookup[key] if key in lookup else type_guess(question_type), answers))
    return _accuracy_per_type(scored)


def _type_prior_guess(train: Sequence[tuple[str, Sequence[str]]]):
    """question_type -> its prior answer, or the overall most frequent answer for an unseen type."""
    prior = answer_prior(train)
    fallback = most_frequent([normalize_answer(a) for _, answers in train for a in answers])
    return lambda question_type: prior.get(question_type, fallback)


def _accuracy_per_type(scored: Sequence[tuple[str, str, Sequence[str]]]) -> dict[str, float]:
    """``(question_type, guess, answers)`` triples -> VQA accuracy overall and per question type."""
    scores: dict[str, list[float]] = {}
    for question_type, guess, answers in scored:
        scores.setdefault(question_type, []).append(vqa_question_accuracy(guess, answers))
    out = {"overall": sum(sum(s) for s in scores.values()) / len(scored)}
    out.update({t: sum(s) / len(s) for t, s in sorted(scores.items())})
    return out


def _question_key(question: str) -> str:
    return " ".join(question.lower().split())


def majority_accuracy(train_labels: Sequence[Hashable], test_labels: Sequence[Hashable]) -> float:
    """Accuracy in [0, 1] on ``test_labels`` of always predicting the most frequent training label."""
    if not test_labels:
        raise ValueError("no test labels")
    majority = most_frequent(train_labels)
    return sum(label == majority for label in test_labels) / len(test_labels)
