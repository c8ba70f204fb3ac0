"""Drawing scenes with Pillow: 4x supersampled polygons on a plain or lightly textured background.

Rendering is a pure function of the scene (the texture noise comes from the scene's own seed), so the
same scene always gives the same pixels and, at a fixed JPEG quality, the same bytes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from xfm_pipeline.data.shapes_world.scenes import BACKGROUNDS, COLOURS, Scene, SceneObject

if TYPE_CHECKING:
    from PIL import Image

SUPERSAMPLE = 4


def _unit_polygon(shape: str) -> list[tuple[float, float]]:
    """Vertices of ``shape`` in the unit square [0, 1]^2 (fitted to the box by the caller)."""
    if shape == "square":
        return [(0, 0), (1, 0), (1, 1), (0, 1)]
    if shape == "triangle":
        return [(0.5, 0), (1, 1), (0, 1)]
    if shape == "diamond":
        return [(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)]
    if shape == "cross":
        a, b = 1 / 3, 2 / 3
        return [(a, 0), (b, 0), (b, a), (1, a), (1, b), (b, b), (b, 1), (a, 1), (a, b), (0, b), (0, a), (a, a)]
    if shape == "star":
        pts = []
        for k in range(10):
            r = 1.0 if k % 2 == 0 else 0.42
            t = -math.pi / 2 + k * math.pi / 5
            pts.append((r * math.cos(t), r * math.sin(t)))
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        return [((x - min(xs)) / (max(xs) - min(xs)), (y - min(ys)) / (max(ys) - min(ys))) for x, y in pts]
    raise ValueError(f"no polygon for shape {shape!r}")


def _fill(obj: SceneObject) -> tuple[int, int, int]:
    return tuple(min(255, max(0, c + t)) for c, t in zip(COLOURS[obj.colour], obj.tint, strict=True))  # type: ignore[return-value]


def _background(scene: Scene):
    import numpy as np

    s = scene.size
    base = np.empty((s, s, 3), dtype=np.int16)
    base[:] = BACKGROUNDS[scene.background]
    rng = np.random.default_rng(scene.texture_seed)
    if scene.texture == "noise":
        base += rng.integers(-9, 10, size=(s, s, 1), dtype=np.int16)
    elif scene.texture in ("stripes", "grid"):
        period = int(rng.integers(6, 13))
        phase = int(rng.integers(0, period))
        idx = np.arange(s)
        lines = ((idx + phase) % period) < max(1, period // 4)
        shade = int(rng.integers(8, 15))
        if scene.texture == "stripes":  # vertical or horizontal
            mask = np.broadcast_to(lines[None, :] if rng.random() < 0.5 else lines[:, None], (s, s))
        else:
            mask = lines[None, :] | lines[:, None]
        base -= (mask[..., None] * shade).astype(np.int16)
    return np.clip(base, 0, 255).astype(np.uint8)


def render_scene(scene: Scene) -> Image.Image:
    """Draw ``scene`` as an RGB image of ``scene.size`` x ``scene.size`` pixels."""
    from PIL import Image, ImageDraw

    s = scene.size
    k = SUPERSAMPLE
    layer = Image.new("RGBA", (s * k, s * k), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for obj in scene.objects:
        x, y, w, h = (v * k for v in obj.box)
        colour = (*_fill(obj), 255)
        if obj.shape == "circle":
            draw.ellipse((x, y, x + w - 1, y + h - 1), fill=colour)
        else:
            pts = [(x + u * (w - 1), y + v * (h - 1)) for u, v in _unit_polygon(obj.shape)]
            draw.polygon(pts, fill=colour)
    shapes = layer.resize((s, s), Image.Resampling.LANCZOS)
    image = Image.fromarray(_background(scene), mode="RGB")
    image.paste(shapes, (0, 0), shapes)
    return image
