"""NLVR2: is a statement true of a pair of images? (docs/xfm.md#nlvr2).

Records ``{"images": [left, right], "sentence": str, "label": "True"|"False" (or a bool)}``.

Model: both images go through the vision encoder in one call; the sentence is encoded once; the fusion
encoder runs twice, with the left image's tokens and with the right image's (one batched call over the
2B rows); the two fusion CLS states are concatenated (2D) and ``cls_head = build_mlp(2D, 2)`` (new,
lr x lr_mult) gives the logits. Loss: cross-entropy; class 1 = True.

Training augmentation (``augment: true``): X-FM's fine-tuning transform on each image, with the
horizontal flip left out when the sentence mentions left/right. ``augment: false`` = plain resize
(sensible for counting statements, where a crop can remove the counted object).

Predictions: ``{"index", "identifier", "prediction": bool, "prob_true"}`` per pair; metric
``nlvr_acc`` = accuracy in percent (selection metric on dev, reported as the ``val`` split).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xfm_pipeline.data.text import trim_padding
from xfm_pipeline.tasks.base import Task, TaskModel, TaskParams
from xfm_pipeline.tasks.common import (
    ImageMemo,
    image_size,
    mentions_left_right,
    model_device,
    to_device,
    tokenize_fixed,
)
from xfm_pipeline.tasks.spec import PaperResult, TaskPipeline, TaskSpec
from xfm_pipeline.training.distributed_eval import full_dataset


@dataclass
class NLVROptions:
    """Task-specific settings of ``finetune_nlvr`` (``options``)."""

    max_words: int = 30  # pre_caption truncation (words)
    augment: bool = True  # X-FM fine-tuning augmentation (crop, careful hflip, RandAugment); False = plain resize

    def __post_init__(self):
        if isinstance(self.max_words, bool) or not isinstance(self.max_words, int) or self.max_words < 1:
            raise ValueError(f"finetune_nlvr.options.max_words must be an int >= 1, got {self.max_words!r}")
        if not isinstance(self.augment, bool):
            raise ValueError(f"finetune_nlvr.options.augment must be a bool, got {self.augment!r}")


class NLVRModel(TaskModel):
    """X-FM + ``cls_head`` over the concatenated fusion CLS of the two images."""

    def __init__(self, xfm: nn.Module, options: dict[str, Any]):
        from xfm_pipeline.model.heads import build_mlp, init_weights

        super().__init__(xfm, "nlvr", options)
        width = xfm.text_encoder.config.hidden_size
        self.cls_head = build_mlp(2 * width, 2)
        init_weights(self.cls_head)

    def forward(self, images: torch.Tensor, text_ids: torch.Tensor, text_atts: torch.Tensor, image_keys: list[str] | None = None) -> torch.Tensor:
        """(B, 2, 3, S, S) image pairs, (B, L) text -> (B, 2) logits (index 1 = True). ``image_keys`` (2B,),
        in the order of ``images.flatten(0, 1)``, let a frozen vision encoder's outputs be cached; a frozen
        text encoder's are cached per statement."""
        b = images.shape[0]
        image_embeds = self.encodings.images(self.xfm, images.flatten(0, 1), image_keys)  # (2B, 1+N, Dv), rows l0 r0 l1 r1 ...
        image_embeds = image_embeds.view(b, 2, *image_embeds.shape[1:]).transpose(0, 1).flatten(0, 1)  # (2B,...) lefts then rights
        text_embeds = self.encodings.texts(self.xfm, text_ids, text_atts, use_cache=True)  # (B, L, Dt)
        fused = self.xfm.fuse(text_embeds.repeat(2, 1, 1), text_atts.repeat(2, 1), image_embeds)  # (2B, L, Dt)
        cls = torch.cat([fused[:b, 0], fused[b:, 0]], dim=1)  # (B, 2Dt)
        return self.cls_head(cls)


