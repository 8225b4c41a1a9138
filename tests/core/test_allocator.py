"""retain_freed_memory: glibc keeps a freed working set, so re-allocating it faults no pages.

The oracle is the kernel's own page-fault count (getrusage), measured in a fresh interpreter
so that nothing else in the test session has set the allocator: allocate and free 64 MB in
blocks of 4 MB twenty times; without the setting every round trip is returned to the kernel
and faulted back (>= 16k pages per round), with it only the first round faults.
"""

import os
import subprocess
import sys

import pytest

from pdekit.core import allocator

CHILD = r"""
import resource, sys
import torch
from pdekit.core.allocator import retain_freed_memory
if sys.argv[1] == "on":
    assert retain_freed_memory() is not None
torch.set_num_threads(1)
def round_trip():
    blocks = [torch.ones(1 << 20) for _ in range(16)]  # 16 x 4 MB, first touch writes each page
    del blocks
round_trip()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    round_trip()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
"""

glibc = pytest.mark.skipif(allocator._glibc() is None, reason="needs glibc's malloc")


#: glibc's static default thresholds, pinned for the child: left to itself glibc raises its mmap
#: threshold whenever a large mmapped block is freed, so whether the 4 MB blocks come from
#: mmap (faulted every round) depends on what importing torch happened to free; measured on a
#: 2-core AMD EPYC, 20 runs of the child without the setting: 4 faulted only the first round
#: (17,330 pages, the test failed in CI once), 16 every round (327k). Pinned: 328,000 in 20 of
#: 20; with the setting (mallopt overrides the environment) 1,024 in 10 of 10.
GLIBC_DEFAULTS = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def faults(mode):
    env = {**os.environ, **GLIBC_DEFAULTS, "PDEKIT_KEEP_FREED_MEMORY": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, env=env, check=True
    )
    return int(out.stdout.split()[-1])


@glibc
def test_freed_working_set_is_reused_without_page_faults():
    pages = 20 * 64 * 2**20 // 4096  # what twenty fresh 64 MB round trips would fault
    off, on = faults("off"), faults("on")
    assert off > pages / 2, off  # the default malloc hands 4 MB blocks back every time
    assert on < pages / 50, on  # kept: reused without touching the kernel


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setenv("PDEKIT_KEEP_FREED_MEMORY", "0")
    assert allocator.retain_freed_memory() is None
    assert allocator._applied is None


@glibc
def test_bad_thresholds_are_refused(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.delenv("PDEKIT_KEEP_FREED_MEMORY", raising=False)
    with pytest.raises(ValueError, match="mmap_threshold"):
        allocator.retain_freed_memory(mmap_threshold=64 << 20)
    with pytest.raises(ValueError, match="trim_threshold"):
        allocator.retain_freed_memory(trim_threshold=0)
