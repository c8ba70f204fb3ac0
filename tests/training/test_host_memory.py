"""keep_freed_memory: freed activations stay in the process for reuse instead of going back to the kernel."""

import platform
import subprocess
import sys

import pytest

_FREE_16_MIB = """
import os, sys
import torch
if sys.argv[1] == "keep":
    from xfm_pipeline.training.host_memory import keep_freed_memory
    assert keep_freed_memory()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
x = torch.ones(4 * 2**20)  # a 16 MiB activation, every page written
before = rss()
del x
print(before - rss())
"""


def _released(mode: str) -> int:
    """Bytes of resident memory the process gives back when a written 16 MiB tensor is freed."""
    out = subprocess.run([sys.executable, "-c", _FREE_16_MIB, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt settings are glibc's")
def test_a_freed_block_stays_resident():
    assert _released("default") >= 15 * 2**20  # glibc's default: munmap on free (faulted in again next step)
    assert _released("keep") < 2**20  # kept in the heap for the next allocation
