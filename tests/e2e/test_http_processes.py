"""An API served by several processes (WERKPLAATS_HTTP_PROCESSES): they share one listening socket, each
answers on its own and serves its own /metrics, and stopping the first stops them all."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from werkplaats_shared.devstack.ports import reserve_port
from werkplaats_shared.devstack.stack import LocalStack, StackConfig
from werkplaats_shared.service import METRICS_PORT_STEP


def free_port() -> int:
    return reserve_port()


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def free_metrics_port() -> int:
    """A port free with the ports 10 and 20 above it (the forked processes' /metrics)."""
    return reserve_port((0, METRICS_PORT_STEP, 2 * METRICS_PORT_STEP))


def health_requests(port: int) -> int:
    """How many GET /health this process says it answered (werkplaats_http_requests_total)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            break
        except OSError:
            assert time.monotonic() < deadline, f"no /metrics on port {port}"
            time.sleep(0.2)
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "werkplaats_http_requests_total" and sample.labels.get("route") == "/health":
                total += sample.value
    return int(total)


def health(url: str) -> str:
    with urllib.request.urlopen(url + "/health", timeout=5) as resp:
        return str(json.load(resp)["status"])


def test_three_processes_serve_one_port_and_stop_together(tmp_path: Path) -> None:
    ports = {"intake": free_port(), "matching": free_port(), "scheduling": free_port()}
    metrics_port = free_metrics_port()
    stack = LocalStack(StackConfig(data_dir=str(tmp_path), ports=ports, smtp_port=free_port(), service_env={
        "intake": {"WERKPLAATS_PROCESS": "api", "WERKPLAATS_HTTP_PROCESSES": "3",
                   "WERKPLAATS_METRICS_PORT": str(metrics_port)}}))
    assert stack.broker is not None
    stack.broker.start()
    try:
        stack.start_service("intake")
        stack.wait_ready(60, ("intake",))
        first = stack.processes["intake"]
        forked = children(first.pid)
        assert len(forked) == 2, forked  # the first process and two forked from it
        url = stack.url("intake")
        with ThreadPoolExecutor(12) as pool:
            assert set(pool.map(lambda _: health(url), range(60))) == {"ok"}
        # every process serves its own /metrics (the k-th forked one 10 ports up): together they counted all 60
        answered = sum(health_requests(metrics_port + k * METRICS_PORT_STEP) for k in range(3))
        assert answered == 60
        # the forked processes answer on their own: with the first one stopped, the port still answers
        first.send_signal(signal.SIGSTOP)
        try:
            assert health(url) == "ok"
        finally:
            first.send_signal(signal.SIGCONT)
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") for pid in forked):  # the first waited for them: reaped
            assert time.monotonic() < deadline, "a forked process outlived the first"
            time.sleep(0.1)
        stack.processes.clear()
    finally:
        stack.stop()
