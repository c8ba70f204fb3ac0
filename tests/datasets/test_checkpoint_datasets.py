"""Checkpoint catalog datasets pass directories by path and copy only a checkpoint's model files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kedro.io import DatasetError

from xfm_pipeline.datasets import DirectoryDataset, XFMCheckpointDataset
from xfm_pipeline.model.checkpoint import FORMAT


def run_checkpoint(directory: Path) -> Path:
    """A training run's checkpoint directory: model files plus optimizer state and a scratch file."""
    (directory / "tokenizer").mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"format": FORMAT, "model": {}}))
    (directory / "model.safetensors").write_bytes(b"weights")
    (directory / "tokenizer" / "vocab.txt").write_text("[PAD]\n")
    (directory / "training_state.pt").write_bytes(b"optimizer" * 100)
    (directory / "notes.tmp").write_text("scratch")
    return directory


@pytest.mark.parametrize("dataset_type", [XFMCheckpointDataset, DirectoryDataset])
def test_saving_a_run_checkpoint_copies_its_model_files_only_and_loading_gives_the_path(tmp_path, dataset_type):
    source = run_checkpoint(tmp_path / "run" / "step-10")
    target = tmp_path / "data" / "06_models" / "pretrain"
    dataset = dataset_type(path=str(target))
    dataset.save(str(source))
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == ["config.json", "model.safetensors", "tokenizer", "tokenizer/vocab.txt"]
    assert (target / "model.safetensors").read_bytes() == b"weights"
    assert dataset.load() == str(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["pretrain"]  # no temporary directory left


def test_an_existing_checkpoint_is_replaced_whole(tmp_path):
    target = tmp_path / "ckpt"
    dataset = XFMCheckpointDataset(path=str(target))
    dataset.save(str(run_checkpoint(tmp_path / "a")))
    (tmp_path / "b").mkdir()
    second = run_checkpoint(tmp_path / "b" / "c")
    (second / "model.safetensors").write_bytes(b"newer")
    (second / "tokenizer" / "vocab.txt").unlink()
    dataset.save(str(second))
    assert (target / "model.safetensors").read_bytes() == b"newer" and not (target / "tokenizer" / "vocab.txt").exists()


def test_loading_or_saving_something_that_is_not_a_checkpoint_names_the_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: not a checkpoint directory"):  # Kedro wraps the CheckpointError
        XFMCheckpointDataset(path=str(tmp_path / "empty")).load()
    with pytest.raises(DatasetError, match="empty: not a checkpoint directory"):
        XFMCheckpointDataset(path=str(tmp_path / "out")).save(str(tmp_path / "empty"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(NotADirectoryError, match="missing: not a directory"):
        DirectoryDataset(path=str(tmp_path / "out")).save(str(tmp_path / "missing"))


def test_the_weights_share_one_copy_on_disk_with_the_run_and_outlive_it(tmp_path):
    import shutil

    source = run_checkpoint(tmp_path / "run" / "best")
    target = tmp_path / "data" / "06_models" / "finetune_vqa"
    XFMCheckpointDataset(path=str(target)).save(str(source))
    assert (target / "model.safetensors").stat().st_ino == (source / "model.safetensors").stat().st_ino  # hard link
    assert (target / "config.json").stat().st_ino != (source / "config.json").stat().st_ino  # small files copied
    shutil.rmtree(tmp_path / "run")  # the run directory pruned later
    assert (target / "model.safetensors").read_bytes() == b"weights"
