"""Host memory allocator settings for CPU training processes.

glibc's malloc hands large blocks (above a threshold that adapts up to 32 MiB) to the kernel with ``mmap``
and gives them back with ``munmap``, and it trims freed memory at the top of the heap. A training step
allocates and frees the same activations every iteration, so the kernel zero-fills them again on every
step: the base preset's image-text step on 2 cores took about 250k minor page faults and 2.5 s of system
time per step. With :func:`keep_freed_memory` it takes 40k-150k faults and 0.7-1.6 s, depending on the
step; what remains are blocks above glibc's 32 MiB limit, such as the 154 MB word-embedding gradient
(``benchmarks/pretrain_step.py`` prints both figures). The price is that freed memory stays in the process
(its RSS does not shrink after a peak), which a training process does not need anyway.
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

# mallopt(3) parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper limit on 64-bit systems
_TOP_PAD = 64 * 2**20  # heap growth per sbrk call


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse instead of returning them to the kernel.

    Serves blocks up to 32 MiB from the heap (instead of ``mmap``), never trims the heap, and grows it by
    64 MiB at a time. A no-op returning False where the C library is not glibc (macOS, musl, Windows).

    Returns:
        True when every setting was accepted.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    accepted = all(
        mallopt(param, value)
        for param, value in ((_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX), (_M_TRIM_THRESHOLD, -1), (_M_TOP_PAD, _TOP_PAD))
    )
    if not accepted:
        log.warning("mallopt rejected a setting; freed memory may be returned to the kernel every step")
    return accepted
