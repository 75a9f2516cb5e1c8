"""The README's run command: starts everything, runs the demo, stops every process on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import icalendar
import pytest
from werkplaats_shared.devstack.smtp_sink import read_mails
from werkplaats_shared.devstack.story import kickoff_invitations

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


def _start(data_dir: Path, base: int, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start the run command and read its output up to "Press Ctrl-C to stop"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WERKPLAATS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "werkplaats_shared.devstack", "--data-dir", str(data_dir),
         "--port-base", str(base), "--smtp-port", str(free_port()), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    return proc, "".join(lines)


def _stop(proc: subprocess.Popen[str]) -> None:
    """A failed check stops what the command started too (by the PID it has, never by name)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    if proc.stdout is not None:
        proc.stdout.close()


def _free_base() -> int:
    base = free_port()
    while any(_in_use(base + i) for i in (0, 1, 2, 3)):
        base = free_port()
    return base


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to list child processes")
def test_run_command_tells_the_programmes_case_then_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "run"
    data_dir.mkdir()
    (data_dir / "left-over").write_text("from an earlier run")
    base = _free_base()
    proc, output = _start(data_dir, base)
    try:
        assert "Press Ctrl-C to stop" in output, output
        assert not (data_dir / "left-over").exists()  # the data directory is emptied at each start
        # the programme's case, one line each
        assert re.search(r"^Workspaces: Digitale Werkplaats Amsterdam \(MRA\) \(Almere, Amstelveen, Amsterdam, .*"
                         r"Zaanstad\); Digitale Werkplaats Utrecht \(.*Nieuwegein, .*Utrecht, Zeist\)$", output, re.M)
        assert ("Referral: Fotostudio Hilversum (Hilversum, Gooi & Vechtstreek) lies outside both working areas; "
                "referred to Landelijk loket digitaal ondernemen; Ondernemershuis Gooi en Vechtstreek\n") in output
        assert ("Handover: SPOT035's network (2 firms, 2 open assignments) moved to Digitale Werkplaats Amsterdam "
                "(MRA) in one audited step") in output
        assert ('Workshop: "Cyberweerbaarheid voor ondernemers", 4 entrepreneurs registered, 3 seated, '
                "1 on the waitlist") in output
        assert re.search(r"^Round 2027-S1 in Digitale Werkplaats Amsterdam \(MRA\) with MBO, HBO, WO teams: 6 of 7 "
                         r"assignments matched \(run optimal, objective [\d.]+\)$", output, re.M)
        assert re.findall(r"^Unmatched: .*$", output, re.M) == [
            "Unmatched: Chatbot voor afspraken: teams of an accepted level existed, but none had all required skills "
            "(er waren teams van een geaccepteerd niveau, maar geen met alle vereiste vaardigheden)"]
        assert re.search(r"^Match notices sent: 6 \(en, nl\)", output, re.M)
        _the_rounds_trace_is_followed_through_the_three_logs(output)
        _people_read_names_not_ids(data_dir, output)
        assert re.search(r"^fit: how well one team suits one assignment", output, re.M)
        assert re.search(r"^objective: the sum of the fits", output, re.M)
        assert output.count("wpk_") == 14  # one key per organisation of the demo
        # where to look, and the same addresses beside "Running"
        running = next(line for line in output.splitlines() if line.startswith("Running. Press Ctrl-C to stop."))
        assert f"Portal http://127.0.0.1:{base};" in running
        assert f"  portal        http://127.0.0.1:{base} " in output
        for i in (1, 2, 3):
            assert f"http://127.0.0.1:{base + i}/docs" in running
        assert str(data_dir / "mail") in running
        assert "is emptied at each start; start with --keep-data to keep it" in output
        # each service's base URL points to its documentation; a missing key gets the same Dutch text everywhere
        refusals = set()
        for port, protected in ((base + 1, "/me"), (base + 2, "/runs"), (base + 3, "/notices")):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
                index = json.load(answer)
            assert index["docs"] == f"http://127.0.0.1:{port}/docs" and "/docs" in index["message"]
            with urllib.request.urlopen(index["docs"], timeout=10) as docs:
                assert docs.status == 200 and "swagger-ui" in docs.read().decode()
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{protected}", timeout=10)
            assert refused.value.code == 401
            refusals.add(json.load(refused.value)["message"])
        assert refusals == {"De API-sleutel ontbreekt: stuur 'Authorization: Bearer <sleutel>'."}

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
    finally:
        _stop(proc)

    # --keep-data: the next run starts on the same data, without loading the demo again
    mails = sorted(p.name for p in (data_dir / "mail" / "new").iterdir())
    proc, again = _start(data_dir, base, "--keep-data")
    try:
        assert "Press Ctrl-C to stop" in again, again
        assert "Kept the data of the last run" in again and "creating the organisations" not in again
        assert "is kept (--keep-data)" in again
        role, email, password = sign_ins[0]
        answer = _post_json(f"http://127.0.0.1:{base + 1}/sessions", {"email": email, "password": password})
        assert answer["account"]["role"] == role  # the account of the first run
        assert set(mails) <= {p.name for p in (data_dir / "mail" / "new").iterdir()}
    finally:
        _stop(proc)


