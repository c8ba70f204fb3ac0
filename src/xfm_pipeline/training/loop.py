"""One explicit training loop on ``accelerate.Accelerator`` (nanoGPT / open_clip style).

It knows nothing about X-FM: every optimizer step draws one batch from each stream (times the
accumulation steps), calls ``objective(model, batch) -> {"loss": ..., other losses}``, back-propagates
``stream weight * loss``, then clips, takes ONE optimizer step and ONE scheduler step.

:func:`train` is the loop itself: :func:`_setup` (sharding check, freezing, resume, optimizer, accelerate),
then for every step :func:`_train_step`, with :func:`_log_step` every ``log_every`` steps, :func:`_validate`
every ``eval_every`` and :func:`_checkpoint` every ``checkpoint_every`` (each also at the last step), and
:func:`_finish` (``history.json`` and the :class:`TrainResult`).
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
from xfm_pipeline.training.distributed_eval import Ranks
from xfm_pipeline.training.host_memory import keep_freed_memory
from xfm_pipeline.training.optim import create_optimizer, eval_frozen_submodules, freeze_zero_scaled, linear_warmup_decay, param_groups, warmup_steps_of
from xfm_pipeline.training.sampling import StreamIterator, StreamSampler, sample_seed

log = logging.getLogger(__name__)

SHARDING = ("ddp", "fsdp")
BEST = "best"  # output_dir/BEST: the weights of the best validation (with select_metric)


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
        evaluate: validation callback ``evaluate(model, step) -> metrics`` run on every rank (in eval mode,
            without gradients) every ``eval_every`` steps and at the end; rank 0's metrics count (the other
            ranks may return anything, e.g. their share of a distributed evaluation's ``{}``); with
            ``select_metric`` the best-scoring weights are kept in ``output_dir/best`` (model selection on
            validation, never on test).

    Raises:
        ValueError: unknown ``config.sharding``, or ``fsdp`` with an ``evaluate`` callback (every rank
            validates its share with the whole weights, which sharded ranks do not hold).
    """
    from tqdm.auto import tqdm

    accelerator = accelerator or make_accelerator(config.mixed_precision)
    run = _setup(model, objective, streams, config, Path(output_dir), accelerator, evaluate)
    bar = tqdm(total=config.max_steps, initial=run.start_step, disable=not (accelerator.is_main_process and config.progress), desc="train")
    window = _Window()
    for step in range(run.start_step, config.max_steps):
        _train_step(run, step, window)
        done = step + 1
        if done % config.log_every == 0 or done == config.max_steps:
            _log_step(run, done, window, bar, on_log)
        bar.update(1)
        if evaluate is not None and _due(done, config.eval_every, config.max_steps):
            _validate(run, done, evaluate, write_metadata, on_log)
        if _due(done, config.checkpoint_every, config.max_steps):
            _checkpoint(run, done, write_metadata)
    bar.close()
    return _finish(run)


@dataclass
class _Run:
    """One call of :func:`train`: what :func:`_setup` prepared, and the progress the steps make."""

    accelerator: Any
    config: LoopConfig
    output_dir: Path
    streams: dict[str, Stream]
    model: nn.Module  # the bare module (sharded in place with fsdp)
    wrapper: nn.Module  # objective(model, batch) as one module, as accelerate prepared it (DDP when distributed)
    optimizer: Any  # as accelerate prepared it: step, zero_grad
    torch_optimizer: torch.optim.Optimizer  # the optimizer itself, whose state checkpoints hold
    scheduler: torch.optim.lr_scheduler.LRScheduler
    iterators: dict[str, StreamIterator]  # one per stream, counting the batches consumed
    samples_per_step: int  # samples of all streams per optimizer step, for throughput
    start_step: int  # 0, or the step of the checkpoint resumed from
    latest: Path | None  # the newest valid checkpoint found in output_dir at the start
    export: nn.Module | None  # fsdp: rank 0's unsharded CPU copy that checkpoints are written from
    history: list[dict[str, float]]  # logged and validation points so far (kept in checkpoints)
    best: dict[str, Any] | None  # {"step", "score", "metrics"} of the best validation so far
    last_checkpoint: Path | None = None  # the last checkpoint this call wrote


