"""The training loop on a toy problem: it learns, resumes exactly, and skips damaged checkpoints."""

import json
import logging

import pytest
import torch
from torch import nn

from xfm_pipeline.training import checkpointing as ckpt
from xfm_pipeline.training.loop import LoopConfig, Stream, train
from xfm_pipeline.training.sampling import StreamSampler


class _Regression(torch.utils.data.Dataset):
    def __init__(self, n=64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1

    def __len__(self):
        return len(self.x)

    def __getitem__(self, item):
        index, seed = item
        noise = torch.randn(1, generator=torch.Generator().manual_seed(seed)) * 0.01  # per-sample randomness
        return self.x[index], self.y[index] + noise[0]


class _Killed(Exception):
    pass


def _objective(model, batch):
    x, y = batch
    pred = model(x).squeeze(-1)
    return {"loss": ((pred - y) ** 2).mean(), "loss_abs": (pred - y).abs().mean()}


def _streams(global_batch=8):
    ds = _Regression()
    sampler = StreamSampler(len(ds), global_batch, seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler)
    return {"regression": Stream(loader, sampler, weight=1.0, samples_per_batch=global_batch)}


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 1))


def _config(**kw):
    base = dict(max_steps=30, lr=0.05, warmup=2, checkpoint_every=10, keep_last=5, log_every=5, progress=False, weight_decay=0.0)
    base.update(kw)
    return LoopConfig(**base)


def test_loss_falls_and_history_is_recorded(tmp_path):
    result = train(_model(), _objective, _streams(), _config(), tmp_path)
    first, last = result.history[0]["regression/loss"], result.history[-1]["regression/loss"]
    assert last < 0.2 * first
    assert result.step == 30 and result.final_checkpoint.endswith("checkpoint-0000030")
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [f"checkpoint-{s:07d}" for s in (10, 20, 30)]


@pytest.mark.parametrize(("mode", "best_step"), [("max", 4), ("min", 2)])
def test_logging_validation_and_checkpoints_follow_their_schedules_and_the_best_is_kept(tmp_path, mode, best_step):
    scores = {2: 0.5, 4: 0.9, 6: 0.7, 7: 0.8}
    calls = []
    config = _config(max_steps=7, log_every=3, eval_every=2, checkpoint_every=4, select_metric="acc", select_mode=mode)
    result = train(
        _model(), _objective, _streams(), config, tmp_path, on_log=lambda step, m: calls.append(step), evaluate=lambda m, step: {"acc": scores[step]}
    )
    # within a step: the logged point, then the validation; both also at the last step
    assert [(h["step"], "val/acc" in h) for h in result.history] == [(2, True), (3, False), (4, True), (6, False), (6, True), (7, False), (7, True)]
    assert calls == [2, 3, 4, 6, 6, 7, 7]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint-0000004", "checkpoint-0000007"]
    assert json.loads((tmp_path / "history.json").read_text()) == result.history
    assert (result.best_step, result.best_metrics, result.best_checkpoint) == (best_step, {"val/acc": scores[best_step]}, str(tmp_path / "best"))
    if best_step == 4:  # the best weights are those of the step's checkpoint
        assert (tmp_path / "best" / "model.safetensors").read_bytes() == (ckpt.checkpoint_dir(tmp_path, 4) / "model.safetensors").read_bytes()
    again = train(_model(), _objective, _streams(), config, tmp_path, evaluate=lambda m, step: {"acc": 0.0})
    assert again.resumed_from == again.final_checkpoint == str(ckpt.checkpoint_dir(tmp_path, 7))
    assert (again.best_step, again.history) == (best_step, result.history)  # a finished run trains nothing more


def test_fsdp_refuses_a_validation_callback(tmp_path):
    with pytest.raises(ValueError, match="sharding 'fsdp' cannot run a validation callback"):
        train(_model(), _objective, _streams(), _config(sharding="fsdp"), tmp_path, evaluate=lambda m, step: {"acc": 1.0})


def test_a_module_frozen_by_lr_scales_trains_in_eval_mode_also_after_validation(tmp_path):
    model = _model()
    modes = []

    def objective(m, batch):
        modes.append((m[0].training, m[1].training))
        return _objective(m, batch)

    config = _config(max_steps=4, eval_every=2, checkpoint_every=0, lr_scales={"0.": 0.0})
    train(model.train(), objective, _streams(), config, tmp_path, evaluate=lambda m, step: {"score": float(step)})
    assert modes == [(False, True)] * 4  # the frozen first layer never trains; the dropout after it does
    assert not model[0].weight.requires_grad


def test_interrupted_run_resumes_to_identical_parameters(tmp_path):
    full = _model()
    train(full, _objective, _streams(), _config(), tmp_path / "full")
    interrupted = tmp_path / "interrupted"

    def crash(step, metrics):
        if step == 25:
            raise _Killed

    with pytest.raises(_Killed):  # dies between the checkpoints of steps 20 and 30
        train(_model(), _objective, _streams(), _config(), interrupted, on_log=crash)
    resumed_model = _model()
    result = train(resumed_model, _objective, _streams(), _config(), interrupted)
    assert result.resumed_from.endswith("checkpoint-0000020")
    for a, b in zip(full.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_truncated_checkpoint_is_skipped_with_a_warning(tmp_path, caplog):
    train(_model(), _objective, _streams(), _config(max_steps=20), tmp_path)
    newest = ckpt.checkpoint_dir(tmp_path, 20)
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    assert "truncated" in ckpt.checkpoint_problem(newest)
    with caplog.at_level(logging.WARNING):
        assert ckpt.latest_valid_checkpoint(tmp_path) == ckpt.checkpoint_dir(tmp_path, 10)
    assert "skipping damaged checkpoint" in caplog.text and "checkpoint-0000020" in caplog.text
    result = train(_model(), _objective, _streams(), _config(max_steps=20), tmp_path)
    assert result.resumed_from.endswith("checkpoint-0000010")


def test_state_file_problems_are_detected(tmp_path):
    train(_model(), _objective, _streams(), _config(max_steps=10), tmp_path)
    directory = ckpt.checkpoint_dir(tmp_path, 10)
    (directory / "training_state.pt").write_bytes(b"garbage")
    assert "unreadable" in ckpt.checkpoint_problem(directory)
    (directory / "training_state.pt").unlink()
    assert ckpt.checkpoint_problem(directory) == "missing training_state.pt"


def test_sampler_is_rank_invariant():
    one = StreamSampler(40, 8, seed=3)
    two = [StreamSampler(40, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for k, (a, b0, b1) in enumerate(zip(iter(one), iter(two[0]), iter(two[1]))):
        assert a == b0 + b1
        if k == 12:  # crosses several epochs
            break
    with pytest.raises(ValueError, match="divisible"):
        StreamSampler(40, 7, world_size=2)
