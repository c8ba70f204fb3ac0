"""A task's record schema (``xfm_pipeline.predict.TaskSchema``) as an MLflow model signature and input example.

Served records are JSON, so images travel as base64 text and every column has one JSON-level type:

============  ==================
field type    MLflow column type
============  ==================
image, text   string
id            string (a served record's ``id`` must be text)
integer       long
number        double
boolean       boolean
``*_list``    array of the item's column type
============  ==================
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models import ModelSignature

    from xfm_pipeline.predict import Field, TaskSchema

COLUMN_TYPES = {"image": "string", "text": "string", "id": "string", "integer": "long", "number": "double", "boolean": "boolean"}
EXAMPLE_IMAGE_SIZE = 64  # pixels (square) of the input example's image; the model resizes every image anyway


def column_type(field_type: str):
    """The MLflow column type of a predictor field type (``"text_list"`` -> ``Array(string)``).

    Raises:
        KeyError: a field type with no column type (a new type in ``predict.schema.FIELD_TYPES``).
    """
    from mlflow.types import DataType
    from mlflow.types.schema import Array

    item = field_type.removesuffix("_list")
    if item not in COLUMN_TYPES:
        raise KeyError(f"predictor field type {field_type!r} has no MLflow column type; known: {sorted(COLUMN_TYPES)} and their *_list")
    kind = DataType[COLUMN_TYPES[item]]
    return Array(kind) if field_type.endswith("_list") else kind


def _columns(fields: tuple[Field, ...]):
    from mlflow.types import ColSpec, Schema

    return Schema([ColSpec(column_type(f.type), f.name, required=f.required) for f in fields])


def model_signature(schema: TaskSchema) -> ModelSignature:
    """Input columns = the task's input fields (optional fields not required), output columns = its output fields."""
    from mlflow.models import ModelSignature

    return ModelSignature(inputs=_columns(schema.inputs), outputs=_columns(schema.outputs))


def example_image_base64(size: int = EXAMPLE_IMAGE_SIZE) -> str:
    """A small grey PNG as base64 text (the input example's image)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (128, 128, 128)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def input_example(schema: TaskSchema) -> pd.DataFrame:
    """The task's example record (its images a small base64 PNG) as a one-row DataFrame."""
    import pandas as pd

    return pd.DataFrame([schema.example_record(example_image_base64())])