class NLVRDataset(torch.utils.data.Dataset):
    """Image pairs with a statement; training items are ``(index, sample_seed)``, evaluation items indices."""

    def __init__(self, records, image_root, tokenizer, params: TaskParams, options: NLVROptions, train: bool):
        from xfm_pipeline.data.text import pre_caption
        from xfm_pipeline.data.transforms import eval_transform, train_transform

        self.records, self.root, self.train = records, image_root, train
        size = image_size(params)
        self.augment = train and options.augment
        if self.augment:
            self.flip, self.no_flip = train_transform(size, hflip=True), train_transform(size, hflip=False)
        else:
            self.flip = self.no_flip = eval_transform(size)
        self.images = ImageMemo(0 if self.augment else params.image_memo_mb)
        self.sentences = [pre_caption(r.sentence, options.max_words) for r in records]
        self.text_ids, self.text_atts = tokenize_fixed(tokenizer, self.sentences, params.max_tokens)  # (n, L)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item) -> dict[str, Any]:

        index, seed = item if self.train else (item, 0)
        rng = random.Random(seed)
        record = self.records[index]
        transform = self.no_flip if mentions_left_right(self.sentences[index]) else self.flip
        seeds = [rng.getrandbits(62) for _ in record.images]  # drawn whether or not the memo holds the image
        images = [self.images.transformed(self.root, path, transform, seed, f"nlvr record {index}") for path, seed in zip(record.images, seeds, strict=True)]
        out = {
            "images": torch.stack(images),  # (2, 3, S, S) left, right
            "text_ids": self.text_ids[index],  # (L,)
            "text_atts": self.text_atts[index],  # (L,)
            "label": int(record.label),
            "index": index,
        }
        if not self.augment:  # each image tensor is a function of its path: a frozen encoder's output may be cached
            out["image_keys"] = list(record.images)
        return out


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    ids, atts = trim_padding(torch.stack([x["text_ids"] for x in items]), torch.stack([x["text_atts"] for x in items]))
    batch: dict[str, Any] = {
        "images": torch.stack([x["images"] for x in items]),  # (B, 2, 3, S, S)
        "text_ids": ids,  # (B, L)
        "text_atts": atts,  # (B, L)
        "label": torch.tensor([x["label"] for x in items], dtype=torch.long),  # (B,)
        "index": torch.tensor([x["index"] for x in items], dtype=torch.long),  # (B,)
    }
    if "image_keys" in items[0]:
        batch["image_keys"] = [key for x in items for key in x["image_keys"]]  # (2B,) l0 r0 l1 r1 ...
    return batch


class NLVRTask(Task):
    """NLVR2 with two fusion passes and a 2-way head on the concatenated CLS states."""

    name = "nlvr"
    splits = ("train", "val", "test")
    selection_metric = "nlvr_acc"
    options_class = NLVROptions
    new_param_prefixes = ("cls_head",)

    def build_model(self, xfm: nn.Module, params: TaskParams, data: dict[str, Any]) -> TaskModel:
        from xfm_pipeline.config import to_dict

        return NLVRModel(xfm, to_dict(self.options(params)))

    def _records(self, split: str, data: dict[str, Any]):
        from xfm_pipeline.data.formats.nlvr import parse_nlvr

        if split not in data:
            raise KeyError(f"nlvr: no data for split {split!r} (data keys: {sorted(data)})")
        return parse_nlvr(data[split], f"nlvr/{split}")

    def dataset(self, split, data, tokenizer, params, image_root, train):
        options = self.options(params)
        return NLVRDataset(self._records(split, data), image_root, tokenizer, params, options, train)

    def collate(self, split, train):
        return _collate

    def loss(self, model: TaskModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        logits = model(batch["images"], batch["text_ids"], batch["text_atts"], batch.get("image_keys"))  # (B, 2)
        loss = F.cross_entropy(logits, batch["label"])
        accuracy = (logits.detach().argmax(dim=1) == batch["label"]).float().mean()
        return {"loss_nlvr": loss, "nlvr_acc": accuracy, "loss": loss}

    @torch.no_grad()
    def predict(self, model: TaskModel, loader, params: TaskParams) -> list[dict[str, Any]]:
        device = model_device(model)
        records = full_dataset(loader.dataset).records  # batch indices are the split's (loader: the split or a shard)
        out = []
        for batch in loader:
            batch = to_device(batch, device)
            probs = model(batch["images"], batch["text_ids"], batch["text_atts"], batch.get("image_keys")).float().softmax(dim=1)  # (B, 2)
            for index, p in zip(batch["index"].tolist(), probs[:, 1].tolist()):
                out.append({"index": index, "identifier": records[index].identifier, "prediction": p > 0.5, "prob_true": p})
        return out

    def evaluate(self, predictions: list[dict[str, Any]], split: str, data: dict[str, Any]) -> dict[str, float]:
        from xfm_pipeline.metrics.classification import accuracy

        records = self._records(split, data)
        if sorted(p["index"] for p in predictions) != list(range(len(records))):
            raise ValueError(f"nlvr {split}: predictions do not cover each of the {len(records)} records exactly once")
        by_index = {p["index"]: bool(p["prediction"]) for p in predictions}
        preds = [by_index[i] for i in range(len(records))]
        return {"nlvr_acc": 100.0 * accuracy(preds, [r.label for r in records])}


TASK = NLVRTask()

SPEC = TaskSpec(
    TASK,
    pipelines=(
        TaskPipeline(
            "finetune_nlvr",
            data={"train": "nlvr_train_json_validated", "val": "nlvr_dev_json_validated", "test": "nlvr_test_json_validated"},
            paper={"val/nlvr_acc": PaperResult(86.3, 87.6, "NLVR2 dev"), "test/nlvr_acc": PaperResult(86.5, 88.4, "NLVR2 test-P")},
        ),
    ),
)
