"""Language about scenes: object phrases, captions, region descriptions and referring expressions.

Everything is template-based but varied (several phrasings per fact, numbers as words, relations in
both directions), so captions are not a fixed function of the scene and retrieval/captioning have
several distinct references per image.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from xfm_pipeline.data.shapes_world.scenes import Scene, SceneObject, relation

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
RELATIONS = ("left of", "right of", "above", "below")
# How each relation is said in a sentence ("a red circle <is to the left of> a blue square").
RELATION_PHRASES = {
    "left of": ("to the left of", "left of", "on the left of"),
    "right of": ("to the right of", "right of", "on the right of"),
    "above": ("above", "over", "higher than"),
    "below": ("below", "under", "lower than"),
}
CONVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def plural(shape: str) -> str:
    """``circle`` -> ``circles``, ``cross`` -> ``crosses``."""
    return shape + ("es" if shape.endswith(("s", "x", "sh", "ch")) else "s")


def number_word(n: int) -> str:
    """0..10 as a word, larger numbers as digits."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def phrase(obj: SceneObject, size: bool = True, colour: bool = True) -> str:
    """``large red circle`` (attributes optional)."""
    words = ([obj.size] if size else []) + ([obj.colour] if colour else []) + [obj.shape]
    return " ".join(words)


def article(words: str) -> str:
    """``a``/``an`` + words."""
    return ("an " if words[0] in "aeiou" else "a ") + words


