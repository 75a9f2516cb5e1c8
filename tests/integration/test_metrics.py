"""Prometheus metrics (werkplaats_shared.metrics) with real components: an intake app on SQLite, its /metrics
port, and a consumer on a real broker. Counters are process-wide, so each test reads how much they moved."""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from intake import bootstrap as intake_bootstrap
from intake.entrypoints.api import create_intake_app
from intake.entrypoints.handlers import HANDLERS
from intake.service_layer import services
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.http import add_health
from werkplaats_shared.metrics import METRICS_PATH, registry_for, start_metrics_server
from werkplaats_shared.service import Infrastructure, consumer_loop, health_checks, metrics_server, ready_reports

from ..conftest import free_port
from .harness import Harness, batch_envelope, record_effect, wait_until
from .test_matching_api import Matching, m, runs_of, submit  # noqa: F401 - the matching fixture m
from .test_matching_scheduling_api import Service
from .test_scheduling_responses import _Collector
from .test_scheduling_webhooks import Receiver, _deliver, _publish, _register, receiver, testing  # noqa: F401
from .test_scheduling_workshops import planned, svc  # noqa: F401 - the scheduling fixture svc
from .test_scheduling_workshops_notices import send, smtp  # noqa: F401 - the SMTP server fixture


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[tuple[Infrastructure, dict[str, str]]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("intake", {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/intake.sqlite3",
                                            "WERKPLAATS_DATA_DIR": str(tmp_path),
                                            "WERKPLAATS_METRICS_PORT": str(free_port())})
    infra = intake_bootstrap.bootstrap(settings)
    keys: dict[str, str] = {}
    with infra.session_factory.begin() as session:
        for who, role in (("coordinator", "coordinator"), ("operator", "operator")):
            _, keys[who] = services.create_organisation(session, lambda env: infra.emit(session, env),
                                                        name=f"Organisatie {who}", role=role, levels=["HBO"])
    try:
        yield infra, keys
    finally:
        infra.engine.dispose()
        root.handlers[:], root.level = handlers, level


def unsent(infra: Infrastructure) -> int:
    with infra.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(infra.outbox)
                                .where(infra.outbox.c.sent_at.is_(None))).scalar_one())


def test_a_request_moves_the_counter_and_histogram_of_its_route_template(
        intake: tuple[Infrastructure, dict[str, str]]) -> None:
    infra, keys = intake
    client = create_intake_app(infra).test_client()
    route = {"service": "intake", "route": "/workspaces/<workspace_id>", "method": "GET"}
    before = sample("werkplaats_http_requests_total", **route, status="404")
    latency_before = sample("werkplaats_http_request_duration_seconds_count", **route)
    missing = "ws-0c5d1a7e-no-such-workspace"
    response = client.get(f"/workspaces/{missing}", headers={"Authorization": f"Bearer {keys['coordinator']}"})
    assert response.status_code == 404
    assert sample("werkplaats_http_requests_total", **route, status="404") == before + 1
    assert sample("werkplaats_http_request_duration_seconds_count", **route) == latency_before + 1
    # a request refused before routing (no key) is counted too, under its route
    refused = sample("werkplaats_http_requests_total", **route, status="401")
    assert client.get(f"/workspaces/{missing}").status_code == 401
    assert sample("werkplaats_http_requests_total", **route, status="401") == refused + 1
    # no path (with its id) in any label: only the route template
    labels = [value for family in REGISTRY.collect() for s in family.samples for value in s.labels.values()]
    assert not [value for value in labels if missing in value]


def test_metrics_are_refused_on_the_api_port_and_served_on_their_own(
        intake: tuple[Infrastructure, dict[str, str]]) -> None:
    infra, keys = intake
    client = create_intake_app(infra).test_client()
    assert client.get(METRICS_PATH).status_code == 401
    # not even the operator's key opens them on the public port: they are not a route of the API
    assert client.get(METRICS_PATH, headers={"Authorization": f"Bearer {keys['operator']}"}).status_code == 404
    client.get("/health")
    server = metrics_server(infra)
    assert server is not None
    try:
        base = f"http://127.0.0.1:{infra.settings.metrics_port}"
        with urllib.request.urlopen(base + METRICS_PATH, timeout=10) as answer:
            assert answer.status == 200
            text = answer.read().decode()
        with pytest.raises(urllib.error.HTTPError) as other:
            urllib.request.urlopen(base + "/health", timeout=10)
        other.value.close()
        assert other.value.code == 404
    finally:
        server.close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "werkplaats_http_requests" in families
    waiting = {s.labels["service"]: s.value for s in families["werkplaats_outbox_waiting"].samples}
    assert waiting == {"intake": unsent(infra)} and unsent(infra) > 0  # the keys' apikey.issued messages
    age = families["werkplaats_outbox_oldest_age_seconds"].samples[0]
    assert age.labels == {"service": "intake"} and age.value >= 0


