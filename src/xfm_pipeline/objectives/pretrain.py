"""The X-FM pretraining objective, one batch of one data stream at a time (docs/xfm.md#pretraining).

``XFMPretrainObjective(weights)(model, batch)`` returns ``{"loss_itc": ..., ..., "loss": weighted sum}``
with paper names for the objectives active on the batch's stream. The training loop knows nothing about
X-FM: it calls the objective and backpropagates ``loss`` (docs/design.md#one-training-loop).

Streams (``batch["stream"]``) and their objectives:

============  ==================================================  =====================================
stream        objectives                                          batch keys (tensors)
============  ==================================================  =====================================
image_text    ITC, ITM (hard negatives), fusion MLM, MIM          images, text_ids, text_atts,
                                                                  text_ids_masked, masked_pos,
                                                                  masked_ids, image_patch_mask
                                                                  [, image_idx]
region_text   ITC (region-pooled patches), ITM, fusion MLM,     images (B_img), text_*, masked_*,
              BBP (L1 + GIoU [+ pointer cross-entropy],           idx_to_group_img, image_atts,
              whole-image captions excluded)                      target_bbox, is_image
                                                                  [, fusion_rows, text_key]
image_only    MIM (target: a fresh unmasked pass, detached, or    images, image_patch_mask
              the pixels when ``mim_target="pixels"``)
text_only     text-encoder MLM                                    text_ids_masked, text_atts,
                                                                  masked_pos, masked_ids
============  ==================================================  =====================================

Box head (``box_head``): ``"cls"`` regresses the box from the fusion CLS with ``bbox_head`` (X-FM);
``"pointer"`` uses ``bbox_pointer`` (``model.box_heads``) and adds its patch cross-entropy
``loss_pointer``. The pointer is what makes the fusion encoder's cross-attention pick out the patches a
phrase is about, within a CPU budget (the ``pretrain_bbox`` stage).

Optional keys: ``generator`` (a ``torch.Generator`` on the model's device) drives the ITM negative
sampling, else the global RNG. ``image_idx`` (B,) dataset image ids: in an image_text batch, pairs of one
image become ITC positives and never ITM negatives of each other (X-FM pretraining has no such ids).

Region batches: ITC contrasts each text with the pooled patches of its region. Other regions of the
same image are negatives: their pooled patches are a different visual input, and telling them apart is
what trains per-patch features (with the image as ITC ``idx``, every region of an image was pulled
towards every text of it). ``text_key`` (B,) ids of the text strings make identical texts positives of
each other (soft targets; without it, the diagonal as in X-FM pretraining): a phrase like "large grey
star" describes every region it is drawn for, often two in one image, and calling those pairs negatives
would push apart the features the phrase should share. A text drawn twice for one region (the collate
pads by drawing again, docs/xfm.md#fix-duplicate-region-pairs) is one such pair. With ``fusion_rows``,
ITM, fusion MLM and BBP use only the marked texts; ITC uses all. ITM draws negatives among all other
pairs, other regions of the same image included, but never a pair with the same text (without
``text_key``: never an exact duplicate, same image, text and region mask).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, fields
from typing import Any

import torch

from xfm_pipeline.model.box_heads import BOX_HEADS
from xfm_pipeline.model.encoder_cache import FrozenEncodings
from xfm_pipeline.objectives.bbox import bbox_loss, pointer_loss
from xfm_pipeline.objectives.itc import itc_loss
from xfm_pipeline.objectives.itm import itm_head_loss, itm_pairs
from xfm_pipeline.objectives.mim import mim_loss, mim_pixel_loss, patch_similarity
from xfm_pipeline.objectives.mlm import fusion_mlm_head_loss, fusion_mlm_text, text_mlm_loss


@dataclass
class ObjectiveWeights:
    """Weight of each objective in ``loss``; a weight of 0 switches the objective off (not computed)."""

    itc: float = 1.0  # image-text contrastive (image_text, region_text)
    itm: float = 1.0  # image-text matching with hard negatives (image_text, region_text)
    mlm: float = 1.0  # image-conditioned MLM in the fusion encoder (image_text, region_text)
    mim: float = 1.0  # masked image modelling, feature regression (image_text, image_only)
    bbox: float = 1.0  # L1 box regression (region_text)
    giou: float = 1.0  # 1 - GIoU box loss (region_text)
    pointer: float = 1.0  # patch cross-entropy of the pointer box head (region_text, box_head "pointer" only)
    text_mlm: float = 1.0  # text-encoder MLM (text_only)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"objective weight {f.name!r} must be a finite number >= 0, got {value!r}")
            setattr(self, f.name, float(value))

    def active(self, name: str) -> bool:
        """Whether objective ``name`` has a positive weight."""
        return getattr(self, name) > 0


# The objectives each stream can train, by weight name (the loss key is "loss_" + name).
STREAM_OBJECTIVES: dict[str, tuple[str, ...]] = {
    "image_text": ("itc", "itm", "mlm", "mim"),
    "region_text": ("itc", "itm", "mlm", "bbox", "giou", "pointer"),
    "image_only": ("mim",),
    "text_only": ("text_mlm",),
}

_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "image_text": (
        "images",
        "text_ids",
        "text_atts",
        "text_ids_masked",
        "masked_pos",
        "masked_ids",
        "image_patch_mask",
    ),
    "region_text": (
        "images",
        "text_ids",
        "text_atts",
        "text_ids_masked",
        "masked_pos",
        "masked_ids",
        "idx_to_group_img",
        "image_atts",
        "target_bbox",
        "is_image",
    ),
    "image_only": ("images", "image_patch_mask"),
    "text_only": ("text_ids_masked", "text_atts", "masked_pos", "masked_ids"),
}

_PER_TEXT_KEYS = (  # region batch entries with one row per text (``images`` has one per image)
    "text_ids", "text_atts", "text_ids_masked", "masked_pos", "masked_ids",
    "idx_to_group_img", "image_atts", "target_bbox", "is_image", "fusion_rows", "text_key",
)  # fmt: skip


def duplicate_pair_ids(*columns: torch.Tensor) -> torch.Tensor:
    """(B,) ids equal exactly for rows that are identical in every column ((B,) or (B, K) tensors).

    Used for region ITM: two pairs with the same image, text and region mask are the same fusion input
    (the region collate pads batches by duplicating pairs, docs/xfm.md#fix-duplicate-region-pairs), so
    one must never be the other's negative.
    """
    rows = torch.cat([c.reshape(c.shape[0], -1).long() for c in columns], dim=1)  # (B, K)
    return torch.unique(rows, dim=0, return_inverse=True)[1]


class XFMPretrainObjective:
    """Per-stream X-FM pretraining losses; ``__call__(model, batch) -> dict[str, Tensor]``.

    Args:
        weights: objective weights (default all 1.0; 0 switches an objective off).
        detach_text_for_fusion: X-FM's stop-gradient (docs/xfm.md#stop-gradient): the fusion encoder receives detached
            text states for ITM and BBP and the fusion-MLM text pass runs without gradient, so the text
            encoder learns only from ITC and text-only MLM. False lets every loss reach the text encoder.
        frozen_text_cache: while the text encoder is frozen (``lr_scales`` 0), keep the states of up to
            this many distinct texts (unmasked ITC/ITM/BBP texts, keyed by token ids) and encode each once;
            0 encodes every batch. A frozen encoder always runs in eval mode without gradients.
        box_head: the BBP head, ``"cls"`` (X-FM's ``bbox_head``) or ``"pointer"`` (``bbox_pointer``, which
            adds ``loss_pointer``; the ``pointer`` weight has no effect with ``"cls"``).
    """

    def __init__(
        self,
        weights: ObjectiveWeights | None = None,
        detach_text_for_fusion: bool = True,
        frozen_text_cache: int = 0,
        box_head: str = "cls",
    ):
        if box_head not in BOX_HEADS:
            raise ValueError(f"box_head must be one of {BOX_HEADS}, got {box_head!r}")
        if not isinstance(detach_text_for_fusion, bool):
            raise ValueError(f"detach_text_for_fusion must be a bool, got {detach_text_for_fusion!r}")
        if isinstance(frozen_text_cache, bool) or not isinstance(frozen_text_cache, int) or frozen_text_cache < 0:
            raise ValueError(f"frozen_text_cache must be an int >= 0, got {frozen_text_cache!r}")
        self.weights = weights if weights is not None else ObjectiveWeights()
        self.box_head = box_head
        self.detach_text_for_fusion = detach_text_for_fusion
        self.encodings = FrozenEncodings(max_rows=frozen_text_cache)
        self._cache_text = frozen_text_cache > 0
        self._streams = {
            "image_text": self._image_text,
            "region_text": self._region_text,
            "image_only": self._image_only,
            "text_only": self._text_only,
        }

    @property
    def active_streams(self) -> tuple[str, ...]:
        """Streams with at least one objective of positive weight (the others need no batches)."""
        return tuple(s for s, names in STREAM_OBJECTIVES.items() if any(self._computes(n) for n in names))

    def _computes(self, name: str) -> bool:
        """Whether objective ``name`` is computed: a positive weight (and, for ``pointer``, the pointer head)."""
        return self.weights.active(name) and (name != "pointer" or self.box_head == "pointer")

    def __call__(self, model, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Losses of the batch's stream: active ``loss_<name>`` (unweighted), ``loss`` (weighted sum) and, for
        image-text batches, the diagnostic ``patch_similarity`` (:func:`~xfm_pipeline.objectives.mim.patch_similarity`).

        Raises:
            ValueError: unknown stream, or a stream whose objectives all have weight 0.
            KeyError: a tensor the stream needs is missing from the batch.
        """
        stream = batch.get("stream")
        if stream not in self._streams:
            raise ValueError(f"batch['stream'] must be one of {sorted(self._streams)}, got {stream!r}")
        if stream not in self.active_streams:
            raise ValueError(
                f"every objective of stream {stream!r} ({', '.join(STREAM_OBJECTIVES[stream])}) has weight 0; "
                "leave this stream out of the schedule (see XFMPretrainObjective.active_streams)"
            )
        missing = [k for k in _REQUIRED_KEYS[stream] if k not in batch]
        if missing:
            raise KeyError(f"{stream} batch lacks {', '.join(missing)}")
        losses = self._streams[stream](model, batch)
        losses["loss"] = sum(getattr(self.weights, key[len("loss_") :]) * value for key, value in losses.items() if key.startswith("loss_"))
        return losses

    # ------------------------------------------------------------------ shared pieces
    def _encode_text(self, model, text_ids: torch.Tensor, text_atts: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L, Dt); a frozen text encoder's states come from the cache when it is on."""
        return self.encodings.texts(model, text_ids, text_atts, use_cache=self._cache_text)

    def _fusion_text(self, text_embeds: torch.Tensor) -> torch.Tensor:
        return text_embeds.detach() if self.detach_text_for_fusion else text_embeds

    def _contrastive(self, model, image_embeds, text_embeds, itc_idx, out) -> torch.Tensor:
        """ITC on token-0 features into ``out``; returns the (B, B) local similarities ITM samples from."""
        with nullcontext() if self.weights.active("itc") else torch.no_grad():
            image_feats = model.image_features(image_embeds)  # (B, E)
            text_feats = model.text_features(text_embeds)  # (B, E)
        if self.weights.active("itc"):
            out["loss_itc"] = itc_loss(image_feats, text_feats, model.temperature, itc_idx)
        with torch.no_grad():
            return model.similarity(image_feats, text_feats)  # (B, B) local batch only

    def _matching_and_mlm(self, model, batch, image_embeds, image_atts, text_embeds, sim, itm_idx, out) -> None:
        """ITM (hard negatives drawn from ``sim``) and image-conditioned MLM from ONE fusion call.

        Fusion rows are independent, so ITM's pairs and the masked texts go through the fusion encoder
        together: the cross-attention keys and values of the B images are projected once for both, and
        the matrix products are larger (ITM + MLM ran as two calls, each projecting the images again).
        """
        text_atts = batch["text_atts"]
        texts, atts, image_index, sizes = [], [], [], []
        if self.weights.active("itm"):
            pairs = itm_pairs(sim, sim.t(), itm_idx, batch.get("generator"))
            texts.append(self._fusion_text(text_embeds)[pairs.text_index])  # (T, L, Dt)
            atts.append(text_atts[pairs.text_index])
            image_index.append(pairs.image_index)
            sizes.append(pairs.labels.shape[0])
        if self.weights.active("mlm"):
            texts.append(fusion_mlm_text(model, batch["text_ids_masked"], text_atts, self.detach_text_for_fusion))
            atts.append(text_atts)
            image_index.append(torch.arange(text_atts.shape[0], device=text_atts.device))
            sizes.append(text_atts.shape[0])
        fused = model.fuse(torch.cat(texts), torch.cat(atts), image_embeds, image_atts, image_index=torch.cat(image_index)).split(
            sizes
        )  # (T, L, Dt) [, (B, L, Dt)]
        if self.weights.active("itm"):
            out["loss_itm"] = itm_head_loss(model, fused[0], pairs.labels).loss
        if self.weights.active("mlm"):
            out["loss_mlm"] = fusion_mlm_head_loss(model, fused[-1], batch["masked_pos"], batch["masked_ids"])

    # ------------------------------------------------------------------ streams
    def _image_text(self, model, batch) -> dict[str, torch.Tensor]:
        w, out = self.weights, {}
        images, idx = batch["images"], batch.get("image_idx")
        needs_grad = any(w.active(n) for n in ("itc", "itm", "mlm"))
        if needs_grad or (w.active("mim") and model.config.mim_target == "features"):
            with nullcontext() if needs_grad else torch.no_grad():  # MIM alone only needs the target
                image_embeds = model.encode_image(images)  # (B, 1+N, Dv)
            out["patch_similarity"] = patch_similarity(image_embeds)  # 1 = collapsed patch tokens
        text_embeds = sim = None
        if w.active("itc") or w.active("itm"):
            text_embeds = self._encode_text(model, batch["text_ids"], batch["text_atts"])  # (B, L, Dt)
            sim = self._contrastive(model, image_embeds, text_embeds, idx, out)
        if w.active("itm") or w.active("mlm"):
            self._matching_and_mlm(model, batch, image_embeds, None, text_embeds, sim, idx, out)
        if w.active("mim"):
            target = image_embeds if model.config.mim_target == "features" else None
            out["loss_mim"] = self._mim(model, images, batch["image_patch_mask"], target)
        return out

    def _region_text(self, model, batch) -> dict[str, torch.Tensor]:
        from xfm_pipeline.model.vision import region_pool  # imports timm: kept out of module import time

        w, out = self.weights, {}
        text_atts, image_atts = batch["text_atts"], batch["image_atts"]
        group = batch["idx_to_group_img"].long()  # (B,) image row of each text
        image_embeds = model.encode_image(batch["images"])[group]  # (B, 1+N, Dv) full-image tokens per text
        region_embeds = region_pool(image_embeds, image_atts[:, 1:])  # (B, 1+N, Dv) token 0 = region pooled
        needs_boxes = any(self._computes(n) for n in ("bbox", "giou", "pointer"))
        text_embeds = sim = None
        if w.active("itc") or w.active("itm") or needs_boxes:
            text_embeds = self._encode_text(model, batch["text_ids"], text_atts)  # (B, L, Dt)
        if w.active("itc") or w.active("itm"):
            sim = self._contrastive(model, region_embeds, text_embeds, batch.get("text_key"), out)  # (B, B) over every text
        rows = batch.get("fusion_rows")
        if rows is not None and not bool(rows.all()):  # ITM, IMLM and BBP on the marked texts only
            keep = rows.nonzero().squeeze(1)  # (F,)
            batch = {k: v[keep] if k in _PER_TEXT_KEYS else v for k, v in batch.items()}
            group, text_atts, image_atts = group[keep], batch["text_atts"], batch["image_atts"]
            image_embeds, region_embeds = image_embeds[keep], region_embeds[keep]
            text_embeds = None if text_embeds is None else text_embeds[keep]
            sim = None if sim is None else sim[keep][:, keep]
        if w.active("itm") or w.active("mlm"):
            itm_idx = None
            if w.active("itm"):  # identical texts (or, without keys, identical pairs) are never negatives
                itm_idx = batch["text_key"] if "text_key" in batch else duplicate_pair_ids(group, batch["text_ids"], image_atts)
            self._matching_and_mlm(model, batch, region_embeds, image_atts, text_embeds, sim, itm_idx, out)
        if needs_boxes:
            fused = model.fuse(self._fusion_text(text_embeds), text_atts, image_embeds, None)  # all-ones image mask
            scores, boxes = model.predict_box(fused, image_embeds, self.box_head)  # (B, N) or None, (B, 4)
            if self._computes("pointer"):
                out["loss_pointer"] = pointer_loss(scores, batch["target_bbox"], batch["is_image"])
            loss_bbox, loss_giou = bbox_loss(boxes, batch["target_bbox"], batch["is_image"])
            if w.active("bbox"):
                out["loss_bbox"] = loss_bbox
            if w.active("giou"):
                out["loss_giou"] = loss_giou
        return out

    def _image_only(self, model, batch) -> dict[str, torch.Tensor]:
        return {"loss_mim": self._mim(model, batch["images"], batch["image_patch_mask"], None)}

    @staticmethod
    def _mim(model, images, patch_mask, target_embeds) -> torch.Tensor:
        """MIM on the masked pass: features target (``target_embeds``, else a fresh no-grad unmasked pass)
        or, for ``mim_target="pixels"``, the masked patches' pixels."""
        pred = model.encode_image(images, patch_mask)  # (B, 1+N, Dv) mask-token-corrupted pass
        if model.config.mim_target == "pixels":
            return mim_pixel_loss(model.predict_pixels(pred), images, patch_mask, model.config.vision.patch_size)
        if target_embeds is None:
            with torch.no_grad():
                target_embeds = model.encode_image(images)  # (B, 1+N, Dv) fresh unmasked pass
        return mim_loss(pred, target_embeds, patch_mask)

    def _text_only(self, model, batch) -> dict[str, torch.Tensor]:
        inputs = (batch[k] for k in ("text_ids_masked", "text_atts", "masked_pos", "masked_ids"))
        return {"loss_text_mlm": text_mlm_loss(model, *inputs)}
