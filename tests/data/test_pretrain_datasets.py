"""Pretraining samples from encoded image bytes (shards, streamed files): JPEGs decoded by torchvision to the
pixels PIL gives, other images through PIL, and a sample the same whichever way its image was decoded."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from xfm_pipeline.data import pretrain_datasets as pd
from xfm_pipeline.data.images import ImageLoadError, decode_image_bytes

pytestmark = pytest.mark.unit


def _picture(mode: str = "RGB", size: tuple[int, int] = (45, 31)) -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = (np.linspace(0, 255, size[0])[None, :, None] * 0.6 + rng.random((size[1], size[0], 3)) * 100).astype(np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _encode(image: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _pil_pixels(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.array(decode_image_bytes(data))).permute(2, 0, 1)  # (3, H, W) uint8


@pytest.mark.parametrize(
    "data",
    [
        _encode(_picture(), quality=75),  # 4:2:0 chroma
        _encode(_picture(), quality=95, subsampling=0),  # 4:4:4
        _encode(_picture(), progressive=True),
        _encode(_picture("L")),  # one channel: repeated to RGB as PIL's convert does
    ],
    ids=["420", "444", "progressive", "grey"],
)
def test_jpegs_decode_to_the_pixels_pil_gives(data):
    pixels = pd._decode_for_transform(data, "x")
    assert isinstance(pixels, torch.Tensor) and pixels.dtype == torch.uint8 and pixels.shape == (3, 31, 45)
    assert torch.equal(pixels, _pil_pixels(data))


def test_other_images_go_through_pil_which_reports_broken_data():
    for data in (_encode(_picture(), "PNG"), _encode(_picture("CMYK"))):  # CMYK: PIL's conversion, not libjpeg's
        image = pd._decode_for_transform(data, "x")
        assert isinstance(image, Image.Image) and image.mode == "RGB" and np.array_equal(np.array(image), np.array(decode_image_bytes(data)))
    broken = _encode(_picture())[:300]
    with pytest.raises(ImageLoadError, match=r"cannot decode image \(300 bytes\) \(shard-000003.tar sample 000000012\)"):
        pd._decode_for_transform(broken, "shard-000003.tar sample 000000012")


def test_a_sample_is_the_same_from_shard_bytes_and_from_its_file(tmp_path):
    from xfm_pipeline.data.formats.pretrain import ImageTextRecord
    from xfm_pipeline.data.masking import BlockMaskGenerator, TextMasker
    from xfm_pipeline.data.transforms import pretrain_transform
    from xfm_pipeline.model.text import load_tokenizer

    data = _encode(_picture(size=(96, 80)), quality=90)
    (tmp_path / "a.jpg").write_bytes(data)
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    builder = pd.ImageTextDataset(
        [], tmp_path, pretrain_transform(32), tokenizer, TextMasker(tokenizer, 0.5, 4), BlockMaskGenerator(4, 6, 2), pd.TextSettings(16, 16)
    )
    record = ImageTextRecord(("A red circle, left of a square.", "two shapes"), image="a.jpg")
    for seed in range(6):
        from_bytes = builder.make(ImageTextRecord(record.desc), 3, seed, "x", data)  # the tensor decode
        from_file = builder.make(record, 3, seed, "x")  # PIL, as before
        assert from_bytes.keys() == from_file.keys()
        for key, value in from_bytes.items():
            assert torch.equal(value, from_file[key]) if isinstance(value, torch.Tensor) else value == from_file[key], key
    sample = builder.make(record, 3, 0, "x")
    assert sample["images"].shape == (3, 32, 32) and sample["images"].dtype == torch.float32 and int(sample["image_patch_mask"].sum()) == 6
    assert sample["text_ids"].shape == sample["text_ids_masked"].shape == (16,) and sample["masked_pos"].shape == (4,)
