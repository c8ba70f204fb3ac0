"""Torch datasets and collation of the four pretraining streams (docs/xfm.md#data-streams).

Every sample is made by ``make(record, index, seed, where, image)`` from one parsed corpus record, its
global index, its seed and, for a record read from a WebDataset shard, its encoded image bytes (records
of JSON lines name an image file under the image root instead). ALL randomness (caption choice, crop,
flip, RandAugment, text and patch masks) is drawn from the seed, so a sample is the same on any rank,
worker or process count, and after a restart. The streams of :mod:`xfm_pipeline.training.streams` call
``make``; ``__getitem__((index, seed))`` serves map-style use (records held in a list).

Batches are dicts of tensors with ``"stream"`` naming the objective set (see ``objectives.pretrain``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from xfm_pipeline.data.formats.pretrain import ImageOnlyRecord, ImageTextRecord, RegionTextRecord, TextOnlyRecord
from xfm_pipeline.data.images import decode_image_bytes, load_record_image
from xfm_pipeline.data.text import FixedLengthTokenizer, pre_caption, text_key, trim_padding
from xfm_pipeline.data.transforms import seeded_transform

# Prefixes X-FM prepends when a record holds several base64 images and one is drawn (docs/xfm.md#inputs-and-augmentation).
MULTI_IMAGE_PREFIXES = ("A image of ", "The image contains ", "We can see ", "A picture of ")


@dataclass
class TextSettings:
    """Tokenisation and masking of one stream's texts."""

    max_words: int = 30  # pre_caption truncation (words)
    max_tokens: int = 30  # padded/truncated token length incl. specials
    apply_pre_caption: bool = True  # X-FM normalisation (off for the text-only stream)


def _decode_for_transform(data: bytes, where: str) -> torch.Tensor | Image.Image:
    """Encoded image bytes as the input of a transform that starts with ``v2.ToImage``.

    A JPEG with 3 colour channels (or grey, repeated to 3) is decoded by ``torchvision.io.decode_jpeg``
    straight to the uint8 (3, H, W) tensor ``ToImage`` makes of the RGB ``PIL.Image`` (the same
    libjpeg-turbo decode, pixel for pixel, at less than half the cost: no PIL objects and copies);
    anything else (PNG, WebP, CMYK, a JPEG torchvision rejects, a torchvision without it) goes through
    PIL, which also reports broken data.
    """
    if data[:3] == b"\xff\xd8\xff":
        pixels = _decode_jpeg(data)  # (C, H, W) uint8, or None
        if pixels is not None and pixels.shape[0] in (1, 3):
            return pixels.expand(3, -1, -1).contiguous() if pixels.shape[0] == 1 else pixels
    return decode_image_bytes(data, where)


def _decode_jpeg(data: bytes) -> torch.Tensor | None:
    """torchvision's JPEG decode of ``data`` ((C, H, W) uint8), or None where it fails or is missing."""
    import warnings

    try:
        from torchvision.io import decode_jpeg
    except ImportError:  # torchvision has deprecated its decoders (0.29) and will remove them
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The image decoding and encoding capabilities of TorchVision are deprecated", DeprecationWarning)
        try:
            return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        except RuntimeError:
            return None


def _image(
    record, root: str | Path | None, rng: random.Random, where: str, data: bytes | None = None, as_tensor: bool = False
) -> tuple[Image.Image | torch.Tensor, str]:
    """(image, caption prefix): encoded bytes from a shard, a path, a single base64 image, or one drawn from several.

    The image is an RGB ``PIL.Image``, or with ``as_tensor`` possibly a (3, H, W) uint8 tensor (shard
    bytes; see :func:`_decode_for_transform`).
    """
    if data is not None:
        return (_decode_for_transform(data, where) if as_tensor else decode_image_bytes(data, where)), ""
    if record.image is not None:
        return load_record_image(record.image, None, root, where), ""
    if len(record.binary) == 1:
        return load_record_image(None, record.binary[0], root, where), ""
    pick = rng.randrange(len(record.binary))
    return load_record_image(None, record.binary[pick], root, where), rng.choice(MULTI_IMAGE_PREFIXES)


