"""Run a service process: its HTTP API (waitress) and/or its worker loops, stopped cleanly on
SIGTERM/SIGINT.

An API may be served by several processes (``serve_processes``): the first binds the listening socket,
then forks the others, which accept on the same socket (the kernel hands each connection to one of them);
each process has waitress's 8 threads. Python runs one thread at a time per process, so this is how an API
uses more than one core. SIGTERM to the first stops the others and waits for them."""

from __future__ import annotations

import logging
import os
import signal
import socket
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


def serve(app: Flask, host: str, port: int, loops: list[Loop], sockets: list[socket.socket] | None = None) -> None:
    stop = threading.Event()
    if sockets:
        server: Any = create_server(app, sockets=sockets, threads=8, clear_untrusted_proxy_headers=True)
    else:
        server = create_server(app, host=host, port=port, threads=8, clear_untrusted_proxy_headers=True)

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


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serve_processes(app: Flask, host: str, port: int, processes: int, after_fork: Callable[[int], None],
                    after_forks: Callable[[], None] | None = None) -> None:
    """Serve ``app`` (no worker loops) from ``processes`` processes on one socket: this one and
    ``processes - 1`` forked ones. ``after_fork`` runs first in each forked process with its index (1 to
    ``processes - 1``; e.g. to drop the database connections inherited from this one and start the process's
    own threads), ``after_forks`` in this one once all are forked (e.g. to start a thread). Call it before
    any other thread is started."""
    sock = listening_socket(host, port)
    children: list[int] = []
    for index in range(1, processes):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked process, which never returns from here
            code = 0
            try:
                after_fork(index)
                serve(app, host, port, [], sockets=[sock])
            except BaseException:  # a forked process must not return into the caller
                log.exception("HTTP process failed")
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    if after_forks is not None:
        after_forks()
    log.info("serving HTTP from several processes", extra={"processes": processes, "pids": [os.getpid(), *children]})
    try:
        serve(app, host, port, [], sockets=[sock])
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 15
        for pid in children:
            while time.monotonic() < deadline:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        sock.close()
