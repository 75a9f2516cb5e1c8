"""The solver process's memory (matching.memory): it keeps freed memory for reuse (a large block comes
from the heap and stays there after it is freed, where by default it is mapped and handed back to the
kernel), and the cyclic garbage collector rests while a round is read."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import ctypes, json, sys
from matching.memory import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
kept = keep_freed_memory() if sys.argv[1] == "worker" else None
import numpy as np
block = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB
during = libc.mallinfo2()
del block
after = libc.mallinfo2()
print(json.dumps({"kept": kept, "mapped_during": during.hblkhd, "free_after": after.fordblks}))
"""


def probe(mode: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    result: dict[str, int] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator settings: Linux only")
def test_the_worker_process_keeps_a_freed_block_for_the_next_step() -> None:
    worker, default = probe("worker"), probe("default")
    assert worker["kept"] is True
    assert worker["mapped_during"] < 64 << 20 <= worker["free_after"]  # from the heap, and still there
    assert default["mapped_during"] >= 64 << 20 > default["free_after"]  # mapped, then handed back


def test_reading_a_round_starts_no_garbage_collection_and_leaves_the_collector_on() -> None:
    import gc

    from matching.domain.model import Problem

    from benchmarks.generator import generate

    snapshot = generate(2000, flavour="network", seed=1)
    started: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    assert gc.isenabled()
    gc.collect()  # young generation empty: nothing is due before the read begins
    gc.callbacks.append(seen)
    try:
        problem = Problem.from_snapshot(snapshot)
    finally:
        gc.callbacks.remove(seen)
    assert len(problem.teams) == 2000 and gc.isenabled()
    assert started in ([], [0])  # at most the young generation, once, as the collector wakes after the read
