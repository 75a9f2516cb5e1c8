"""Notices sent concurrently (issue 20, item 5): one pass sends its notices over several SMTP connections at
once, each kept open across mails, and records attempts and outcomes in batched commits - still exactly one
mail per notice and every attempt in the delivery log. The SMTP server is real (aiosmtpd on loopback): it
counts the connections and how many mails were in flight at once, drops connections mid-pass, and takes mails
from two send passes running at the same time."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.entrypoints.api import create_scheduling_app
from scheduling.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope

from ..conftest import free_port
from .test_matching_scheduling_api import SECRET_KEY, Service

LINKS = ResponseLinks(SECRET_KEY, "http://x")
FIRMS = 200


class _Inbox:
    """Takes mails; ``drop_first`` Message-IDs are cut off the first time (connection closed before the reply,
    the mail not taken); after every ``close_after``-th mail the server closes that connection at the next
    command, by turns with a 421 reply and without a word."""

    def __init__(self, delay: float = 0.0, drop_first: set[str] | None = None, close_after: int = 0) -> None:
        self.messages: list[EmailMessage] = []
        self.peers: set[Any] = set()
        self.in_flight = self.most_in_flight = 0
        self.delay, self.drop_first, self.close_after = delay, set(drop_first or ()), close_after
        self.dropped: list[str] = []
        self.closing: dict[Any, bool] = {}  # session: with a 421 reply

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if session in self.closing:
            if self.closing.pop(session):
                return "421 closing"  # aiosmtpd closes the connection after a 421
            server.transport.close()
            return "421 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if message["Message-ID"] in self.drop_first:
            self.drop_first.discard(message["Message-ID"])
            self.dropped.append(message["Message-ID"])
            server.transport.close()  # cut off after the data, before the reply: the mail was not taken
            return "421 closing"
        self.messages.append(message)
        self.peers.add(session.peer)
        if self.close_after and len(self.messages) % self.close_after == 0:
            self.closing[session] = len(self.messages) % (2 * self.close_after) == 0
        return "250 Message accepted for delivery"


@contextmanager
def _serve(inbox: _Inbox) -> Iterator[tuple[int, _Inbox]]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/scheduling.sqlite3"
    return str(request.getfixturevalue("make_postgres_db")("sched_pool"))


def _service(database_url: str, tmp_path: Path) -> Service:
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY})
    infra = scheduling_bootstrap.bootstrap(settings)
    app = create_scheduling_app(infra)
    service = Service(infra, app, app.test_client(), [])
    service.add_key("coordinator", "coord-1", "coordinator")
    for i in range(FIRMS):
        service.add_key(f"firm-{i}", f"firm-{i}", "entrepreneur")
        assert service.put(f"firm-{i}", "/contact", {"email": f"planning@firm-{i}.nl", "language": "nl"}
                           ).status_code == 200
    service.handle(services.on_matches_published, make_envelope("matches.published", 1, {
        "run_id": str(uuid.uuid4()), "batch_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()),
        "coordinator_id": "coord-1", "period": "2031-Q1", "unmatched_assignment_ids": [],
        "matches": [{"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4()),
                     "firm_id": f"firm-{i}", "institution_id": "inst", "score": 0.5} for i in range(FIRMS)]}))
    return service


@pytest.fixture
def svc(database_url: str, tmp_path: Path) -> Iterator[Service]:
    service = _service(database_url, tmp_path)
    yield service
    service.infra.engine.dispose()


def _notices(svc: Service) -> list[orm.Notice]:
    with svc.infra.session_factory() as session:
        return list(session.execute(sa.select(orm.Notice)).scalars())


def _log(svc: Service) -> dict[str, list[tuple[int, str, str | None, bool]]]:
    """Every notice's e-mail attempts: (attempt, state, error, possible duplicate)."""
    out: dict[str, list[tuple[int, str, str | None, bool]]] = {}
    with svc.infra.session_factory() as session:
        for d in session.execute(sa.select(orm.Delivery).order_by(orm.Delivery.attempt)).scalars():
            out.setdefault(d.notice_id, []).append((d.attempt, d.state, d.error, d.possible_duplicate))
    return out


