"""A planning job's watch over the HiGHS models the planners build in memory (``workshop_solver`` and
``kickoff_optimiser``): a solve started while a watch is set stops at HiGHS's next interrupt check once the
watch's ``stop`` event is set (the job was cancelled, or its worker lost the lease), and a solve that its time
limit ended is noted on the watch. The planners' signatures stay as they are: the watch is a context variable,
set by the job worker around the planner's call (``watching``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol


class Watch(Protocol):
    stop: threading.Event
    time_limit_reached: bool


_current: ContextVar[Watch | None] = ContextVar("werkplaats_solver_watch", default=None)


@contextmanager
def watching(watch: Watch) -> Iterator[None]:
    token = _current.set(watch)
    try:
        yield
    finally:
        _current.reset(token)


def stopped() -> bool:
    """Whether the current watch asks the planner to stop (False without a watch)."""
    watch = _current.get()
    return watch is not None and watch.stop.is_set()


def attach(h: Any) -> None:
    """Let the current watch (if any) interrupt this HiGHS instance's simplex, interior point and MIP."""
    watch = _current.get()
    if watch is None:
        return
    import highspy

    kinds = highspy.cb.HighsCallbackType
    interrupts = (kinds.kCallbackSimplexInterrupt, kinds.kCallbackIpmInterrupt, kinds.kCallbackMipInterrupt)

    def callback(kind: Any, _message: str, _data_out: Any, data_in: Any, _user_data: Any) -> None:
        if kind in interrupts and watch.stop.is_set():
            data_in.user_interrupt = True

    h.setCallback(callback, None)
    for kind in interrupts:
        h.startCallback(kind)


def pass_on(inner: Watch) -> None:
    """Tell the current watch (if any) what a watch of solves on other threads noted: their time limit ended
    one of them."""
    watch = _current.get()
    if watch is not None and inner.time_limit_reached:
        watch.time_limit_reached = True


def note(h: Any) -> None:
    """After a run: tell the current watch (if any) when the time limit ended it."""
    watch = _current.get()
    if watch is None:
        return
    import highspy

    if h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit:
        watch.time_limit_reached = True
