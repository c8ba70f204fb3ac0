"""Visual grounding, RefCOCO+ with boxes (docs/xfm.md#grounding).

Data: one data key ``refs`` = the grounding JSON, ``[{"image", "text", "bbox": [x, y, w, h], "ref_id",
"split"}]`` with ``split`` in train/val/testA/testB; ``dataset(split)`` keeps that split's records.

Model: expression -> text encoder -> fusion with the full image -> fusion CLS -> a box head, chosen by
``options.box_head``:

* ``"cls"`` (X-FM): the pretrained ``bbox_head`` -> sigmoid = normalised (cx, cy, w, h)
  (``XFM.predict_bbox``).
* ``"pointer"`` (``XFM.bbox_pointer``, :class:`~xfm_pipeline.model.box_heads.PatchPointer`): the fusion
  CLS scores every image patch token; the box centre is the score-weighted mean of the patch centres
  plus an offset of at most one patch, and an MLP on the CLS and the score-weighted patch token gives
  the offset and the size. Its cross-entropy ``loss_pointer`` (the patch holding the gold centre) is
  added to the loss. Regressing a small box from the CLS alone learns slowly: on the shapes world
  (boxes 15-30 px of 96) the ``cls`` head stays at the mean box after 600 steps on frozen encoders,
  while a pointer finds the centre patch half the time after 600 steps. The region-data box stage
  (``pretrain_bbox``, X-FM's bbox domain pretraining before grounding) trains this head and the
  fusion encoder with it. The paper's RefCOCO+ numbers come from the ``cls`` head.

Neither head adds parameters: both are part of the pretrained model.

Loss: ``loss_bbox`` (L1) + ``loss_giou`` (1 - GIoU), ``objectives.bbox_loss`` (+ ``loss_pointer``).

Training sample (``augment: true``, X-FM's ``grounding_dataset``): a random crop that contains the
box, a horizontal flip with probability 0.5 unless the expression says left/right (the box is
mirrored with the image), resize to S x S, colour-only RandAugment. ``augment: false`` and evaluation:
plain resize of the whole image.

Predictions: ``{"index", "ref_id", "image", "text", "pred_bbox": [x, y, w, h]}`` in pixels of the
original image (the normalised box scaled by the image's width/height, as the official evaluation
does). Metric ``grounding_acc``: percent of predictions with IoU >= 0.5 against the gold box, with
the official pixel-inclusive IoU (``metrics.grounding``); the job reports it per split
(``val/grounding_acc``, ``testA/grounding_acc``, ``testB/grounding_acc``); selection on val.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xfm_pipeline.data.text import trim_padding
from xfm_pipeline.data.transforms import seeded_transform
from xfm_pipeline.tasks.base import Task, TaskModel, TaskParams
from xfm_pipeline.tasks.common import (
    ImageMemo,
    image_size,
    mentions_left_right,
    model_device,
    to_device,
    tokenize_fixed,
)
from xfm_pipeline.tasks.spec import Examples, PaperResult, TaskPipeline, TaskSpec
from xfm_pipeline.training.distributed_eval import full_dataset


@dataclass
class GroundingOptions:
    """Task-specific settings of ``finetune_grounding`` (``options``)."""

    max_words: int = 30  # pre_caption truncation (words)
    augment: bool = True  # crop containing the box + careful hflip + colour RandAugment; False = plain resize
    hflip_prob: float = 0.5  # flip probability when the expression does not mention left/right
    box_head: str = "cls"  # "cls": X-FM's bbox_head on the fusion CLS | "pointer": XFM.bbox_pointer

    def __post_init__(self):
        from xfm_pipeline.model.box_heads import BOX_HEADS  # the model package imports transformers: not at import time

        if self.box_head not in BOX_HEADS:
            raise ValueError(f"finetune_grounding.options.box_head must be one of {BOX_HEADS}, got {self.box_head!r}")
        if isinstance(self.max_words, bool) or not isinstance(self.max_words, int) or self.max_words < 1:
            raise ValueError(f"finetune_grounding.options.max_words must be an int >= 1, got {self.max_words!r}")
        if not isinstance(self.augment, bool):
            raise ValueError(f"finetune_grounding.options.augment must be a bool, got {self.augment!r}")
        if not 0.0 <= float(self.hflip_prob) <= 1.0:
            raise ValueError(f"finetune_grounding.options.hflip_prob must be in [0, 1], got {self.hflip_prob!r}")


def crop_containing(bbox, width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
    """A random crop ``(x0, y0, x1, y1)`` of a ``width`` x ``height`` image that contains ``bbox`` (x, y, w, h)."""
    x, y, w, h = bbox
    x0 = math.floor(rng.uniform(0, max(0.0, x)))
    y0 = math.floor(rng.uniform(0, max(0.0, y)))
    x1 = max(x0 + 1, math.ceil(rng.uniform(min(width, x + w), width)))
    y1 = max(y0 + 1, math.ceil(rng.uniform(min(height, y + h), height)))
    return x0, y0, x1, y1


def box_to_target(bbox, crop: tuple[int, int, int, int], flip: bool) -> tuple[float, float, float, float]:
    """Pixel (x, y, w, h) -> normalised (cx, cy, w, h) inside ``crop`` (mirrored when ``flip``), clamped to [0, 1]."""
    x, y, w, h = bbox
    x0, y0, x1, y1 = crop
    cw, ch = x1 - x0, y1 - y0
    bx0, by0 = max(x, x0), max(y, y0)
    bx1, by1 = min(x + w, x1), min(y + h, y1)
    cx, cy = ((bx0 + bx1) / 2 - x0) / cw, ((by0 + by1) / 2 - y0) / ch
    nw, nh = (bx1 - bx0) / cw, (by1 - by0) / ch
    if flip:
        cx = 1.0 - cx
    return tuple(min(1.0, max(0.0, v)) for v in (cx, cy, nw, nh))


class GroundingDataset(torch.utils.data.Dataset):
    """Referring expressions of one split; training items are ``(index, sample_seed)``, evaluation items indices."""

    def __init__(self, records, image_root, tokenizer, params: TaskParams, options: GroundingOptions, train: bool):
        from xfm_pipeline.data.text import pre_caption
        from xfm_pipeline.data.transforms import eval_transform, randaugment_color_transform

        self.records, self.root, self.train, self.options = records, image_root, train, options
        self.size = image_size(params)
        self.augment = train and options.augment
        self.color = randaugment_color_transform() if self.augment else None
        self.resize = eval_transform(self.size)
        self.images = ImageMemo(0 if self.augment else params.image_memo_mb)  # unaugmented: (pixels, original size) per path
        self.texts = [pre_caption(r.text, options.max_words) for r in records]
        self.text_ids, self.text_atts = tokenize_fixed(tokenizer, self.texts, params.max_tokens)  # (n, L)

    def __len__(self) -> int:
        return len(self.records)

    def _resized(self, path: str, index: int) -> tuple[torch.Tensor, tuple[int, int]]:
        """The unaugmented (3, S, S) pixels of ``path`` and its original (width, height)."""
        from xfm_pipeline.data.images import load_image

        image = load_image(self.root, path, f"grounding record {index}")
        return self.resize(image), image.size

    def __getitem__(self, item) -> dict[str, Any]:
        from PIL import Image

        from xfm_pipeline.data.images import load_image

        index, seed = item if self.train else (item, 0)
        rng = random.Random(seed)
        record = self.records[index]
        if self.augment:
            image = load_image(self.root, record.image, f"grounding record {index}")
            width, height = image.size
            crop = crop_containing(record.bbox, width, height, rng)
            flip = not mentions_left_right(self.texts[index]) and rng.random() < self.options.hflip_prob
            image = image.crop(crop).resize((self.size, self.size), Image.BICUBIC)
            if flip:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
            pixels = seeded_transform(self.color, image, rng.getrandbits(62))
        else:
            pixels, (width, height) = self.images.get(record.image, lambda: self._resized(record.image, index))
            crop, flip = (0, 0, width, height), False
        out = {
            "images": pixels,  # (3, S, S)
            "text_ids": self.text_ids[index],  # (L,)
            "text_atts": self.text_atts[index],  # (L,)
            "target_bbox": torch.tensor(box_to_target(record.bbox, crop, flip), dtype=torch.float32),  # (4,)
            "size": torch.tensor([width, height], dtype=torch.float64),  # original image size
            "index": index,
        }
        if not self.augment:  # the image tensor is a function of the path: a frozen encoder's output may be cached
            out["image_key"] = record.image
        return out


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    ids, atts = trim_padding(torch.stack([x["text_ids"] for x in items]), torch.stack([x["text_atts"] for x in items]))
    batch: dict[str, Any] = {
        "images": torch.stack([x["images"] for x in items]),  # (B, 3, S, S)
        "text_ids": ids,  # (B, L)
        "text_atts": atts,  # (B, L)
        "target_bbox": torch.stack([x["target_bbox"] for x in items]),  # (B, 4)
        "size": torch.stack([x["size"] for x in items]),  # (B, 2) width, height
        "index": torch.tensor([x["index"] for x in items], dtype=torch.long),  # (B,)
    }
    if "image_key" in items[0]:
        batch["image_keys"] = [x["image_key"] for x in items]  # (B,)
    return batch


class GroundingModel(TaskModel):
    """X-FM with the box head of ``options.box_head`` (both heads belong to the pretrained model)."""

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Patch scores (B, N) (None for the ``cls`` head) and boxes (B, 4), normalised (cx, cy, w, h).
        Frozen encoders' outputs are cached per image key and expression (``encodings``)."""
        xfm = self.xfm
        image_embeds = self.encodings.images(xfm, batch["images"], batch.get("image_keys"))  # (B, 1+N, Dv)
        text_embeds = self.encodings.texts(xfm, batch["text_ids"], batch["text_atts"], use_cache=True)  # (B, L, Dt)
        fused = xfm.fuse(text_embeds, batch["text_atts"], image_embeds)  # (B, L, Dt), all-ones image mask
        return xfm.predict_box(fused, image_embeds, self.options["box_head"])


