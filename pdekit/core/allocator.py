"""Keep freed memory in the process during CPU training (glibc's malloc).

A training step allocates and frees the same working set of tensors every step. glibc's malloc
returns the free top of its heap to the kernel once it exceeds ``M_TRIM_THRESHOLD`` and serves
large blocks with fresh ``mmap`` calls, so the next step takes its memory back page by page, each
first touch a page fault the kernel must zero. On this project's CPU runs that cost was large:
the causal PINN on Allen-Cahn (benchmark settings, compiled Taylor engine, one thread, 400 steps)
took 2.3 million page faults and 40.2 ms per step; with the heap kept, 73 thousand and 25.4 ms
(``M_TRIM_THRESHOLD`` 1 GiB and ``M_MMAP_THRESHOLD`` 32 MiB, the largest glibc accepts; two
such runs side by side). Both are needed: setting either one alone switches off glibc's
dynamic thresholds, so the trim threshold alone sent every block above 128 KiB to ``mmap``
(5.3 million faults, 54.6 ms per step) and the mmap threshold alone left the heap trimmed
(2.5 million, 40.1 ms). The price is that the process keeps up to ``trim_threshold`` bytes of
freed memory for reuse instead of handing it back, as jemalloc or tcmalloc (PyTorch's suggestion
for CPU training) would too.

:func:`retain_freed_memory` sets both thresholds once per process, where the C library is glibc;
elsewhere (macOS, musl, Windows) it does nothing. ``PDEKIT_KEEP_FREED_MEMORY=0`` in the
environment turns it off. The solvers call it before training on a CPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: mallopt parameter numbers (glibc <malloc.h>)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc refuses mmap thresholds above HEAP_MAX_SIZE / 2, 32 MiB on 64-bit systems
MMAP_THRESHOLD_MAX = 32 << 20

_applied: dict | None = None


def _glibc():
    """The process's glibc, or None where the C library is another one."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):  # not glibc (musl has no gnu_get_libc_version)
        return None
    return libc


def retain_freed_memory(trim_threshold: int = 1 << 30, mmap_threshold: int = MMAP_THRESHOLD_MAX):
    """Ask glibc's malloc to keep up to ``trim_threshold`` bytes of freed heap and to serve
    blocks below ``mmap_threshold`` from the heap. Returns what was set (a dict), or None
    where nothing was (not glibc, or ``PDEKIT_KEEP_FREED_MEMORY=0``). Idempotent: the first
    call's settings stay."""
    global _applied
    if _applied is not None:
        return _applied
    if os.environ.get("PDEKIT_KEEP_FREED_MEMORY", "1").strip().lower() in ("0", "false", "no"):
        return None
    libc = _glibc()
    if libc is None:
        return None
    if not 0 < mmap_threshold <= MMAP_THRESHOLD_MAX:
        raise ValueError(
            f"mmap_threshold must be in (0, {MMAP_THRESHOLD_MAX}] bytes; got {mmap_threshold}"
        )
    if trim_threshold <= 0:
        raise ValueError(f"trim_threshold must be > 0; got {trim_threshold}")
    # mallopt returns 1 on success. The mmap threshold goes first: alone it behaves like the
    # defaults, while the trim threshold alone is the slowest state of all (see above)
    if not libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(mmap_threshold)):
        return None
    if not libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(min(trim_threshold, 2**31 - 1))):
        return None
    _applied = {"trim_threshold": trim_threshold, "mmap_threshold": mmap_threshold}
    return _applied
