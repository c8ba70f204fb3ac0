"""How fast the tiny vision encoder learns from scratch, with BEiT's linear patch embedding vs a conv stem.

Trains ``VisionEncoder`` + a linear head on the shapes world's ImageFolder set (6 shape classes, the
``finetune_imagenet`` data) for the same steps, batch, learning rate and seed with each stem, and prints the
held-out top-1 at a few points and the time per step. This is the measurement behind the tiny preset's
``vision.stem: conv``. Usage (after ``kedro run --pipeline data_ingestion``):

    python benchmarks/vision_stem.py --steps 300
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from xfm_pipeline.offline import use_offline_environment

use_offline_environment()


def _load(root: Path, split: str, size: int):
    import torch
    from PIL import Image

    from xfm_pipeline.data.transforms import eval_transform

    transform = eval_transform(size)
    classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / split / name).iterdir()):
            with Image.open(path) as image:
                images.append(transform(image.convert("RGB")))
            labels.append(label)
    if not images:
        raise SystemExit(f"no images under {root / split}; run `kedro run --pipeline data_ingestion` first")
    return torch.stack(images), torch.tensor(labels), len(classes)


def _train(stem: str, args, data) -> tuple[list[tuple[int, float]], float]:
    """Top-1 on the held-out split after every third of ``args.steps``, and the mean seconds per step."""
    import torch

    from xfm_pipeline.model.config import VisionConfig
    from xfm_pipeline.model.vision import VisionEncoder

    (x_train, y_train, num_classes), (x_val, y_val, _) = data
    torch.manual_seed(args.seed)
    config = VisionConfig(image_size=args.image_size, patch_size=8, width=192, depth=4, num_heads=3, drop_path_rate=0.0, stem=stem)
    encoder, head = VisionEncoder(config), torch.nn.Linear(192, num_classes)
    params = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05, betas=(0.9, 0.98))
    warmup = max(1, args.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * (args.steps - s) / args.steps)
    g = torch.Generator().manual_seed(args.seed)
    points, start = [], time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x_train), (args.batch_size,), generator=g)
        flip = torch.rand(args.batch_size, 1, 1, 1, generator=g) < 0.5
        x = torch.where(flip, x_train[idx].flip(-1), x_train[idx])  # (B, 3, H, W)
        loss = torch.nn.functional.cross_entropy(head(encoder(x)[:, 0]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        if step % max(1, args.steps // 3) == 0 or step == args.steps:
            with torch.no_grad():
                top1 = (head(encoder(x_val)[:, 0]).argmax(-1) == y_val).float().mean().item()
            points.append((step, top1))
    return points, (time.perf_counter() - start) / args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/01_raw/shapes_world/imagenet", help="ImageFolder root with train/ and val/")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    root = Path(args.root)
    data = (_load(root, "train", args.image_size), _load(root, "val", args.image_size))
    print(f"{len(data[0][0])} train / {len(data[1][0])} held-out images, {data[0][2]} classes, {args.steps} steps of {args.batch_size}")
    for stem in ("patch", "conv"):
        points, per_step = _train(stem, args, data)
        curve = ", ".join(f"step {s}: {100 * a:.1f}%" for s, a in points)
        print(f"stem={stem:5s}  held-out top-1 {curve}  ({per_step:.3f} s/step)")


if __name__ == "__main__":
    main()
