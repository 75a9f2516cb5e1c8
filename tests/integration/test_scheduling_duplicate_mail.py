"""A crash between the SMTP hand-off and the record of its outcome (issue 19, item 6): the attempt was
committed before the hand-off, so the retry is visible in the delivery log, carries the same Message-ID and
is counted as a possible duplicate. The crash is real: the SMTP server (aiosmtpd) kills the sending process
(SIGKILL) the moment it has taken the mail, before the process can record anything."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.entrypoints.api import create_scheduling_app
from scheduling.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope

from ..conftest import free_port
from .test_matching_scheduling_api import SECRET_KEY, Service

HERE = Path(__file__).parent
FIRM_MAIL = "planning@bakkerij-jansen.nl"


class _KillingSink:
    """Takes every mail; while ``victim`` is set, kills that process as soon as the mail is in."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.victim: int | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        if self.victim is not None:
            os.kill(self.victim, signal.SIGKILL)
            self.victim = None
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _KillingSink]]:
    sink = _KillingSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/scheduling.sqlite3"
    return str(request.getfixturevalue("make_postgres_db")("sched_dup"))


@pytest.fixture
def svc(database_url: str, tmp_path: Path) -> Iterator[Service]:
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY})
    infra = scheduling_bootstrap.bootstrap(settings)
    app = create_scheduling_app(infra)
    service = Service(infra, app, app.test_client(), [])
    service.add_key("firm", "firm", "entrepreneur")
    service.add_key("coordinator", "coord-1", "coordinator")
    assert service.put("firm", "/contact", {"email": FIRM_MAIL, "language": "nl"}).status_code == 200
    yield service
    infra.engine.dispose()


def test_a_crash_after_the_smtp_hand_off_resends_with_the_same_message_id_and_counts_it(
        svc: Service, smtp: tuple[int, _KillingSink], database_url: str, tmp_path: Path) -> None:
    port, sink = smtp
    svc.handle(services.on_matches_published, make_envelope("matches.published", 1, {
        "run_id": str(uuid.uuid4()), "batch_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()),
        "coordinator_id": "coord-1", "period": "2031-Q1", "unmatched_assignment_ids": [],
        "matches": [{"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4()),
                     "firm_id": "firm", "institution_id": "inst", "score": 0.5}]}))
    [notice] = svc.get("coordinator", "/notices").get_json()
    env = {**os.environ, "WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_DATA_DIR": str(tmp_path),
           "WERKPLAATS_SMTP_HOST": "127.0.0.1", "WERKPLAATS_SMTP_PORT": str(port),
           "WERKPLAATS_SECRET_KEY": SECRET_KEY}
    sender = subprocess.Popen([sys.executable, str(HERE / "send_process.py")], env=env)
    sink.victim = sender.pid
    assert sender.wait(60) == -signal.SIGKILL  # killed by the SMTP server after it took the mail
    assert len(sink.messages) == 1
    [cut_off] = svc.get("coordinator", f"/notices/{notice['id']}/deliveries").get_json()
    assert (cut_off["attempt"], cut_off["state"]) == (1, "sending")  # recorded before the hand-off
    assert svc.get("coordinator", "/notices").get_json()[0]["status"] == "pending"

    links = ResponseLinks(SECRET_KEY, "http://x")
    assert services.send_pending(svc.infra.session_factory, SmtpMailer("127.0.0.1", port, "w@x.test"), links) == 1
    first, second = sink.messages
    assert first["Message-ID"] == second["Message-ID"] == f"<{notice['id']}@werkplaats>"
    assert first["To"] == second["To"] == FIRM_MAIL
    log = svc.get("coordinator", f"/notices/{notice['id']}/deliveries").get_json()
    assert [(d["attempt"], d["state"], d["possible_duplicate"], d["error"]) for d in log] == [
        (1, "interrupted", False, None), (2, "done", True, None)]
    assert {d["message_id"] for d in log} == {first["Message-ID"]}
    assert svc.get("coordinator", "/notices").get_json()[0]["status"] == "sent"
    # a later round finds nothing to send: no third copy
    assert services.send_pending(svc.infra.session_factory, SmtpMailer("127.0.0.1", port, "w@x.test"), links) == 0
    assert len(sink.messages) == 2


def test_an_attempt_that_completes_is_no_duplicate(svc: Service, smtp: tuple[int, _KillingSink]) -> None:
    port, sink = smtp
    svc.handle(services.on_matches_published, make_envelope("matches.published", 1, {
        "run_id": str(uuid.uuid4()), "batch_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()),
        "coordinator_id": "coord-1", "period": "2031-Q1", "unmatched_assignment_ids": [],
        "matches": [{"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4()),
                     "firm_id": "firm", "institution_id": "inst", "score": 0.5}]}))
    links = ResponseLinks(SECRET_KEY, "http://x")
    assert services.send_pending(svc.infra.session_factory, SmtpMailer("127.0.0.1", port, "w@x.test"), links) == 1
    [notice] = svc.get("coordinator", "/notices").get_json()
    [delivery] = svc.get("coordinator", f"/notices/{notice['id']}/deliveries").get_json()
    assert (delivery["attempt"], delivery["state"], delivery["possible_duplicate"]) == (1, "done", False)
    assert delivery["message_id"] == sink.messages[0]["Message-ID"]