@dataclass
class _Window:
    """Per-step values since the last logged step, and when that window started."""

    values: dict[str, list[float]] = field(default_factory=dict)  # key -> one value per micro-batch or step
    steps: int = 0  # optimizer steps in the window
    started: float = field(default_factory=time.perf_counter)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def reset(self) -> None:
        self.values, self.steps, self.started = {}, 0, time.perf_counter()


def _due(step: int, every: int, max_steps: int) -> bool:
    """True every ``every`` steps (0 = never) and at the last step."""
    return bool(every and step % every == 0) or step == max_steps


def _setup(model, objective, streams, config, output_dir, accelerator, evaluate) -> _Run:
    """Everything before the first step: check the sharding, freeze what ``lr_scales`` zeroes, resume,
    shard (fsdp), build optimizer and schedule, let accelerate prepare them, open the stream iterators."""
    if accelerator.device.type == "cpu":
        keep_freed_memory()  # activations are reused every step instead of page-faulted in again
    is_main = accelerator.is_main_process
    if config.sharding not in SHARDING:
        raise ValueError(f"sharding must be one of {SHARDING}, got {config.sharding!r}")
    fsdp = config.sharding == "fsdp"
    if fsdp and evaluate is not None:
        raise ValueError("sharding 'fsdp' cannot run a validation callback (every rank predicts its share with the whole weights); use 'ddp'")
    frozen = freeze_zero_scaled(model, config.lr_scales)
    if frozen and is_main:
        log.info("lr_scales freeze %d parameter tensors (%s ...)", len(frozen), frozen[0])
    if model.training:
        eval_frozen_submodules(model)

    latest, state = _resume(output_dir, model, streams)
    start_step, history, best = 0, [], None
    if state is not None:
        start_step, best = int(state["step"]), state.get("best")
        history = [h for h in state.get("history", []) if h["step"] <= start_step]
    wrapper = _ObjectiveModule(model, objective)
    export = None
    if fsdp:
        model.to(accelerator.device)
        export = copy.deepcopy(model).cpu() if is_main else None
        sharding.shard_model(wrapper, model, accelerator.device.type, accelerator.num_processes)
    optimizer, scheduler = _optimizer_and_schedule(model, config, state)
    torch_optimizer = optimizer
    if fsdp:  # FSDP reduce-scatters the gradients itself; accelerate must not wrap the model in DDP too
        optimizer = accelerator.prepare(optimizer)
    else:
        wrapper, optimizer = accelerator.prepare(wrapper, optimizer)
    return _Run(
        accelerator=accelerator,
        config=config,
        output_dir=output_dir,
        streams=streams,
        model=model,
        wrapper=wrapper,
        optimizer=optimizer,
        torch_optimizer=torch_optimizer,
        scheduler=scheduler,
        iterators={name: StreamIterator(s.loader, s.sampler) for name, s in streams.items()},
        samples_per_step=sum(s.samples_per_batch for s in streams.values()) * config.grad_accum_steps,
        start_step=start_step,
        latest=latest,
        export=export,
        history=history,
        best=best,
    )


def _resume(output_dir: Path, model: nn.Module, streams: dict[str, Stream]) -> tuple[Path | None, dict | None]:
    """Load the newest valid checkpoint of ``output_dir`` (full weights, before any sharding) and move every
    stream's sampler to its recorded position; ``(None, None)`` when there is none."""
    latest = ckpt.latest_valid_checkpoint(output_dir)
    if latest is None:
        return None, None
    state = ckpt.load_training_state(latest, model)
    for name, stream in streams.items():
        stream.sampler.start_batch = int(state["data_positions"][name])
    log.info("resumed from %s at step %d", latest, int(state["step"]))
    return latest, state


def _optimizer_and_schedule(model: nn.Module, config: LoopConfig, state: dict | None):
    """AdamW over ``param_groups`` and the warm-up/decay schedule, with their resumed state if any."""
    groups = param_groups(model, config.lr, config.weight_decay, config.new_param_prefixes, config.lr_mult, config.lr_scales)
    optimizer = create_optimizer(groups, config.betas, config.eps)
    scheduler = linear_warmup_decay(optimizer, warmup_steps_of(config.warmup, config.max_steps), config.max_steps)
    if state is not None:
        if config.sharding == "fsdp":
            sharding.load_full_optimizer_state(model, optimizer, state["optimizer"])
        else:
            optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    return optimizer, scheduler


