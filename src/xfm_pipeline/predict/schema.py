"""The record formats of :meth:`Predictor.predict <xfm_pipeline.predict.Predictor.predict>`, per task.

Each registered task has one :class:`TaskSchema`: the fields of an input record and of the output record the
predictor returns for it. Field types (``FIELD_TYPES``) are JSON-level; suggested MLflow column types:

============  ====================================================================  =====================
type          Python value accepted on input                                        MLflow column
============  ====================================================================  =====================
image         file path (str/Path), raw bytes, ``PIL.Image``, base64 text (a       string (base64)
              ``data:image/...;base64,`` prefix is allowed)
image_list    list of ``image`` values                                              array of string
text          non-empty str                                                         string
text_list     non-empty list of non-empty str                                       array of string
integer       int (not bool)                                                        long
number        int or float                                                          double
boolean       bool                                                                  boolean
id            any JSON scalar (str, int, float, bool)                               string
integer_list  list of int                                                           array of long
number_list   list of float                                                         array of double
============  ====================================================================  =====================

Every input schema allows an optional ``id``, copied into the output record unchanged, so results can be
joined back to their queries. Unknown input fields are errors (they usually mean a record of another task).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FIELD_TYPES = ("image", "image_list", "text", "text_list", "integer", "number", "boolean", "id", "integer_list", "number_list")


@dataclass(frozen=True)
class Field:
    """One field of an input or output record."""

    name: str
    type: str  # one of FIELD_TYPES
    description: str
    required: bool = True  # inputs: the record must have it; outputs: every output record has it
    length: int | None = None  # lists: exact length (NLVR2's image pair: 2; boxes: 4); None = any

    def __post_init__(self):
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name!r}: unknown type {self.type!r}; expected one of {FIELD_TYPES}")


ID_FIELD = Field("id", "id", "optional identifier of the record, copied into its output", required=False)
ID_OUTPUT = Field("id", "id", "the input record's id, when it had one", required=False)


@dataclass(frozen=True)
class TaskSchema:
    """The input and output record formats of one registered task."""

    task: str  # registry key (tasks.registry.TASKS)
    summary: str  # one line: what the task predicts from what
    inputs: tuple[Field, ...]  # fields of an input record (ID_FIELD included)
    outputs: tuple[Field, ...]  # fields of an output record (id included when the input had one)
    example: dict[str, Any] = field(default_factory=dict)  # an input record; image fields hold IMAGE_PLACEHOLDER

    def input(self, name: str) -> Field:
        """The input field ``name``.

        Raises:
            KeyError: no such input field (the message lists them).
        """
        for f in self.inputs:
            if f.name == name:
                return f
        raise KeyError(f"task {self.task!r} has no input field {name!r}; fields: {[f.name for f in self.inputs]}")

    def example_record(self, image: Any) -> dict[str, Any]:
        """:attr:`example` with every image placeholder replaced by ``image`` (e.g. a base64 string)."""

        def fill(value: Any) -> Any:
            if value == IMAGE_PLACEHOLDER:
                return image
            return [fill(v) for v in value] if isinstance(value, list) else value

        return {key: fill(value) for key, value in self.example.items()}


IMAGE_PLACEHOLDER = "<image>"  # stands for an image in TaskSchema.example
