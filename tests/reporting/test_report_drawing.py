"""Example pictures: right size, boxes in the right colours at the right pixels, images never read
from outside the image root, hand-made predictions joined with their records."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from xfm_pipeline.data.paths import UnsafePathError
from xfm_pipeline.reporting.drawing import (
    BAD_COLOR,
    DISPLAY_SIZE,
    GOOD_COLOR,
    PLACEHOLDER,
    PRED_COLOR,
    TRUE_COLOR,
    draw_box,
    open_image,
    png_bytes,
)
from xfm_pipeline.reporting.examples import (
    THUMB_SIZE,
    captioning_examples,
    draw_grounding,
    grounding_examples,
    pick_split,
    retrieval_examples,
    spread,
    vqa_examples,
)

SIZE = 48  # the hand-made images are 48 x 48; examples show them at DISPLAY_SIZE
SCALE = DISPLAY_SIZE / SIZE
SOLIDS = {"val/a.png": (250, 250, 250), "val/b.png": (40, 40, 200), "val/c.png": (200, 200, 40)}


@pytest.fixture
def image_root(tmp_path):
    root = tmp_path / "images"
    for name, color in SOLIDS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (SIZE, SIZE), color).save(root / name)
    Image.new("RGB", (SIZE, SIZE), (0, 0, 0)).save(tmp_path / "secret.png")  # outside the root
    return root


def decode(image: Image.Image) -> Image.Image:
    """Round-trip through PNG, as the report writes it."""
    return Image.open(io.BytesIO(png_bytes(image))).convert("RGB")


def has_color(img: Image.Image, color, box=None, tol: int = 60) -> bool:
    """Whether some pixel of ``img`` (in ``box``) is within ``tol`` (sum of abs differences) of ``color``."""
    region = np.asarray(img.crop(box) if box else img, dtype=np.int32)  # (H, W, 3)
    return bool((np.abs(region - np.asarray(color)).sum(-1) <= tol).any())


def test_box_outline_lies_on_the_scaled_box_edges():
    img = draw_box(Image.new("RGB", (100, 100), (255, 255, 255)), [10, 20, 30, 40], PRED_COLOR, scale=(2.0, 1.0), width=2)
    assert img.getpixel((20, 20)) == PRED_COLOR  # top-left corner (x scaled by 2)
    assert img.getpixel((79, 59)) == PRED_COLOR  # bottom-right corner, inside the box
    assert img.getpixel((50, 21)) == PRED_COLOR  # top edge, 2 px thick
    assert img.getpixel((50, 22)) == (255, 255, 255)  # inside the outline
    assert img.getpixel((80, 40)) == (255, 255, 255)  # just outside the right edge
    clipped = draw_box(Image.new("RGB", (10, 10)), [5, 5, 50, 50], TRUE_COLOR)
    assert clipped.getpixel((9, 9)) == TRUE_COLOR  # clipped to the image


def test_grounding_picture_has_true_and_predicted_boxes_at_their_pixels():
    true_box, pred_box = [4, 4, 20, 20], [26, 26, 16, 16]
    out = decode(draw_grounding(Image.new("RGB", (SIZE, SIZE), (255, 255, 255)), "the left square", pred_box, true_box, iou=0.0))
    assert out.width == DISPLAY_SIZE and out.height > DISPLAY_SIZE  # the image, then the text panel

    def corners(box):
        x, y, w, h = box
        return [(round(x * SCALE), round(y * SCALE)), (round((x + w) * SCALE) - 1, round((y + h) * SCALE) - 1)]

    for xy in corners(true_box):
        assert out.getpixel(xy) == TRUE_COLOR
    for xy in corners(pred_box):
        assert out.getpixel(xy) == PRED_COLOR
    mid_top = (round((4 + 10) * SCALE), round(4 * SCALE) + 1)
    assert out.getpixel(mid_top) == TRUE_COLOR  # an edge, not only the corners
    assert out.getpixel((round(14 * SCALE), round(14 * SCALE))) == (255, 255, 255)  # box interiors untouched
    assert out.getpixel((round(34 * SCALE), round(34 * SCALE))) == (255, 255, 255)
    panel = (0, DISPLAY_SIZE, out.width, out.height)
    assert has_color(out, TRUE_COLOR, panel) and has_color(out, PRED_COLOR, panel)  # the legend
    assert has_color(out, BAD_COLOR, panel)  # IoU 0: a miss


def test_grounding_examples_join_truth_by_ref_id_and_refuse_paths_outside_the_root(image_root):
    refs = [
        {"image": "val/a.png", "text": "the thing", "bbox": [4, 4, 20, 20], "ref_id": 7, "split": "val"},
        {"image": "val/b.png", "text": "other", "bbox": [0, 0, 10, 10], "ref_id": 8, "split": "testA"},
    ]
    preds = {
        "val": [
            {"index": 0, "ref_id": 7, "image": "val/a.png", "text": "the thing", "pred_bbox": [4, 4, 20, 20]},
            {"index": 1, "ref_id": 99, "image": "../secret.png", "text": "escape", "pred_bbox": [0, 0, 10, 10]},
        ]
    }
    good, bad = grounding_examples(preds, {"refs": refs}, image_root)
    img = decode(good.image)
    assert img.getpixel((round(4 * SCALE), round(4 * SCALE))) == PRED_COLOR  # same box: prediction drawn on top
    assert "IoU 1.00" in good.caption
    out = decode(bad.image)
    assert out.getpixel((DISPLAY_SIZE - 2, DISPLAY_SIZE - 2)) == PLACEHOLDER  # grey, not the black file outside
    assert "outside" in bad.caption or ".." in bad.caption
    assert "no ground-truth box" in bad.caption
    with pytest.raises(UnsafePathError):
        open_image(image_root, "../secret.png")
    with pytest.raises(UnsafePathError):
        open_image(image_root, str(image_root.parent / "secret.png"))


def test_vqa_examples_show_question_prediction_and_truth(image_root):
    records = [
        {"question_id": 1, "image": "val/a.png", "question": "what colour?", "answer": ["white"] * 10},
        {"question_id": 2, "image": "val/b.png", "question": "how many?", "answer": ["2"] * 10},
    ]
    preds = {"val": [{"question_id": 1, "answer": "white"}, {"question_id": 2, "answer": "3"}]}
    right, wrong = vqa_examples(preds, {"val": records}, image_root)
    for ex in (right, wrong):
        img = decode(ex.image)
        assert img.width == DISPLAY_SIZE and img.height > DISPLAY_SIZE
    panel = (0, DISPLAY_SIZE, DISPLAY_SIZE, decode(right.image).height)
    assert has_color(decode(right.image), GOOD_COLOR, panel) and not has_color(decode(right.image), BAD_COLOR, panel, tol=30)
    assert has_color(decode(wrong.image), BAD_COLOR, panel)
    assert decode(wrong.image).getpixel((DISPLAY_SIZE // 2, DISPLAY_SIZE // 2)) == SOLIDS["val/b.png"]  # the right image
    assert "how many? -> 3" in wrong.caption


def test_retrieval_strip_frames_the_true_image(image_root):
    records = [{"image": name, "caption": [f"caption of {name}"]} for name in SOLIDS]  # text t belongs to image t
    preds = {"test": [{"query": "text", "index": 0, "text": "caption of val/a.png", "top": [2, 0, 1], "scores": [3.0, 2.0, 1.0]}]}
    (ex,) = retrieval_examples(preds, {"test": records}, image_root, n=2, k=5)
    img = decode(ex.image)
    tile = THUMB_SIZE + 8  # thumbnail + 4 px frame on each side
    assert img.width == 3 * tile + 2 * 6
    tiles = [(i * (tile + 6), 0, i * (tile + 6) + tile, img.height) for i in range(3)]
    assert has_color(img, TRUE_COLOR, tiles[1], tol=0)  # image 0 is ranked second
    assert not has_color(img, TRUE_COLOR, tiles[0], tol=0) and not has_color(img, TRUE_COLOR, tiles[2], tol=0)
    assert has_color(img, SOLIDS["val/c.png"], tiles[0], tol=0)  # rank 1 shows image 2
    assert "rank 2" in ex.caption
    (low,) = retrieval_examples(preds, {"test": records}, image_root, k=1)  # the true image is ranked below k
    img = decode(low.image)
    assert img.width == 2 * tile + 6  # rank 1, then the true image
    assert has_color(img, SOLIDS["val/a.png"], (tile + 6, 0, img.width, img.height), tol=0)
    assert has_color(img, TRUE_COLOR, (tile + 6, 0, img.width, img.height), tol=0)
    assert not has_color(img, TRUE_COLOR, (0, 0, tile, img.height), tol=0)


def test_captioning_examples_put_the_caption_under_the_image(image_root):
    records = [{"image": "val/c.png", "image_id": 3}]
    gt = {"images": [{"id": 3}], "annotations": [{"image_id": 3, "id": 1, "caption": "a yellow picture"}]}
    (ex,) = captioning_examples({"val": [{"image_id": 3, "caption": "a yellow square"}]}, {"val": records, "val_gt": gt}, image_root)
    img = decode(ex.image)
    assert img.width == DISPLAY_SIZE and img.height > DISPLAY_SIZE + 30
    assert img.getpixel((DISPLAY_SIZE // 2, DISPLAY_SIZE // 2)) == SOLIDS["val/c.png"]
    assert ex.caption.endswith("a yellow square")


def test_selection_is_deterministic_and_prefers_test():
    assert spread(10, 3) == [0, 4, 9]
    assert spread(2, 6) == [0, 1] and spread(0, 3) == [] and spread(5, 1) == [0]
    assert pick_split({"val": [1], "test": [1]}) == "test"
    assert pick_split({"val": [1], "test": []}) == "val"
    assert pick_split({"testB": [1], "testA": [1]}) == "testA"
    assert pick_split({"test": [1]}, available=["val"]) is None
