"""Time one training step of a preset on this machine (fp32, CPU threads as configured).

The step exercises every model path of an X-FM image-text iteration: vision encoder twice (clean and
MIM-masked), text encoder twice (clean and masked), fusion over B positives + 2B negatives and over
the masked text, ITC/ITM/MLM/MIM-shaped losses, backward and an AdamW update. Usage:

    python benchmarks/model_step.py --preset tiny --batch 8 --steps 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def matmul_peak_tflops(n: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 matmul throughput of this machine (TFLOP/s), the reference for the step."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def main() -> None:
    import torch
    import torch.nn.functional as F

    from xfm_pipeline.model import XFM, build_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = XFM(build_config(args.preset)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    cfg, b, n = model.config, args.batch, model.config.vision.num_patches
    vocab = model.text_encoder.config.vocab_size
    images = torch.randn(b, 3, cfg.vision.image_size, cfg.vision.image_size)
    ids = torch.randint(1000, 2000, (b, args.seq))
    atts = torch.ones(b, args.seq, dtype=torch.long)
    patch_mask = torch.rand(b, n) < 0.4

    def step() -> None:
        v = model.encode_image(images)  # (B, 1+N, Dv)
        t = model.encode_text(ids, atts)  # (B, L, Dt)
        sim = model.similarity(model.image_features(v), model.text_features(t))
        loss = F.cross_entropy(sim, torch.arange(b)) + F.cross_entropy(sim.t(), torch.arange(b))
        perm = torch.roll(torch.arange(b), 1)
        fused = model.fuse(torch.cat([t, t[perm], t]), torch.cat([atts] * 3), torch.cat([v, v, v[perm]]))
        labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).long()
        loss = loss + F.cross_entropy(model.itm_logits(fused), labels)
        t_masked = model.encode_text(ids, atts).detach()
        mlm = model.fusion_mlm_logits(model.fuse(t_masked, atts, v)[:, 1:16])
        loss = loss + F.cross_entropy(mlm.reshape(-1, vocab), ids[:, 1:16].reshape(-1))
        v_masked = model.encode_image(images, patch_mask)
        loss = loss + F.mse_loss(v_masked[:, 1:][patch_mask], v.detach()[:, 1:][patch_mask])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    med = statistics.median(times)
    params = sum(p.numel() for p in model.parameters())
    print(f"preset={args.preset} params={params:,} batch={b} image={cfg.vision.image_size}px seq={args.seq} threads={torch.get_num_threads()}")
    print(f"step time: median {med * 1000:.1f} ms, min {min(times) * 1000:.1f} ms over {args.steps} steps ({b / med:.1f} samples/s)")
    print(f"fp32 matmul peak measured in this run: {matmul_peak_tflops():.3f} TFLOP/s")


if __name__ == "__main__":
    main()
