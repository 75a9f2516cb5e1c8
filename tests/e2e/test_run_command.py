"""The README's run command: starts everything, runs the demo, stops every process on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ..conftest import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to list child processes")
def test_run_command_demo_then_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    base = free_port()
    while any(_in_use(base + i) for i in (0, 1, 2, 3)):
        base = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WERKPLAATS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "werkplaats_shared.devstack", "--data-dir", str(tmp_path / "run"),
         "--port-base", str(base), "--smtp-port", str(free_port())],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        output = "".join(lines)
        assert "Press Ctrl-C to stop" in output, output
        assert "Matches (12 of 12 assignments)" in output
        assert "Notices sent: 12" in output
        assert output.count("wpk_") == 16  # one key per demo organisation
        assert f"Portal: open http://127.0.0.1:{base} " in output
        sign_ins = re.findall(r"^  (coordinator|institution|entrepreneur) .* (\S+@\S+)\s+password (\S+)$", output,
                              re.MULTILINE)
        assert [role for role, _, _ in sign_ins] == ["coordinator", "institution", "entrepreneur"]
        for role, email, password in sign_ins:  # each printed sign-in works, for its role
            answer = _post_json(f"http://127.0.0.1:{base + 1}/sessions", {"email": email, "password": password})
            assert answer["account"]["role"] == role
        with urllib.request.urlopen(f"http://127.0.0.1:{base}/sign-in", timeout=10) as page:
            assert page.status == 200 and "<form" in page.read().decode()
        children = _children(proc.pid)
        assert len(children) == 6  # broker, SMTP sink, three services, portal
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest
        assert "stopped." in rest
        assert all(not Path(f"/proc/{pid}").exists() or "Z" in _state(pid) for pid in children)
    finally:  # a failed check stops what the command started too (by the PID it has, never by name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        if proc.stdout is not None:
            proc.stdout.close()


def _post_json(url: str, body: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.load(answer))


def _in_use(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