def join_list(items: Sequence[str]) -> str:
    """``x``, ``x and y``, ``x, y and z``."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def clear_relations(scene: Scene) -> list[tuple[SceneObject, str, SceneObject]]:
    """All (a, relation, b) facts that hold clearly (a != b), in a fixed order."""
    out = []
    for a in scene.objects:
        for b in scene.objects:
            if a is b:
                continue
            rel = relation(a, b, scene.size)
            out += [(a, name, b) for name in RELATIONS if rel[name] is True]
    return out


# ----------------------------------------------------------------------------------------------- captions


def _caption_list(scene: Scene, rng: random.Random) -> str:
    objs = list(scene.objects)
    rng.shuffle(objs)
    items = [article(phrase(o, size=rng.random() < 0.6)) for o in objs]
    lead = rng.choice(("", "there is ", "a picture of ", "an image with ", "we can see "))
    if lead == "there is " and len(items) > 1:
        lead = "there are "
    return f"{lead}{join_list(items)}"


def _caption_background(scene: Scene, rng: random.Random) -> str:
    n = len(scene.objects)
    o = rng.choice(scene.objects)
    bg = scene.background
    return rng.choice(
        (
            f"{number_word(n)} shapes on a {bg} background including {article(phrase(o))}",
            f"{article(phrase(o, size=False))} and {number_word(n - 1)} other shape{'s' if n != 2 else ''} on {bg}",
            f"{article(phrase(o))} among {number_word(n)} shapes on a {bg} background",
        )
    )


def _caption_relation(scene: Scene, rng: random.Random) -> str | None:
    facts = clear_relations(scene)
    if not facts:
        return None
    a, rel, b = rng.choice(facts)
    verb = rng.choice(("", "is ", "sits "))
    text = f"{article(phrase(a, size=rng.random() < 0.5))} {verb}{rng.choice(RELATION_PHRASES[rel])} {article(phrase(b, size=rng.random() < 0.5))}"
    if len(scene.objects) > 2 and rng.random() < 0.5:
        text += f" with {number_word(len(scene.objects) - 2)} more shape{'s' if len(scene.objects) > 3 else ''}"
    return text


def _caption_counts(scene: Scene, rng: random.Random) -> str:
    if rng.random() < 0.5:
        counts = Counter(o.shape for o in scene.objects)
        parts = [f"{number_word(c)} {plural(s) if c > 1 else s}" for s, c in sorted(counts.items())]
    else:
        counts = Counter(o.colour for o in scene.objects)
        parts = [f"{number_word(c)} {col} shape{'s' if c > 1 else ''}" for col, c in sorted(counts.items())]
    rng.shuffle(parts)
    return join_list(parts)


def _caption_sizes(scene: Scene, rng: random.Random) -> str | None:
    large = [o for o in scene.objects if o.size == "large"]
    small = [o for o in scene.objects if o.size == "small"]
    if not large or not small:
        return None
    big, little = rng.choice(large), rng.choice(small)
    return rng.choice(
        (
            f"a big {phrase(big, size=False)} and a small {phrase(little, size=False)}",
            f"{article(phrase(little, size=False))} smaller than {article(phrase(big, size=False))}",
            f"the {phrase(big, size=False)} is larger than the {phrase(little, size=False)}",
        )
    )


_CAPTIONERS = (_caption_list, _caption_background, _caption_relation, _caption_counts, _caption_sizes)


def captions(scene: Scene, rng: random.Random, k: int) -> list[str]:
    """``k`` distinct captions of ``scene`` (fewer only if the scene cannot be described k ways)."""
    out: list[str] = []
    seen: set[tuple[str, ...]] = set()  # word multisets: a reordered list is not a new caption
    for _ in range(40 * k):
        if len(out) == k:
            break
        text = rng.choice(_CAPTIONERS)(scene, rng)
        key = tuple(sorted(text.replace(",", " ").split())) if text else ()
        if text and key not in seen:
            seen.add(key)
            out.append(text)
    return out


# -------------------------------------------------------------------------------------- regions and refs


def region_caption(obj: SceneObject, scene: Scene, rng: random.Random) -> tuple[str, str]:
    """(caption, attributes) of one object: ``("red circle", "large")`` or a relational caption."""
    others = [o for o in scene.objects if o is not obj]
    if others and rng.random() < 0.3:
        other = rng.choice(others)
        rel = relation(obj, other, scene.size)
        names = [n for n in RELATIONS if rel[n]]
        if names:
            return f"{phrase(obj, size=False)} {rng.choice(RELATION_PHRASES[rng.choice(names)])} the {phrase(other, size=False)}", obj.size
    return phrase(obj, size=False), obj.size


def unique_attribute_expression(obj: SceneObject, scene: Scene) -> str | None:
    """The shortest of ``the circle`` / ``the red circle`` / ``the large red circle`` that picks out only ``obj``."""
    for size, colour in ((False, False), (False, True), (True, False), (True, True)):
        mine = phrase(obj, size=size, colour=colour)
        if sum(phrase(o, size=size, colour=colour) == mine for o in scene.objects) == 1:
            return f"the {mine}"
    return None


def relation_expressions(obj: SceneObject, scene: Scene) -> list[str]:
    """Expressions ``the <shape> <relation> the <anchor>`` that pick out ``obj`` only by the relation.

    The anchor is described uniquely; among objects with ``obj``'s shape (and colour, if shape alone is
    not enough) exactly one stands in the relation to the anchor.
    """
    out = []
    for anchor in scene.objects:
        if anchor is obj:
            continue
        anchor_text = unique_attribute_expression(anchor, scene)
        if anchor_text is None:
            continue
        rel = relation(obj, anchor, scene.size)
        for name in RELATIONS:
            if rel[name] is not True:
                continue
            for colour in (False, True):
                mine = phrase(obj, size=False, colour=colour)
                rivals = [o for o in scene.objects if o is not anchor and phrase(o, size=False, colour=colour) == mine]
                if sum(relation(o, anchor, scene.size)[name] is True for o in rivals) == 1 and len(rivals) > 1:
                    out.append(f"the {mine} {RELATION_PHRASES[name][0]} {anchor_text}")
                    break
    return out


def describe_for_text(objects: Sequence[SceneObject], rng: random.Random, sizes: bool = True) -> str:
    """A sentence listing ``objects`` (used by the text-only corpus and GLUE premises)."""
    items = [article(phrase(o, size=sizes and rng.random() < 0.7)) for o in objects]
    return join_list(items)
