"""Image loading for every reader: a path under the dataset's image root, or base64 ``binary`` bytes.

Annotation paths are resolved with :func:`xfm_pipeline.data.paths.resolve_under_root`, so absolute paths
and ``..`` escapes are refused. Every image is returned as an RGB ``PIL.Image`` (fully decoded, file
closed). Errors name the file and, when given, the record they came from.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from xfm_pipeline.data.paths import resolve_under_root

if TYPE_CHECKING:
    from PIL import Image


class ImageLoadError(ValueError):
    """An image could not be found, read or decoded."""


def _where(where: str | None) -> str:
    return f" ({where})" if where else ""


def load_image(root: str | Path | Mapping[str, Image.Image], relative: str, where: str | None = None) -> Image.Image:
    """Open ``relative`` (an annotation ``image`` field) under ``root`` and return it as RGB.

    Args:
        root: the dataset's declared image root, or a mapping of already decoded RGB images by key
            (``xfm_pipeline.predict`` runs the tasks' datasets on images held in memory).
        relative: path relative to ``root``; absolute paths and ``..`` are rejected.
        where: optional description of the record (e.g. ``"vqa/train.json record 12"``) for errors.

    Raises:
        UnsafePathError: the path escapes ``root``.
        ImageLoadError: the file is missing or is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(root, Mapping):
        if relative not in root:
            raise ImageLoadError(f"image {relative!r} is not among the images held in memory{_where(where)}")
        return root[relative]
    path = resolve_under_root(root, relative)
    if not path.is_file():
        raise ImageLoadError(f"image {relative!r} not found at {path}{_where(where)}")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageLoadError(f"cannot decode image {path}{_where(where)}: {exc}") from exc


def decode_base64_image(binary: str | bytes, where: str | None = None) -> Image.Image:
    """Decode a base64-encoded image (the pretraining ``binary`` field) and return it as RGB.

    Raises:
        ImageLoadError: the text is not valid base64 or the bytes are not a readable image.
    """
    try:
        raw = base64.b64decode(binary, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ImageLoadError(f"invalid base64 image data{_where(where)}: {exc}") from exc
    return decode_image_bytes(raw, where)


def decode_image_bytes(data: bytes, where: str | None = None) -> Image.Image:
    """Decode an encoded image (JPEG, PNG, ... bytes, e.g. a shard sample's image member) as RGB.

    Raises:
        ImageLoadError: the bytes are empty or not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageLoadError(f"empty image data{_where(where)}")
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageLoadError(f"cannot decode image ({len(data)} bytes){_where(where)}: {exc}") from exc


def encode_base64_image(image: Image.Image, quality: int = 90) -> str:
    """JPEG-encode ``image`` (fixed quality, no metadata, so deterministic) and return base64 text."""
    return base64.b64encode(jpeg_bytes(image, quality)).decode("ascii")


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """The JPEG bytes of ``image`` at a fixed quality (the same settings as the raw-layer catalog)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def load_record_image(
    image: str | None,
    binary: str | None,
    root: str | Path | None,
    where: str | None = None,
) -> Image.Image:
    """Load the image of a record that has either an ``image`` path or a base64 ``binary``.

    Raises:
        ImageLoadError: neither or both are given, no root is known for a path, or loading fails.
    """
    if (image is None) == (binary is None):
        raise ImageLoadError(f"a record needs exactly one of 'image' and 'binary'{_where(where)}")
    if binary is not None:
        return decode_base64_image(binary, where)
    if root is None:
        raise ImageLoadError(f"image {image!r} is a path but no image root was given{_where(where)}")
    return load_image(root, image, where)
