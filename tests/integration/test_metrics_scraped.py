"""The metrics read at scrape time, on the real servers: the depth of a service's queues and dead-letter queues as
the broker counts them (RabbitMQ and the embedded broker), the database connection pool (PostgreSQL), the runs
queued, running and past their lease; and a broker that does not answer never fails or holds up a scrape."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kombu.messaging import Producer
from matching import bootstrap as matching_bootstrap
from matching.adapters import orm
from matching.entrypoints.api import create_matching_app
from matching.entrypoints.handlers import HANDLERS
from matching.service_layer import services
from prometheus_client import CollectorRegistry
from scheduling import bootstrap as scheduling_bootstrap
from werkplaats_shared import broker
from werkplaats_shared.config import Settings
from werkplaats_shared.db import make_engine, make_session_factory, messaging_tables, utcnow
from werkplaats_shared.devstack.ports import reserve_port
from werkplaats_shared.metrics import OutboxCollector, PoolCollector, QueueDepthCollector, registry_for
from werkplaats_shared.outbox import add_to_outbox
from werkplaats_shared.service import Infrastructure, consumer_loop, metrics_registry

from .harness import batch_envelope, wait_until
from .test_matching_api import ROLES, Matching, submit

QUEUE = {"service": "matching", "queue": "matching.from-intake"}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.fixture
def keep_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def matching_infra(database_url: str, tmp_path: Path, **env: str) -> Infrastructure:
    return matching_bootstrap.bootstrap(Settings.from_env("matching", {
        "WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_DATA_DIR": str(tmp_path), **env}))


def test_a_dead_lettered_message_shows_in_the_depth_of_its_dead_letter_queue(
        broker_url: str, namespace: str, tmp_path: Path, keep_logging: None) -> None:
    infra = matching_infra(f"sqlite:///{tmp_path}/matching.sqlite3", tmp_path,
                           WERKPLAATS_BROKER_URL=broker_url, WERKPLAATS_NAMESPACE=namespace,
                           WERKPLAATS_PROCESS="worker")
    broker.declare_topology(infra.settings)
    registry = metrics_registry(infra)
    assert value(registry, "werkplaats_queue_messages", **QUEUE) == 0
    assert value(registry, "werkplaats_dead_letter_queue_messages", **QUEUE) == 0
    # every queue matching consumes is reported, under its name without the test's namespace
    assert value(registry, "werkplaats_dead_letter_queue_messages", service="matching",
                 queue="matching.from-scheduling") == 0

    with infra.connection() as conn:  # a message no consumer can read, while none runs
        Producer(conn.default_channel).publish(
            b"\xff not json", exchange=infra.topology.exchange("intake"), routing_key="batch.submitted",
            content_type="application/json", content_encoding="binary", message_id=str(uuid.uuid4()),
            delivery_mode=2)
    wait_until(lambda: value(registry, "werkplaats_queue_messages", **QUEUE) == 1, what="one message waiting")
    assert value(registry, "werkplaats_dead_letter_queue_messages", **QUEUE) == 0

    loop, stop = consumer_loop(infra, HANDLERS), threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: value(registry, "werkplaats_dead_letter_queue_messages", **QUEUE) == 1,
                   what="the dead-letter queue's depth 1")
        assert value(registry, "werkplaats_queue_messages", **QUEUE) == 0
    finally:
        stop.set()
        assert loop.stop is not None
        loop.stop()
        thread.join(10)
        infra.engine.dispose()


def _silent_listener() -> tuple[socket.socket, int]:
    """A port that accepts connections and never says a word (a broker that hangs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener, int(listener.getsockname()[1])


def _closed_port() -> int:
    return reserve_port()


@pytest.mark.parametrize("broker_down", ["closed port", "silent broker"])
def test_a_broker_that_does_not_answer_leaves_the_queue_depths_out_and_the_scrape_whole(
        broker_down: str, tmp_path: Path, keep_logging: None, caplog: pytest.LogCaptureFixture) -> None:
    listener: socket.socket | None = None
    if broker_down == "silent broker":
        listener, port = _silent_listener()
    else:
        port = _closed_port()
    infra = matching_infra(f"sqlite:///{tmp_path}/matching.sqlite3", tmp_path,
                           WERKPLAATS_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{port}//")
    timeout = 1.0
    queues = [(q.name, q, infra.topology.dead_letter_queue(q.name)) for q in infra.topology.queues_for("matching")]
    registry = registry_for(QueueDepthCollector("matching", infra.connection, queues, timeout=timeout),
                            PoolCollector("matching", infra.engine))
    metrics_log = logging.getLogger("werkplaats_shared.metrics")  # the service's logging does not propagate
    metrics_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="werkplaats_shared.metrics"):
            for _ in range(2):  # the second while the first read may still hang: it starts no other
                started = time.monotonic()
                names = {family.name for family in registry.collect()}
                assert time.monotonic() - started < timeout + 5
                assert "werkplaats_db_pool_connections" in names  # the rest of the scrape is there
                assert not names & {"werkplaats_queue_messages", "werkplaats_dead_letter_queue_messages"}
        assert "queue metrics not read" in caplog.text
    finally:
        metrics_log.removeHandler(caplog.handler)
        if listener is not None:
            listener.close()
        infra.engine.dispose()


def test_the_outbox_gauges_are_read_while_the_relay_holds_sqlites_write_lock(tmp_path: Path) -> None:
    """On SQLite the relay keeps the write lock while it retries a publish to a broker that is down: exactly then
    the scrape must still read the outbox (a reader never waits for the writer), not wait out the busy timeout."""
    metadata = sa.MetaData()
    outbox, _, _ = messaging_tables(metadata)
    engine = make_engine(f"sqlite:///{tmp_path}/svc.sqlite3")
    metadata.create_all(engine)
    with make_session_factory(engine).begin() as session:
        add_to_outbox(session, outbox, batch_envelope("waiting"))
    registry = registry_for(OutboxCollector("intake", engine, outbox))
    try:
        with engine.connect() as relay:  # a writer holding the write lock: BEGIN IMMEDIATE, a row updated
            relay.begin()
            relay.execute(outbox.update().values(attempts=outbox.c.attempts + 1))
            started = time.monotonic()
            assert value(registry, "werkplaats_outbox_waiting", service="intake") == 1
            assert time.monotonic() - started < 5  # the busy timeout is 30 s
            relay.rollback()
    finally:
        engine.dispose()


def test_the_pool_gauges_follow_the_connections_in_use(make_postgres_db: Callable[[str], str]) -> None:
    engine = make_engine(make_postgres_db("pool"))  # the services' engine: a pool of 5, 5 more on demand
    registry = registry_for(PoolCollector("intake", engine))

    def pool() -> dict[str, float | None]:
        return {state: value(registry, "werkplaats_db_pool_connections", service="intake", state=state)
                for state in ("checked_out", "idle", "overflow")}

    try:
        assert value(registry, "werkplaats_db_pool_max_connections", service="intake") == 10
        assert pool() == {"checked_out": 0, "idle": 0, "overflow": 0}
        held = [engine.connect() for _ in range(2)]
        for conn in held:
            conn.execute(sa.text("SELECT 1"))
        assert pool() == {"checked_out": 2, "idle": 0, "overflow": 0}
        held.pop().close()
        assert pool() == {"checked_out": 1, "idle": 1, "overflow": 0}
        held += [engine.connect() for _ in range(6)]  # 7 in use: 2 beyond the pool's 5
        assert pool() == {"checked_out": 7, "idle": 0, "overflow": 2}
        for conn in held:
            conn.close()
        assert pool() == {"checked_out": 0, "idle": 5, "overflow": 0}  # the overflow ones are closed
    finally:
        engine.dispose()


@pytest.fixture
def pg_matching(make_postgres_db: Callable[[str], str], tmp_path: Path, keep_logging: None) -> Iterator[Matching]:
    infra = matching_infra(make_postgres_db("workitems"), tmp_path)
    svc = Matching(infra, create_matching_app(infra).test_client(), {w: str(uuid.uuid4()) for w in ROLES})
    for who, role in ROLES.items():
        svc.add_key(who, svc.org[who], role)
    try:
        yield svc
    finally:
        infra.engine.dispose()


def test_a_run_whose_worker_stopped_renewing_its_lease_counts_as_past_lease(pg_matching: Matching) -> None:
    m = pg_matching
    registry = metrics_registry(m.infra)

    def work() -> dict[str, float | None]:
        return {state: value(registry, "werkplaats_work_items", service="matching", kind="run", state=state)
                for state in ("queued", "running", "past_lease")}

    assert work() == {"queued": 0, "running": 0, "past_lease": 0}
    submit(m, auto_publish=False)
    assert work() == {"queued": 1, "running": 0, "past_lease": 0}
    run_id = services.claim_next_run(m.infra.session_factory)
    assert run_id is not None
    assert work() == {"queued": 0, "running": 1, "past_lease": 0}
    # the worker died: nobody renews the lease, which runs out
    with m.infra.engine.begin() as conn:
        conn.execute(sa.update(orm.Run).where(orm.Run.id == run_id)
                     .values(lease_until=utcnow() - timedelta(seconds=1)))
    assert work() == {"queued": 0, "running": 0, "past_lease": 1}
    # another worker takes it over and finishes it
    assert services.claim_next_run(m.infra.session_factory) == run_id
    assert work() == {"queued": 0, "running": 1, "past_lease": 0}
    services.execute_run(m.infra.session_factory, m.infra.emit, run_id, "highs", 30)
    assert work() == {"queued": 0, "running": 0, "past_lease": 0}


def test_scheduling_reports_its_planning_jobs_by_kind(tmp_path: Path, keep_logging: None) -> None:
    infra = scheduling_bootstrap.bootstrap(Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/scheduling.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": "metrics-test-secret-0123456789abcdef-xyz"}))
    try:
        found: dict[tuple[str, str], Any] = {
            (s.labels["kind"], s.labels["state"]): s.value
            for family in metrics_registry(infra).collect() if family.name == "werkplaats_work_items"
            for s in family.samples}
        assert found == {(kind, state): 0 for kind in ("kickoffs", "workshops")
                         for state in ("queued", "running", "past_lease")}
        # the failures the alert rules watch with increase() are served from the start, so the first counts
        registry = metrics_registry(infra)
        for kind in ("kickoffs", "workshops"):
            assert value(registry, "werkplaats_plan_jobs_total", kind=kind, status="failed") is not None
        for channel in ("email", "webhook"):
            assert value(registry, "werkplaats_notice_deliveries_total", channel=channel, outcome="failed") is not None
    finally:
        infra.engine.dispose()
