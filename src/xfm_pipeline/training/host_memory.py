"""Host memory allocator settings for CPU training processes.

glibc's malloc hands large blocks (above a threshold that adapts up to 32 MiB) to the kernel with ``mmap``
and gives them back with ``munmap``, and it trims freed memory at the top of the heap. A training step
allocates and frees the same activations every iteration, so the kernel zero-fills them again on every
step: the base preset's image-text step on 2 cores took about 250k minor page faults and 2.5 s of system
time per step. Raising the mmap threshold to its 32 MiB maximum left 40k-150k faults, from the blocks above
it (the 154 MB word-embedding gradient is allocated, zero-filled and summed every step). With
:func:`keep_freed_memory`, which serves every block from the heap, steps take 0-22k faults and about 0.5 s
of system time (``benchmarks/pretrain_step.py`` prints both); what remains comes from 154 MB blocks that
land at a new heap address instead of the one just freed. The price is that freed memory stays in
the process (its RSS does not shrink after a peak), which a training process does not need anyway.
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

# mallopt(3) parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_TOP_PAD = 64 * 2**20  # heap growth per sbrk call


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse instead of returning them to the kernel.

    Serves every block from the heap (``mmap`` is never used for allocations), never trims the heap, and
    grows it by 64 MiB at a time. A no-op returning False where the C library is not glibc (macOS, musl, Windows).

    Returns:
        True when every setting was accepted.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    accepted = all(mallopt(param, value) for param, value in ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1), (_M_TOP_PAD, _TOP_PAD)))
    if not accepted:
        log.warning("mallopt rejected a setting; freed memory may be returned to the kernel every step")
    return accepted
