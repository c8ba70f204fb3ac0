"""Image probing: does a file exist, does it decode fully, what size is it, what are its bytes' hash.

Each file is read and decoded once per process: results are cached by (resolved path, size, mtime),
so the several datasets that share an image (and the evaluation-image index) pay for one decode.
Decoding uses ``Image.load()`` with ``ImageFile.LOAD_TRUNCATED_IMAGES`` forced to False, so a
truncated JPEG is an error here even when other code has switched truncated loading on.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ImageProbe:
    """What probing one image found."""

    exists: bool  # a regular file is there
    width: int | None = None  # pixels, when it decoded
    height: int | None = None
    sha256: str | None = None  # of the file bytes, when readable
    error: str | None = None  # why it does not exist or does not decode; None when it decoded fully

    @property
    def ok(self) -> bool:
        """The file exists and decoded fully."""
        return self.exists and self.error is None


_CACHE: dict[tuple[str, int, int], ImageProbe] = {}
_CACHE_LOCK = threading.Lock()
_STRICT_LOCK = threading.RLock()


@contextmanager
def _strict_truncation():
    """Force Pillow to reject truncated images for the duration (restores the previous setting)."""
    from PIL import ImageFile

    with _STRICT_LOCK, warnings.catch_warnings():
        # Pillow's own warnings (decompression bomb, odd EXIF) are not our verdict; errors are.
        warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def decode_bytes(data: bytes) -> ImageProbe:
    """Decode an in-memory image fully (e.g. a base64 ``binary`` field)."""
    with _strict_truncation():
        return _decode(data)


def _decode(data: bytes) -> ImageProbe:
    # Callers hold _strict_truncation().
    from PIL import Image, UnidentifiedImageError

    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
    except UnidentifiedImageError:
        return ImageProbe(True, sha256=digest, error="not an image: Pillow cannot identify the file format")
    except Image.DecompressionBombError as exc:
        return ImageProbe(True, sha256=digest, error=f"image too large to decode safely: {exc}")
    except (OSError, SyntaxError, ValueError) as exc:
        kind = "truncated image" if "truncated" in str(exc).lower() else "corrupt image"
        return ImageProbe(True, sha256=digest, error=f"{kind}: {exc}")
    if width <= 0 or height <= 0:
        return ImageProbe(True, width, height, digest, error=f"image has no pixels ({width}x{height})")
    return ImageProbe(True, width, height, digest)


def probe_image(path: str | Path) -> ImageProbe:
    """Probe one image file (cached by resolved path, size and modification time)."""
    with _strict_truncation():
        return _probe(Path(path))


def _probe(path: Path) -> ImageProbe:
    # Callers hold _strict_truncation(); worker threads of probe_images run under the caller's hold.
    try:
        stat = path.stat()
    except OSError:
        return ImageProbe(False, error=f"no file at {path}")
    if not path.is_file():
        return ImageProbe(False, error=f"not a regular file: {path}")
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ImageProbe(True, error=f"cannot read {path}: {exc}")
    probe = _decode(data)
    with _CACHE_LOCK:
        _CACHE[key] = probe
    return probe


def probe_images(paths: Iterable[Path], workers: int = 1) -> dict[Path, ImageProbe]:
    """Probe many images (Pillow releases the GIL while decoding, so threads help)."""
    unique = [Path(p) for p in dict.fromkeys(paths)]
    with _strict_truncation():
        if workers <= 1 or len(unique) < 2:
            return {p: _probe(p) for p in unique}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return dict(zip(unique, pool.map(_probe, unique)))


def clear_cache() -> None:
    """Forget every probe (tests; long-lived processes after files changed in place)."""
    with _CACHE_LOCK:
        _CACHE.clear()