class GroundingTask(Task):
    """RefCOCO+-style box grounding with X-FM's bbox head."""

    name = "grounding"
    splits = ("train", "val", "testA", "testB")
    selection_metric = "grounding_acc"
    options_class = GroundingOptions

    def build_model(self, xfm: nn.Module, params: TaskParams, data: dict[str, Any]) -> TaskModel:
        from xfm_pipeline.config import to_dict

        return GroundingModel(xfm, self.name, to_dict(self.options(params)))

    def _records(self, split: str, data: dict[str, Any]):
        from xfm_pipeline.data.formats.grounding import parse_grounding

        if "refs" not in data:
            raise KeyError(f"grounding: data key 'refs' missing (data keys: {sorted(data)})")
        records = parse_grounding(data["refs"], "grounding/refs", split=split)
        if not records:
            raise ValueError(f"grounding: no records of split {split!r}")
        return records

    def dataset(self, split, data, tokenizer, params, image_root, train):
        options = self.options(params)
        return GroundingDataset(self._records(split, data), image_root, tokenizer, params, options, train)

    def collate(self, split, train):
        return _collate

    def loss(self, model: TaskModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        from xfm_pipeline.objectives.bbox import bbox_loss, pointer_loss

        scores, boxes = model(batch)
        loss_bbox, loss_giou = bbox_loss(boxes, batch["target_bbox"])
        losses = {"loss_bbox": loss_bbox, "loss_giou": loss_giou, "loss": loss_bbox + loss_giou}
        if scores is not None:
            losses["loss_pointer"] = pointer_loss(scores, batch["target_bbox"])
            losses["loss"] = losses["loss"] + losses["loss_pointer"]
        return losses

    @torch.no_grad()
    def predict(self, model: TaskModel, loader, params: TaskParams) -> list[dict[str, Any]]:
        from xfm_pipeline.metrics.grounding import cxcywh_norm_to_xywh

        device = model_device(model)
        records = full_dataset(loader.dataset).records  # batch indices are the split's (loader: the split or a shard)
        out = []
        for batch in loader:
            boxes = model(to_device(batch, device))[1].double().cpu().numpy()  # (B, 4)
            size = batch["size"].numpy()
            pixels = cxcywh_norm_to_xywh(boxes, size[:, 0], size[:, 1])  # (B, 4) x, y, w, h
            for index, box in zip(batch["index"].tolist(), pixels.tolist()):
                r = records[index]
                out.append({"index": index, "ref_id": r.ref_id, "image": r.image, "text": r.text, "pred_bbox": box})
        return out

    def evaluate(self, predictions: list[dict[str, Any]], split: str, data: dict[str, Any]) -> dict[str, float]:
        from xfm_pipeline.metrics.grounding import grounding_accuracy

        records = self._records(split, data)
        if sorted(p["index"] for p in predictions) != list(range(len(records))):
            raise ValueError(f"grounding {split}: predictions do not cover each of the {len(records)} records exactly once")
        by_index = {p["index"]: p["pred_bbox"] for p in predictions}
        pred = [by_index[i] for i in range(len(records))]
        return {"grounding_acc": 100.0 * grounding_accuracy(pred, [list(r.bbox) for r in records])}


TASK = GroundingTask()

SPEC = TaskSpec(
    TASK,
    pipelines=(
        TaskPipeline(
            "finetune_grounding",
            data={"refs": "grounding_json_validated"},
            init="pretrain_bbox_checkpoint",  # X-FM runs a box-only domain pretraining on region data first
            paper={
                "val/grounding_acc": PaperResult(84.8, 86.1, "RefCOCO+ val"),
                "testA/grounding_acc": PaperResult(89.7, 90.4, "RefCOCO+ testA"),
                "testB/grounding_acc": PaperResult(79.1, 79.8, "RefCOCO+ testB"),
            },
        ),
    ),
    examples=Examples("grounding_examples", ("refs",)),
)
