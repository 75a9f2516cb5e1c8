"""The solver process's memory: the allocator's settings, and the cyclic garbage collector at rest
while a round is read and solved.

A run allocates and frees arrays of tens of megabytes (a round of 10,000 teams has 400,000 eligible pairs
and about 1.2 million matrix entries). glibc hands each block above its mmap threshold back to the kernel
when it is freed, so every later step of the run, and every later run, gets fresh memory that the kernel
must fault in and zero page by page: on our 2-core machines about 0.1 s of a 10k run's 0.5 s of Python
work (``python -m benchmarks.run``). With both thresholds raised, freed memory stays in the process and is
used again. The price: the worker's resident size stays at its high-water mark (about 400 MiB after a 10k
round, 1.6 GiB after a 50k one) instead of falling back between runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import sys
import threading
from collections.abc import Iterator

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # blocks below 1 GiB come from the heap
TRIM_THRESHOLD = (1 << 31) - 1  # free memory at the top of the heap is kept up to 2 GiB


def keep_freed_memory() -> bool:
    """Raise the thresholds for this process; False where the allocator is not glibc's (nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # musl has none
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


# The cyclic garbage collector rests while a round is read and solved: that work makes no reference cycles
# (reference counting frees what it drops), but the many small objects it makes start full collections,
# each of which walks every object in the process: at 50,000 teams, 0.5 s of reading the round's 1 s, and
# 50 ms at the end of a 10,000-team run. Runs in several threads share one pause.
_paused = 0
_paused_lock = threading.Lock()
_was_enabled = True


@contextlib.contextmanager
def cycles_paused() -> Iterator[None]:
    global _paused, _was_enabled
    with _paused_lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()
