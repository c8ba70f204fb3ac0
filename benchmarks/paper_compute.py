"""The compute the paper's pretraining schedule implies: FLOPs of one base pretraining step at the paper's
per-GPU batches, times the steps and GPUs of ``conf/paper``, as H100 GPU-hours at an assumed MFU.

Nothing here is measured on a GPU: FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode``
(the matmul, convolution and attention FLOPs of forward and backward; the optimizer update and data loading
are not counted), and time = FLOPs / (peak x MFU) with an ASSUMED model FLOPs utilisation.

The step is the pretraining job's: the ``base`` preset (327.3M parameters, RoBERTa-base architecture,
224 px), each stream's batch made by the job's sample builders and collation from synthetic records
(random JPEG images, captions long enough to fill ``max_tokens``, as the paper pads to it) and passed
through the X-FM objective, forward and backward, with the stream settings, objective weights and box head
of ``conf/paper/parameters_pretrain.yml``. Counting at the paper's batch (96 images per GPU) on a CPU would take
long, so each stream is counted at a few small batches and extrapolated linearly (the only non-linear terms,
the ITC similarity matrices, are B x B x 256 products: negligible); the fit's largest relative residual is
printed (three batches or more). Usage:

    python benchmarks/paper_compute.py
    python benchmarks/paper_compute.py --batches 2 3 4 --mfu 0.4 --peak-tflops 989
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import random
from pathlib import Path

from xfm_pipeline.offline import use_offline_environment

use_offline_environment()
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parents[1]
H100_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H100 SXM, dense bf16 tensor-core peak
ASSUMED_MFU = 0.40
STREAMS = ("image_text", "region_text", "image_only", "text_only")
WORDS = "a the red green blue man woman dog cat street car tree sky water table plate food sits stands near on under with holding".split()


def paper_pretraining() -> dict:
    """``params:pretrain`` of the paper environment (conf/base + conf/paper)."""
    from kedro.config import OmegaConfigLoader

    from xfm_pipeline.settings import CONFIG_LOADER_ARGS

    return OmegaConfigLoader(str(REPO / "conf"), env="paper", **CONFIG_LOADER_ARGS)["parameters"]["pretrain"]


def _jpeg_base64(rng: random.Random, size: int = 256) -> str:
    from PIL import Image

    image = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return base64.b64encode(buffer.getvalue()).decode()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def synthetic_records(stream: str, n: int, seed: int = 0) -> list[dict]:
    """``n`` JSON records of ``stream`` whose texts fill their token budget (base64 images, so no image root)."""
    rng = random.Random(seed)
    if stream == "image_text":
        return [{"binary": _jpeg_base64(rng), "desc": _sentence(rng, 40)} for _ in range(n)]
    if stream == "region_text":
        boxes = [[16, 16, 96, 96], [128, 16, 96, 96], [16, 128, 96, 96], [128, 128, 96, 96], [64, 64, 128, 128]]
        return [
            {"binary": _jpeg_base64(rng), "caption": _sentence(rng, 40), "elems": [{"bb": bb, "caption": _sentence(rng, 40)} for bb in boxes]} for _ in range(n)
        ]
    if stream == "image_only":
        return [{"binary": _jpeg_base64(rng)} for _ in range(n)]
    return [{"desc": _sentence(rng, 200)} for _ in range(n)]


def stream_batch(stream: str, batch_size: int, sp, model, tokenizer) -> dict:
    """One collated batch of ``stream`` from the pretraining job's own sample builder
    (``jobs.pretrain.sample_builder`` with the settings ``sp``), on synthetic records."""
    from xfm_pipeline.data import pretrain_datasets as pd
    from xfm_pipeline.data.formats.pretrain import parse_corpus
    from xfm_pipeline.jobs.pretrain import sample_builder

    dataset = sample_builder(stream, sp, model, tokenizer, parse_corpus(synthetic_records(stream, batch_size), stream))
    return pd.collate(stream)([dataset[(i, i)] for i in range(batch_size)])


def count_step_flops(model, objective, batch: dict) -> int:
    """Forward + backward FLOPs of the objective on ``batch`` (gradients cleared after)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        objective(model, batch)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def linear_fit(points: list[tuple[int, int]]) -> tuple[float, float, float]:
    """Least-squares ``flops = a + b x batch`` through ``points``; also the largest relative residual (0 with
    two points: pass three batches to check the linearity)."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    a = my - b * mx
    return a, b, max(abs(a + b * x - y) / y for x, y in points)


def main() -> None:
    import torch

    from xfm_pipeline.config import from_dict
    from xfm_pipeline.jobs.pretrain import PretrainParams
    from xfm_pipeline.model import XFM, build_config
    from xfm_pipeline.model.text import load_tokenizer
    from xfm_pipeline.objectives.pretrain import ObjectiveWeights, XFMPretrainObjective

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[2, 3, 4], help="per-stream batches counted (>= 2 each: ITM needs a negative)")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS, help="GPU peak (dense bf16 TFLOP/s)")
    parser.add_argument("--mfu", type=float, default=ASSUMED_MFU, help="assumed model FLOPs utilisation")
    args = parser.parse_args()
    if len(set(args.batches)) < 2 or min(args.batches) < 2:
        parser.error("--batches needs at least two different sizes, each >= 2")

    raw = paper_pretraining()
    params = from_dict(PretrainParams, raw, path="pretrain")
    world = raw["distributed"]["nproc_per_node"] * raw["distributed"]["nnodes"]
    steps = raw["loop"]["max_steps"]
    torch.manual_seed(0)
    model = XFM(build_config("base")).train()  # the paper's architecture; the weights do not change the FLOPs
    tokenizer = load_tokenizer("all-minilm-l6-v2")  # a packaged WordPiece tokenizer; only the token counts matter
    objective = XFMPretrainObjective(ObjectiveWeights(**params.objectives), params.detach_text_for_fusion, 0, params.box_head)

    total_params = sum(p.numel() for p in model.parameters())  # with the pointer box head, which the cls box head leaves idle
    print(f"X-FM base: {total_params:,} parameters, {model.config.vision.image_size} px; paper world {world} GPUs; box head {params.box_head}")
    per_gpu_step = 0.0
    for stream in STREAMS:
        sp = getattr(params, stream)
        per_gpu = sp.batch_size // world
        points = [(b, count_step_flops(model, objective, stream_batch(stream, b, sp, model, tokenizer))) for b in sorted(set(args.batches))]
        a, b, residual = linear_fit(points)
        flops = a + b * per_gpu
        per_gpu_step += flops
        unit = f"images x {sp.texts_per_image} texts" if stream == "region_text" else "samples"
        counted = ", ".join(f"{x}: {y / 1e12:.3f}" for x, y in points)
        print(f"{stream:<12} per GPU {per_gpu} {unit}: {flops / 1e12:8.2f} TFLOP (counted at {counted} TFLOP; fit residual {residual:.1e})")
    total = per_gpu_step * world * steps
    gpu_seconds = total / (args.peak_tflops * 1e12 * args.mfu)
    print(f"one pretraining step, per GPU: {per_gpu_step / 1e12:.1f} TFLOP (fwd+bwd); x {world} GPUs = {per_gpu_step * world / 1e15:.2f} PFLOP")
    print(f"schedule: {steps:,} steps -> {total:.3e} FLOP")
    print(
        f"at {args.peak_tflops:g} TFLOP/s x {args.mfu:.0%} MFU (ASSUMED; no GPU measured): {gpu_seconds / 3600:,.0f} GPU-hours, "
        f"{gpu_seconds / 3600 / world:,.1f} h on {world} GPUs ({gpu_seconds / world / steps:.3f} s per step)"
    )


if __name__ == "__main__":
    main()
