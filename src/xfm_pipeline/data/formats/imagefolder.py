"""ImageFolder classification data (ImageNet layout, docs/xfm.md#imagenet): ``<split>/<class>/<image>``.

Classes are the sorted sub-directory names (index = position), as in ``torchvision.datasets.ImageFolder``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from xfm_pipeline.data.formats.common import RecordError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImageFolderIndex:
    """The samples of one ImageFolder split."""

    classes: tuple[str, ...]  # sorted class names; the label of a sample is its class's index
    samples: tuple[tuple[str, int], ...]  # (path relative to the split root, class index), sorted by path

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Class name -> label index."""
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.samples)


def read_image_folder(root: str | Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> ImageFolderIndex:
    """Index ``root/<class>/<image>`` files (recursively inside each class directory).

    Raises:
        FileNotFoundError: ``root`` is missing or has no class directory.
        RecordError: a class directory holds no image.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ImageFolder root {root} does not exist")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not classes:
        raise FileNotFoundError(f"no class directories in {root}")
    samples = []
    for label, name in enumerate(classes):
        files = sorted(p.relative_to(root).as_posix() for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in extensions)
        if not files:
            raise RecordError(str(root / name), None, f"class {name!r} has no image with extension in {extensions}")
        samples += [(f, label) for f in files]
    return ImageFolderIndex(classes=classes, samples=tuple(samples))


def image_folder_from_keys(keys: Iterable[str], split: str, source: str = "imagenet_raw") -> ImageFolderIndex:
    """Index the ``<split>/<class>/<id>`` partition keys of a PartitionedDataset (e.g. ``imagenet_raw``).

    Sample paths are the keys without the split prefix (suffix-free, as partition ids are).

    Raises:
        RecordError: a key of the split has no class component, or the split has no key.
    """
    per_class: dict[str, list[str]] = {}
    for key in keys:
        parts = PurePosixPath(key).parts
        if not parts or parts[0] != split:
            continue
        if len(parts) < 3:
            raise RecordError(source, key, "expected a key '<split>/<class>/<image>'")
        per_class.setdefault(parts[1], []).append("/".join(parts[1:]))
    if not per_class:
        raise RecordError(source, None, f"no image of split {split!r}")
    classes = tuple(sorted(per_class))
    samples = tuple((path, label) for label, c in enumerate(classes) for path in sorted(per_class[c]))
    return ImageFolderIndex(classes=classes, samples=samples)