def _train_step(run: _Run, step: int, window: _Window) -> None:
    """One optimizer step: ``grad_accum_steps`` batches of every stream, gradient clip, optimizer and
    scheduler step; losses (and the gradient norm) go to ``window``."""
    config, accelerator = run.config, run.accelerator
    torch.manual_seed(sample_seed(config.seed, 1_000_000 + accelerator.process_index, step))  # dropout: per rank, per step
    names = list(run.streams)
    for micro in range(config.grad_accum_steps):
        for i, name in enumerate(names):
            last = micro == config.grad_accum_steps - 1 and i == len(names) - 1
            _forward_backward(run, name, last, window)
    if config.grad_clip > 0:
        grad_norm = accelerator.clip_grad_norm_(run.model.parameters(), config.grad_clip)
        if hasattr(grad_norm, "full_tensor"):  # fsdp: a DTensor over the shards
            grad_norm = grad_norm.full_tensor()
        window.add("grad_norm", float(grad_norm))
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    window.steps += 1


def _forward_backward(run: _Run, name: str, last: bool, window: _Window) -> None:
    """Back-propagate ``stream weight * loss / grad_accum_steps`` of stream ``name``'s next batch; DDP
    all-reduces the accumulated gradients on the step's ``last`` micro-batch only."""
    accelerator, fsdp = run.accelerator, run.config.sharding == "fsdp"
    batch = _to_device(next(run.iterators[name]), accelerator.device)
    # fsdp reduce-scatters after every backward: a block a later stream skips is synced too
    with nullcontext() if last or fsdp else accelerator.no_sync(run.wrapper), accelerator.autocast():
        losses = run.wrapper(batch)
    loss = losses["loss"] * (run.streams[name].weight / run.config.grad_accum_steps)
    accelerator.backward(loss)
    for key, value in losses.items():
        window.add(f"{name}/{key}", float(value.detach()))


def _log_step(run: _Run, step: int, window: _Window, bar, on_log) -> None:
    """Append the window's means (over its entries and over ranks), the learning rate and the throughput
    to the history as the point of ``step``, start a new window, and show/report the point on rank 0."""
    metrics = _mean_over_ranks(run.accelerator, {k: sum(v) / len(v) for k, v in window.values.items()})
    elapsed = time.perf_counter() - window.started
    metrics["lr"] = run.scheduler.get_last_lr()[0]
    metrics["samples_per_s"] = run.samples_per_step * window.steps / max(elapsed, 1e-9)
    metrics["step"] = step
    run.history.append(metrics)
    window.reset()
    if run.accelerator.is_main_process:
        bar.set_postfix(
            loss=f"{sum(v for k, v in metrics.items() if k.endswith('/loss')):.3f}", lr=f"{metrics['lr']:.2e}", sps=f"{metrics['samples_per_s']:.1f}"
        )
        if on_log is not None:
            on_log(step, metrics)


def _mean_over_ranks(accelerator, metrics: dict[str, float]) -> dict[str, float]:
    values = torch.tensor(list(metrics.values()), dtype=torch.float64, device=accelerator.device)
    return dict(zip(metrics, accelerator.reduce(values, "mean").tolist()))


def _validate(run: _Run, step: int, evaluate, write_metadata, on_log) -> None:
    """Run ``evaluate`` on every rank (it may split the work over them), take rank 0's ``val/*`` metrics on
    every rank, add them to the history and keep ``output_dir/best`` when the selection metric improves
    (rank 0 writes it, every rank records it)."""
    accelerator = run.accelerator
    _buffers_from_main(run)
    metrics = Ranks.current().broadcast(_evaluate(run.model, evaluate, step))
    run.history.append({"step": step, **metrics})
    if on_log is not None and accelerator.is_main_process:
        on_log(step, metrics)
    _keep_if_best(run, step, metrics, write_metadata)
    accelerator.wait_for_everyone()


