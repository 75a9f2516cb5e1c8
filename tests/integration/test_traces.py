"""Traces across the queue on the local default (embedded broker, SQLite): intake and matching in this process
with their own databases, outbox relays and consumers. A request to intake that submits a batch answers with its
trace id (``traceresponse``); the batch's message carries that trace context from intake's outbox through the
broker, and matching's consumer logs handling it under the same trace id. Scheduling's notices keep the trace id
of the message that made them."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from intake import bootstrap as intake_bootstrap
from intake.entrypoints.api import create_intake_app
from intake.entrypoints.handlers import HANDLERS as INTAKE_HANDLERS
from intake.service_layer import services as intake_services
from matching import bootstrap as matching_bootstrap
from matching.entrypoints.handlers import HANDLERS as MATCHING_HANDLERS
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm as scheduling_orm
from scheduling.entrypoints.handlers import HANDLERS as SCHEDULING_HANDLERS
from werkplaats_shared import broker
from werkplaats_shared.auth import Principal
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope
from werkplaats_shared.logs import JsonFormatter
from werkplaats_shared.publisher import Publisher
from werkplaats_shared.service import Infrastructure, consumer_loop, relay_loop
from werkplaats_shared.tracing import trace_id_of

from .harness import wait_until
from .test_matching_scheduling_api import SECRET_KEY

PERIOD = "2027-S1"
TIMEOUT = 30.0


class ServiceLines(logging.Handler):
    """The JSON log lines the consumer writes while handling messages from ``service``'s queues, as that
    service's process would write them."""

    def __init__(self, service: str, queues: set[str]) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter(service))
        self.queues = queues
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "queue", None) in self.queues:
            self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def world(tmp_path: Path, namespace: str, embedded_broker: str) -> Iterator[dict[str, Any]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def settings(service: str) -> Settings:
        return Settings.from_env(service, {
            "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/{service}.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
            "WERKPLAATS_BROKER_URL": embedded_broker, "WERKPLAATS_NAMESPACE": namespace,
            "WERKPLAATS_POLL_INTERVAL": "0.1", "WERKPLAATS_VISIBILITY_TIMEOUT": "5"})

    intake = intake_bootstrap.bootstrap(settings("intake"))
    matching = matching_bootstrap.bootstrap(settings("matching"))
    broker.declare_topology(intake.settings)
    matching_lines = ServiceLines("matching", {q.name for q in matching.topology.queues_for("matching")})
    consumer_log = logging.getLogger("werkplaats_shared.consumer")
    consumer_log.addHandler(matching_lines)
    loops = [relay_loop(intake), consumer_loop(intake, INTAKE_HANDLERS), relay_loop(matching),
             consumer_loop(matching, MATCHING_HANDLERS)]
    stop = threading.Event()
    threads = [threading.Thread(target=loop.run, args=(stop,), daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        yield {"intake": intake, "key": _organisations_and_workspace(intake), "matching_lines": matching_lines}
    finally:
        stop.set()
        for loop in loops:
            if loop.stop is not None:
                loop.stop()
        for thread in threads:
            thread.join(15)
        consumer_log.removeHandler(matching_lines)
        intake.engine.dispose()
        matching.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def _organisations_and_workspace(intake: Infrastructure) -> dict[str, Any]:
    """A coordinator (its key), a workspace, an institution's team and a firm's assignment that fits it."""
    with intake.session_factory.begin() as s:
        def emit(env: Any) -> None:
            intake.emit(s, env)

        coordinator, key = intake_services.create_organisation(s, emit, name="Werkplaats", role="coordinator")
        institution, _ = intake_services.create_organisation(s, emit, name="ROC", role="institution", levels=["HBO"])
        firm, _ = intake_services.create_organisation(s, emit, name="Firm", role="entrepreneur")
        coord, inst, ent = (Principal(o.id, o.role, "k") for o in (coordinator, institution, firm))
        ws = intake_services.create_workspace(s, coord, {
            "name": "Werkplaats", "municipalities": ["GM0193"],
            "periods": [{"code": PERIOD, "starts_on": date(2027, 2, 1), "ends_on": date(2027, 6, 30)}]})
        s.flush()
        intake_services.register_firm(s, ent, {"kvk_number": "87654321", "sector": "retail", "size_class": "small",
                                               "municipality": "GM0193"}, create=True)
        intake_services.register_team(s, inst, {"workspace_id": ws.id, "code": "WO-02", "level": "HBO", "size": 3,
                                                "skills": [], "period": PERIOD}, emit)
        assignment, _ = intake_services.submit_assignment(s, emit, ent, {
            "workspace_id": ws.id, "title": "Webshop", "description": "", "period": PERIOD,
            "accepted_levels": ["HBO"], "required_skills": [], "nice_to_have_skills": [], "min_teams": 1,
            "max_teams": 1, "mode": "remote"})
        return {"key": key, "workspace_id": ws.id, "assignment_id": assignment.id}


def test_a_batch_submitted_to_intake_is_handled_in_matching_under_the_requests_trace_id(
        world: dict[str, Any]) -> None:
    intake: Infrastructure = world["intake"]
    facts = world["key"]
    client = create_intake_app(intake).test_client()
    resp = client.post("/batches", headers={"Authorization": f"Bearer {facts['key']}"}, json={
        "workspace_id": facts["workspace_id"], "period": PERIOD, "policy": "max_fit",
        "assignment_ids": [facts["assignment_id"]], "fairness_floors": []})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    trace_id = trace_id_of(resp.headers.get("traceresponse"))
    assert trace_id is not None and len(trace_id) == 32

    with intake.engine.connect() as conn:  # the outbox row keeps the request's trace context
        traceparent = conn.execute(sa.select(intake.outbox.c.traceparent).where(
            intake.outbox.c.type == "batch.submitted")).scalar_one()
    assert trace_id_of(traceparent) == trace_id

    lines: list[dict[str, Any]] = world["matching_lines"].lines
    applied = wait_until(lambda: [line for line in lines if line["msg"] == "message applied"
                                  and line["type"] == "batch.submitted"], TIMEOUT, "matching applies the batch")
    assert applied[0]["service"] == "matching"
    assert applied[0]["trace_id"] == trace_id
    assert len(applied[0]["span_id"]) == 16

    # a message made outside any request (a coordinator's key, issued above) is handled in a trace of its own
    issued = wait_until(lambda: [line for line in lines if line["msg"] == "message applied"
                                 and line["type"] == "apikey.issued"], TIMEOUT, "matching learns the keys")
    assert all(len(line["trace_id"]) == 32 and line["trace_id"] != trace_id for line in issued)


CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_notice_keeps_the_trace_id_of_the_message_that_made_it(
        tmp_path: Path, namespace: str, embedded_broker: str) -> None:
    """Scheduling's consumer makes the notices of a published run in the trace of ``matches.published``; the
    notice keeps that trace id, which its e-mail and webhook deliveries (``deliveries.notice_id``) belong to."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/scheduling.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_BROKER_URL": embedded_broker, "WERKPLAATS_NAMESPACE": namespace,
        "WERKPLAATS_SECRET_KEY": SECRET_KEY, "WERKPLAATS_PUBLIC_URL": "https://werkplaats.example.nl/scheduling"})
    scheduling = scheduling_bootstrap.bootstrap(settings)
    broker.declare_topology(settings)
    stop = threading.Event()
    loop = consumer_loop(scheduling, SCHEDULING_HANDLERS)
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    ids = {name: str(uuid.uuid4()) for name in ("workspace", "coord", "batch", "run", "a1", "t1", "m1", "firm", "inst")}
    messages = [
        ("intake", None, make_envelope("workspace.registered", 1, {
            "workspace_id": ids["workspace"], "coordinator_id": ids["coord"],
            "registered_at": "2026-11-01T09:00:00+00:00"})),
        ("intake", None, make_envelope("batch.announced", 2, {
            "batch_id": ids["batch"], "workspace_id": ids["workspace"], "coordinator_id": ids["coord"],
            "workspace_name": "Digitale Werkplaats MRA", "coordinator_name": "Gemeente Amsterdam",
            "period": {"code": PERIOD, "starts_on": "2027-02-01", "ends_on": "2027-06-30"},
            "assignments": [{"assignment_id": ids["a1"], "firm_id": ids["firm"], "title": "Webshop",
                             "firm_name": "Bakkerij Jansen"}],
            "teams": [{"team_id": ids["t1"], "institution_id": ids["inst"], "code": "HVA-WEB-01",
                       "institution_name": "Hogeschool van Amsterdam", "level": "HBO", "skills": ["web"]}]})),
        ("matching", f"00-{CALLER_TRACE_ID}-00f067aa0ba902b7-01", make_envelope("matches.published", 1, {
            "run_id": ids["run"], "batch_id": ids["batch"], "workspace_id": ids["workspace"],
            "coordinator_id": ids["coord"], "period": PERIOD, "unmatched_assignment_ids": [],
            "matches": [{"match_id": ids["m1"], "assignment_id": ids["a1"], "team_id": ids["t1"],
                         "firm_id": ids["firm"], "institution_id": ids["inst"], "score": 0.8}]})),
    ]
    try:
        with scheduling.connection() as conn:
            for producer, traceparent, envelope in messages:
                Publisher(conn, scheduling.topology, producer).publish_raw(
                    envelope.to_json(), message_type=envelope.type, message_id=envelope.message_id,
                    traceparent=traceparent)

        def notice_trace_ids() -> list[str | None] | None:
            with scheduling.session_factory() as session:
                found = list(session.execute(sa.select(scheduling_orm.Notice.trace_id).where(
                    scheduling_orm.Notice.run_id == ids["run"])).scalars())
            return found or None
        assert wait_until(notice_trace_ids, TIMEOUT, "the run's notice") == [CALLER_TRACE_ID]
    finally:
        stop.set()
        if loop.stop is not None:
            loop.stop()
        thread.join(15)
        scheduling.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)
