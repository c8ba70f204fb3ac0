"""Raw input records checked against their task's schema, with every image decoded to RGB.

:func:`check_record` is driven by the :class:`~xfm_pipeline.predict.schema.TaskSchema` alone: the record is a
dict, has every required field and no unknown one, each value has its field's type, texts are not empty and
images decode. Errors are :class:`PredictionInputError`, whose message starts with ``record <index>:``.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfm_pipeline.predict.schema import Field, TaskSchema

if TYPE_CHECKING:
    from PIL import Image


class PredictionInputError(ValueError):
    """A record given to :meth:`Predictor.predict <xfm_pipeline.predict.Predictor.predict>` is unusable."""

    def __init__(self, index: int, problem: str):
        super().__init__(f"record {index}: {problem}")
        self.index = index  # position of the record in the list given to predict
        self.problem = problem  # what is wrong, without the record index


def open_image(value: Any) -> Image.Image:
    """An image given as a path, bytes, a ``PIL.Image`` or base64 text, as RGB (fully decoded).

    A ``str`` is a path when such a file exists, else base64 (optionally a ``data:image/...;base64,`` URI).

    Raises:
        ValueError: the value is none of these or does not decode (the message says why).
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, Path) or (isinstance(value, str) and _is_file(value)):
        try:
            with Image.open(value) as img:
                return img.convert("RGB")
        except FileNotFoundError as exc:
            raise ValueError(f"image file {str(value)!r} not found") from exc
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValueError(f"cannot decode image file {str(value)!r}: {exc}") from exc
    if isinstance(value, str):
        try:
            return open_image(_base64_bytes(value))
        except ValueError as exc:
            shown = value if len(value) <= 60 else value[:57] + "..."
            raise ValueError(f"{shown!r} is neither an existing image file nor base64 image data ({exc})") from exc
    if isinstance(value, (bytes, bytearray)):
        if not value:
            raise ValueError("empty image bytes")
        try:
            with Image.open(io.BytesIO(value)) as img:
                return img.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValueError(f"cannot decode image bytes ({len(value)} bytes): {exc}") from exc
    raise ValueError(f"an image must be a file path, bytes, a PIL image or base64 text, got {type(value).__name__}")


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).is_file()
    except (OSError, ValueError):  # a long base64 string is no valid path on some systems
        return False


def _base64_bytes(text: str) -> bytes:
    data = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from exc


def _check_value(f: Field, value: Any) -> Any:
    """``value`` checked against ``f`` (images decoded); raises ValueError naming the problem."""
    kind = f.type
    if kind == "image":
        return open_image(value)
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {type(value).__name__}")
        if not value.strip():
            raise ValueError("is empty")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {value!r}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, got {value!r}")
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if kind == "id":
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"must be a string or a number, got {type(value).__name__}")
        return value
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list, got {type(value).__name__}")
    if f.length is not None and len(value) != f.length:
        raise ValueError(f"must hold exactly {f.length} items, got {len(value)}")
    if not value:
        raise ValueError("is an empty list")
    item = Field(f.name, kind.removesuffix("_list"), f.description)
    out = []
    for i, v in enumerate(value):
        try:
            out.append(_check_value(item, v))
        except ValueError as exc:
            raise ValueError(f"item {i} {exc}") from exc
    return out


def check_record(record: Any, index: int, schema: TaskSchema) -> dict[str, Any]:
    """``record`` validated against ``schema``: a new dict with images decoded to RGB ``PIL.Image`` objects.

    Raises:
        PredictionInputError: not a dict, a required field missing, an unknown field, or a bad value.
    """
    if not isinstance(record, dict):
        raise PredictionInputError(index, f"must be a dict of fields, got {type(record).__name__}")
    known = {f.name: f for f in schema.inputs}
    expected = ", ".join(f.name + ("" if f.required else " (optional)") for f in schema.inputs)
    unknown = sorted(set(record) - set(known))
    if unknown:
        raise PredictionInputError(index, f"unexpected field(s) {unknown} for task {schema.task!r}, which takes: {expected}")
    missing = [f.name for f in schema.inputs if f.required and record.get(f.name) is None]
    if missing:
        raise PredictionInputError(index, f"missing field(s) {missing} for task {schema.task!r}, which takes: {expected}")
    out: dict[str, Any] = {}
    for name, value in record.items():
        if value is None:
            continue
        try:
            out[name] = _check_value(known[name], value)
        except ValueError as exc:
            raise PredictionInputError(index, f"field {name!r} {exc}") from exc
    return out
