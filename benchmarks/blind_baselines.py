"""Image-blind baselines of grounding and captioning, from the validated annotation files.

* Grounding (RefCOCO+ layout): the mean training box predicted for every expression, accuracy at
  IoU >= 0.5 per evaluation split (``metrics.baselines.mean_box_accuracy``).
* Captioning (COCO Karpathy layout): one caption predicted for every image. Of the 20 most frequent
  training captions (``metrics.baselines.frequent_captions``), the one with the best validation CIDEr,
  scored on validation and test with the captioning pipeline's metrics.

A model that uses the image must beat these clearly. With ``--captioning-checkpoint`` the script also
scores a fine-tuned captioner on the test images and on Gaussian noise in their place: a captioner that
reads the image falls towards the constant caption. VQA and NLVR2 have their text-only baselines in the
shapes world's ``metadata.json`` (and ``benchmarks/vqa_blind_baseline.py``). Usage:

    python benchmarks/blind_baselines.py
    python benchmarks/blind_baselines.py --captioning-checkpoint data/06_models/finetune_captioning
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def grounding_baseline(refs_file: Path) -> dict[str, float]:
    """Mean-box accuracy per evaluation split of a grounding JSON (records with ``bbox`` and ``split``)."""
    from xfm_pipeline.metrics.baselines import mean_box_accuracy

    records = json.loads(refs_file.read_text())
    train = [r["bbox"] for r in records if r["split"] == "train"]
    splits = sorted({r["split"] for r in records} - {"train"})
    return {split: mean_box_accuracy(train, [r["bbox"] for r in records if r["split"] == split]) for split in splits}


def captioning_baseline(caption_dir: Path, candidates: int = 20) -> dict[str, object]:
    """The constant caption chosen on validation CIDEr and its metrics on ``val_gt.json`` / ``test_gt.json``."""
    from xfm_pipeline.data.formats.captioning import parse_caption_train, parse_coco_caption_gt
    from xfm_pipeline.metrics.baselines import frequent_captions
    from xfm_pipeline.metrics.captioning import caption_metrics

    references = {
        split: parse_coco_caption_gt(json.loads((caption_dir / f"{split}_gt.json").read_text()), f"captioning/{split}_gt").refs for split in ("val", "test")
    }
    train = [r.caption for r in parse_caption_train(json.loads((caption_dir / "train.json").read_text()))]

    def cider(caption: str) -> float:
        predictions = dict.fromkeys(references["val"], caption)
        return caption_metrics(predictions, references["val"], tokenizer="python", meteor=False)["cider"]

    caption = max(frequent_captions(train, candidates), key=cider)  # ties: the more frequent caption
    out: dict[str, object] = {"caption": caption, "candidates": candidates}
    for split, refs in references.items():
        out[split] = caption_metrics(dict.fromkeys(refs, caption), refs)
    return out


def captioning_noise_check(checkpoint: str, caption_dir: Path, image_root: str, split: str = "test") -> dict[str, object]:
    """Metrics of a fine-tuned captioner on ``split`` with the real images and with N(0, 1) noise images."""
    import torch

    from xfm_pipeline.jobs.finetune import eval_loader
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer
    from xfm_pipeline.tasks.captioning import TASK
    from xfm_pipeline.tasks.checkpoint import load_task_checkpoint, load_task_params

    data = {key: json.loads((caption_dir / f"{key}.json").read_text()) for key in ("train", split, f"{split}_gt")}
    model = load_task_checkpoint(checkpoint, data).eval()
    params = load_task_params(checkpoint)
    loader = eval_loader(TASK, split, data, load_checkpoint_tokenizer(checkpoint), params, image_root)
    with torch.no_grad():
        real = TASK.evaluate(TASK.predict(model, loader, params), split, data)
        noise_captions = TASK.predict(model, loader, params, noise_seed=0)
    noise = TASK.evaluate(noise_captions, split, data)
    return {"split": split, "real_images": real, "noise_images": noise, "noise_distinct_captions": len({p["caption"] for p in noise_captions})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/02_intermediate", help="directory with grounding/ and captioning/")
    parser.add_argument("--captioning-checkpoint", default=None, help="also score this finetune_captioning output with noise images")
    parser.add_argument("--image-root", default="data/01_raw/shapes_world/images")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    data = Path(args.data)
    report = {
        "grounding_mean_box_acc": grounding_baseline(data / "grounding" / "refcoco+.json"),
        "captioning_constant_caption": captioning_baseline(data / "captioning"),
    }
    for split, acc in report["grounding_mean_box_acc"].items():
        print(f"grounding {split}: mean training box, accuracy at IoU >= 0.5 = {100 * acc:.1f}%")
    captioning = report["captioning_constant_caption"]
    print(f"captioning: constant caption {captioning['caption']!r} (best validation CIDEr of the {captioning['candidates']} most frequent)")
    for split in ("val", "test"):
        metrics = ", ".join(f"{k} {100 * v:.1f}" for k, v in sorted(captioning[split].items()))
        print(f"captioning {split}: {metrics}")
    if args.captioning_checkpoint:
        check = captioning_noise_check(args.captioning_checkpoint, data / "captioning", args.image_root)
        report["captioning_noise_check"] = check
        for images in ("real_images", "noise_images"):
            metrics = ", ".join(f"{k} {v:.1f}" for k, v in sorted(check[images].items()))
            print(f"captioning checkpoint, {check['split']} with {images.replace('_', ' ')}: {metrics}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