def _the_rounds_trace_is_followed_through_the_three_logs(output: str) -> None:
    """The summary names the trace id of the round's batch and a command that prints its lines in the logs of
    intake (the submission, the run's messages back), matching (the batch, its run) and scheduling (the notices)."""
    [(trace_id, command)] = re.findall(r"^Trace of the round's batch: ([0-9a-f]{32}) .*\n  (python3 -c .*)$",
                                       output, re.M)
    assert trace_id in command
    args = shlex.split(command)
    assert args[0] == "python3"
    printed = subprocess.run([sys.executable, *args[1:]], check=True, capture_output=True, text=True).stdout
    steps = [line.split(" ", 1)[1] for line in printed.splitlines()]  # without the time
    for step in ("intake batch sent to matching", "matching message applied batch.submitted", "matching run solved",
                 "scheduling message applied matches.published", "intake message applied run.ended"):
        assert step in steps, printed
    assert steps.index("intake batch sent to matching") < steps.index("matching run solved") < steps.index(
        "scheduling message applied matches.published")  # oldest first


def _parts(message: Message, content_type: str) -> list[str]:
    found = []
    for part in message.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found.append(payload.decode(part.get_content_charset() or "utf-8"))
    return found


def _people_read_names_not_ids(data_dir: Path, output: str) -> None:
    """One delivered match notice, one kickoff invitation (.ics) and one accept/decline page each name the
    assignment's title and the team's code (as the summary lists them), and the mails name the coordinator."""
    teams = dict(re.findall(r"^  (.+?)\s+<- team (\S+)\s+fit", output, re.M))  # title -> team code
    assert teams["Webshop voor taarten"] and teams["Nieuwe website"], output
    assert re.search(r"^Kickoff: Bakkerij De Korenbloem accepted team \S+ for \"Webshop voor taarten\"; the "
                     r"invitation proposes 2027-0.* \(proposed\); questions go to werkplaats@amsterdam\.example\.org$",
                     output, re.M), output
    mails = read_mails(str(data_dir / "mail"))
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    # the match notice the bicycle repairer received, and its accept/decline page
    [notice] = [m for m in mails if str(m["Subject"]).endswith('uw opdracht "Nieuwe website"')]
    [text] = _parts(notice, "text/plain")
    assert "Nieuwe website" in text and teams["Nieuwe website"] in text and not uuid.search(text)
    assert "werkplaats@amsterdam.example.org" in text and "Digitale Werkplaats Amsterdam (MRA)" in text
    [link] = re.findall(r"http://\S+/responses/\S+", text)
    with urllib.request.urlopen(link, timeout=10) as answer:
        page = answer.read().decode()
    assert answer.headers.get_content_type() == "text/html"
    assert "Nieuwe website" in page and teams["Nieuwe website"] in page
    assert not uuid.search(re.sub(r"/responses/\S+?\"", "", page))  # no id but in the link's own token
    # the bakery's kickoff invitation: the mail and its calendar item
    [invited] = kickoff_invitations(str(data_dir / "mail"))
    [body] = _parts(invited, "text/plain")
    assert "Webshop voor taarten" in body and teams["Webshop voor taarten"] in body
    [event] = icalendar.Calendar.from_ical(_parts(invited, "text/calendar")[0]).walk("VEVENT")
    summary, description = str(event["summary"]), str(event["description"])
    assert "Webshop voor taarten" in summary and teams["Webshop voor taarten"] in summary
    assert "werkplaats@amsterdam.example.org" in description and not uuid.search(summary + description)
    assert str(event["status"]) == "TENTATIVE"  # proposed; confirmed once the firm and the college agree


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
