"""One explicit training loop on ``accelerate.Accelerator`` (nanoGPT / open_clip style).

It knows nothing about X-FM: every optimizer step draws one batch from each stream (times the
accumulation steps), calls ``objective(model, batch) -> {"loss": ..., other losses}``, back-propagates
``stream weight * loss``, then clips, takes ONE optimizer step and ONE scheduler step.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xfm_pipeline.training import checkpointing as ckpt
from xfm_pipeline.training import sharding
from xfm_pipeline.training.host_memory import keep_freed_memory
from xfm_pipeline.training.optim import create_optimizer, eval_frozen_submodules, freeze_zero_scaled, linear_warmup_decay, param_groups, warmup_steps_of
from xfm_pipeline.training.sampling import StreamIterator, StreamSampler, sample_seed

log = logging.getLogger(__name__)

SHARDING = ("ddp", "fsdp")


@dataclass
class LoopConfig:
    """Optimisation and bookkeeping of one training run."""

    max_steps: int = 100  # optimizer steps
    lr: float = 1e-4  # peak learning rate
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not on biases/norms)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])  # AdamW betas
    eps: float = 1e-8  # AdamW epsilon
    warmup: float = 0.1  # warm-up steps (>= 1) or fraction of max_steps (< 1)
    lr_mult: float = 2.0  # learning-rate multiplier of new_param_prefixes
    new_param_prefixes: list[str] = field(default_factory=list)  # freshly initialised parameters (heads, temp)
    lr_scales: dict[str, float] = field(default_factory=dict)  # name prefix -> lr multiplier (longest wins; 0 = frozen)
    grad_clip: float = 1.0  # global gradient-norm clip (0 = off)
    grad_accum_steps: int = 1  # micro-steps per optimizer step
    mixed_precision: str = "no"  # "no" (fp32, right for CPUs) or "bf16" (GPUs)
    sharding: str = "ddp"  # ddp: weights replicated per rank | fsdp: weights, grads, optimizer state sharded (FSDP2)
    seed: int = 0  # base seed; dropout seeds differ per rank and step
    checkpoint_every: int = 0  # save every N steps (0 = only at the end)
    keep_last: int = 2  # checkpoints kept on disk
    log_every: int = 10  # steps between logged metric points
    progress: bool = True  # tqdm bar on rank 0
    eval_every: int = 0  # steps between validation runs of the `evaluate` callback (0 = only at the end)
    select_metric: str = ""  # key of the validation metrics that picks the best checkpoint ("" = last)
    select_mode: str = "max"  # "max" or "min"


@dataclass
class Stream:
    """A data stream: its loader (built on a StreamSampler) and loss weight."""

    loader: Any  # iterable of batches (dicts of tensors)
    sampler: StreamSampler  # deterministic position, used for resume
    weight: float = 1.0  # multiplies the stream's total loss
    samples_per_batch: int = 0  # global batch size, for throughput


@dataclass
class TrainResult:
    """What rank 0 returns to the caller."""

    step: int
    history: list[dict[str, float]]  # one dict per logged step: step, lr, losses, samples/s (+ val/*)
    final_checkpoint: str | None
    resumed_from: str | None
    best_checkpoint: str | None = None  # directory of the best validation checkpoint (when selecting)
    best_metrics: dict[str, float] | None = None  # validation metrics of that checkpoint
    best_step: int | None = None  # the step at which it was validated


class _ObjectiveModule(nn.Module):
    """Makes ``objective(model, batch)`` the forward of one module, so DDP sees every parameter use."""

    def __init__(self, model: nn.Module, objective: Callable):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, batch):
        return self.objective(self.model, batch)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def make_accelerator(mixed_precision: str = "no"):
    """An Accelerator for this process (DDP with unused-parameter detection when distributed)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    return Accelerator(
        mixed_precision=mixed_precision,
        cpu=not torch.cuda.is_available(),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def train(
    model: nn.Module,
    objective: Callable[[nn.Module, dict], dict[str, torch.Tensor]],
    streams: dict[str, Stream],
    config: LoopConfig,
    output_dir: str | Path,
    accelerator=None,
    write_metadata: Callable[[Path, nn.Module], None] | None = None,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    evaluate: Callable[[nn.Module, int], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``model`` until ``config.max_steps``, resuming from the newest valid checkpoint in ``output_dir``.

    Args:
        model: the bare module (wrapped here for DDP).
        objective: ``objective(model, batch) -> dict`` with a scalar ``"loss"`` and other scalar entries to log.
        streams: name -> :class:`Stream`; every optimizer step draws ``grad_accum_steps`` batches from each.
        config: optimisation settings.
        output_dir: where ``checkpoint-*`` directories and ``history.json`` go.
        accelerator: an ``accelerate.Accelerator`` (one is made if ``None``).
        write_metadata: called with each checkpoint's temporary directory and the unsharded model to write
            its config/tokenizer files.
        on_log: called on rank 0 with (step, metrics) every ``log_every`` steps and at the end.
        evaluate: validation callback ``evaluate(model, step) -> metrics`` run on rank 0 every ``eval_every`` steps
            and at the end; with ``select_metric`` the best-scoring weights are kept in ``output_dir/best``
            (model selection on validation, never on test).

    Raises:
        ValueError: unknown ``config.sharding``, or ``fsdp`` with an ``evaluate`` callback (validation runs
            on rank 0 alone, which sharded weights cannot).
    """
    from tqdm.auto import tqdm

    accelerator = accelerator or make_accelerator(config.mixed_precision)
    if accelerator.device.type == "cpu":
        keep_freed_memory()  # activations are reused every step instead of page-faulted in again
    output_dir = Path(output_dir)
    is_main = accelerator.is_main_process
    rank = accelerator.process_index

    if config.sharding not in SHARDING:
        raise ValueError(f"sharding must be one of {SHARDING}, got {config.sharding!r}")
    fsdp = config.sharding == "fsdp"
    if fsdp and evaluate is not None:
        raise ValueError("sharding 'fsdp' cannot run a validation callback (it runs on rank 0 alone); use 'ddp'")
    frozen = freeze_zero_scaled(model, config.lr_scales)
    if frozen and is_main:
        log.info("lr_scales freeze %d parameter tensors (%s ...)", len(frozen), frozen[0])
    if model.training:
        eval_frozen_submodules(model)

    start_step, resumed_from, history, best, state = 0, None, [], None, None
    latest = ckpt.latest_valid_checkpoint(output_dir)
    if latest is not None:
        state = ckpt.load_training_state(latest, model)  # full weights, before any sharding
        start_step, resumed_from, best = int(state["step"]), str(latest), state.get("best")
        history = [h for h in state.get("history", []) if h["step"] <= start_step]
        for name, stream in streams.items():
            stream.sampler.start_batch = int(state["data_positions"][name])
        log.info("resumed from %s at step %d", latest, start_step)
    wrapper = _ObjectiveModule(model, objective)
    export = None  # fsdp: rank 0's unsharded CPU copy that checkpoints are written from
    if fsdp:
        model.to(accelerator.device)
        export = copy.deepcopy(model).cpu() if is_main else None
        sharding.shard_model(wrapper, model, accelerator.device.type, accelerator.num_processes)
    groups = param_groups(model, config.lr, config.weight_decay, config.new_param_prefixes, config.lr_mult, config.lr_scales)
    optimizer = create_optimizer(groups, config.betas, config.eps)
    scheduler = linear_warmup_decay(optimizer, warmup_steps_of(config.warmup, config.max_steps), config.max_steps)
    if state is not None:
        if fsdp:
            sharding.load_full_optimizer_state(model, optimizer, state["optimizer"])
        else:
            optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    torch_optimizer = optimizer
    if fsdp:  # FSDP reduce-scatters the gradients itself; accelerate must not wrap the model in DDP too
        optimizer = accelerator.prepare(optimizer)
    else:
        wrapper, optimizer = accelerator.prepare(wrapper, optimizer)
    iterators = {name: StreamIterator(s.loader, s.sampler) for name, s in streams.items()}
    order = list(streams)
    samples_per_step = sum(s.samples_per_batch for s in streams.values()) * config.grad_accum_steps

    bar = tqdm(total=config.max_steps, initial=start_step, disable=not (is_main and config.progress), desc="train")
    window: dict[str, list[float]] = {}
    t_last, steps_since = time.perf_counter(), 0
    final_dir = None
    for step in range(start_step, config.max_steps):
        torch.manual_seed(sample_seed(config.seed, 1_000_000 + rank, step))  # dropout: per rank, per step
        for micro in range(config.grad_accum_steps):
            for i, name in enumerate(order):
                batch = _to_device(next(iterators[name]), accelerator.device)
                last = micro == config.grad_accum_steps - 1 and i == len(order) - 1
                # fsdp reduce-scatters after every backward: a block a later stream skips is synced too
                with nullcontext() if last or fsdp else accelerator.no_sync(wrapper), accelerator.autocast():
                    losses = wrapper(batch)
                loss = losses["loss"] * (streams[name].weight / config.grad_accum_steps)
                accelerator.backward(loss)
                for key, value in losses.items():
                    window.setdefault(f"{name}/{key}", []).append(float(value.detach()))
        if config.grad_clip > 0:
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
            if hasattr(grad_norm, "full_tensor"):  # fsdp: a DTensor over the shards
                grad_norm = grad_norm.full_tensor()
            window.setdefault("grad_norm", []).append(float(grad_norm))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        steps_since += 1
        done = step + 1
        if done % config.log_every == 0 or done == config.max_steps:
            metrics = _mean_over_ranks(accelerator, {k: sum(v) / len(v) for k, v in window.items()})
            elapsed = time.perf_counter() - t_last
            metrics["lr"] = scheduler.get_last_lr()[0]
            metrics["samples_per_s"] = samples_per_step * steps_since / max(elapsed, 1e-9)
            metrics["step"] = done
            history.append(metrics)
            window, t_last, steps_since = {}, time.perf_counter(), 0
            if is_main:
                bar.set_postfix(loss=f"{sum(v for k, v in metrics.items() if k.endswith('/loss')):.3f}", lr=f"{metrics['lr']:.2e}", sps=f"{metrics['samples_per_s']:.1f}")
                if on_log is not None:
                    on_log(done, metrics)
        bar.update(1)
        if evaluate is not None and ((config.eval_every and done % config.eval_every == 0) or done == config.max_steps):
            best = _validate(accelerator, model, evaluate, done, history, best, output_dir, config, write_metadata, on_log)
        if (config.checkpoint_every and done % config.checkpoint_every == 0) or done == config.max_steps:
            final_dir = _checkpoint(accelerator, model, torch_optimizer, scheduler, iterators, history, done, output_dir, config, write_metadata, best, export)
    bar.close()
    if final_dir is None and start_step >= config.max_steps and latest is not None:
        final_dir = latest
    if is_main:
        (output_dir / "history.json").write_text(json.dumps(history, indent=1))
    accelerator.wait_for_everyone()
    return TrainResult(
        step=max(start_step, config.max_steps),
        history=history,
        final_checkpoint=str(final_dir) if final_dir else None,
        resumed_from=resumed_from,
        best_checkpoint=str(output_dir / BEST) if best else None,
        best_metrics=best["metrics"] if best else None,
        best_step=best["step"] if best else None,
    )


def _mean_over_ranks(accelerator, metrics: dict[str, float]) -> dict[str, float]:
    values = torch.tensor(list(metrics.values()), dtype=torch.float64, device=accelerator.device)
    return dict(zip(metrics, accelerator.reduce(values, "mean").tolist()))


BEST = "best"


def _validate(accelerator, model, evaluate, step, history, best, output_dir, config, write_metadata, on_log):
    """Run ``evaluate`` on rank 0; keep ``output_dir/best`` when the selection metric improves."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            metrics = {f"val/{k}": float(v) for k, v in evaluate(model, step).items()}
        model.train(was_training)
        if was_training:
            eval_frozen_submodules(model)
        history.append({"step": step, **metrics})
        if on_log is not None:
            on_log(step, metrics)
        key = f"val/{config.select_metric}" if config.select_metric else None
        if key is not None and key not in metrics:
            raise KeyError(f"select_metric {config.select_metric!r} not among validation metrics {sorted(metrics)}")
        better = best is None or key is None or (metrics[key] > best["score"] if config.select_mode == "max" else metrics[key] < best["score"])
        if better:
            best = {"step": step, "score": metrics[key] if key else float(step), "metrics": metrics}
            ckpt.save_training_checkpoint(output_dir / BEST, model, {"step": step, "best": best}, write_metadata)
            log.info("step %d: new best %s", step, {k: round(v, 4) for k, v in metrics.items()})
    accelerator.wait_for_everyone()
    return best


def _checkpoint(accelerator, model, optimizer, scheduler, iterators, history, step, output_dir, config, write_metadata, best=None, export=None) -> Path:
    """Write ``checkpoint-<step>``; with fsdp (``export`` set on rank 0) the full state is gathered first."""
    directory = ckpt.checkpoint_dir(output_dir, step)
    accelerator.wait_for_everyone()
    if config.sharding == "fsdp":
        weights = sharding.full_model_state(model)  # collective
        optimizer_state = sharding.full_optimizer_state(model, optimizer)
        if export is not None:
            sharding.load_full_model_state(export, weights)
        model = export
    else:
        optimizer_state = optimizer.state_dict() if accelerator.is_main_process else None
    if accelerator.is_main_process:
        state = {
            "step": step,
            "optimizer": optimizer_state,
            "scheduler": scheduler.state_dict(),
            "data_positions": {name: it.consumed for name, it in iterators.items()},
            "seed": config.seed,
            "history": history,
            "best": best,
        }
        ckpt.save_training_checkpoint(directory, model, state, write_metadata)
        ckpt.prune_checkpoints(output_dir, config.keep_last)
    accelerator.wait_for_everyone()
    return directory
