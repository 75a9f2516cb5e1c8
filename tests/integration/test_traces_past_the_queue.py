"""The trace goes on past the queue (issue 18): work a worker does later, outside the message's or request's
span, stays in the trace it was asked in.

- A matching run is solved by the solver loop in a thread of its own, yet the messages it publishes
  (``matches.published``, ``run.ended``) carry the trace of the ``batch.submitted`` that asked for it, in a span
  of their own (a child, not a copy of the caller's context); a run asked outside any trace gets a trace of
  its own.
- A notice's e-mail and webhook deliveries, sent by scheduling's worker passes, are spans of the notice's trace:
  each delivery record names the trace id, and the webhook POST carries a ``traceparent`` of that trace.
- A planning job asked in a request is done by the planner in that request's trace (its log lines carry it).
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from matching import bootstrap as matching_bootstrap
from matching.entrypoints.handlers import HANDLERS as MATCHING_HANDLERS
from matching.entrypoints.worker import solver_loop
from opentelemetry.trace import SpanKind
from scheduling.adapters import orm as scheduling_orm
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.adapters.webhook_client import WebhookClient
from scheduling.service_layer import plan_jobs
from scheduling.service_layer import services as scheduling_services
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.logs import JsonFormatter
from werkplaats_shared.service import Infrastructure
from werkplaats_shared.tracing import span_from, trace_id_of

from ..conftest import free_port
from .harness import announce_workspace_of, wait_until
from .test_matching_scheduling_api import SECRET_KEY, Service
from .test_scheduling_plan_jobs import svc  # noqa: F401 - the planning tests' service, on SQLite and PostgreSQL
from .test_scheduling_planning import _answer, _publish
from .test_scheduling_webhooks import Receiver, _register, _serve, _service

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
CALLER = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"


def span_id_of(traceparent: str) -> str:
    return traceparent.split("-")[2]


# ---- matching: the run ---------------------------------------------------------------------------


@pytest.fixture
def matching(tmp_path: Path) -> Iterator[Infrastructure]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("matching", {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/m.sqlite3",
                                              "WERKPLAATS_DATA_DIR": str(tmp_path), "WERKPLAATS_POLL_INTERVAL": "0.1"})
    built = matching_bootstrap.bootstrap(settings)
    try:
        yield built
    finally:
        built.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def batch_submitted() -> Envelope:
    return make_envelope("batch.submitted", 1, {
        "batch_id": str(uuid.uuid4()), "workspace_id": "w", "coordinator_id": "c", "period": "P",
        "policy": "max_fit", "auto_publish": True,
        "assignments": [{"assignment_id": "a1", "firm_id": "f1", "accepted_levels": ["HBO"], "required_skills": [],
                         "nice_to_have_skills": [], "min_teams": 1, "max_teams": 1}],
        "teams": [{"team_id": "t1", "institution_id": "i", "level": "HBO", "skills": []}]})


def handle(infra: Infrastructure, envelope: Envelope) -> None:
    with infra.session_factory.begin() as session:
        announce_workspace_of(session, envelope)
        MATCHING_HANDLERS[envelope.type](session, envelope)


def published_traces(infra: Infrastructure, batch_id: str) -> dict[str, str | None] | None:
    """The traceparent of each message the batch's run put in the outbox, once it published."""
    with infra.engine.connect() as conn:
        rows = conn.execute(sa.select(infra.outbox.c.type, infra.outbox.c.body, infra.outbox.c.traceparent).where(
            infra.outbox.c.type.in_(["matches.published", "run.ended"]))).all()
    found = {t: tp for t, body, tp in rows if json.loads(body)["payload"]["batch_id"] == batch_id}
    return found if len(found) == 2 else None


def test_a_run_solved_by_the_worker_publishes_in_the_trace_of_the_batch_that_asked_for_it(
        matching: Infrastructure) -> None:
    traced, untraced = batch_submitted(), batch_submitted()
    # the consumer handles batch.submitted in a child span of the message's traceparent header
    with span_from("matching", "consume matching.from-intake", SpanKind.CONSUMER, {"traceparent": CALLER}):
        handle(matching, traced)
    handle(matching, untraced)  # asked outside any trace
    stop = threading.Event()
    worker = threading.Thread(target=solver_loop(matching).run, args=(stop,), daemon=True)  # no span of its own
    worker.start()
    try:
        mine = wait_until(lambda: published_traces(matching, traced.payload["batch_id"]), 60.0, "the traced run")
        other = wait_until(lambda: published_traces(matching, untraced.payload["batch_id"]), 60.0, "the other run")
    finally:
        stop.set()
        worker.join(30)
    for traceparent in mine.values():
        assert traceparent is not None and trace_id_of(traceparent) == CALLER_TRACE_ID
        assert span_id_of(traceparent) != CALLER_SPAN_ID  # the run's own span, a child in the same trace
    assert len({span_id_of(str(tp)) for tp in mine.values()}) == 1  # both from the one run span
    own = {trace_id_of(tp) for tp in other.values()}
    assert len(own) == 1 and None not in own and CALLER_TRACE_ID not in own  # a trace of its own