def _masked_text(tokenize: FixedLengthTokenizer, text_masker, text: str, rng: random.Random) -> dict[str, torch.Tensor]:
    """Token ids, attention mask and the MLM mask of one text (``text_masker``: :class:`~xfm_pipeline.data.masking.TextMasker`)."""
    (ids,), (atts,) = tokenize.rows(text)  # L each
    (masked,), (positions,), (targets,) = text_masker.mask_rows([ids], [atts], rng)
    text_rows = torch.tensor([ids, atts, masked], dtype=torch.long)  # (3, L)
    mlm = torch.tensor([positions, targets], dtype=torch.long)  # (2, M)
    return {
        "text_ids": text_rows[0],  # (L,)
        "text_atts": text_rows[1],  # (L,)
        "text_ids_masked": text_rows[2],  # (L,)
        "masked_pos": mlm[0],  # (M,)
        "masked_ids": mlm[1],  # (M,)
    }


class ImageTextDataset(torch.utils.data.Dataset):
    """Image-text pairs: image (augmented), caption, masked caption, MIM patch mask.

    ``transform`` takes an RGB ``PIL.Image`` or a uint8 (3, H, W) tensor (a ``transforms.v2`` pipeline that
    starts with ``ToImage``, as :mod:`~xfm_pipeline.data.transforms` builds them): image bytes are decoded to either.
    """

    stream = "image_text"

    def __init__(
        self, records: list[ImageTextRecord], image_root, transform, tokenizer, text_masker, patch_masker, text: TextSettings, source: str = "image_text"
    ):
        self.records, self.root, self.transform = records, image_root, transform
        self.tokenizer, self.text_masker, self.patch_masker, self.text = tokenizer, text_masker, patch_masker, text
        self.tokenize, self.source = FixedLengthTokenizer(tokenizer, text.max_tokens), source

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        index, seed = item
        return self.make(self.records[index], index, seed, f"{self.source} record {index}")

    def make(self, record: ImageTextRecord, index: int, seed: int, where: str, image: bytes | None = None) -> dict[str, Any]:
        """The sample of ``record`` (global ``index``) with all randomness from ``seed``."""
        rng = random.Random(seed)
        image, prefix = _image(record, self.root, rng, where, image, as_tensor=True)
        caption = prefix + rng.choice(record.desc)
        caption = pre_caption(caption, self.text.max_words) if self.text.apply_pre_caption else caption
        return {
            "images": seeded_transform(self.transform, image, rng.getrandbits(62)),  # (3, S, S)
            "image_patch_mask": self.patch_masker.sample(rng),  # (N,) bool
            "image_idx": index,
            **_masked_text(self.tokenize, self.text_masker, caption, rng),
        }


class ImageOnlyDataset(torch.utils.data.Dataset):
    """Images for the MIM-only stream (``transform``: as :class:`ImageTextDataset`'s)."""

    stream = "image_only"

    def __init__(self, records: list[ImageOnlyRecord], image_root, transform, patch_masker, source: str = "image_only"):
        self.records, self.root, self.transform, self.patch_masker, self.source = records, image_root, transform, patch_masker, source

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        index, seed = item
        return self.make(self.records[index], index, seed, f"{self.source} record {index}")

    def make(self, record: ImageOnlyRecord, index: int, seed: int, where: str, image: bytes | None = None) -> dict[str, Any]:
        """The sample of ``record`` with all randomness from ``seed``."""
        rng = random.Random(seed)
        image, _ = _image(record, self.root, rng, where, image, as_tensor=True)
        return {"images": seeded_transform(self.transform, image, rng.getrandbits(62)), "image_patch_mask": self.patch_masker.sample(rng)}


class TextOnlyDataset(torch.utils.data.Dataset):
    """Texts for the text-encoder MLM stream."""

    stream = "text_only"

    def __init__(self, records: list[TextOnlyRecord], tokenizer, text_masker, text: TextSettings):
        self.records, self.tokenizer, self.text_masker, self.text = records, tokenizer, text_masker, text
        self.tokenize = FixedLengthTokenizer(tokenizer, text.max_tokens)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        index, seed = item
        return self.make(self.records[index], index, seed, f"text_only record {index}")

    def make(self, record: TextOnlyRecord, index: int, seed: int, where: str, image: bytes | None = None) -> dict[str, Any]:
        """The sample of ``record`` with all randomness from ``seed`` (text-only records have no image)."""
        rng = random.Random(seed)
        text = rng.choice(record.desc)
        text = pre_caption(text, self.text.max_words) if self.text.apply_pre_caption else text
        return _masked_text(self.tokenize, self.text_masker, text, rng)


