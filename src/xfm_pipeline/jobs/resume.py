"""Which earlier run a job may resume: the one with the same parameters, initial weights, data and code.

Checkpoints of a job live in ``output_dir/run-<key>``, where the key hashes the resolved parameters, the
content of every input file and the package's source code. Rerunning an interrupted job finds its
directory and resumes; changing a parameter, the starting checkpoint, the data or the code starts a fresh
run instead of silently reusing a finished one (``dvc repro`` reruns a stage after a code change, and
must then train again, not hand back the weights the old code trained). :func:`prune_runs` bounds how
many such directories a job keeps on disk.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_KEEP_RUNS = 2  # run-<key> directories a job keeps after a run unless its parameters say otherwise
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # src/xfm_pipeline


@functools.cache
def code_fingerprint(root: Path = PACKAGE_ROOT) -> str:
    """sha256 of every ``*.py`` file under ``root`` (relative path and bytes, in sorted order)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_key(params: dict[str, Any], files: Iterable[str | Path]) -> str:
    """A 12-hex-digit key of ``params`` (JSON), the bytes of ``files`` (in the given order) and
    :func:`code_fingerprint`."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(code_fingerprint().encode())
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


def prune_runs(run_dir: str | Path, keep: int) -> list[Path]:
    """Delete the least recently modified sibling ``run-*`` directories of ``run_dir`` so that ``keep``
    runs remain, ``run_dir`` always among them (``keep <= 0`` keeps every run). Returns what was deleted.

    Each directory is first renamed to a hidden name and then removed, so an interrupted prune never
    leaves a partly deleted ``run-<key>`` that a later run with that key would try to resume. Jobs that
    share an output directory and run at the same time with different parameters would delete each
    other's runs: give them their own ``output_dir``, or ``keep_runs: 0``.
    """
    run_dir = Path(run_dir)
    if keep <= 0 or not run_dir.parent.is_dir():
        return []
    others = [d for d in run_dir.parent.glob("run-*") if d.is_dir() and d.resolve() != run_dir.resolve()]
    others.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    deleted = []
    for old in others[max(keep - 1, 0) :]:
        doomed = old.with_name(f".deleting-{old.name}-{uuid.uuid4().hex[:8]}")
        old.rename(doomed)
        shutil.rmtree(doomed)
        deleted.append(old)
        log.info("removed the older run directory %s (keep_runs=%d)", old, keep)
    return deleted
