"""ImageFolder indexing from a directory and from PartitionedDataset keys."""

from __future__ import annotations

import pytest
from PIL import Image

from xfm_pipeline.data.formats import RecordError, image_folder_from_keys, read_image_folder
from xfm_pipeline.data.shapes_world.scenes import SHAPES


def test_generated_image_folder(tiny_world, tiny_root):
    for split, per_class in (("train", 3), ("val", 1)):
        index = read_image_folder(tiny_root / "imagenet" / split)
        assert index.classes == tuple(sorted(SHAPES))
        assert len(index) == per_class * len(SHAPES)
        labels = [label for _, label in index.samples]
        assert all(labels.count(k) == per_class for k in range(len(SHAPES)))
        path, label = index.samples[0]
        assert path.startswith(index.classes[label] + "/")
        assert Image.open(tiny_root / "imagenet" / split / path).size == (96, 96)
    keys = tiny_world.imagenet_partitions().keys()
    from_keys = image_folder_from_keys(keys, "val")
    on_disk = read_image_folder(tiny_root / "imagenet" / "val")
    assert from_keys.classes == on_disk.classes
    assert [p for p, _ in from_keys.samples] == [p.removesuffix(".jpg") for p, _ in on_disk.samples]


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image_folder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no class"):
        read_image_folder(tmp_path)
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("x")
    with pytest.raises(RecordError, match="class 'cat' has no image"):
        read_image_folder(tmp_path)
    with pytest.raises(RecordError, match="<split>/<class>/<image>"):
        image_folder_from_keys(["train/x"], "train")
    with pytest.raises(RecordError, match="no image of split"):
        image_folder_from_keys(["train/cat/1"], "val")
