"""Input-blind baselines that show how much a task needs its inputs.

* :func:`answer_prior_accuracy`: the text-only VQA prior: predict, for every question, the most frequent
  (normalised) training answer of its question type, scored with the official VQA accuracy.
* :func:`question_prior_accuracy`: a stronger text-only VQA baseline: predict the most frequent training
  answer of the same question (normalised text), falling back to the type prior for unseen questions. It
  catches answers that the wording gives away, which the per-type prior cannot see.
* :func:`majority_accuracy`: predict the most frequent training label (NLVR2, GLUE, ...).
* :func:`statement_prior_accuracy`: the text-only NLVR2 baseline: predict the most frequent training label
  of the same statement, falling back to the majority label for unseen statements.
* :func:`mean_box_accuracy`: image-blind grounding: predict the mean training box for every expression.
* :func:`frequent_captions`: image-blind captioning candidates: the most frequent training captions, each
  to be predicted for every image (``benchmarks/blind_baselines.py`` picks one on validation CIDEr).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from xfm_pipeline.metrics.grounding import GROUNDING_IOU_THRESHOLD, grounding_accuracy
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


def answer_prior_accuracy(train: Sequence[tuple[str, Sequence[str]]], test: Sequence[tuple[str, Sequence[str]]]) -> dict[str, float]:
    """Text-only prior baseline: VQA accuracy (in [0, 1]) overall and per question type on ``test``.

    Question types never seen in training are answered with the overall most frequent answer.
    """
    if not test:
        raise ValueError("no test questions")
    guess = _type_prior_guess(train)
    return _accuracy_per_type([(t, guess(t), answers) for t, answers in test])


def question_prior_accuracy(train: Sequence[tuple[str, str, Sequence[str]]], test: Sequence[tuple[str, str, Sequence[str]]]) -> dict[str, float]:
    """Question-lookup baseline: VQA accuracy (in [0, 1]) overall and per question type on ``test``.

    Args:
        train, test: ``(question, question_type, answers)`` triples.

    Every test question is answered with the most frequent normalised training answer of the same
    question (lower-cased, whitespace collapsed); questions never seen in training get their type's prior
    (:func:`answer_prior`), or the overall most frequent answer for an unseen type.
    """
    if not test:
        raise ValueError("no test questions")
    lookup = _text_lookup((question, normalize_answer(a)) for question, _, answers in train for a in answers)
    type_guess = _type_prior_guess([(t, answers) for _, t, answers in train])
    scored = []
    for question, question_type, answers in test:
        key = _text_key(question)
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


def _text_key(text: str) -> str:
    """Lower-cased, whitespace collapsed: the key of a question or statement lookup."""
    return " ".join(text.lower().split())


def _text_lookup(pairs: Iterable[tuple[str, Hashable]]) -> dict[str, Hashable]:
    """``(text, value)`` pairs -> the most frequent value of each text key (:func:`most_frequent`)."""
    values: dict[str, list[Hashable]] = {}
    for text, value in pairs:
        values.setdefault(_text_key(text), []).append(value)
    return {key: most_frequent(v) for key, v in values.items()}


def majority_accuracy(train_labels: Sequence[Hashable], test_labels: Sequence[Hashable]) -> float:
    """Accuracy in [0, 1] on ``test_labels`` of always predicting the most frequent training label."""
    if not test_labels:
        raise ValueError("no test labels")
    majority = most_frequent(train_labels)
    return sum(label == majority for label in test_labels) / len(test_labels)


def statement_prior_accuracy(train: Sequence[tuple[str, Hashable]], test: Sequence[tuple[str, Hashable]]) -> float:
    """Statement-lookup baseline: accuracy in [0, 1] on ``test`` of predicting, for each statement, its most
    frequent label among the training records with the same statement (lower-cased, whitespace collapsed;
    ties as in :func:`most_frequent`), and the overall majority label for statements never seen in training.

    Args:
        train, test: ``(statement, label)`` pairs.
    """
    if not test:
        raise ValueError("no test statements")
    lookup = _text_lookup(train)
    majority = most_frequent([label for _, label in train])
    return sum(lookup.get(_text_key(statement), majority) == label for statement, label in test) / len(test)


def mean_box_accuracy(train_boxes, test_boxes, threshold: float = GROUNDING_IOU_THRESHOLD) -> float:
    """Grounding accuracy in [0, 1] of predicting the mean training box for every test expression.

    Args:
        train_boxes, test_boxes: (N, 4) pixel ``(x, y, w, h)`` boxes (images of one size, as in the shapes
            world; for mixed sizes, normalise first).
        threshold: IoU needed for a hit (the official pixel-inclusive IoU of ``metrics.grounding``).
    """
    train = np.asarray(train_boxes, dtype=np.float64)
    if train.ndim != 2 or train.shape[1] != 4 or len(train) == 0:
        raise ValueError(f"train_boxes must be a non-empty (N, 4) array, got shape {train.shape}")
    test = np.asarray(test_boxes, dtype=np.float64)
    return grounding_accuracy(np.broadcast_to(train.mean(axis=0), test.shape), test, threshold)


def frequent_captions(train_captions: Sequence[str], k: int) -> list[str]:
    """The ``k`` most frequent training captions (lower-cased, surrounding spaces and a final full stop
    removed), most frequent first; ties in the order of :func:`most_frequent`."""
    if not train_captions:
        raise ValueError("no training captions")
    counts = Counter(c.strip().lower().removesuffix(".").strip() for c in train_captions)
    return sorted(counts, key=lambda c: (-counts[c], c))[:k]
