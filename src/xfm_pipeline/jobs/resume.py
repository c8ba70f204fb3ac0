"""Which earlier run a job may resume or reuse (docs/design.md#resuming-runs).

Checkpoints of a job live in ``output_dir/run-<key>``, where the key hashes the resolved parameters and the
content of every input file (starting weights, data). Each run directory records, in ``run.json``, the
fingerprint of the package's source code that trained it and whether it finished:

* an UNFINISHED run resumes from its newest checkpoint even after a code change (a one-line fix must not
  throw away days of pretraining); the change is logged as a warning naming both fingerprints, and the
  fingerprints are kept in ``run.json`` (and in MLflow by the job);
* a FINISHED run is reused only by the same code (the job hands back the weights it selected, recorded in
  ``run.json``); after a code change it is discarded and the job trains afresh (``dvc repro`` reruns a stage
  after a code change and must then train again, not hand back the weights the old code trained).

A finished run keeps only what a later stage or a user needs: the selected checkpoint's weights, config and
tokenizer. Optimizer state (``training_state.pt``) and the other checkpoints live only while the run is
unfinished (:func:`finish_run`).

:func:`start_run` and :func:`finish_run` implement this; :func:`prune_runs` bounds how many run directories
a job keeps on disk.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RUN_RECORD = "run.json"  # {"code", "finished", "code_history": [oldest first], "selected": checkpoint dir name, once finished}
TRAINING_STATE = "training_state.pt"  # training.checkpointing.STATE: optimizer, scheduler, data positions
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
    """A 12-hex-digit key of ``params`` (JSON) and the bytes of ``files`` (in the given order); the code is
    not part of it (see the module docstring)."""
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


@dataclass(frozen=True)
class RunStart:
    """What :func:`start_run` found in a run directory."""

    directory: Path
    code: str  # fingerprint of the code running now
    resumed_code: str | None  # fingerprint of the other code an unfinished run was trained by (None: same code or new run)
    discarded_code: str | None  # fingerprint of the other code whose finished run was discarded (None: nothing discarded)
    selected: Path | None = None  # a finished run of this code: the checkpoint it selected, to reuse as is

    def tags(self) -> dict[str, str]:
        """MLflow tags of this decision: the code fingerprint, and the other code resumed or discarded."""
        tags = {"xfm.code_fingerprint": self.code}
        if self.resumed_code:
            tags["xfm.resumed_from_code"] = self.resumed_code
        if self.discarded_code:
            tags["xfm.discarded_run_of_code"] = self.discarded_code
        return tags


def read_run_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``run.json`` of ``run_dir``, or None when there is none (a new run, or one from before records)."""
    path = Path(run_dir) / RUN_RECORD
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def start_run(run_dir: str | Path, is_main: bool) -> RunStart:
    """Decide, before training, what the existing ``run_dir`` means for this code; rank 0 (``is_main``) acts.

    A finished run of the same code is reused (``selected`` names its checkpoint; nothing is written); a finished
    run of other code is discarded (renamed away, then deleted); an unfinished one is kept for resuming and a
    code change is logged as a warning. Rank 0 then records this code as the run's current code
    (``finished: false``). Every rank returns the same decision; callers synchronise the ranks after it.
    """
    run_dir = Path(run_dir)
    code = code_fingerprint()
    record = read_run_record(run_dir)
    previous = record.get("code") if record else None
    changed = previous is not None and previous != code
    finished = bool(record and record.get("finished"))
    resumed_code = previous if changed and not finished else None
    discarded_code = previous if changed and finished else None
    if finished and not changed and record.get("selected") and (run_dir / record["selected"]).is_dir():
        return RunStart(run_dir, code, None, None, selected=run_dir / record["selected"])
    if is_main:
        if discarded_code:
            log.info("%s was finished by other code (%s, now %s): training afresh", run_dir, discarded_code[:12], code[:12])
            _remove(run_dir)
            record = None
        elif resumed_code:
            log.warning("resuming the unfinished run %s trained so far by code %s with changed code %s", run_dir, resumed_code[:12], code[:12])
        history = list((record or {}).get("code_history", []))
        if not history or history[-1] != code:
            history.append(code)
        _write_record(run_dir, {"code": code, "finished": False, "code_history": history})
    return RunStart(run_dir, code, resumed_code, discarded_code)


def finish_run(run_dir: str | Path, selected: str | Path) -> None:
    """Mark ``run_dir`` finished by the code running now with ``selected`` (a checkpoint directory inside it) as
    its result, then free what only an unfinished run needs: every other ``checkpoint-*`` directory and the
    training state beside the selected weights (rank 0, after the job's last use of them)."""
    run_dir, selected = Path(run_dir), Path(selected)
    if selected.parent.resolve() != run_dir.resolve():
        raise ValueError(f"the selected checkpoint {selected} is not a directory of the run {run_dir}")
    record = read_run_record(run_dir) or {"code_history": [code_fingerprint()]}
    _write_record(run_dir, {**record, "code": code_fingerprint(), "finished": True, "selected": selected.name})
    for directory in run_dir.iterdir():
        if directory.is_dir() and directory.name.startswith("checkpoint-") and directory.name != selected.name:
            _remove(directory)
    (selected / TRAINING_STATE).unlink(missing_ok=True)


def _write_record(run_dir: Path, record: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{RUN_RECORD}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(run_dir / RUN_RECORD)


def _remove(directory: Path) -> None:
    """Rename ``directory`` to a hidden name, then delete it: an interrupted removal never leaves a partial run."""
    if directory.is_dir():
        doomed = directory.with_name(f".deleting-{directory.name}-{uuid.uuid4().hex[:8]}")
        directory.rename(doomed)
        shutil.rmtree(doomed)


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
        _remove(old)
        deleted.append(old)
        log.info("removed the older run directory %s (keep_runs=%d)", old, keep)
    return deleted