class RegionTextDataset(torch.utils.data.Dataset):
    """An image with ``texts_per_image`` (region or whole-image) descriptions, boxes and region patch masks.

    As in docs/xfm.md#inputs-and-augmentation: a random element's box is kept inside a random crop;
    horizontal flip unless a caption says left/right; resize to S; ``color_transform`` (colour-only
    RandAugment). ``augment=False`` keeps
    the whole image unflipped (pass an evaluation ``color_transform`` too): every element is a region.
    Texts: the image caption (whole image, ``is_image=1``) and elements keeping more than
    ``min_area_in_crop`` of their area. Exactly
    ``texts_per_image`` texts are drawn (with repetition when fewer exist); ``text_key`` (k,) ids their
    strings (:func:`~xfm_pipeline.data.text.text_key`). ``fusion_rows`` (k,) marks the
    first ``fusion_texts_per_image`` of them (default: all): every text is in ITC, which costs one
    projection, and only the marked ones go through the fusion encoder for ITM, IMLM and BBP (five
    fusion passes each), so ITC can see every region of an image at a fraction of the cost.
    """

    stream = "region_text"

    def __init__(
        self,
        records: list[RegionTextRecord],
        image_root,
        image_size: int,
        patch_size: int,
        color_transform,
        tokenizer,
        text_masker,
        text: TextSettings,
        texts_per_image: int = 2,
        min_area_in_crop: float = 0.5,
        source: str = "region_text",
        fusion_texts_per_image: int | None = None,
        augment: bool = True,
    ):
        fusion = texts_per_image if fusion_texts_per_image is None else fusion_texts_per_image
        if not 1 <= fusion <= texts_per_image:
            raise ValueError(f"{source}: fusion_texts_per_image must be in 1..texts_per_image ({texts_per_image}), got {fusion_texts_per_image}")
        self.fusion_rows = torch.arange(texts_per_image) < fusion  # (k,) texts also used by ITM, IMLM and BBP
        self.records, self.root, self.size, self.patch = records, image_root, image_size, patch_size
        self.color_transform, self.tokenizer, self.text_masker, self.text = color_transform, tokenizer, text_masker, text
        self.tokenize = FixedLengthTokenizer(tokenizer, text.max_tokens)
        self.k, self.min_area, self.source, self.augment = texts_per_image, min_area_in_crop, source, augment

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        index, seed = item
        return self.make(self.records[index], index, seed, f"{self.source} record {index}")

    def make(self, record: RegionTextRecord, index: int, seed: int, where: str, image: bytes | None = None) -> dict[str, Any]:
        """The sample of ``record`` with all randomness from ``seed``."""
        rng = random.Random(seed)
        image, _ = _image(record, self.root, rng, where, image)
        w, h = image.size
        crop = _crop_containing(rng.choice(record.elems).bb, w, h, rng) if self.augment else (0, 0, w, h)  # (x0, y0, x1, y1)
        captions = [" ".join(e.attributes + (rng.choice(e.caption),)) for e in record.elems]
        flip = self.augment and rng.random() < 0.5 and not any(word in c.lower() for c in captions + [record.caption or ""] for word in ("left", "right"))
        image = image.crop(crop).resize((self.size, self.size), Image.BICUBIC)
        if flip:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        candidates = []  # (text, cxcywh in [0,1], is_image)
        if record.caption:
            candidates.append((record.caption, (0.5, 0.5, 1.0, 1.0), 1))
        for elem, caption in zip(record.elems, captions):
            box = _box_in_crop(elem.bb, crop, self.min_area)
            if box is not None:
                cx, cy, bw, bh = box
                candidates.append((caption, (1 - cx if flip else cx, cy, bw, bh), 0))
        chosen = [candidates[i] for i in _choose(len(candidates), self.k, rng)]
        strings = [pre_caption(t, self.text.max_words) for t, _, _ in chosen]
        texts = [_masked_text(self.tokenize, self.text_masker, t, rng) for t in strings]
        grid = self.size // self.patch
        return {
            "images": seeded_transform(self.color_transform, image, rng.getrandbits(62)),  # (3, S, S)
            "texts": {k: torch.stack([t[k] for t in texts]) for k in texts[0]},  # each (k, ...)
            "target_bbox": torch.tensor([b for _, b, _ in chosen], dtype=torch.float32),  # (k, 4)
            "is_image": torch.tensor([i for _, _, i in chosen], dtype=torch.long),  # (k,)
            "image_atts": torch.stack([_region_atts(b, grid) for _, b, _ in chosen]),  # (k, 1+N)
            "fusion_rows": self.fusion_rows.clone(),  # (k,) bool
            "text_key": torch.tensor([text_key(t) for t in strings], dtype=torch.long),  # (k,) equal for equal texts
        }


