"""Example predictions drawn on their images: VQA, retrieval, grounding, captioning.

Two layers:

* ``draw_*``: one picture from already-opened images and plain values (pure PIL, tested pixel-wise);
* ``*_examples``: pick a few predictions of one split (evenly spaced, deterministic), join them with the
  validated records the task was evaluated on (``data/02_intermediate/<task>/``) and draw them. Images are
  opened under the image root with :func:`~xfm_pipeline.reporting.drawing.open_or_placeholder`: a path
  escaping the root or a missing file becomes a grey picture saying why, never a silent gap.

Prediction formats (``data/07_model_output/<pipeline>/predictions.json``, ``{split: [records]}``):
VQA ``{"question_id", "answer"}``; retrieval ``{"query": "text", "index", "text", "top", "scores"}`` (and
image queries); grounding ``{"index", "ref_id", "image", "text", "pred_bbox": [x, y, w, h]}``;
captioning ``{"image_id", "caption"}``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfm_pipeline.reporting.drawing import (
    BAD_COLOR,
    GOOD_COLOR,
    MUTED_COLOR,
    PRED_COLOR,
    TEXT_COLOR,
    TRUE_COLOR,
    draw_box,
    fit,
    frame,
    open_or_placeholder,
    stack,
    text_panel,
)

if TYPE_CHECKING:
    from PIL import Image

SPLIT_PREFERENCE = ("test", "val", "testA", "testB")
THUMB_SIZE = 128  # retrieval thumbnails
NEUTRAL_FRAME = (225, 225, 225)


@dataclass
class Example:
    """One drawn example and the text that describes it (HTML caption / alt text)."""

    image: Image.Image
    caption: str


# --- drawing ---------------------------------------------------------------------------------------


def draw_vqa(image: Image.Image, question: str, answer: str, truths: Sequence[str], accuracy: float | None) -> Image.Image:
    """The image with the question, the predicted answer (green text when its VQA accuracy is above 0,
    red when 0) and the most common human answer (``truths`` empty: "none in this split")."""
    shown, _, _ = fit(image)
    if truths:
        top, count = Counter(truths).most_common(1)[0]
        truth_line = f"truth: {top} ({count}/{len(truths)} annotators)"
    else:
        truth_line = "truth: (none in this split)"
    color = TEXT_COLOR if accuracy is None else (GOOD_COLOR if accuracy > 0 else BAD_COLOR)
    acc = "" if accuracy is None else f"  [VQA acc {accuracy:.2f}]"
    panel = text_panel(shown.width, [(f"Q: {question}", TEXT_COLOR), (f"prediction: {answer}{acc}", color), (truth_line, MUTED_COLOR)])
    return stack([shown, panel])


def draw_grounding(image: Image.Image, text: str, pred_box: Sequence[float] | None, true_box: Sequence[float] | None, iou: float | None = None) -> Image.Image:
    """The image (resized to the display size) with the true box in cyan, the predicted one in magenta
    (drawn last, on top), and the referring expression under it."""
    shown, sx, sy = fit(image)
    if true_box is not None:
        shown = draw_box(shown, true_box, TRUE_COLOR, (sx, sy))
    if pred_box is not None:
        shown = draw_box(shown, pred_box, PRED_COLOR, (sx, sy))
    lines = [(f'"{text}"', TEXT_COLOR), ("true box", TRUE_COLOR), ("predicted box", PRED_COLOR)]
    if iou is not None:
        lines.append((f"IoU {iou:.2f} ({'hit' if iou >= 0.5 else 'miss'}: IoU >= 0.5 counts)", GOOD_COLOR if iou >= 0.5 else BAD_COLOR))
    return stack([shown, text_panel(shown.width, lines)])


def draw_retrieval(query: str, candidates: Sequence[tuple[Image.Image, str, bool]], note: str = "") -> Image.Image:
    """A text query over a strip of its ranked images: ``(image, label, is_true)`` each, the true
    image framed in cyan, the others in light grey, the label under each thumbnail."""
    tiles = []
    for image, label, is_true in candidates:
        thumb, _, _ = fit(image, THUMB_SIZE)
        tile = frame(thumb, TRUE_COLOR if is_true else NEUTRAL_FRAME)
        tiles.append(stack([tile, text_panel(tile.width, [(label + ("  (true)" if is_true else ""), TEXT_COLOR)], size=11)]))
    strip = stack(tiles, vertical=False, gap=6)
    header = [(f'query: "{query}"', TEXT_COLOR)] + ([(note, MUTED_COLOR)] if note else [])
    return stack([text_panel(strip.width, header), strip])


def draw_caption(image: Image.Image, caption: str, references: Sequence[str]) -> Image.Image:
    """The image with the generated caption and up to two reference captions under it."""
    shown, _, _ = fit(image)
    lines = [(f"generated: {caption or '(empty)'}", TEXT_COLOR)]
    lines += [(f"reference: {r}", MUTED_COLOR) for r in list(references)[:2]]
    return stack([shown, text_panel(shown.width, lines)])


# --- selection and joining -------------------------------------------------------------------------


def spread(n_items: int, n: int) -> list[int]:
    """``n`` (at most ``n_items``) indices evenly spread over ``range(n_items)``, first and last included."""
    if n_items <= 0 or n <= 0:
        return []
    if n >= n_items:
        return list(range(n_items))
    if n == 1:
        return [0]
    return sorted({round(i * (n_items - 1) / (n - 1)) for i in range(n)})


def pick_split(predictions: dict[str, list], available: Sequence[str] | None = None) -> str | None:
    """The split to draw: the first of test/val/testA/testB with predictions (and, when ``available``
    is given, with data), else the first other such split; None when there is none."""
    ok = [s for s, p in predictions.items() if p and (available is None or s in available)]
    return next((s for s in SPLIT_PREFERENCE if s in ok), ok[0] if ok else None)


def vqa_examples(predictions: dict[str, list], data: dict[str, Any], image_root: str | Path, n: int = 6) -> list[Example]:
    """Questions of one split with the predicted and the human answers (prefers a split with answers)."""
    from xfm_pipeline.data.formats.vqa import parse_vqa
    from xfm_pipeline.metrics.vqa import vqa_question_accuracy

    with_answers = [s for s in data if any(r.get("answer") for r in data[s] or [] if isinstance(r, dict))]
    split = pick_split(predictions, with_answers) or pick_split(predictions, list(data))
    if split is None:
        return []
    records = parse_vqa(data[split], f"vqa/{split}")
    by_id = {(r.question_id if r.question_id is not None else i): r for i, r in enumerate(records)}
    preds = [p for p in predictions[split] if p.get("question_id") in by_id]
    out = []
    for i in spread(len(preds), n):
        p = preds[i]
        record = by_id[p["question_id"]]
        image, problem = open_or_placeholder(image_root, record.image)
        accuracy = vqa_question_accuracy(p["answer"], record.answer) if record.answer else None
        drawn = draw_vqa(image, record.question, p["answer"], record.answer, accuracy)
        out.append(Example(drawn, f"{split} {record.image}: {record.question} -> {p['answer']}" + (f" ({problem})" if problem else "")))
    return out


def retrieval_examples(predictions: dict[str, list], data: dict[str, Any], image_root: str | Path, n: int = 3, k: int = 5) -> list[Example]:
    """Top-``k`` images for ``n`` text queries of one split; the image the caption belongs to is framed
    cyan, and added after the ``k`` when it is ranked lower."""
    from xfm_pipeline.data.formats.retrieval import parse_retrieval_eval

    split = pick_split({s: [p for p in v if p.get("query") == "text"] for s, v in predictions.items()}, list(data))
    if split is None:
        return []
    records = parse_retrieval_eval(data[split], f"retrieval/{split}")
    txt2img = [i for i, r in enumerate(records) for _ in r.caption]
    queries = [p for p in predictions[split] if p.get("query") == "text" and 0 <= p.get("index", -1) < len(txt2img)]
    out = []
    for i in spread(len(queries), n):
        q = queries[i]
        truth = txt2img[q["index"]]
        ranked = list(q["top"])
        rank = ranked.index(truth) + 1 if truth in ranked else None
        candidates = []
        for r, (img_index, score) in enumerate(zip(ranked[:k], list(q.get("scores", []))[:k] or [None] * k), start=1):
            image, _ = open_or_placeholder(image_root, records[img_index].image, THUMB_SIZE)
            label = f"#{r}" + (f"  {score:.2f}" if isinstance(score, (int, float)) and score > -1e5 else "")
            candidates.append((image, label, img_index == truth))
        if truth not in ranked[:k]:  # show the image the caption belongs to after the strip
            image, _ = open_or_placeholder(image_root, records[truth].image, THUMB_SIZE)
            candidates.append((image, f"#{rank}" if rank else f"below #{len(ranked)}", True))
        note = f"true image at rank {rank}" if rank else f"true image not in the top {len(ranked)}"
        out.append(Example(draw_retrieval(q.get("text", ""), candidates, note), f'{split} text query "{q.get("text", "")}": {note}'))
    return out


def grounding_examples(predictions: dict[str, list], data: dict[str, Any], image_root: str | Path, n: int = 6) -> list[Example]:
    """Referring expressions of one split with the predicted (magenta) and true (cyan) boxes (``data["refs"]``:
    the validated refs, which hold every split)."""
    from xfm_pipeline.data.formats.grounding import parse_grounding
    from xfm_pipeline.metrics.grounding import box_iou_xywh

    split = pick_split(predictions)
    if split is None:
        return []
    refs = data.get("refs")
    truth = {r.ref_id: r for r in parse_grounding(refs, "grounding/refs", split=split)} if refs is not None else {}
    preds = predictions[split]
    out = []
    for i in spread(len(preds), n):
        p = preds[i]
        record = truth.get(p.get("ref_id"))
        true_box = list(record.bbox) if record else None
        iou = float(box_iou_xywh(p["pred_bbox"], true_box)) if true_box else None
        image, problem = open_or_placeholder(image_root, p["image"])
        drawn = draw_grounding(image, p["text"], None if problem else p["pred_bbox"], None if problem else true_box, iou)
        note = "" if record else " (no ground-truth box found)"
        out.append(
            Example(
                drawn, f'{split} {p["image"]}: "{p["text"]}"' + (f", IoU {iou:.2f}" if iou is not None else "") + note + (f" ({problem})" if problem else "")
            )
        )
    return out


def captioning_examples(predictions: dict[str, list], data: dict[str, Any], image_root: str | Path, n: int = 6) -> list[Example]:
    """Generated captions of one split under their images, with reference captions when known."""
    from xfm_pipeline.data.formats.captioning import parse_caption_eval, parse_coco_caption_gt

    split = pick_split(predictions, [s for s in data if not s.endswith("_gt")])
    if split is None:
        return []
    images = {r.image_id: r.image for r in parse_caption_eval(data[split], f"captioning/{split}")}
    gt = data.get(f"{split}_gt")
    refs = parse_coco_caption_gt(gt, f"captioning/{split}_gt").refs if gt else {}
    preds = [p for p in predictions[split] if p.get("image_id") in images]
    out = []
    for i in spread(len(preds), n):
        p = preds[i]
        image, problem = open_or_placeholder(image_root, images[p["image_id"]])
        drawn = draw_caption(image, p["caption"], refs.get(p["image_id"], ()))
        out.append(Example(drawn, f"{split} {images[p['image_id']]}: {p['caption']}" + (f" ({problem})" if problem else "")))
    return out
