"""The memory storage of rate-limit counters sweeps expired counters at most once a second (ratelimit.py): the
limits stay what they were (a counter past its window starts again when read) and a quiet caller's counter is
still freed by a later sweep."""

from __future__ import annotations

import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkplaats_shared.ratelimit import SweptMemoryStorage, storage_uri


def test_memory_counters_keep_their_limits_between_sweeps_and_quiet_ones_are_freed() -> None:
    storage = storage_from_string(storage_uri("memory://"))
    assert isinstance(storage, SweptMemoryStorage)
    assert storage_uri("redis://cache:6379/0") == "redis://cache:6379/0"
    limiter, two_a_second = FixedWindowRateLimiter(storage), parse("2 per 1 second")
    assert [limiter.hit(two_a_second, "key:a") for _ in range(3)] == [True, True, False]
    assert limiter.hit(two_a_second, "key:quiet")
    time.sleep(1.1)  # the window is over; no sweep ran since (the last one was at the start)
    assert [limiter.hit(two_a_second, "key:a") for _ in range(3)] == [True, True, False]
    # the hit after the window started one sweep: the quiet caller's expired counter is gone
    deadline = time.monotonic() + 5
    while "key:quiet" in str(list(storage.expirations)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any("key:quiet" in key for key in storage.expirations)
    assert any("key:a" in key for key in storage.expirations)
