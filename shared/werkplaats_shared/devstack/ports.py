"""Ports for local stacks that run side by side (parallel test workers, a benchmark beside the tests).

Binding port 0 and closing the socket hands out a port that the kernel may give again to the next caller before
the service that was meant to listen on it has started: two stacks started in parallel then met on one port (a
service's readiness poll answered by another stack's SMTP sink). It also picks from the ephemeral range, which the
kernel uses for every outgoing connection, and says nothing of the ports a service derives from its HTTP port
(its /metrics on the port + 1000, and + 10 per forked process).

`reserve_port` picks below the ephemeral range and holds an exclusive lock file per port, for itself and for
each derived port, for as long as the process lives: no other process using this module takes them, whatever
the order in which the services start. A port something else already listens on is skipped.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from collections.abc import Iterable

from ..service import METRICS_PORT_STEP

METRICS_OFFSET = 1000  # config.metrics_port: the HTTP port + 1000 by default
DERIVED = (0, METRICS_OFFSET, METRICS_OFFSET + METRICS_PORT_STEP, METRICS_OFFSET + 2 * METRICS_PORT_STEP)
LOW, HIGH = 12_000, 31_000  # below Linux's default ephemeral range (32768-60999), highest derived port included
LOCK_DIR = os.path.join(tempfile.gettempdir(), "werkplaats-ports")

_held: dict[int, int] = {}  # port -> descriptor of its lock file, kept open while this process lives


def _lock(port: int) -> int | None:
    fd = os.open(os.path.join(LOCK_DIR, str(port)), os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reserve_port(offsets: Iterable[int] = DERIVED) -> int:
    """A port that no other caller of this function holds and nothing listens on, nor on port + each offset."""
    wanted = tuple(offsets)
    os.makedirs(LOCK_DIR, exist_ok=True)
    span = max(wanted)
    for _ in range(2_000):
        port = random.randrange(LOW, HIGH - span)
        if any(port + offset in _held for offset in wanted):
            continue
        taken: list[int] = []
        for offset in wanted:
            fd = _lock(port + offset)
            if fd is None:
                break
            _held[port + offset] = fd
            taken.append(port + offset)
        if len(taken) == len(wanted) and all(_bindable(p) for p in taken):
            return port
        for p in taken:
            os.close(_held.pop(p))
    raise RuntimeError(f"no free port between {LOW} and {HIGH} after 2,000 tries")


def release_port(port: int, offsets: Iterable[int] = DERIVED) -> None:
    """Let other processes take the port (and its derived ports) again."""
    for offset in offsets:
        fd = _held.pop(port + offset, None)
        if fd is not None:
            os.close(fd)
