"""The ``predict_<task>`` node: a JSON-lines file of queries (images in a folder) -> predictions + quarantine.

Every query line ends in exactly one of the two outputs: a prediction line ``{"line": n, **output}`` (the
task's output record, ``xfm_pipeline.predict.TASK_SCHEMAS``), or a quarantine line with the reason, in the
data-validation quarantine format ``{"dataset", "index", "location", "record", "reasons"}``. Nothing is
dropped silently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image", "image_list")  # schema field types whose values name files of the images folder


class _Bad(Exception):
    """One query is unusable (the message is the reason)."""


def image_fields(schema) -> dict[str, str]:
    """``{field name: type}`` of the schema's image fields."""
    return {f.name: f.type for f in schema.inputs if f.type in IMAGE_TYPES}


def _open(name: Any, images: dict[str, Callable[[], Any]], opened: dict[str, Any]) -> Any:
    """The image ``name`` of the images folder (partition id = path relative to the folder), opened once."""
    if not isinstance(name, str):
        raise _Bad(f"an image must be a path inside the images folder, got {type(name).__name__}")
    if name not in opened:
        if name not in images:
            raise _Bad(f"image {name!r} is not in the images folder")
        try:
            opened[name] = images[name]()
        except Exception as exc:  # noqa: BLE001 - any reader error quarantines the query, with its reason
            raise _Bad(f"cannot read image {name!r}: {exc}") from exc
    return opened[name]


def _with_images(record: dict[str, Any], fields: dict[str, str], images: dict, opened: dict) -> dict[str, Any]:
    """``record`` with its image paths replaced by the opened images (other fields as they are)."""
    out = dict(record)
    for name, kind in fields.items():
        value = record.get(name)
        if value is None:
            continue
        if kind == "image":
            out[name] = _open(value, images, opened)
        elif isinstance(value, list):
            out[name] = [_open(v, images, opened) for v in value]
    return out


def predict_queries(queries: str, settings: dict[str, Any], images: dict[str, Callable[[], Any]] | None = None, *, task: str) -> tuple[str, str]:
    """Run the task checkpoint of ``settings`` on every query line of ``queries``.

    Args:
        queries: the JSON-lines text; one query record per non-blank line, image fields holding paths
            relative to the images folder.
        settings: ``params:predict`` (:class:`~xfm_pipeline.pipelines.predict.settings.PredictSettings`).
        images: the images folder as partitions ``{relative path: loader}`` (tasks without images: None).

    Returns:
        (predictions JSON lines, quarantine JSON lines)

    Raises:
        ConfigError: a bad ``predict`` parameter block.
        CheckpointError: the checkpoint holds another task, or lacks what inference needs.
    """
    from xfm_pipeline.pipelines.predict.settings import PredictSettings, default_checkpoint, read_settings
    from xfm_pipeline.predict import PredictionInputError, load_predictor
    from xfm_pipeline.tasks.registry import get_spec

    config = read_settings(PredictSettings, settings, "predict")
    checkpoint = config.checkpoint or default_checkpoint(get_spec(task).pipelines[0].name)
    predictor = load_predictor(checkpoint, device=config.device, task=task)
    fields = image_fields(predictor.schema)
    source = f"predict_{task}_queries"
    valid: list[tuple[int, dict[str, Any]]] = []  # (line number, record with images opened)
    quarantined: list[str] = []
    opened: dict[str, Any] = {}

    def quarantine(number: int, raw: Any, reason: str) -> None:
        entry = {"dataset": source, "index": number - 1, "location": f"line {number}", "record": raw, "reasons": [reason]}
        quarantined.append(json.dumps(entry, ensure_ascii=False))

    for number, line in enumerate(queries.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            quarantine(number, line, f"not a JSON record: {exc}")
            continue
        try:
            if not isinstance(raw, dict):
                raise _Bad(f"a query must be a JSON object, got {type(raw).__name__}")
            record = _with_images(raw, fields, images or {}, opened)
            predictor.check(record, number)
        except _Bad as exc:
            quarantine(number, raw, str(exc))
            continue
        except PredictionInputError as exc:
            quarantine(number, raw, exc.problem)
            continue
        valid.append((number, record))
    outputs = predictor.predict([record for _, record in valid], batch_size=config.batch_size)
    lines = [json.dumps({"line": number, **output}, ensure_ascii=False) for (number, _), output in zip(valid, outputs, strict=True)]
    log.info("predict_%s: %d predictions with %s; %d queries quarantined", task, len(lines), checkpoint, len(quarantined))
    if quarantined:
        log.warning("predict_%s: %d of %d queries quarantined (reasons in predict_%s_quarantine)", task, len(quarantined), len(quarantined) + len(lines), task)
    return "".join(line + "\n" for line in lines), "".join(line + "\n" for line in quarantined)
