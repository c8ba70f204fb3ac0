"""benchmarks/max_batch.py: the search for the largest batch, on a fake trial with a known memory limit."""

from __future__ import annotations

import pytest


@pytest.fixture
def bench(benchmark_module):
    return benchmark_module("max_batch")


class _Trial:
    def __init__(self, limit: int):
        self.limit, self.tried = limit, []

    def step(self, batch: int):
        self.tried.append(batch)
        return (batch / 100, batch / 10) if batch <= self.limit else None


@pytest.mark.parametrize("limit", [16, 100, 700, 1023])
def test_the_search_finds_the_limit_within_six_percent_and_never_reports_a_failed_batch(bench, limit):
    trial = _Trial(limit)
    batch, run = bench.largest_batch(trial)
    assert limit * 15 / 16 - 1 <= batch <= limit and run == (batch / 100, batch / 10)
    assert len(trial.tried) <= 12


def test_a_limit_below_the_first_try_is_found_and_nothing_fitting_gives_zero(bench):
    assert bench.largest_batch(_Trial(8))[0] == 8
    assert bench.largest_batch(_Trial(0)) == (0, None)
