"""ImageNet fine-tuning and linear probe: an image -> the class name, with the top-k classes and their
logits (``tasks.imagenet``). The checkpoint must store its class names (``options.classes``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from xfm_pipeline.predict.base import Loaded, TaskAdapter, eval_loader, image_store
from xfm_pipeline.predict.schema import ID_FIELD, ID_OUTPUT, IMAGE_PLACEHOLDER, Field, TaskSchema


class ImagenetAdapter(TaskAdapter):
    """Records ``{"image"}`` through :class:`~xfm_pipeline.tasks.imagenet.ImagenetDataset` (eval transform)."""

    @property
    def schema(self) -> TaskSchema:
        from xfm_pipeline.tasks.imagenet import TOPK

        return TaskSchema(
            task=self.task.name,
            summary="name the class of an image (the checkpoint's class list)",
            inputs=(Field("image", "image", "the image"), ID_FIELD),
            outputs=(
                Field("label", "text", "the predicted class name"),
                Field("topk", "integer_list", f"the {TOPK} best class indices (fewer with fewer classes), best first"),
                Field("topk_labels", "text_list", "their class names"),
                Field("topk_scores", "number_list", "their logits"),
                ID_OUTPUT,
            ),
            example={"image": IMAGE_PLACEHOLDER},
        )

    def check_checkpoint(self, params, source: str) -> None:
        from xfm_pipeline.model.checkpoint import CheckpointError

        if not params.options.get("classes"):
            raise CheckpointError(
                f"{source}: this {self.task.name} checkpoint stores no class names (options.classes); it was written before "
                "task checkpoints kept them. Re-run its pipeline (`kedro run --pipeline finetune_imagenet` or "
                "`linear_probe_imagenet`) to write one that does."
            )

    def run(self, loaded: Loaded, records: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
        from xfm_pipeline.data.transforms import imagenet_eval_transform
        from xfm_pipeline.tasks.imagenet import ImagenetDataset

        task = loaded.task
        params = replace(loaded.params, options={**loaded.params.options, "image_root": None})  # images come from memory
        options = task.options(params)
        classes = list(options.classes)
        store, keys = image_store([r["image"] for r in records])
        rows = [{"image": key, "label": classes[0], "split": "val"} for key in keys]  # the label is not read by predict's output below
        transform = imagenet_eval_transform(params.image_size, options.crop_pct)  # the task's evaluation transform
        dataset = ImagenetDataset(rows, classes, store, transform, False, f"predict/{task.name}")
        out = task.predict(loaded.model, eval_loader(dataset, task.collate("test", train=False), batch_size), params)
        return [
            {"label": classes[p["topk"][0]], "topk": p["topk"], "topk_labels": [classes[i] for i in p["topk"]], "topk_scores": p["topk_scores"]} for p in out
        ]
