"""What every service's composition root assembles: database, broker, outbox relay, consumer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import sqlalchemy as sa
from flask import Flask
from kombu.connection import Connection
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import broker
from .auth import DISABLED_ACCOUNTS, REVOKED_SESSIONS
from .config import Settings
from .consumer import Handler, MessageConsumer
from .contracts import SCOPES, Envelope
from .db import database_reachable, make_engine, make_session_factory, upgrade_database, utcnow
from .http import add_health
from .logs import configure_logging
from .metrics import (
    LeasedWork,
    MetricsServer,
    OutboxCollector,
    PoolCollector,
    QueueDepthCollector,
    WorkCollector,
    outbox_state,
    registry_for,
    start_metrics_server,
)
from .outbox import OutboxRelay, add_all_to_outbox, add_to_outbox
from .publisher import Publisher
from .runner import Loop, serve, serve_processes
from .topology import Topology

log = logging.getLogger(__name__)


@dataclass
class Infrastructure:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    outbox: sa.Table
    inbox: sa.Table
    api_keys: sa.Table
    topology: Topology = field(init=False)
    # the consumer of this process's worker loop, once it runs (its state is reported by /ready)
    consumers: dict[str, MessageConsumer] = field(init=False, default_factory=dict)
    # the runs or jobs this service leases to its workers (werkplaats_work_items), if any
    leased_work: LeasedWork | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.topology = broker.topology_for(self.settings)

    def connection(self) -> Connection:
        return broker.connect(self.settings)

    def emit(self, session: Session, envelope: Envelope) -> None:
        add_to_outbox(session, self.outbox, envelope)

    def emit_all(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        """Many messages in one statement (bulk imports), in their order."""
        add_all_to_outbox(session, self.outbox, envelopes)

    def relay(self, connection: Connection) -> OutboxRelay:
        return OutboxRelay(self.engine, self.outbox,
                           Publisher(connection, self.topology, self.settings.service))


def start_infrastructure(settings: Settings, tables: tuple[sa.Table, sa.Table, sa.Table],
                         script_location: str) -> Infrastructure:
    configure_logging(settings.service, settings.log_level)
    upgrade_database(settings.database_url, script_location)
    engine = make_engine(settings.database_url)
    outbox, inbox, api_keys = tables
    return Infrastructure(settings, engine, make_session_factory(engine), outbox, inbox, api_keys)


def declare_topology_when_possible(settings: Settings, stop: threading.Event) -> None:
    delay = 0.5
    while not stop.is_set():
        try:
            broker.declare_topology(settings)
            return
        except Exception:  # noqa: BLE001 - broker not up yet: wait, then try again
            log.warning("broker not reachable; topology not declared yet")
            stop.wait(delay)
            delay = min(delay * 2, 10.0)


def relay_loop(infra: Infrastructure) -> Loop:
    def run(stop: threading.Event) -> None:
        declare_topology_when_possible(infra.settings, stop)
        with infra.connection() as conn:
            infra.relay(conn).run(stop, infra.settings.poll_interval, tick=lambda: _heartbeat(conn))

    return Loop("outbox-relay", run)


def _heartbeat(conn: Connection) -> None:
    """Keep an idle publishing connection alive: RabbitMQ drops a connection that misses heartbeats."""
    if conn.connected:
        try:
            conn.heartbeat_check()
        except Exception:  # noqa: BLE001 - a dead connection is re-established by the next publish
            log.info("broker heartbeat missed; reconnecting on next publish")


def consumer_loop(infra: Infrastructure, handlers: dict[str, Handler]) -> Loop:
    holder: dict[str, MessageConsumer] = {}

    def run(stop: threading.Event) -> None:
        declare_topology_when_possible(infra.settings, stop)
        with infra.connection() as conn:
            consumer = MessageConsumer(
                connection=conn, topology=infra.topology, service=infra.settings.service,
                session_factory=infra.session_factory, inbox=infra.inbox, handlers=handlers,
                max_deliveries=infra.settings.max_deliveries,
            )
            holder["c"] = infra.consumers["consumer"] = consumer
            if stop.is_set():
                return
            consumer.run()

    def stop_consumer() -> None:
        if "c" in holder:
            holder["c"].should_stop = True

    return Loop("consumer", run, stop_consumer)


def apikey_replica_handlers(api_keys: sa.Table) -> dict[str, Handler]:
    """Services other than intake keep a replica of the key hashes intake issues, with their scopes (a v1
    message predates scopes: its key holds all of them), of the disabled accounts and of the revoked sign-in
    sessions."""
    disabled = api_keys.metadata.tables[DISABLED_ACCOUNTS]
    sessions = api_keys.metadata.tables[REVOKED_SESSIONS]

    def issued(session: Session, envelope: Envelope) -> None:
        p = envelope.payload
        scopes = [scope for scope in SCOPES if scope in p.get("scopes", SCOPES)]
        exists = session.execute(sa.select(api_keys.c.key_id).where(api_keys.c.key_id == p["key_id"])).first()
        if exists is None:
            session.execute(api_keys.insert().values(
                key_id=p["key_id"], organisation_id=p["organisation_id"], role=p["role"],
                secret_hash=p["secret_hash"], created_at=utcnow(), scopes=scopes,
            ))

    def revoked(session: Session, envelope: Envelope) -> None:
        session.execute(api_keys.update().where(api_keys.c.key_id == envelope.payload["key_id"])
                        .values(revoked_at=utcnow()))

    def account_disabled(session: Session, envelope: Envelope) -> None:
        p = envelope.payload
        exists = session.execute(sa.select(disabled.c.account_id)
                                 .where(disabled.c.account_id == p["account_id"])).first()
        if exists is None:
            session.execute(disabled.insert().values(account_id=p["account_id"],
                                                     organisation_id=p["organisation_id"], disabled_at=utcnow()))

    def session_revoked(session: Session, envelope: Envelope) -> None:
        session_id = envelope.payload["session_id"]
        exists = session.execute(sa.select(sessions.c.session_id).where(sessions.c.session_id == session_id)).first()
        if exists is None:
            session.execute(sessions.insert().values(session_id=session_id, revoked_at=utcnow()))

    return {"apikey.issued": issued, "apikey.revoked": revoked, "account.disabled": account_disabled,
            "session.revoked": session_revoked}


def health_checks(infra: Infrastructure) -> dict[str, Callable[[], bool]]:
    return {"database": lambda: database_reachable(infra.engine),
            "broker": lambda: broker.broker_reachable(infra.settings)}


def ready_reports(infra: Infrastructure) -> dict[str, Callable[[], Any]]:
    """What /ready reports without failing: the outbox (rows waiting, age of the oldest) and the state of this
    process's consumer ("not in this process" for an API-only process)."""
    def outbox() -> dict[str, Any]:
        waiting, age = outbox_state(infra.engine, infra.outbox)
        return {"waiting": waiting, "oldest_age_seconds": round(age, 1)}

    def consumer() -> str:
        running = infra.consumers.get("consumer")
        if running is None:
            return "starting" if infra.settings.process != "api" else "not in this process"
        return "stopped" if running.should_stop else running.state

    return {"outbox": outbox, "consumer": consumer}


