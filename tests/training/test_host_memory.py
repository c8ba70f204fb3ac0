"""keep_freed_memory: freed activations stay in the process for reuse instead of going back to the kernel."""

import platform
import subprocess
import sys

import pytest

_FREE_BLOCK = """
import os, sys
import torch
if sys.argv[1] == "keep":
    from xfm_pipeline.training.host_memory import keep_freed_memory
    assert keep_freed_memory()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
x = torch.ones(int(sys.argv[2]))  # an activation, every page written
before = rss()
del x
print(before - rss())
"""


def _released(mode: str, mib: int) -> int:
    """Bytes of resident memory the process gives back when a written ``mib`` MiB tensor is freed."""
    args = [sys.executable, "-c", _FREE_BLOCK, mode, str(mib * 2**18)]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt settings are glibc's")
@pytest.mark.parametrize("mib", [16, 160])  # an activation; the size of the base word-embedding gradient
def test_a_freed_block_stays_resident(mib):
    assert _released("default", mib) >= (mib - 1) * 2**20  # glibc's default: munmap on free (faulted in again)
    assert _released("keep", mib) < 2**20  # kept in the heap for the next allocation
