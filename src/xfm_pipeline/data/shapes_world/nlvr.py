"""NLVR2-style statements about image pairs, balanced True/False per statement template.

For each pair a template is drawn, then the label that template has produced less often so far, then
a statement of that template with that truth value: neither the template nor the wording predicts the
label, so the images must be compared.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from xfm_pipeline.data.shapes_world.language import number_word, plural
from xfm_pipeline.data.shapes_world.scenes import COLOURS, SHAPES, Scene

SIDES = ("left", "right")


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
        out.append((f"the {side} image contains exactly {number_word(len(scene.objects))} shapes", True))
        wrong = len(scene.objects) + (1 if len(scene.objects) < 4 else -1)
        out.append((f"the {side} image contains exactly {number_word(wrong)} shapes", False))
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


def statements_for_split(scenes: list[Scene], n_pairs: int, split: str, rng: random.Random) -> list[dict]:
    """``n_pairs`` NLVR2 records over random pairs of distinct ``scenes``, balanced True/False."""
    if len(scenes) < 2:
        raise ValueError(f"NLVR2 {split} needs at least two images, got {len(scenes)}")
    label_counts: dict[str, Counter] = {name: Counter() for name in TEMPLATES}
    records = []
    while len(records) < n_pairs:
        left, right = rng.sample(scenes, 2)
        names = list(TEMPLATES)
        rng.shuffle(names)
        for name in names:
            candidates = TEMPLATES[name](left, right)
            counts = label_counts[name]
            want = rng.choice((True, False)) if counts[True] == counts[False] else counts[True] < counts[False]
            pool = sorted({s for s, truth in candidates if truth == want})
            if not pool:
                continue
            counts[want] += 1
            records.append(
                {
                    "images": [left.path, right.path],
                    "sentence": rng.choice(pool),
                    "label": "True" if want else "False",
                    "identifier": f"{split}-{len(records)}-0",
                }
            )
            break
    return records
