"""Derived columns for image references and bounding boxes.

Image references are resolved under the dataset's image root (``resolve_under_root``), probed once
(exists, decodes fully, size, content hash) and turned into three error columns; boxes become
geometry columns (position, size, margins to the image border) asserted with range expectations.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xfm_pipeline.data.paths import UnsafePathError, resolve_under_root
from xfm_pipeline.data.validation.images import ImageProbe, decode_bytes, probe_images
from xfm_pipeline.data.validation.table import CheckTable, check_no_errors


@dataclass(frozen=True)
class ImageEnv:
    """How image references of one dataset are checked."""

    root: Path  # image root the references are relative to
    workers: int = 1  # decoding threads
    compare_content: bool = True  # record the SHA-256 of the file bytes as an identity too


def check_image_files(table: CheckTable, stem: str, paths: Sequence[str | None], env: ImageEnv) -> tuple[list[Path | None], list[ImageProbe | None]]:
    """Error columns ``<stem>__unsafe_path``, ``__missing_file`` and ``__undecodable``.

    ``paths`` holds the type-checked reference of each record (None: not a string, checked elsewhere).

    Returns:
        Per record: the resolved path (None when unsafe or absent) and the probe (None likewise).
    """
    unsafe: list[str | None] = []
    resolved: list[Path | None] = []
    seen: dict[str, tuple[Path | None, str | None]] = {}  # many records share an image: resolve it once
    for rel in paths:
        if rel is None:
            unsafe.append(None)
            resolved.append(None)
            continue
        if rel not in seen:
            try:
                seen[rel] = (resolve_under_root(env.root, rel), None)
            except UnsafePathError as exc:
                seen[rel] = (None, str(exc))
        path, error = seen[rel]
        resolved.append(path)
        unsafe.append(error)
    probes_by_path = probe_images([p for p in resolved if p is not None], env.workers)
    probes = [probes_by_path[p] if p is not None else None for p in resolved]
    check_no_errors(
        table,
        f"{stem}__unsafe_path",
        unsafe,
        f"'{stem}' is a relative path that stays inside the image root {env.root}",
    )
    check_no_errors(
        table,
        f"{stem}__missing_file",
        [p.error if p is not None and not p.exists else None for p in probes],
        f"the file named by '{stem}' exists",
    )
    check_no_errors(
        table,
        f"{stem}__undecodable",
        [f"{rel}: {p.error}" if p is not None and p.exists and p.error else None for rel, p in zip(paths, probes)],
        f"the file named by '{stem}' is an image that decodes fully (not truncated or corrupt)",
    )
    for i, (path, probe) in enumerate(zip(resolved, probes)):
        if path is not None:
            table.image_keys[i].add(f"path:{path}")
        if probe is not None and probe.sha256 and env.compare_content:
            table.image_keys[i].add(f"sha256:{probe.sha256}")
    return resolved, probes


def check_binary_images(table: CheckTable, stem: str, blobs: Sequence[str | list[str] | None], env: ImageEnv) -> list[ImageProbe | None]:
    """Error column ``<stem>__undecodable`` for base64-encoded images (a string or a list of them).

    Returns:
        Per record: the probe of its first image (None when absent or undecodable).
    """
    errors: list[str | None] = []
    probes: list[ImageProbe | None] = []
    for i, blob in enumerate(blobs):
        items = [blob] if isinstance(blob, str) else list(blob or [])
        error, first = None, None
        for j, item in enumerate(items):
            where = stem if isinstance(blob, str) else f"{stem}[{j}]"
            try:
                data = base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError) as exc:
                error = error or f"'{where}' is not valid base64: {exc}"
                continue
            probe = decode_bytes(data)
            if probe.error:
                error = error or f"'{where}': {probe.error}"
            elif first is None:
                first = probe
            if probe.sha256 and env.compare_content:
                table.image_keys[i].add(f"sha256:{probe.sha256}")
        errors.append(error)
        probes.append(first if error is None else None)
    check_no_errors(table, f"{stem}__undecodable", errors, f"'{stem}' holds base64 images that decode fully")
    return probes


def check_member_images(table: CheckTable, stem: str, blobs: Sequence[bytes | None], env: ImageEnv) -> list[ImageProbe | None]:
    """Error column ``<stem>__undecodable`` for images stored as shard members (encoded bytes).

    Their SHA-256 is always an identity of the record (a shard image has no path to compare), whatever
    ``compare_content`` says, so the evaluation-image check works on shards.

    Returns:
        Per record: the probe (None when the sample has no image member).
    """
    probes = [decode_bytes(blob) if blob is not None else None for blob in blobs]
    check_no_errors(
        table,
        f"{stem}__undecodable",
        [f"the image member: {p.error}" if p is not None and p.error else None for p in probes],
        "the shard sample's image member is an image that decodes fully (not truncated or corrupt)",
    )
    for i, probe in enumerate(probes):
        if probe is not None and probe.sha256:
            table.image_keys[i].add(f"sha256:{probe.sha256}")
    return [p if p is not None and p.ok else None for p in probes]


def size_of(probe: ImageProbe | None) -> tuple[int, int] | None:
    """(width, height) of a decoded image, else None."""
    if probe is None or not probe.ok or probe.width is None or probe.height is None:
        return None
    return probe.width, probe.height


def check_boxes(
    table: CheckTable,
    stem: str,
    boxes: Sequence[Sequence[tuple[float, float, float, float]] | None],
    sizes: Sequence[tuple[int, int] | None],
    tolerance: float,
) -> None:
    """Boxes ``[x, y, w, h]`` have positive size and lie inside their image.

    ``boxes[i]`` holds the well-formed boxes of record i (None: malformed, reported elsewhere).
    A record with several boxes (region elements) is judged by its worst box per quantity.
    Margins need the image size; records whose image did not decode are reported by the image checks.
    """

    def _worst(i: int, fn) -> float | None:
        if not boxes[i]:
            return None
        return min(fn(b) for b in boxes[i])

    n = table.n_records
    contexts = []
    for i in range(n):
        if not boxes[i]:
            contexts.append(None)
            continue
        shown = ", ".join(f"[{b[0]:g}, {b[1]:g}, {b[2]:g}, {b[3]:g}]" for b in boxes[i][:4])
        more = f" and {len(boxes[i]) - 4} more" if len(boxes[i]) > 4 else ""
        size = f"{sizes[i][0]}x{sizes[i][1]} image" if sizes[i] else "image of unknown size"
        contexts.append(f"{'box' if len(boxes[i]) == 1 else 'boxes'} {shown}{more} in a {size}")
    table.add_column(f"{stem}__context", contexts)
    ctx = f"{stem}__context"
    table.add(
        f"{stem}__min_w",
        [_worst(i, lambda b: b[2]) for i in range(n)],
        "expect_column_values_to_be_between",
        "box width w is positive",
        context=ctx,
        min_value=0,
        strict_min=True,
    )
    table.add(
        f"{stem}__min_h",
        [_worst(i, lambda b: b[3]) for i in range(n)],
        "expect_column_values_to_be_between",
        "box height h is positive",
        context=ctx,
        min_value=0,
        strict_min=True,
    )
    table.add(
        f"{stem}__min_x",
        [_worst(i, lambda b: b[0]) for i in range(n)],
        "expect_column_values_to_be_between",
        "box starts inside the image (x >= 0)",
        context=ctx,
        min_value=-tolerance,
    )
    table.add(
        f"{stem}__min_y",
        [_worst(i, lambda b: b[1]) for i in range(n)],
        "expect_column_values_to_be_between",
        "box starts inside the image (y >= 0)",
        context=ctx,
        min_value=-tolerance,
    )
    right = [_worst(i, lambda b, s=sizes[i]: s[0] - (b[0] + b[2])) if sizes[i] else None for i in range(n)]
    bottom = [_worst(i, lambda b, s=sizes[i]: s[1] - (b[1] + b[3])) if sizes[i] else None for i in range(n)]
    table.add(
        f"{stem}__right_margin",
        right,
        "expect_column_values_to_be_between",
        "box ends inside the image (x + w <= image width)",
        context=ctx,
        min_value=-tolerance,
    )
    table.add(
        f"{stem}__bottom_margin",
        bottom,
        "expect_column_values_to_be_between",
        "box ends inside the image (y + h <= image height)",
        context=ctx,
        min_value=-tolerance,
    )
