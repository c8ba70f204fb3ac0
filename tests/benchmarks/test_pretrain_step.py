"""benchmarks/pretrain_step.py: interleaved timing and MFU against the peak measured next to each step."""

from __future__ import annotations

import pytest


@pytest.fixture
def bench(benchmark_module):
    return benchmark_module("pretrain_step")


def test_steps_alternate_and_each_gets_its_own_window(bench, monkeypatch):
    calls = []
    windows = iter([[1.0, 4.0, 2.0], [3.0, 3.0, 9.0], [5.0, 6.0, 7.0], [2.0, 2.0, 2.0]])
    monkeypatch.setattr(bench, "matmul_throughputs", lambda device, dtype: calls.append("gemm") or next(windows))
    steps = {"xfm": lambda: calls.append("xfm"), "beit": lambda: calls.append("beit")}

    runs = bench.timed_steps(steps, 2, "cpu")

    assert calls == ["xfm", "gemm", "beit", "gemm", "xfm", "gemm", "beit", "gemm"]
    assert [(r.peak, r.sustained) for r in runs["xfm"]] == [(4.0, 2.0), (7.0, 6.0)]
    assert [(r.peak, r.sustained) for r in runs["beit"]] == [(9.0, 3.0), (2.0, 2.0)]
    assert all(r.seconds >= 0 for rs in runs.values() for r in rs)


def test_mfu_pairs_each_step_with_its_own_peak(bench, capsys):
    runs = [
        bench.StepRun(seconds=2.0, peak=10.0, sustained=8.0, faults=0, system=0.0),  # 10 FLOP/s: 100%, 125%
        bench.StepRun(seconds=4.0, peak=8.0, sustained=5.0, faults=0, system=0.0),  # 5 FLOP/s: 62.5%, 100%
        bench.StepRun(seconds=5.0, peak=5.0, sustained=4.0, faults=0, system=0.0),
    ]  # 4 FLOP/s: 80%, 100%
    bench.print_mfu("X-FM step", 20, runs)
    out = capsys.readouterr().out
    assert "MFU = 80.0% (median of per-step ratios), 100.0% (best step)" in out
    assert "against the median GEMM of each window: 100.0%" in out


def test_matmul_throughputs_times_at_least_the_minimum_number_of_products(bench):
    rates = bench.matmul_throughputs("cpu", n=64, seconds=0.0, min_products=3)
    assert len(rates) == 3 and all(r > 0 for r in rates)


def test_official_step_estimates_from_the_issue_ratios(bench):
    # X-FM round: 10 s with the peak at 1e12 FLOP/s; BEiT-B round: 2e12 FLOP in 4 s = 5e11 FLOP/s.
    xfm = [bench.StepRun(seconds=10.0, peak=1e12, sustained=1e12, faults=0, system=0.0)]
    ref = [bench.StepRun(seconds=4.0, peak=1e12, sustained=1e12, faults=0, system=0.0)]
    at_peak, at_beit = bench.official_estimates(xfm, ref, ref_flops=2 * 10**12)
    assert at_peak == pytest.approx([3.0e12 / (0.58 * 1e12)])  # 5.17 s
    assert at_beit == pytest.approx([3.0e12 / (0.58 / 0.80 * 5e11)])  # 8.28 s


def test_consecutive_steps_see_different_masks(bench, tiny_model):
    batches = bench.BatchCycle([bench.image_text_batch(tiny_model, 2, 12, "cpu", seed) for seed in range(3)])
    first, second, third, fourth = (batches.next() for _ in range(4))
    assert not (first["image_patch_mask"] == second["image_patch_mask"]).all()
    assert not (first["masked_pos"] == second["masked_pos"]).all()
    assert fourth is first and third is not first  # round robin over the drawn batches
