"""Logs every write a Python process makes under ``XFM_WRITE_AUDIT_ROOT`` to ``XFM_WRITE_AUDIT_LOG``.

Put this directory on ``PYTHONPATH`` (Python imports ``sitecustomize`` at start-up; subprocesses inherit the
variables, so torchrun's agent and workers are audited too). Each write is one line ``<event> <path>``:
files opened for writing, directories made, renames, removals, links, copies, metadata changes and SQLite
connections (``sys.addaudithook`` events; a write by C code goes into a directory a Python call made).
Paths are resolved first, so a symlink out of the root (the project's ``src``) is not under it.
"""

from __future__ import annotations

import os
import sys

ROOT = os.environ.get("XFM_WRITE_AUDIT_ROOT")
LOG = os.environ.get("XFM_WRITE_AUDIT_LOG")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# event -> (position of a written path in its arguments, position of the directory descriptor it is relative to)
WRITES = {
    "os.mkdir": ((0, 2),),
    "os.rename": ((0, 2), (1, 3)),
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.link": ((1, 3),),
    "os.symlink": ((1, 2),),
    "os.truncate": ((0, None),),
    "os.utime": ((0, 3),),
    "os.chmod": ((0, 2),),
    "shutil.copyfile": ((1, None),),
    "shutil.rmtree": ((0, 2),),
    "sqlite3.connect": ((0, None),),
}


def _under_root(path, dir_fd, root: str) -> str | None:
    """The resolved ``path`` (relative to ``dir_fd`` when that is a descriptor, else to the working directory)
    when it lies under ``root``; None for a path given as a file descriptor and for other places."""
    if isinstance(path, int) or path is None:
        return None
    path = os.fsdecode(path)
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
        path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    resolved = os.path.realpath(path)
    return resolved if resolved == root or resolved.startswith(root + os.sep) else None


def _install(root: str, log_path: str) -> None:
    root = os.path.realpath(root)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def audit(event: str, args: tuple) -> None:
        if event == "open":
            positions = ((0, None),) if isinstance(args[2], int) and args[2] & WRITE_FLAGS else ()
        else:
            positions = WRITES.get(event, ())
        for i, fd_at in positions:
            path = _under_root(args[i], args[fd_at] if fd_at is not None and fd_at < len(args) else None, root)
            if path is not None:
                os.write(fd, f"{event} {path} (pid {os.getpid()})\n".encode())

    sys.addaudithook(audit)


if ROOT and LOG:
    _install(ROOT, LOG)