def _crop_containing(bb, w: int, h: int, rng: random.Random) -> tuple[int, int, int, int]:
    x, y, bw, bh = bb
    x0 = rng.uniform(0, max(0.0, x))
    y0 = rng.uniform(0, max(0.0, y))
    x1 = rng.uniform(min(w, x + bw), w)
    y1 = rng.uniform(min(h, y + bh), h)
    return int(x0), int(y0), max(int(x0) + 1, int(round(x1))), max(int(y0) + 1, int(round(y1)))


def _box_in_crop(bb, crop, min_area: float):
    """The part of box ``bb`` inside ``crop`` as normalised cxcywh, or None if too little remains."""
    x, y, bw, bh = bb
    x0, y0, x1, y1 = crop
    ix0, iy0, ix1, iy1 = max(x, x0), max(y, y0), min(x + bw, x1), min(y + bh, y1)
    if ix1 <= ix0 or iy1 <= iy0 or (ix1 - ix0) * (iy1 - iy0) < min_area * bw * bh:
        return None
    cw, ch = x1 - x0, y1 - y0
    return ((ix0 + ix1) / 2 - x0) / cw, ((iy0 + iy1) / 2 - y0) / ch, (ix1 - ix0) / cw, (iy1 - iy0) / ch


def _region_atts(box, grid: int) -> torch.Tensor:
    """(1+N,) attention mask: CLS plus the patches a normalised cxcywh box overlaps."""
    cx, cy, bw, bh = box
    c0, c1 = int(max(0.0, cx - bw / 2) * grid), min(grid - 1, int(min(1.0, cx + bw / 2) * grid - 1e-6))
    r0, r1 = int(max(0.0, cy - bh / 2) * grid), min(grid - 1, int(min(1.0, cy + bh / 2) * grid - 1e-6))
    mask = torch.zeros(grid, grid, dtype=torch.long)
    mask[r0 : r1 + 1, c0 : c1 + 1] = 1
    return torch.cat([torch.ones(1, dtype=torch.long), mask.flatten()])


def _choose(n: int, k: int, rng: random.Random) -> list[int]:
    if n == 0:
        raise ValueError("region sample has no usable text (no caption and no element inside the crop)")
    order = rng.sample(range(n), min(n, k))
    return order + [rng.randrange(n) for _ in range(k - len(order))]


def collate(stream: str):
    """The collate function of ``stream``: stacks samples into the batch dict the objective expects."""

    def stack(samples: list[dict[str, Any]]) -> dict[str, Any]:
        if stream == "region_text":
            k = samples[0]["is_image"].shape[0]
            batch = {
                "images": torch.stack([s["images"] for s in samples]),  # (B_img, 3, S, S)
                "idx_to_group_img": torch.arange(len(samples)).repeat_interleave(k),  # (B_img * k,) local image slot
                **{key: torch.cat([s["texts"][key] for s in samples]) for key in samples[0]["texts"]},
                **{key: torch.cat([s[key] for s in samples]) for key in ("target_bbox", "is_image", "image_atts", "fusion_rows", "text_key")},
            }
        else:
            batch = {
                key: torch.stack([s[key] for s in samples]) if isinstance(samples[0][key], torch.Tensor) else torch.tensor([s[key] for s in samples])
                for key in samples[0]
            }
        batch["stream"] = stream
        return trim_text_padding(batch)

    return stack


def trim_text_padding(batch: dict[str, Any]) -> dict[str, Any]:
    """A collated batch with the token axis of its texts cut to its longest text (:func:`trim_padding`).

    Samples are tokenised to ``max_tokens``, but short region phrases use a fraction of that and the text
    and fusion encoders would spend most of their work on padding. ``masked_pos`` always points at real
    tokens and is unchanged. A batch without texts is returned as is.
    """
    if "text_atts" in batch:
        batch["text_ids"], batch["text_atts"], batch["text_ids_masked"] = trim_padding(batch["text_ids"], batch["text_atts"], batch["text_ids_masked"])
    return batch