def test_ready_reports_the_outbox_and_the_consumer_without_failing(
        intake: tuple[Infrastructure, dict[str, str]]) -> None:
    infra, _ = intake
    response = create_intake_app(infra).test_client().get("/ready")
    body = json.loads(response.get_data(as_text=True))
    assert body["checks"]["database"] == "ok"
    assert body["reports"]["outbox"]["waiting"] == unsent(infra) > 0
    assert body["reports"]["outbox"]["oldest_age_seconds"] >= 0
    assert body["reports"]["consumer"] == "starting"  # this test runs no worker loop
    # the outbox waiting (no relay runs here) does not make the service unready by itself
    assert response.status_code == (200 if body["checks"]["broker"] == "ok" else 503)


@pytest.fixture
def harness(broker_url: str, namespace: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(broker_url, namespace, f"sqlite:///{tmp_path / 'svc.sqlite3'}")
    yield h
    h.stop()


def test_consumed_duplicate_and_dead_lettered_messages_are_counted_by_queue(harness: Harness) -> None:
    queue = {"service": "matching", "queue": "matching.from-intake"}
    consumed = sample("werkplaats_messages_consumed_total", **queue)
    duplicate = sample("werkplaats_messages_duplicate_total", **queue)
    dead = sample("werkplaats_messages_dead_lettered_total", **queue)
    retried = sample("werkplaats_messages_retried_total", **queue)
    failed_once: set[str] = set()

    def fails_once(session: Session, envelope: Envelope) -> None:
        if envelope.payload["batch_id"] == "flaky" and "flaky" not in failed_once:
            failed_once.add("flaky")
            raise RuntimeError("the handler failed once")
        record_effect(session, envelope)

    consumer = harness.start_consumer({"batch.submitted": fails_once})
    body = batch_envelope("m1").to_json()
    harness.publish_raw(body, message_id="m1")
    harness.publish_raw(body, message_id="m1")
    harness.publish_raw(b"\xff not json", message_id="m2")
    harness.publish_raw(batch_envelope("flaky").to_json(), message_id="m3")
    wait_until(lambda: harness.effect_count("flaky") == 1, what="the retried message applied")
    wait_until(lambda: sample("werkplaats_messages_dead_lettered_total", **queue) == dead + 1, what="dead letter")
    wait_until(lambda: sample("werkplaats_messages_duplicate_total", **queue) == duplicate + 1, what="duplicate")
    # m1, and m3 on its retry (counted just after the commit the effect shows)
    wait_until(lambda: sample("werkplaats_messages_consumed_total", **queue) == consumed + 2, what="consumed")
    assert sample("werkplaats_messages_retried_total", **queue) == retried + 1
    assert consumer.state == "consuming"


# ---- matching runs, planning jobs, notices: the services' own metrics ------------------------------------


def test_a_matching_run_counts_its_end_by_policy_and_times_each_stage(m: Matching) -> None:  # noqa: F811
    stages = ("reading", "pre-check", "building", "solving", "extracting", "recording")
    before = {s: sample("werkplaats_matching_run_stage_seconds_count", stage=s) for s in stages}
    published = sample("werkplaats_matching_runs_total", policy="max_fit", status="published")
    batch_id = submit(m)
    assert len(m.work()) == 1
    assert runs_of(m, batch_id)[0]["status"] == "published"
    assert sample("werkplaats_matching_runs_total", policy="max_fit", status="published") == published + 1
    assert {s: sample("werkplaats_matching_run_stage_seconds_count", stage=s) - before[s] for s in stages} == {
        s: 1.0 for s in stages}
    # a run published by hand was counted when it was solved, and not again
    solved = sample("werkplaats_matching_runs_total", policy="max_fit", status="solved")
    unpublished = submit(m, auto_publish=False)
    m.work()
    (run,) = runs_of(m, unpublished)
    assert sample("werkplaats_matching_runs_total", policy="max_fit", status="solved") == solved + 1
    m.ok("coord_1", "POST", f"/runs/{run['id']}/publish")
    assert sample("werkplaats_matching_runs_total", policy="max_fit", status="published") == published + 1


def test_a_planning_job_counts_its_end_and_times_its_stages_and_notices_count_by_channel(
        svc: Service, smtp: tuple[int, _Collector]) -> None:  # noqa: F811
    port, _ = smtp
    stages = ("reading", "solving", "applying")
    before = {s: sample("werkplaats_plan_job_stage_seconds_count", kind="workshops", stage=s) for s in stages}
    done = sample("werkplaats_plan_jobs_total", kind="workshops", status="done")
    sent = sample("werkplaats_notice_deliveries_total", channel="email", outcome="sent")
    planned(svc)
    assert sample("werkplaats_plan_jobs_total", kind="workshops", status="done") == done + 1
    assert {s: sample("werkplaats_plan_job_stage_seconds_count", kind="workshops", stage=s) - before[s]
            for s in stages} == {s: 1.0 for s in stages}
    assert send(svc, port) == 2  # the two firms with a contact; the others have none (no attempt)
    assert sample("werkplaats_notice_deliveries_total", channel="email", outcome="sent") == sent + 2


def test_a_notice_the_mail_server_refuses_counts_as_failed(svc: Service) -> None:  # noqa: F811
    failed = sample("werkplaats_notice_deliveries_total", channel="email", outcome="failed")
    planned(svc)
    assert send(svc, free_port()) == 0  # nothing listens there
    assert sample("werkplaats_notice_deliveries_total", channel="email", outcome="failed") == failed + 2


def test_webhook_deliveries_count_as_sent_or_failed(testing: Service, receiver: Receiver) -> None:  # noqa: F811
    sent = sample("werkplaats_notice_deliveries_total", channel="webhook", outcome="sent")
    failed = sample("werkplaats_notice_deliveries_total", channel="webhook", outcome="failed")
    _register(testing, receiver.url)
    _publish(testing)
    receiver.statuses = [500, 200]
    assert _deliver(testing) == 0
    assert sample("werkplaats_notice_deliveries_total", channel="webhook", outcome="failed") == failed + 1
    assert _deliver(testing, now=utcnow() + timedelta(hours=2)) == 1  # past the backoff: delivered
    assert sample("werkplaats_notice_deliveries_total", channel="webhook", outcome="sent") == sent + 1
    assert sample("werkplaats_notice_deliveries_total", channel="webhook", outcome="failed") == failed + 1


def test_portal_pages_are_counted_by_route_and_metrics_are_not_a_page(tmp_path: Path) -> None:
    from portal.bootstrap import build
    from portal.config import PortalSettings

    app = build(PortalSettings(secret_key="metrics-test-secret-0123456789abcdef-xyz", data_dir=str(tmp_path),
                               intake_url="http://127.0.0.1:9", matching_url="http://127.0.0.1:9",
                               scheduling_url="http://127.0.0.1:9"))
    client = app.test_client()
    route = {"service": "portal", "route": "/sign-in", "method": "GET", "status": "200"}
    before = sample("werkplaats_http_requests_total", **route)
    assert client.get("/sign-in").status_code == 200
    assert sample("werkplaats_http_requests_total", **route) == before + 1
    unmatched = {"service": "portal", "route": "<unmatched>", "method": "GET", "status": "404"}
    missing = sample("werkplaats_http_requests_total", **unmatched)
    assert client.get(METRICS_PATH).status_code == 404
    assert sample("werkplaats_http_requests_total", **unmatched) == missing + 1


def test_a_metrics_port_already_taken_leaves_the_service_serving_without_metrics(
        caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with caplog.at_level(logging.ERROR, logger="werkplaats_shared.metrics"):
            assert start_metrics_server(registry_for(), "127.0.0.1", port) is None
    assert "metrics port not available" in caplog.text
    assert start_metrics_server(registry_for(), "127.0.0.1", 0) is None  # 0: switched off


def test_ready_reports_a_running_consumer_as_consuming(broker_url: str, namespace: str, tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/intake.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_NAMESPACE": namespace, "WERKPLAATS_PROCESS": "worker"})
    infra = intake_bootstrap.bootstrap(settings)
    app = Flask("intake-worker")  # what a worker process serves (service.run)
    add_health(app, health_checks(infra), ready_reports(infra))
    client = app.test_client()

    def reported() -> dict[str, Any]:
        body: dict[str, Any] = json.loads(client.get("/ready").get_data(as_text=True))
        return body

    assert reported()["reports"]["consumer"] == "starting"
    loop, stop = consumer_loop(infra, HANDLERS), threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: reported()["reports"]["consumer"] == "consuming", what="the consumer consuming")
        body = reported()
        assert body["status"] == "ready" and body["reports"]["outbox"] == {"waiting": 0, "oldest_age_seconds": 0.0}
    finally:
        stop.set()
        assert loop.stop is not None
        loop.stop()
        thread.join(10)
        infra.engine.dispose()
        root.handlers[:], root.level = handlers, level
    assert reported()["reports"]["consumer"] == "stopped"
