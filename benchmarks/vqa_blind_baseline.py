"""Blind-baseline check of a fine-tuned VQA model: accuracy with the real images vs Gaussian-noise images.

A model that uses the image must lose accuracy when the image is replaced by noise, falling towards the
text-only baselines (in the shapes world, ``metadata.json`` ``baselines``: ``vqa_text_prior_test``, the
most frequent answer per question type, and ``vqa_question_prior_test``, the most frequent training answer
of the same question). Usage:

    python benchmarks/vqa_blind_baseline.py --checkpoint data/06_models/finetune_vqa --split test
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from xfm_pipeline.offline import use_offline_environment

use_offline_environment()
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="data/06_models/finetune_vqa", help="task checkpoint directory (finetune_vqa output)")
    parser.add_argument("--data", default="data/02_intermediate/vqa", help="directory with <split>.json and answer_list.json")
    parser.add_argument("--image-root", default="data/01_raw/shapes_world/images")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N questions (0 = all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    args = parser.parse_args()

    import torch

    from xfm_pipeline.jobs.finetune import eval_loader
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer
    from xfm_pipeline.tasks.checkpoint import load_task_checkpoint, load_task_params
    from xfm_pipeline.tasks.vqa import TASK, noise_image_accuracy

    torch.set_num_threads(args.threads)
    data_dir = Path(args.data)
    data = {args.split: json.loads((data_dir / f"{args.split}.json").read_text()), "answer_list": json.loads((data_dir / "answer_list.json").read_text())}
    if args.limit:
        data[args.split] = data[args.split][: args.limit]
    model = load_task_checkpoint(args.checkpoint, data).eval()
    params = load_task_params(args.checkpoint)
    loader = eval_loader(TASK, args.split, data, load_checkpoint_tokenizer(args.checkpoint), params, args.image_root)
    start = time.perf_counter()
    with torch.no_grad():
        real = TASK.evaluate(TASK.predict(model, loader, params), args.split, data)
        noise = noise_image_accuracy(TASK, model, loader, params, args.split, data, seed=0)
    metadata = Path(args.image_root).parent / "metadata.json"
    report = {"split": args.split, "questions": len(data[args.split]), "real_images": real, "noise_images": noise}
    report["text_prior"] = _baseline(metadata, "vqa_text_prior_test")
    report["question_prior"] = _baseline(metadata, "vqa_question_prior_test")
    print(json.dumps({**report, "seconds": round(time.perf_counter() - start, 1)}, indent=2))


def _baseline(metadata: Path, key: str):
    if not metadata.is_file():
        return None
    scores = json.loads(metadata.read_text()).get("baselines", {}).get(key)
    return {k: round(100 * v, 2) for k, v in scores.items()} if isinstance(scores, dict) else scores


if __name__ == "__main__":
    main()