def _exactly_once(svc: Service, inbox: _Inbox) -> None:
    notices = _notices(svc)
    assert len(notices) == FIRMS
    assert Counter(m["Message-ID"] for m in inbox.messages) == {f"<{n.id}@werkplaats>": 1 for n in notices}
    by_mail = {m["Message-ID"]: m["To"] for m in inbox.messages}
    contacts = {f"firm-{i}": f"planning@firm-{i}.nl" for i in range(FIRMS)}
    assert all(by_mail[f"<{n.id}@werkplaats>"] == contacts[n.firm_id] for n in notices)
    assert {n.status for n in notices} == {"sent"}
    assert all(n.answer_deadline is not None and n.sent_at is not None for n in notices)


def test_many_notices_go_out_in_parallel_over_kept_connections_exactly_once(svc: Service) -> None:
    with _serve(_Inbox(delay=0.002)) as (port, inbox):
        mailer = SmtpMailer("127.0.0.1", port, "w@x.test", per_connection=30)
        assert services.send_pending(svc.infra.session_factory, mailer, LINKS, limit=FIRMS, concurrency=4) == FIRMS
        assert services.send_pending(svc.infra.session_factory, mailer, LINKS, concurrency=4) == 0
        _exactly_once(svc, inbox)
        assert inbox.most_in_flight >= 2  # several mails at once
        assert 7 <= len(inbox.peers) <= 4 + 7  # at most 30 mails a connection, not a connection per mail
        log = _log(svc)
        assert {n.id: log[n.id] for n in _notices(svc)} == {n.id: [(1, "done", None, False)] for n in _notices(svc)}


def test_a_server_that_drops_connections_mid_pass_loses_and_doubles_nothing(svc: Service) -> None:
    notices = _notices(svc)
    cut = {f"<{n.id}@werkplaats>" for n in notices[::9]}
    with _serve(_Inbox(drop_first=cut, close_after=7)) as (port, inbox):
        mailer = SmtpMailer("127.0.0.1", port, "w@x.test", timeout=5, per_connection=1000)
        sent = services.send_pending(svc.infra.session_factory, mailer, LINKS, limit=FIRMS, concurrency=3)
        assert sent == FIRMS - len(cut) and sorted(inbox.dropped) == sorted(cut)
        with svc.infra.session_factory.begin() as session:  # the backoff has passed
            session.execute(sa.update(orm.Notice).where(orm.Notice.status == "pending").values(next_attempt_at=None))
        assert services.send_pending(svc.infra.session_factory, mailer, LINKS, limit=FIRMS, concurrency=3) == len(cut)
        _exactly_once(svc, inbox)
        assert len(inbox.peers) > FIRMS // 7  # the closed connections were opened again
        log = _log(svc)
        for n in notices:
            if f"<{n.id}@werkplaats>" in cut:  # cut off after its data: recorded as failed, sent again once
                assert log[n.id] == [(1, "done", "SMTPServerDisconnected", False), (2, "done", None, False)]
            else:  # a connection closed between mails is opened again for the next mail, not a failure
                assert log[n.id] == [(1, "done", None, False)]


@pytest.mark.postgres
def test_two_send_passes_at_the_same_time_never_send_a_notice_twice(make_postgres_db: Any, tmp_path: Path) -> None:
    svc = _service(str(make_postgres_db("sched_pool2")), tmp_path)
    try:
        # a slow server and small passes keep both passes at work for seconds (so the race happens under load)
        with _serve(_Inbox(delay=0.02)) as (port, inbox):
            mailer = SmtpMailer("127.0.0.1", port, "w@x.test")
            start = threading.Barrier(2)
            counts: list[list[int]] = [[], []]

            def pending() -> int:
                with svc.infra.session_factory() as session:
                    return int(session.execute(sa.select(sa.func.count()).select_from(orm.Notice)
                                               .where(orm.Notice.status == "pending")).scalar_one())

            def passes(i: int) -> None:
                # a pass that finds nothing free (the other pass holds what is due, or sent it between this one's
                # read and its locks) is no sign that all is sent: go on while any notice is pending
                start.wait()
                deadline = time.monotonic() + 100
                while pending() and time.monotonic() < deadline:
                    n = services.send_pending(svc.infra.session_factory, mailer, LINKS, limit=10, concurrency=2)
                    if n:
                        counts[i].append(n)
                    else:
                        time.sleep(0.01)

            threads = [threading.Thread(target=passes, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert sum(counts[0]) + sum(counts[1]) == FIRMS and counts[0] and counts[1]  # both passes sent
            _exactly_once(svc, inbox)
            log = _log(svc)  # no attempt of one pass cut off by the other
            assert {n.id: log[n.id] for n in _notices(svc)} == {n.id: [(1, "done", None, False)] for n in _notices(svc)}
    finally:
        svc.infra.engine.dispose()