# An API served by several processes (WERKPLAATS_HTTP_PROCESSES): the k-th forked process serves its /metrics
# on the metrics port + k * METRICS_PORT_STEP (9101, 9111, 9121 … for intake), so that no process's counters go
# unseen and the local default's ports (9100-9103) never collide with them.
METRICS_PORT_STEP = 10


def metrics_server(infra: Infrastructure, index: int = 0) -> MetricsServer | None:
    """Serve this process's /metrics on its own port (werkplaats_shared.metrics): the metrics port, plus
    ``index * METRICS_PORT_STEP`` for the index-th forked HTTP process; None when switched off or the port is
    taken."""
    settings = infra.settings
    if not settings.metrics_port:
        return None
    port = settings.metrics_port + index * METRICS_PORT_STEP
    if port > 65535:
        log.warning("no /metrics for this process: its port is beyond 65535", extra={"index": index})
        return None
    return start_metrics_server(metrics_registry(infra), settings.metrics_host, port)


def metrics_registry(infra: Infrastructure) -> CollectorRegistry:
    """This process's metrics: its counters and histograms, and what is read at each scrape (the outbox, the
    connection pool, the leased runs or jobs, the depth of the queues it consumes and their dead-letter queues)."""
    service, topology = infra.settings.service, infra.topology
    queues = [(queue.name.removeprefix(topology.namespace), queue, topology.dead_letter_queue(queue.name))
              for queue in topology.queues_for(service)]
    collectors: list[Collector] = [OutboxCollector(service, infra.engine, infra.outbox),
                                   PoolCollector(service, infra.engine),
                                   QueueDepthCollector(service, infra.connection, queues)]
    if infra.leased_work is not None:
        collectors.append(WorkCollector(service, infra.engine, infra.leased_work))
    return registry_for(*collectors)


def run(infra: Infrastructure, app_factory: Callable[[], Flask], worker_loops: list[Loop]) -> None:
    """Serve the API and/or the worker loops, as WERKPLAATS_PROCESS says, and /metrics on its own port."""
    settings = infra.settings
    if settings.process == "worker":
        app = Flask(f"{settings.service}-worker")
        add_health(app, health_checks(infra), ready_reports(infra))
        loops = worker_loops
    elif settings.process == "api":
        app, loops = app_factory(), []
    else:
        app, loops = app_factory(), worker_loops
    if settings.process == "api" and settings.http_processes > 1:
        # forked before any thread starts; each forked process opens its own database connections and serves
        # its own /metrics (the requests it answered) on a port of its own: see METRICS_PORT_STEP
        started: list[MetricsServer | None] = []

        def in_forked(index: int) -> None:
            infra.engine.dispose(close=False)
            metrics_server(infra, index)  # runs until the forked process ends

        try:
            serve_processes(app, settings.http_host, settings.http_port, settings.http_processes,
                            after_fork=in_forked,
                            after_forks=lambda: started.append(metrics_server(infra)))
        finally:
            for server in started:
                if server is not None:
                    server.close()
        return
    metrics = metrics_server(infra)
    try:
        serve(app, settings.http_host, settings.http_port, loops)
    finally:
        if metrics is not None:
            metrics.close()
