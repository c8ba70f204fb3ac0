"""The per-path memo of transformed images (tasks.common.ImageMemo) and the task datasets that use it.

Unaugmented, a dataset read through the memo gives exactly the samples it gives without it (the memo only
skips decoding again); augmented, it keeps nothing, so every visit draws a fresh augmentation.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from xfm_pipeline.tasks.common import ImageMemo
from xfm_pipeline.tasks.registry import get_task

IMAGE_TASKS = ["vqa", "captioning", "retrieval", "nlvr", "grounding"]


def test_memo_keeps_values_within_its_budget_and_makes_the_rest_each_time():
    memo = ImageMemo(1)  # 1 MiB: two 0.5 MiB tensors
    calls: list[str] = []

    def make(path: str):
        calls.append(path)
        return torch.zeros(2**17), (3, 4)  # 0.5 MiB of float32, plus a non-tensor part

    for path in ["a", "b", "c", "a", "b", "c"]:
        value = memo.get(path, lambda path=path: make(path))
        assert value[1] == (3, 4)
    assert calls == ["a", "b", "c", "c"] and memo.bytes == 2**20


def test_memo_of_size_zero_keeps_nothing():
    memo, calls = ImageMemo(0), []
    for _ in range(3):
        memo.get("a", lambda: calls.append(1) or torch.ones(2))
    assert len(calls) == 3 and memo.bytes == 0


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_memo_size_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="image_memo_mb"):
        ImageMemo(bad)


def _items(case, split, tokenizer, memo_mb, train):
    params = dataclasses.replace(case.params, image_memo_mb=memo_mb)
    dataset = get_task(case.name).dataset(split, case.data, tokenizer, params, case.image_root, train=train)
    keys = [(i, 100 + i) for i in range(len(dataset))] if train else list(range(len(dataset)))
    return dataset, [dataset[k] for k in keys + keys]  # every item twice: the second visit reads the memo


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("name", IMAGE_TASKS)
@pytest.mark.parametrize("train", [True, False])
def test_unaugmented_datasets_give_the_same_samples_through_the_memo(name, train, task_case, tokenizer):
    case = task_case(name).with_options(augment=False)
    split = get_task(name).splits[0 if train else 1]
    memoised, with_memo = _items(case, split, tokenizer, 512, train)
    _, without = _items(case, split, tokenizer, 0, train)
    for a, b in zip(with_memo, without, strict=True):
        _assert_same(a, b)
    assert memoised.images.bytes > 0


@pytest.mark.parametrize("name", IMAGE_TASKS)
def test_augmented_training_sets_keep_no_image(name, task_case, tokenizer):
    case = task_case(name).with_options(augment=True)
    dataset, _ = _items(case, get_task(name).splits[0], tokenizer, 512, train=True)
    assert dataset.images.bytes == 0
