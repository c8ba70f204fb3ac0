"""Grounding: an image and a referring expression -> the box of the object it names (``tasks.grounding``)."""

from __future__ import annotations

from typing import Any

from xfm_pipeline.predict.base import Loaded, TaskAdapter, eval_loader, image_store
from xfm_pipeline.predict.schema import ID_FIELD, ID_OUTPUT, IMAGE_PLACEHOLDER, Field, TaskSchema

_NO_BOX = (0.0, 0.0, 1.0, 1.0)  # the dataset wants a gold box; evaluation never reads it


class GroundingAdapter(TaskAdapter):
    """Records ``{"image", "text"}`` through :class:`~xfm_pipeline.tasks.grounding.GroundingDataset`."""

    @property
    def schema(self) -> TaskSchema:
        return TaskSchema(
            task=self.task.name,
            summary="find the box of the object a referring expression names",
            inputs=(Field("image", "image", "the image"), Field("text", "text", "the referring expression"), ID_FIELD),
            outputs=(
                Field("bbox", "number_list", "[x, y, w, h] in pixels of the input image (top-left corner, size)", length=4),
                Field("bbox_normalized", "number_list", "the same box as fractions of the image width and height", length=4),
                Field("image_size", "integer_list", "[width, height] of the input image in pixels", length=2),
                ID_OUTPUT,
            ),
            example={"image": IMAGE_PLACEHOLDER, "text": "the large red circle"},
        )

    def run(self, loaded: Loaded, records: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
        from xfm_pipeline.data.formats.grounding import GroundingRecord
        from xfm_pipeline.tasks.grounding import GroundingDataset

        task, params = loaded.task, loaded.params
        store, keys = image_store([r["image"] for r in records])
        refs = [GroundingRecord(image=key, text=r["text"], bbox=_NO_BOX, ref_id=i, split="val") for i, (key, r) in enumerate(zip(keys, records))]
        dataset = GroundingDataset(refs, store, loaded.tokenizer, params, task.options(params), train=False)
        rows = task.predict(loaded.model, eval_loader(dataset, task.collate("val", train=False), batch_size), params)
        by_index = {row["index"]: row["pred_bbox"] for row in rows}
        out = []
        for i, record in enumerate(records):
            width, height = record["image"].size
            x, y, w, h = by_index[i]
            out.append({"bbox": [x, y, w, h], "bbox_normalized": [x / width, y / height, w / width, h / height], "image_size": [width, height]})
        return out
