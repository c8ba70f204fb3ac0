"""Captioning: an image -> a generated caption (``tasks.captioning``: its dataset and beam search)."""

from __future__ import annotations

from typing import Any

from xfm_pipeline.predict.base import Loaded, TaskAdapter, eval_loader, image_store
from xfm_pipeline.predict.schema import ID_FIELD, ID_OUTPUT, IMAGE_PLACEHOLDER, Field, TaskSchema


class CaptioningAdapter(TaskAdapter):
    """Records ``{"image"}`` through :class:`~xfm_pipeline.tasks.captioning.CaptioningDataset`."""

    @property
    def schema(self) -> TaskSchema:
        return TaskSchema(
            task=self.task.name,
            summary="describe an image in one caption (beam search, the checkpoint's settings)",
            inputs=(Field("image", "image", "the image"), ID_FIELD),
            outputs=(Field("caption", "text", "the generated caption, prompt removed (may be empty)"), ID_OUTPUT),
            example={"image": IMAGE_PLACEHOLDER},
        )

    def run(self, loaded: Loaded, records: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
        from xfm_pipeline.data.formats.captioning import CaptionEvalRecord
        from xfm_pipeline.tasks.captioning import CaptioningDataset, collate_captioning

        task, params = loaded.task, loaded.params
        store, keys = image_store([r["image"] for r in records])
        images = [CaptionEvalRecord(image=key, image_id=i) for i, key in enumerate(keys)]
        dataset = CaptioningDataset(images, loaded.tokenizer, params, task.options(params), store, False, "predict/captioning")
        by_id = {row["image_id"]: row["caption"] for row in task.predict(loaded.model, eval_loader(dataset, collate_captioning, batch_size), params)}
        return [{"caption": by_id[i]} for i in range(len(records))]
