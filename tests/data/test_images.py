"""Image loading by path under a root and from base64 ``binary``."""

from __future__ import annotations

import base64

import pytest
from PIL import Image

from xfm_pipeline.data.images import (
    ImageLoadError,
    decode_base64_image,
    encode_base64_image,
    jpeg_bytes,
    load_image,
    load_record_image,
)
from xfm_pipeline.data.paths import UnsafePathError


@pytest.fixture
def root(tmp_path):
    (tmp_path / "train").mkdir()
    Image.new("L", (12, 10), 128).save(tmp_path / "train" / "gray.png")
    Image.new("RGBA", (8, 8), (255, 0, 0, 128)).save(tmp_path / "train" / "rgba.png")
    (tmp_path / "train" / "broken.jpg").write_bytes(b"not a jpeg at all")
    return tmp_path


def test_load_image_converts_to_rgb(root):
    for name, size in (("gray.png", (12, 10)), ("rgba.png", (8, 8))):
        img = load_image(root, f"train/{name}")
        assert img.mode == "RGB" and img.size == size


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.jpg", "train/../../x.jpg", "C:\\images\\x.jpg", ""])
def test_path_escape_rejected(root, bad):
    with pytest.raises(UnsafePathError):
        load_image(root, bad)


def test_symlink_escape_rejected(root, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    Image.new("RGB", (4, 4)).save(outside / "x.png")
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafePathError):
        load_image(root, "link/x.png")


def test_missing_and_broken_files_name_the_file_and_record(root):
    with pytest.raises(ImageLoadError, match=r"train/nope\.jpg.*vqa record 7"):
        load_image(root, "train/nope.jpg", where="vqa record 7")
    with pytest.raises(ImageLoadError, match=r"broken\.jpg"):
        load_image(root, "train/broken.jpg")


def test_base64_round_trip_is_deterministic():
    img = Image.new("RGB", (16, 16), (10, 200, 30))
    text = encode_base64_image(img, quality=90)
    assert text == encode_base64_image(img, quality=90)
    assert base64.b64decode(text) == jpeg_bytes(img, 90)
    back = decode_base64_image(text)
    assert back.mode == "RGB" and back.size == (16, 16)
    assert abs(back.getpixel((8, 8))[1] - 200) < 8


def test_bad_base64_raises():
    with pytest.raises(ImageLoadError, match="invalid base64"):
        decode_base64_image("***not base64***", where="line 3")
    with pytest.raises(ImageLoadError, match="cannot decode"):
        decode_base64_image(base64.b64encode(b"plain bytes").decode())


def test_load_record_image_needs_exactly_one_source(root):
    text = encode_base64_image(Image.new("RGB", (4, 4)))
    assert load_record_image(None, text, None).size == (4, 4)
    assert load_record_image("train/gray.png", None, root).size == (12, 10)
    with pytest.raises(ImageLoadError, match="exactly one"):
        load_record_image("train/gray.png", text, root)
    with pytest.raises(ImageLoadError, match="exactly one"):
        load_record_image(None, None, root)
    with pytest.raises(ImageLoadError, match="no image root"):
        load_record_image("train/gray.png", None, None)
