"""Uploads are read off the request threads (issue 19, item 8): each file is read in a process of its own, a
bounded number at once, with a time limit. A real server (waitress, as in production) answers /health while an
upload is provably still being read: the reading process exists before and after the /health answer."""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from intake.adapters import tabular, upload_parser
from intake.adapters.upload_parser import IsolatedParser, ParserBusy
from waitress.server import create_server

from ..conftest import free_port
from .harness import wait_until
from .test_intake_api import World
from .test_intake_bulk import ASG, asg_row, multipart, world, xlsx

__all__ = ["world"]


def _processes() -> dict[int, tuple[int, bytes]]:
    """Every process: pid -> (parent pid, command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                found[int(entry)] = (ppid, fh.read())
        except (OSError, ValueError, IndexError):
            continue
    return found


def parsers_running() -> set[int]:
    """The processes reading an upload: the children of this process's fork server (not the server itself, nor
    the resource tracker)."""
    processes = _processes()
    servers = {pid for pid, (ppid, cmdline) in processes.items()
               if ppid == os.getpid() and b"forkserver" in cmdline}
    return {pid for pid, (ppid, _) in processes.items() if ppid in servers}


def heavy_xlsx(rows: int = 2_000) -> bytes:
    """A workbook that takes a while to read (seconds of CPU), whose columns are not the template's: once read,
    it is refused at once, without work in the database."""
    header = [f"kolom{i}" for i in range(13)]
    return xlsx(header, [{name: f"waarde {n} " * 6 for name in header} for n in range(rows)])


@pytest.fixture
def server(world: World) -> Iterator[int]:
    port = free_port()
    httpd: Any = create_server(world.app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        # closed in the server's own loop: closed from this thread, its sockets could vanish under the poll it is in
        httpd.trigger.pull_trigger(httpd.close)
        thread.join(10)
        assert not thread.is_alive()


def _request(port: int, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_health_answers_while_an_upload_is_being_read(world: World, server: int) -> None:
    content_type, body = multipart(heavy_xlsx(), "big.xlsx")
    answers: list[tuple[int, dict[str, str], bytes]] = []
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {world.keys['firm_1']}",
               "Accept-Language": "en"}
    upload = threading.Thread(target=lambda: answers.append(
        _request(server, "POST", "/imports/assignments?dry_run=true", body, headers)))
    upload.start()
    reading = wait_until(parsers_running, timeout=60, what="the upload's reading process")
    status, _, _ = _request(server, "GET", "/health")
    assert status == 200
    assert reading & parsers_running()  # the same reading process is still at work after /health answered
    upload.join(120)
    [(status, _, raw)] = answers
    assert status == 422, raw[:500]
    assert json.loads(raw)["message"] == "The columns do not match the template; nothing was stored."
    assert parsers_running() == set()  # nothing left behind


def test_the_same_answers_as_before_for_a_small_file(world: World) -> None:
    content_type, body = multipart(xlsx(ASG, [asg_row(world)]), "one.xlsx")
    resp = world.call("firm_1", "POST", "/imports/assignments", data=body, content_type=content_type)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["count"] == 1
    content_type, body = multipart(b"\xd0\xcf\x11\xe0 old excel", "old.xls")
    resp = world.call("firm_1", "POST", "/imports/assignments", data=body, content_type=content_type,
                      headers={"Accept-Language": "en"})
    assert resp.status_code == 422
    assert ".xls" in resp.get_json()["errors"][0]["reason"]  # the reader's refusal, worded as before


def test_a_file_that_takes_longer_than_the_limit_is_refused_and_its_reader_stopped(world: World) -> None:
    parser = IsolatedParser(slots=1, timeout=0.001)  # less than it takes to fork a reading process at all
    with pytest.raises(tabular.FileRejected) as refused:
        parser.read(xlsx(ASG, [asg_row(world)]), 10_000)
    assert refused.value.status == 413
    assert "too much work" in refused.value.reason.en and "te veel werk" in refused.value.reason.nl
    assert parsers_running() == set()


def test_an_upload_finding_every_slot_busy_is_told_to_retry(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = IsolatedParser(slots=1, timeout=60)
    monkeypatch.setattr(upload_parser, "QUEUE_WAIT_SECONDS", 0.0)
    data = heavy_xlsx()
    done: list[int] = []
    first = threading.Thread(target=lambda: done.append(len(parser.read(data, 10_000).rows)))
    first.start()
    wait_until(parsers_running, timeout=60, what="the first upload's reading process")
    with pytest.raises(ParserBusy) as busy:
        parser.read(xlsx(ASG, [asg_row(world)]), 10_000)
    assert busy.value.retry_after == 60
    first.join(120)
    assert done == [2_000]


def test_the_api_answers_503_with_retry_after_when_every_reader_is_busy(
        world: World, server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload_parser, "QUEUE_WAIT_SECONDS", 0.0)
    content_type, body = multipart(heavy_xlsx(), "big.xlsx")
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {world.keys['firm_1']}"}
    answers: list[int] = []
    uploads = [threading.Thread(target=lambda: answers.append(
        _request(server, "POST", "/imports/assignments?dry_run=true", body, headers)[0])) for _ in range(2)]
    for upload in uploads:
        upload.start()
    wait_until(lambda: len(parsers_running()) == 2, timeout=60, what="both readers at work")  # the default: 2
    content_type, small = multipart(xlsx(ASG, [asg_row(world)]), "one.xlsx")
    resp = world.call("firm_1", "POST", "/imports/assignments", data=small, content_type=content_type,
                      headers={"Accept-Language": "en"})
    assert resp.status_code == 503, resp.get_data(as_text=True)  # no third reader: the first two are at work
    assert int(resp.headers["Retry-After"]) > 0  # (Flask-Limiter's headers may give their own number)
    assert resp.get_json()["errors"] == [{"field": "file", "reason": "Too many files are being read at once; try "
                                          "again shortly.", "row": None, "column": None}]
    for upload in uploads:
        upload.join(120)
    assert answers == [422, 422]  # both read to the end, then refused for their columns
