"""Which earlier run a job may resume: the one with the same parameters, initial weights and data.

Checkpoints of a job live in ``output_dir/run-<key>``, where the key hashes the resolved parameters and
the content of every input file. Rerunning an interrupted job finds its directory and resumes;
changing a parameter, the starting checkpoint or the data starts a fresh run instead of silently
reusing a finished one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def run_key(params: dict[str, Any], files: Iterable[str | Path]) -> str:
    """A 12-hex-digit key of ``params`` (JSON) and the bytes of ``files`` (in the given order)."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for path in files:
        path = Path(path)
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()[:12]


def run_directory(output_dir: str | Path, params: dict[str, Any], files: Iterable[str | Path]) -> Path:
    """``output_dir/run-<key>`` for these parameters and input files."""
    return Path(output_dir) / f"run-{run_key(params, files)}"