def _buffers_from_main(run: _Run) -> None:
    """Give every rank rank 0's floating-point buffers (BatchNorm running statistics, which each rank's
    own batches update), as DDP does at its next forward, so all ranks validate the same model."""
    if run.accelerator.num_processes > 1:
        for buffer in run.model.buffers():
            if buffer.is_floating_point():
                torch.distributed.broadcast(buffer, src=0)


def _evaluate(model: nn.Module, evaluate, step: int) -> dict[str, float]:
    """``evaluate(model, step)`` in eval mode without gradients, as ``val/<name>`` floats; the model's
    mode is restored afterwards (frozen submodules stay in eval mode)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        metrics = {f"val/{k}": float(v) for k, v in evaluate(model, step).items()}
    model.train(was_training)
    if was_training:
        eval_frozen_submodules(model)
    return metrics


def _keep_if_best(run: _Run, step: int, metrics: dict[str, float], write_metadata) -> None:
    """Record ``step`` as the best on every rank and save the weights to ``output_dir/best`` (rank 0) when
    ``metrics`` beat the best so far on ``select_metric`` (every validation wins without one, so ``best``
    is then the last)."""
    config, best = run.config, run.best
    key = f"val/{config.select_metric}" if config.select_metric else None
    if key is not None and key not in metrics:
        raise KeyError(f"select_metric {config.select_metric!r} not among validation metrics {sorted(metrics)}")
    better = best is None or key is None or (metrics[key] > best["score"] if config.select_mode == "max" else metrics[key] < best["score"])
    if better:
        run.best = {"step": step, "score": metrics[key] if key else float(step), "metrics": metrics}
        if run.accelerator.is_main_process:
            ckpt.save_training_checkpoint(run.output_dir / BEST, run.model, {"step": step, "best": run.best}, write_metadata)
            log.info("step %d: new best %s", step, {k: round(v, 4) for k, v in metrics.items()})


def _checkpoint(run: _Run, step: int, write_metadata) -> None:
    """Write ``checkpoint-<step>`` (weights and training state) and prune old ones; with fsdp the full
    state is gathered first and written from rank 0's unsharded copy."""
    accelerator, config = run.accelerator, run.config
    directory = ckpt.checkpoint_dir(run.output_dir, step)
    accelerator.wait_for_everyone()
    model = run.model
    if config.sharding == "fsdp":
        weights = sharding.full_model_state(run.model)  # collective
        optimizer_state = sharding.full_optimizer_state(run.model, run.torch_optimizer)
        if run.export is not None:
            sharding.load_full_model_state(run.export, weights)
        model = run.export
    else:
        optimizer_state = run.torch_optimizer.state_dict() if accelerator.is_main_process else None
    if accelerator.is_main_process:
        state = {
            "step": step,
            "optimizer": optimizer_state,
            "scheduler": run.scheduler.state_dict(),
            "data_positions": {name: it.consumed for name, it in run.iterators.items()},
            "seed": config.seed,
            "history": run.history,
            "best": run.best,
        }
        ckpt.save_training_checkpoint(directory, model, state, write_metadata)
        ckpt.prune_checkpoints(run.output_dir, config.keep_last)
    accelerator.wait_for_everyone()
    run.last_checkpoint = directory


def _finish(run: _Run) -> TrainResult:
    """Write ``history.json`` (rank 0) and the result; a run already at ``max_steps`` returns its newest checkpoint."""
    config, output_dir, best = run.config, run.output_dir, run.best
    final_dir = run.last_checkpoint
    if final_dir is None and run.start_step >= config.max_steps and run.latest is not None:
        final_dir = run.latest
    if run.accelerator.is_main_process:
        (output_dir / "history.json").write_text(json.dumps(run.history, indent=1))
    run.accelerator.wait_for_everyone()
    return TrainResult(
        step=max(run.start_step, config.max_steps),
        history=run.history,
        final_checkpoint=str(final_dir) if final_dir else None,
        resumed_from=str(run.latest) if run.latest is not None else None,
        best_checkpoint=str(output_dir / BEST) if best else None,
        best_metrics=best["metrics"] if best else None,
        best_step=best["step"] if best else None,
    )
