"""Ports for local stacks started side by side: never the same port (or derived /metrics port) twice."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import pytest
from werkplaats_shared.devstack import ports

CHILD = textwrap.dedent("""
    import json, sys, time
    from werkplaats_shared.devstack.ports import reserve_port
    got = [reserve_port() for _ in range(40)]
    print(json.dumps(got), flush=True)
    sys.stdin.read()  # hold the ports until the parent has read every child's
""")


def test_processes_reserving_at_once_never_share_a_port_or_a_derived_port() -> None:
    children = [subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True) for _ in range(4)]
    try:
        got = [json.loads(child.stdout.readline()) for child in children if child.stdout]
    finally:
        for child in children:
            child.communicate("")
    used = [port + offset for each in got for port in each for offset in ports.DERIVED]
    assert len(got) == 4 and all(len(each) == 40 for each in got)
    assert len(used) == len(set(used))
    assert all(ports.LOW <= port < 32768 for port in used)  # below the kernel's ephemeral ports


def test_a_port_in_use_or_held_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    base = 31_500  # above the range others reserve from, below the ephemeral ports
    monkeypatch.setattr(ports, "LOW", base)
    monkeypatch.setattr(ports, "HIGH", base + max(ports.DERIVED) + 3)  # three candidates: base, base+1, base+2
    with socket.socket() as listening:
        try:
            listening.bind(("127.0.0.1", base + 1 + ports.METRICS_OFFSET))  # base+1's /metrics port is taken
        except OSError:
            pytest.skip("port 32501 is in use on this machine")
        listening.listen()
        first = ports.reserve_port()
        second = ports.reserve_port()
        try:
            assert {first, second} == {base, base + 2}
            with pytest.raises(RuntimeError, match="no free port"):
                ports.reserve_port()
        finally:
            ports.release_port(first)
            ports.release_port(second)
    assert ports.reserve_port() in {base, base + 1, base + 2}