# ---- scheduling: the deliveries ------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Sink]]:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


@pytest.fixture
def scheduling(tmp_path: Path) -> Iterator[Service]:
    service = _service(tmp_path, allow_loopback=True)
    yield service
    service.infra.engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve(None)


def test_a_notices_e_mail_and_webhook_deliveries_are_spans_of_its_trace_and_their_records_name_it(
        scheduling: Service, smtp: tuple[int, Sink], receiver: Receiver) -> None:
    port, sink = smtp
    assert scheduling.put("firm", "/contact", {"email": "planning@bakkerij-jansen.nl", "language": "nl"}
                          ).status_code == 200
    _register(scheduling, receiver.url)
    published = make_envelope("matches.published", 1, {
        "run_id": str(uuid.uuid4()), "batch_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()),
        "coordinator_id": "coord-1", "period": "2027-S1", "unmatched_assignment_ids": [],
        "matches": [{"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4()),
                     "firm_id": "firm-1", "institution_id": "inst-1", "score": 0.7}]})
    with span_from("scheduling", "consume scheduling.from-matching", SpanKind.CONSUMER, {"traceparent": CALLER}):
        scheduling.handle(scheduling_services.on_matches_published, published)
    [notice] = scheduling.get("coord", "/notices").get_json()
    assert notice["trace_id"] == CALLER_TRACE_ID

    links = ResponseLinks(SECRET_KEY, "https://werkplaats.example.nl/scheduling")
    # the worker passes, outside any span (as the notice and webhook loops run them)
    assert scheduling_services.send_pending(scheduling.infra.session_factory, SmtpMailer("127.0.0.1", port, "w@x.test"),
                                            links) == 1
    receiver.statuses = [503, 200]  # the firm's receiver fails once
    lines, service_log = Lines(), logging.getLogger(scheduling_services.__name__)
    service_log.addHandler(lines)
    try:
        assert scheduling_services.deliver_webhooks(scheduling.infra.session_factory,
                                                    WebhookClient(allow_loopback=True), links) == 0
        assert scheduling_services.deliver_webhooks(scheduling.infra.session_factory,
                                                    WebhookClient(allow_loopback=True), links,
                                                    now=lambda: utcnow() + timedelta(hours=1)) == 1
    finally:
        service_log.removeHandler(lines)
    assert len(sink.messages) == 1
    first, second = receiver.requests
    for posted in (first, second):
        assert trace_id_of(posted.headers["traceparent"]) == CALLER_TRACE_ID
        assert span_id_of(posted.headers["traceparent"]) != CALLER_SPAN_ID  # the delivery's own span
    assert span_id_of(first.headers["traceparent"]) != span_id_of(second.headers["traceparent"])  # one per attempt
    [failed] = [line for line in lines.lines if line["msg"] == "webhook delivery failed"]
    assert (failed["notice_id"], failed["status_code"], failed["trace_id"]) == (notice["id"], 503, CALLER_TRACE_ID)
    deliveries = scheduling.get("coord", f"/notices/{notice['id']}/deliveries").get_json()
    assert sorted((d["channel"], d["error"] or "", d["trace_id"]) for d in deliveries) == [
        ("email", "", CALLER_TRACE_ID), ("webhook", "", CALLER_TRACE_ID), ("webhook", "HTTP 503", CALLER_TRACE_ID)]
    with scheduling.infra.session_factory() as session:  # as stored
        assert set(session.execute(sa.select(scheduling_orm.Delivery.trace_id)).scalars()) == {CALLER_TRACE_ID}


# ---- scheduling: the planning job ----------------------------------------------------------------


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("scheduling"))
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_a_planning_job_is_done_in_the_trace_of_the_request_that_asked_for_it(svc: Service) -> None:  # noqa: F811
    batch_id, matches = _publish(svc, [("firm_nl", "inst-a"), ("firm_en", "inst-b")])
    for m in matches:
        assert _answer(svc, m) == 201
    resp = svc.call("coord", "POST", "/kickoffs/plan", {"batch_id": batch_id, "time_limit": 10},
                    headers={"traceparent": CALLER})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    job_id = resp.get_json()["id"]
    lines, job_log = Lines(), logging.getLogger(plan_jobs.__name__)
    job_log.addHandler(lines)
    try:  # the planner, outside any span
        assert plan_jobs.run_pending(svc.infra.session_factory) == 1
    finally:
        job_log.removeHandler(lines)
    [planned] = [line for line in lines.lines if line["msg"] == "kickoffs planned"]
    assert (planned["job_id"], planned["trace_id"]) == (job_id, CALLER_TRACE_ID)
    assert planned["span_id"] != CALLER_SPAN_ID
    with svc.infra.session_factory() as session:
        stored = session.get(scheduling_orm.PlanJob, job_id)
        assert stored is not None and stored.status == "done"
        assert trace_id_of(stored.traceparent) == CALLER_TRACE_ID
