"""The largest pretraining batch per GPU at 224 px, with and without activation checkpointing.

The base preset's image-text step (ITC + ITM + image-conditioned MLM + MIM, backward, AdamW) in bf16
autocast is run at doubling batch sizes until CUDA runs out of memory, then bisected between the last
batch that fit and the first that did not. Printed per setting: the largest batch, its peak memory and
its step time (the samples/s a GPU reaches at that batch). Usage (on a GPU):

    python benchmarks/max_batch.py --preset base
"""

from __future__ import annotations

import argparse
import time

from xfm_pipeline.offline import use_offline_environment

use_offline_environment()


class Trial:
    """The base model, its optimizer and objective, built once per setting; :meth:`step` tries one batch size."""

    def __init__(self, preset: str, checkpointing: bool):
        import torch

        from xfm_pipeline.model import XFM, build_config
        from xfm_pipeline.objectives.pretrain import XFMPretrainObjective
        from xfm_pipeline.training.optim import create_optimizer, param_groups

        torch.manual_seed(0)
        self.model = XFM(build_config(preset, {"activation_checkpointing": checkpointing})).cuda().train()
        self.optimizer = create_optimizer(param_groups(self.model, 1e-4, 0.01))
        self.objective = XFMPretrainObjective()

    def step(self, batch: int) -> tuple[float, float] | None:
        """(seconds, peak GiB) of a step at ``batch`` after a warm-up step, or None when CUDA runs out of memory."""
        import torch
        from pretrain_step import image_text_batch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        inputs = None
        try:
            inputs = image_text_batch(self.model, batch, 30, "cuda")
            seconds = 0.0
            for _ in range(2):  # warm-up, then the timed step
                torch.cuda.synchronize()
                start = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = self.objective(self.model, inputs)["loss"]
                loss.backward()
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                seconds = time.perf_counter() - start
            return seconds, torch.cuda.max_memory_allocated() / 2**30
        except torch.OutOfMemoryError:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        finally:
            del inputs
            torch.cuda.empty_cache()


def largest_batch(trial, start: int = 16, limit: int = 4096) -> tuple[int, tuple[float, float] | None]:
    """Doubling from ``start`` until a batch does not fit, then bisection to within ~6%: (largest batch, its
    (seconds, GiB)); ``trial.step(batch)`` returns None when a batch does not fit."""
    good, good_run, bad = 0, None, None
    batch = start
    while batch <= limit:
        run = trial.step(batch)
        if run is None:
            bad = batch
            break
        good, good_run = batch, run
        batch *= 2
    if bad is None:
        return good, good_run
    while bad - good > max(1, good // 16):
        middle = (good + bad) // 2
        run = trial.step(middle)
        if run is None:
            bad = middle
        else:
            good, good_run = middle, run
    return good, good_run


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="base")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("max_batch.py needs a CUDA device")
    print(f"device: {torch.cuda.get_device_name()} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)")
    for checkpointing in (False, True):
        trial = Trial(args.preset, checkpointing)
        batch, run = largest_batch(trial)
        del trial
        label = "with" if checkpointing else "without"
        if run is None:
            print(f"{args.preset} {label} activation checkpointing: no batch fits")
            continue
        seconds, gib = run
        print(
            f"{args.preset} at 224 px {label} activation checkpointing: largest batch {batch} per GPU, "
            f"peak {gib:.1f} GiB, step {seconds:.3f} s ({batch / seconds:.0f} samples/s)"
        )


if __name__ == "__main__":
    main()
