"""Run a service process: its HTTP API (waitress) and/or its worker loops, stopped cleanly on
SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from flask import Flask
from waitress.server import create_server

from .transient import CAP_SECONDS, is_transient

log = logging.getLogger(__name__)


@dataclass
class Loop:
    name: str
    run: Callable[[threading.Event], None]
    stop: Callable[[], None] | None = None


def _guarded(loop: Loop, stop: threading.Event) -> None:
    delay = 0.5
    while not stop.is_set():
        try:
            loop.run(stop)
            return
        except Exception as exc:
            if is_transient(exc):  # the database or broker does not answer: no traceback, a line per attempt
                log.warning("loop waiting for the infrastructure", extra={
                    "loop": loop.name, "error": type(exc).__name__, "wait_seconds": delay})
            else:
                log.exception("loop crashed, restarting", extra={"loop": loop.name})
            stop.wait(delay)
            delay = min(delay * 2, CAP_SECONDS)


def serve(app: Flask, host: str, port: int, loops: list[Loop]) -> None:
    stop = threading.Event()
    server: Any = create_server(app, host=host, port=port, threads=8, clear_untrusted_proxy_headers=True)

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    threads = [threading.Thread(target=_guarded, args=(loop, stop), name=loop.name, daemon=True)
               for loop in loops]
    web = threading.Thread(target=server.run, name="http", daemon=True)
    for t in [*threads, web]:
        t.start()
    log.info("started", extra={"port": port, "loops": [loop.name for loop in loops]})
    while not stop.is_set():
        stop.wait(0.5)
    for loop in loops:
        if loop.stop:
            loop.stop()
    server.close()
    deadline = time.monotonic() + 10
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    log.info("stopped")
