"""NLVR2-style statements about image pairs, balanced True/False per statement.

Each record draws a pair of images and a statement template; every template says a fixed list of
statements about any pair, each true or false of it. Of those, the record takes one whose label the
statement has had less often so far in the split (ties: the label the split has had less often, then at
random). Every statement is therefore about as often true as false: neither the template nor the wording
predicts the label (a text-only lookup of the statement scores about 50%), so the images must be compared.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from xfm_pipeline.data.shapes_world.language import number_word, plural
from xfm_pipeline.data.shapes_world.scenes import COLOURS, SHAPES, Scene

SIDES = ("left", "right")
TOTAL_COUNTS = (2, 3, 4, 5)  # "the left image contains exactly three shapes": the usual object counts


def _count(scene: Scene, shape: str | None = None, colour: str | None = None) -> int:
    return sum((shape is None or o.shape == shape) and (colour is None or o.colour == colour) for o in scene.objects)


def _t_contains(left: Scene, right: Scene) -> list[tuple[str, bool]]:
    out = []
    for side, scene in zip(SIDES, (left, right), strict=True):
        for colour in COLOURS:
            for shape in SHAPES:
                truth = _count(scene, shape, colour) > 0
                out.append((f"there is a {colour} {shape} in the {side} image", truth))
    return out


def _t_both(left: Scene, right: Scene) -> list[tuple[str, bool]]:
    out = []
    for shape in SHAPES:
        out.append((f"both images contain a {shape}", _count(left, shape) > 0 and _count(right, shape) > 0))
    for colour in COLOURS:
        out.append((f"both images contain a {colour} shape", _count(left, colour=colour) > 0 and _count(right, colour=colour) > 0))
    return out


def _t_exactly(left: Scene, right: Scene) -> list[tuple[str, bool]]:
    out = []
    for side, scene in zip(SIDES, (left, right), strict=True):
        for n in (1, 2, 3):
            noun_n = "shape" if n == 1 else "shapes"
            for shape in SHAPES:
                out.append((f"the {side} image contains exactly {number_word(n)} {shape if n == 1 else plural(shape)}", _count(scene, shape) == n))
            for colour in COLOURS:
                out.append((f"the {side} image contains exactly {number_word(n)} {colour} {noun_n}", _count(scene, colour=colour) == n))
        for n in TOTAL_COUNTS:
            out.append((f"the {side} image contains exactly {number_word(n)} shapes", len(scene.objects) == n))
    return out


def _t_more(left: Scene, right: Scene) -> list[tuple[str, bool]]:
    out = []
    for first, a, b in (("left", left, right), ("right", right, left)):
        second = "right" if first == "left" else "left"
        for shape in SHAPES:
            out.append((f"the {first} image has more {plural(shape)} than the {second} image", _count(a, shape) > _count(b, shape)))
        for colour in COLOURS:
            out.append((f"the {first} image has more {colour} shapes than the {second} image", _count(a, colour=colour) > _count(b, colour=colour)))
        out.append((f"the {first} image has more shapes than the {second} image", len(a.objects) > len(b.objects)))
    return out


def _t_total(left: Scene, right: Scene) -> list[tuple[str, bool]]:
    out = []
    for n in (1, 2, 3, 4):
        for shape in SHAPES:
            noun = shape if n == 1 else plural(shape)
            out.append((f"there {'is' if n == 1 else 'are'} {number_word(n)} {noun} in total", _count(left, shape) + _count(right, shape) == n))
    return out


def _t_one_not_other(left: Scene, right: Scene) -> list[tuple[str, bool]]:
    out = []
    for shape in SHAPES:
        truth = (_count(left, shape) > 0) != (_count(right, shape) > 0)
        out.append((f"one image contains a {shape} and the other does not", truth))
    return out


TEMPLATES: dict[str, Callable[[Scene, Scene], list[tuple[str, bool]]]] = {
    "contains": _t_contains,
    "both": _t_both,
    "exactly": _t_exactly,
    "more": _t_more,
    "total": _t_total,
    "one_not_other": _t_one_not_other,
}


def _need(statement_labels: Counter, split_labels: Counter, truth: bool) -> tuple[int, int]:
    """How much a record with label ``truth`` would even out its statement's labels, then the split's."""
    return statement_labels[not truth] - statement_labels[truth], split_labels[not truth] - split_labels[truth]


def statements_for_split(scenes: list[Scene], n_pairs: int, split: str, rng: random.Random) -> list[dict]:
    """``n_pairs`` NLVR2 records over random pairs of distinct ``scenes``, each statement about as often
    true as false (see the module docstring)."""
    if len(scenes) < 2:
        raise ValueError(f"NLVR2 {split} needs at least two images, got {len(scenes)}")
    per_statement: dict[str, Counter] = {}
    labels: Counter = Counter()
    names = sorted(TEMPLATES)
    records = []
    while len(records) < n_pairs:
        left, right = rng.sample(scenes, 2)
        candidates = TEMPLATES[rng.choice(names)](left, right)
        needs = [_need(per_statement.get(statement, Counter()), labels, truth) for statement, truth in candidates]
        best = max(needs)
        statement, truth = rng.choice(sorted(c for c, need in zip(candidates, needs, strict=True) if need == best))
        per_statement.setdefault(statement, Counter())[truth] += 1
        labels[truth] += 1
        records.append(
            {
                "images": [left.path, right.path],
                "sentence": statement,
                "label": "True" if truth else "False",
                "identifier": f"{split}-{len(records)}-0",
            }
        )
    return records
