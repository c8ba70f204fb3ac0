"""NLVR2: a pair of images and a statement -> true or false, with the probability of true (``tasks.nlvr``)."""

from __future__ import annotations

from typing import Any

from xfm_pipeline.predict.base import Loaded, TaskAdapter, eval_loader, image_store
from xfm_pipeline.predict.schema import ID_FIELD, ID_OUTPUT, IMAGE_PLACEHOLDER, Field, TaskSchema


class NLVRAdapter(TaskAdapter):
    """Records ``{"images": [left, right], "sentence"}`` through :class:`~xfm_pipeline.tasks.nlvr.NLVRDataset`."""

    @property
    def schema(self) -> TaskSchema:
        return TaskSchema(
            task=self.task.name,
            summary="say whether a statement is true of a pair of images",
            inputs=(
                Field("images", "image_list", "the left and the right image", length=2),
                Field("sentence", "text", "the statement about the two images"),
                ID_FIELD,
            ),
            outputs=(
                Field("prediction", "boolean", "the verdict: true when prob_true > 0.5"),
                Field("prob_true", "number", "the probability that the statement is true"),
                ID_OUTPUT,
            ),
            example={"images": [IMAGE_PLACEHOLDER, IMAGE_PLACEHOLDER], "sentence": "both images contain a red circle"},
        )

    def run(self, loaded: Loaded, records: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
        from xfm_pipeline.data.formats.nlvr import NLVRRecord
        from xfm_pipeline.tasks.nlvr import NLVRDataset

        task, params = loaded.task, loaded.params
        store, keys = image_store([image for r in records for image in r["images"]])
        pairs = [NLVRRecord(images=(keys[2 * i], keys[2 * i + 1]), sentence=r["sentence"], label=False) for i, r in enumerate(records)]
        dataset = NLVRDataset(pairs, store, loaded.tokenizer, params, task.options(params), train=False)
        rows = task.predict(loaded.model, eval_loader(dataset, task.collate("val", train=False), batch_size), params)
        by_index = {row["index"]: row for row in rows}
        return [{"prediction": by_index[i]["prediction"], "prob_true": by_index[i]["prob_true"]} for i in range(len(records))]
