"""PIL drawing primitives for the example pictures: safe image opening, boxes, text panels, tiling.

Every function returns a new RGB ``PIL.Image``; nothing here reads a file except :func:`open_image`,
which resolves the annotation path with :func:`xfm_pipeline.data.paths.resolve_under_root` so a path
from an annotation or prediction file never escapes the declared image root.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from xfm_pipeline.data.paths import UnsafePathError, resolve_under_root

if TYPE_CHECKING:
    from PIL import Image, ImageFont

# Box and frame colours lie outside the shapes-world palette (red, green, blue, yellow, purple, grey).
PRED_COLOR = (255, 0, 200)  # predicted boxes: magenta
TRUE_COLOR = (0, 200, 220)  # true boxes, the true retrieval image: cyan
GOOD_COLOR = (20, 140, 50)  # text of a correct prediction: green
BAD_COLOR = (210, 30, 30)  # text of a wrong prediction: red
TEXT_COLOR = (20, 20, 20)
MUTED_COLOR = (110, 110, 110)
BACKGROUND = (255, 255, 255)
PLACEHOLDER = (200, 200, 200)

DISPLAY_SIZE = 224  # images are shown at this width/height (the demo images are 96 x 96)
FONT_SIZE = 13
LINE_SPACING = 4
PAD = 6


@lru_cache(maxsize=4)
def font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font at ``size`` px (the bitmap default when FreeType is missing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):  # Pillow without FreeType
        return ImageFont.load_default()


def open_image(root: str | Path, relative: str) -> Image.Image:
    """Open ``relative`` (an ``image`` field) under ``root`` as RGB.

    Raises:
        UnsafePathError: the path is absolute, contains ``..`` or resolves outside ``root``.
        FileNotFoundError: no file there.
        OSError: the file is not a readable image.
    """
    from PIL import Image

    path = resolve_under_root(root, relative)
    if not path.is_file():
        raise FileNotFoundError(f"image {relative!r} not found at {path}")
    with Image.open(path) as img:
        return img.convert("RGB")


def open_or_placeholder(root: str | Path, relative: str, size: int = DISPLAY_SIZE) -> tuple[Image.Image, str | None]:
    """:func:`open_image`, or a grey ``size`` square and the reason when it cannot be shown."""
    try:
        return open_image(root, relative), None
    except (UnsafePathError, OSError) as exc:  # FileNotFoundError is an OSError
        return placeholder(size, size, str(exc)), str(exc)


def placeholder(width: int, height: int, reason: str) -> Image.Image:
    """A grey rectangle with ``reason`` written on it (a missing or refused image, never left out silently)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), PLACEHOLDER)
    draw = ImageDraw.Draw(img)
    y = PAD
    for line in wrap(reason, width - 2 * PAD, font(11)):
        draw.text((PAD, y), line, fill=TEXT_COLOR, font=font(11))
        y += 11 + 2
    return img


def fit(image: Image.Image, size: int = DISPLAY_SIZE) -> tuple[Image.Image, float, float]:
    """``image`` resized to ``size`` x ``size`` and the (x, y) scale factors applied to its pixels."""
    from PIL import Image

    sx, sy = size / image.width, size / image.height
    return image.resize((size, size), Image.Resampling.BICUBIC), sx, sy


def draw_box(image: Image.Image, box_xywh, color: tuple[int, int, int], scale: tuple[float, float] = (1.0, 1.0), width: int = 3) -> Image.Image:
    """A copy of ``image`` with the ``[x, y, w, h]`` box (original pixels, times ``scale``) outlined.

    The outline lies inside the box: its outer edge is the box edge, ``width`` pixels thick, clipped
    to the image.
    """
    from PIL import ImageDraw

    out = image.copy()
    x, y, w, h = (float(v) for v in box_xywh)
    sx, sy = scale
    x0, y0 = round(x * sx), round(y * sy)
    x1, y1 = round((x + w) * sx) - 1, round((y + h) * sy) - 1
    x0, y0 = max(0, min(x0, out.width - 1)), max(0, min(y0, out.height - 1))
    x1, y1 = max(x0, min(x1, out.width - 1)), max(y0, min(y1, out.height - 1))
    ImageDraw.Draw(out).rectangle((x0, y0, x1, y1), outline=color, width=width)
    return out


def wrap(text: str, width: int, fnt=None) -> list[str]:
    """``text`` split into lines no wider than ``width`` pixels (a longer single word gets its own line)."""
    fnt = fnt or font()
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = word if not line else f"{line} {word}"
            if line and fnt.getlength(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def text_panel(width: int, lines: list[tuple[str, tuple[int, int, int]]], size: int = FONT_SIZE) -> Image.Image:
    """A white panel ``width`` wide holding each ``(text, colour)``, wrapped to the width."""
    from PIL import Image, ImageDraw

    fnt = font(size)
    wrapped = [(part, color) for text, color in lines for part in wrap(text, width - 2 * PAD, fnt)]
    height = 2 * PAD + len(wrapped) * (size + LINE_SPACING)
    panel = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(panel)
    y = PAD
    for text, color in wrapped:
        draw.text((PAD, y), text, fill=color, font=fnt)
        y += size + LINE_SPACING
    return panel


def stack(images: list[Image.Image], vertical: bool = True, gap: int = 0) -> Image.Image:
    """``images`` one under the other (or side by side), left/top-aligned on white, ``gap`` px apart."""
    from PIL import Image

    if vertical:
        size = (max(i.width for i in images), sum(i.height for i in images) + gap * (len(images) - 1))
    else:
        size = (sum(i.width for i in images) + gap * (len(images) - 1), max(i.height for i in images))
    out = Image.new("RGB", size, BACKGROUND)
    offset = 0
    for img in images:
        out.paste(img, (0, offset) if vertical else (offset, 0))
        offset += (img.height if vertical else img.width) + gap
    return out


def frame(image: Image.Image, color: tuple[int, int, int], width: int = 4) -> Image.Image:
    """``image`` with a ``width``-pixel border of ``color`` around it (the size grows by 2 * width)."""
    from PIL import Image

    out = Image.new("RGB", (image.width + 2 * width, image.height + 2 * width), color)
    out.paste(image, (width, width))
    return out


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
