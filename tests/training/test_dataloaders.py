"""DataLoader settings: "auto" resolves to workers and pinned memory on CUDA, neither on a CPU; bad values
name their key; the built DataLoader gets exactly the resolved settings."""

from __future__ import annotations

import pytest

from xfm_pipeline.tasks.base import TaskParams
from xfm_pipeline.training.dataloaders import LoaderSettings, cpus_per_rank, make_loader, resolve_loader_settings


def test_auto_on_a_cpu_is_the_main_process_only():
    assert resolve_loader_settings("cpu", cpus=16) == LoaderSettings(num_workers=0, pin_memory=False, persistent_workers=False, prefetch_factor=None)
    assert TaskParams().loader_settings("cpu") == LoaderSettings()  # the fine-tune defaults are auto


@pytest.mark.parametrize(("cpus", "workers"), [(64, 8), (6, 6), (1, 1)])
def test_auto_on_cuda_takes_up_to_8_workers_of_the_ranks_cpus_pinned_and_persistent(cpus, workers):
    assert resolve_loader_settings("cuda", cpus=cpus) == LoaderSettings(num_workers=workers, pin_memory=True, persistent_workers=True)


def test_auto_workers_respect_a_cap_and_divide_the_lanes():
    assert resolve_loader_settings("cuda", cpus=32, worker_cap=3).num_workers == 3
    assert resolve_loader_settings("cuda", cpus=32, workers_divide=12).num_workers == 6  # 8 and 7 do not divide 12
    assert resolve_loader_settings("cuda", cpus=32, worker_cap=5, workers_divide=4).num_workers == 4
    assert resolve_loader_settings("cuda", cpus=32, worker_cap=0, workers_divide=1).num_workers == 1


def test_explicit_values_win_over_auto():
    settings = resolve_loader_settings("cuda", num_workers=0, pin_memory=False, cpus=32)
    assert settings == LoaderSettings(num_workers=0, pin_memory=False, persistent_workers=False)
    settings = resolve_loader_settings("cpu", num_workers=2, pin_memory=True, persistent_workers=False, prefetch_factor=4)
    assert settings == LoaderSettings(num_workers=2, pin_memory=True, persistent_workers=False, prefetch_factor=4)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_workers": -1}, r"finetune_vqa\.num_workers must be null \(auto\) or an int >= 0, got -1"),
    ({"prefetch_factor": 0}, r"finetune_vqa\.prefetch_factor must be null .* got 0"),
])  # fmt: skip
def test_bad_values_name_their_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve_loader_settings("cpu", where="finetune_vqa", **kwargs)


def test_cpus_per_rank_divides_the_cpus_by_the_node_s_ranks(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    alone = cpus_per_rank()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(alone * 2))
    assert alone >= 1 and cpus_per_rank() == 1  # never 0


def test_the_loader_gets_the_settings_worker_options_only_with_workers():
    dataset = list(range(5))
    loader = make_loader(dataset, LoaderSettings(num_workers=0, persistent_workers=True, prefetch_factor=4), batch_size=2)
    assert (loader.num_workers, loader.persistent_workers, loader.prefetch_factor, loader.pin_memory) == (0, False, None, False)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4]]
    loader = make_loader(dataset, LoaderSettings(num_workers=2, persistent_workers=True, prefetch_factor=3), batch_size=2)
    assert (loader.num_workers, loader.persistent_workers, loader.prefetch_factor) == (2, True, 3)
