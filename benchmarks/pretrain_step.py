"""Benchmark of one X-FM pretraining step: time, samples/s, peak memory, FLOP/s and MFU.

The image-text step runs the real objective (ITC + ITM with hard negatives + image-conditioned MLM +
MIM) forward and backward plus the AdamW update, on random inputs of the paper's shapes (224 px for
base, 30-token texts). FLOPs are counted with ``torch.utils.flop_counter`` (matmul FLOPs of forward
and backward); the fp32 matmul peak of this machine is measured in the same run, and MFU is their
ratio. Usage:

    python benchmarks/pretrain_step.py --preset tiny --batch 8
    python benchmarks/pretrain_step.py --preset base --batch 8 --steps 3
    python benchmarks/pretrain_step.py --preset base --batch 8 --steps 3 --malloc default  # glibc as it comes

The training loop keeps freed memory in the process (``training.host_memory``); ``--malloc default`` measures
without that, and the page faults and system time per step show the difference.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def matmul_peak_flops(device: str, n: int = 4096, seconds: float = 3.0) -> float:
    """Best fp32 GEMM throughput (FLOP/s) over repeated n x n products (TF32 disabled on GPUs)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def image_text_batch(model, batch: int, seq: int, device: str):
    """Random inputs of the image_text stream, with real masks from the project's maskers."""
    import random

    import torch

    from xfm_pipeline.data.masking import BlockMaskGenerator, scaled_mask_sizes

    cfg, vocab = model.config.vision, model.text_encoder.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, min(vocab, 20000), (batch, seq), generator=g)
    num, block = scaled_mask_sizes(cfg.num_patches)
    masked_pos = torch.stack([torch.randperm(seq - 2, generator=g)[:15] + 1 for _ in range(batch)])
    masked_ids = ids.gather(1, masked_pos)
    ids_masked = ids.scatter(1, masked_pos, 4)
    out = {
        "stream": "image_text",
        "images": torch.randn(batch, 3, cfg.image_size, cfg.image_size, generator=g),
        "text_ids": ids,
        "text_atts": torch.ones(batch, seq, dtype=torch.long),
        "text_ids_masked": ids_masked,
        "masked_pos": masked_pos,
        "masked_ids": masked_ids,
        "image_patch_mask": BlockMaskGenerator(cfg.grid_size, num, block)(batch, random.Random(0)),
    }
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in out.items()}


def main() -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from xfm_pipeline.model import XFM, build_config
    from xfm_pipeline.objectives.pretrain import XFMPretrainObjective
    from xfm_pipeline.training.optim import create_optimizer, param_groups

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16 = autocast (GPUs)")
    parser.add_argument("--malloc", default="keep", choices=["keep", "default"], help="keep = as the training loop")
    args = parser.parse_args()
    if args.malloc == "keep":
        from xfm_pipeline.training.host_memory import keep_freed_memory

        keep_freed_memory()

    torch.manual_seed(0)
    model = XFM(build_config(args.preset)).to(args.device).train()
    optimizer = create_optimizer(param_groups(model, 1e-4, 0.01))
    objective = XFMPretrainObjective()
    batch = image_text_batch(model, args.batch, args.seq, args.device)
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def step() -> None:
        with autocast:
            loss = objective(model, batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up (allocations, kernels)
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    times, faults, system = [], [], []
    for _ in range(args.steps):
        _sync(args.device)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        step()
        _sync(args.device)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
        faults.append(after.ru_minflt - usage.ru_minflt)
        system.append(after.ru_stime - usage.ru_stime)
    med = statistics.median(times)
    peak = matmul_peak_flops(args.device)
    if args.device == "cuda":
        memory = torch.cuda.max_memory_allocated() / 2**30
    else:
        memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    params = sum(p.numel() for p in model.parameters())
    print(f"preset={args.preset} params={params:,} device={args.device} dtype={args.dtype} threads={torch.get_num_threads()}")
    print(f"batch={args.batch} image={model.config.vision.image_size}px seq={args.seq} objectives=ITC+ITM+IMLM+MIM (+AdamW)")
    print(f"step time: median {med:.3f} s (min {min(times):.3f}, {args.steps} steps); {args.batch / med:.2f} samples/s")
    print(f"per step: {statistics.median(faults):,.0f} minor page faults, {statistics.median(system):.2f} s system time (malloc={args.malloc})")
    print(f"peak memory: {memory:.2f} GiB ({'GPU allocated' if args.device == 'cuda' else 'process max RSS'})")
    print(f"FLOPs per step (fwd+bwd, flop_counter): {flops / 1e12:.3f} TFLOP; achieved {flops / med / 1e12:.3f} TFLOP/s")
    print(
        f"fp32 matmul peak measured in this run: {peak / 1e12:.3f} TFLOP/s; "
        f"MFU = {flops / med / peak:.1%} (median step), {flops / min(times) / peak:.1%} (fastest step)"
    )


if __name__ == "__main__":
    main()
