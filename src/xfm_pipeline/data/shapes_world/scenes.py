"""Scene sampling for the shapes world: a few coloured shapes on a light background.

A scene is pure data (no pixels): every dataset's language is derived from it, and
:mod:`~xfm_pipeline.data.shapes_world.render` draws it. All randomness comes from ``random.Random``
instances derived from the seed and a name (:func:`derive_rng`), so a seed fixes everything.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 90, 220),
    "yellow": (235, 195, 25),
    "purple": (150, 60, 200),
    "grey": (125, 125, 125),
}
SIZES = ("small", "large")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (246, 246, 246),
    "beige": (240, 230, 205),
    "light blue": (214, 230, 246),
    "light green": (222, 240, 214),
}
TEXTURES = ("noise", "stripes", "grid")  # light textures; "plain" otherwise
# Object side as a fraction of the image side (jittered by +-10%).
SIZE_FRACTION = {"small": 0.16, "large": 0.28}
# Centres closer than this fraction of the image side are "neither left nor right" (no question asked).
RELATION_MARGIN = 0.08
# Chance that a new object repeats the shape or the colour of one already placed (beyond chance).
SHARED_ATTRIBUTE_RATE = 0.3


def derive_rng(seed: int, *names: object) -> random.Random:
    """An independent, reproducible ``random.Random`` for ``(seed, *names)`` (SHA-256, not ``hash()``)."""
    key = "/".join([str(seed), *map(str, names)]).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


@dataclass(frozen=True)
class SceneObject:
    """One shape in a scene."""

    shape: str  # one of SHAPES
    colour: str  # one of COLOURS
    size: str  # small | large
    box: tuple[int, int, int, int]  # [x, y, w, h] in pixels of the rendered image
    tint: tuple[int, int, int]  # small per-object RGB offset, so colours are not exactly the palette's

    @property
    def centre(self) -> tuple[float, float]:
        """Box centre (x, y) in pixels."""
        x, y, w, h = self.box
        return (x + w / 2, y + h / 2)


@dataclass(frozen=True)
class Scene:
    """An image to be: background, texture and objects."""

    image_id: int  # unique over the whole world; also the file stem (zero-padded to 6 digits)
    split: str  # pretrain | train | val | test (or imagenet_train/imagenet_val)
    size: int  # image side in pixels
    background: str  # one of BACKGROUNDS
    texture: str  # plain | noise | stripes | grid
    texture_seed: int
    objects: tuple[SceneObject, ...]

    @property
    def key(self) -> str:
        """Partition key of the image: ``<split>/<image_id:06d>`` (``.jpg`` is added by the dataset)."""
        return f"{self.split}/{self.image_id:06d}"

    @property
    def path(self) -> str:
        """Path of the image relative to the image root."""
        return f"{self.key}.jpg"


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return not (ax + aw + gap <= bx or bx + bw + gap <= ax or ay + ah + gap <= by or by + bh + gap <= ay)


def sample_object(
    rng: random.Random,
    image_size: int,
    placed: list[SceneObject],
    shape: str | None = None,
    colour: str | None = None,
    size: str | None = None,
    tries: int = 200,
) -> SceneObject | None:
    """Place one object (attributes drawn unless given) without touching ``placed``; None if no room."""
    shape = shape or rng.choice(SHAPES)
    colour = colour or rng.choice(tuple(COLOURS))
    size = size or rng.choice(SIZES)
    side = max(6, round(SIZE_FRACTION[size] * image_size * rng.uniform(0.9, 1.1)))
    margin = max(1, image_size // 32)
    gap = max(2, image_size // 48)
    tint = tuple(rng.randint(-12, 12) for _ in range(3))
    for _ in range(tries):
        x = rng.randint(margin, image_size - margin - side)
        y = rng.randint(margin, image_size - margin - side)
        box = (x, y, side, side)
        if not any(_overlaps(box, o.box, gap) for o in placed):
            return SceneObject(shape=shape, colour=colour, size=size, box=box, tint=tint)  # type: ignore[arg-type]
    return None


def sample_scene(
    rng: random.Random,
    image_id: int,
    split: str,
    image_size: int,
    min_objects: int,
    max_objects: int,
    textured: float,
) -> Scene:
    """A random scene with ``min_objects..max_objects`` non-overlapping objects.

    Attributes are uniform, except that each object after the first repeats the shape or colour of an
    earlier one with probability ``SHARED_ATTRIBUTE_RATE`` (so counts above one and objects told apart
    only by size or position are common).
    """
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    n = rng.randint(min_objects, max_objects)
    objects: list[SceneObject] = []
    while len(objects) < n:
        shape = colour = None
        if objects and rng.random() < SHARED_ATTRIBUTE_RATE:  # repeated shapes/colours: counting, relations
            if rng.random() < 0.5:
                shape = rng.choice(objects).shape
            else:
                colour = rng.choice(objects).colour
        obj = sample_object(rng, image_size, objects, shape=shape, colour=colour)
        if obj is None:
            if len(objects) >= min_objects:
                break
            objects = []  # crowded: start again
            continue
        objects.append(obj)
    return _finish(rng, image_id, split, image_size, objects, textured)


def _finish(rng, image_id, split, image_size, objects, textured) -> Scene:
    texture = rng.choice(TEXTURES) if rng.random() < textured else "plain"
    return Scene(
        image_id=image_id,
        split=split,
        size=image_size,
        background=rng.choice(tuple(BACKGROUNDS)),
        texture=texture,
        texture_seed=rng.getrandbits(32),
        objects=tuple(objects),
    )


def sample_dominant_scene(
    rng: random.Random,
    image_id: int,
    split: str,
    image_size: int,
    shape: str,
    colour: str | None,
    max_distractors: int,
    textured: float,
) -> Scene:
    """A classification scene: one large object of ``shape`` (and ``colour`` if given) plus up to
    ``max_distractors`` small objects of other shapes (and other colours when the class has one)."""
    while True:
        main = sample_object(rng, image_size, [], shape=shape, colour=colour, size="large")
        if main is not None:
            break
    objects = [main]
    for _ in range(rng.randint(0, max_distractors)):
        other_shape = rng.choice([s for s in SHAPES if s != shape])
        other_colour = rng.choice([c for c in COLOURS if c != colour]) if colour else None
        obj = sample_object(rng, image_size, objects, shape=other_shape, colour=other_colour, size="small")
        if obj is not None:
            objects.append(obj)
    rng.shuffle(objects)
    return _finish(rng, image_id, split, image_size, objects, textured)


def sample_objects(rng: random.Random, n: int, image_size: int = 96) -> tuple[SceneObject, ...]:
    """``n`` placed objects without an image (for text-only data: GLUE, the text corpus)."""
    objects: list[SceneObject] = []
    while len(objects) < n:
        obj = sample_object(rng, image_size, objects)
        if obj is None:
            objects = []
            continue
        objects.append(obj)
    return tuple(objects)


def relation(a: SceneObject, b: SceneObject, image_size: int) -> dict[str, bool | None]:
    """Spatial relations of ``a`` to ``b``: True, False, or None when too close to call.

    Keys: ``left of``, ``right of``, ``above``, ``below`` (image coordinates, y grows downwards).
    """
    m = RELATION_MARGIN * image_size
    (ax, ay), (bx, by) = a.centre, b.centre

    def cmp(u: float, v: float) -> bool | None:
        if u + m < v:
            return True
        if u > v + m:
            return False
        return None

    left = cmp(ax, bx)
    above = cmp(ay, by)
    return {
        "left of": left,
        "right of": None if left is None else not left,
        "above": above,
        "below": None if above is None else not above,
    }
