"""Prometheus metrics of every service (prometheus-client), served at ``/metrics`` on a port of its own.

- **Protection: a separate port.** ``/metrics`` is not a route of the public API (whose port a reverse proxy
  exposes); each process serves it on ``WERKPLAATS_METRICS_PORT`` (default: the HTTP port + 1000, so 9100 portal,
  9101 intake, 9102 matching, 9103 scheduling; 0 switches it off) at ``WERKPLAATS_METRICS_HOST`` (default
  127.0.0.1). Only Prometheus, on the internal network, reaches that port; it is never published.
- **Several processes per service: one endpoint per process.** Every process (``WERKPLAATS_PROCESS=api`` or
  ``worker``, each replica) keeps its own counters and serves them on its own metrics port; Prometheus scrapes
  each as an instance of its own and a query sums over them (``sum by (queue) (rate(...))``). The gauges
  every process of a service computes alike (outbox, work items, queue and dead-letter queue depths) are read with
  ``max``; the pool gauges are the process's own (sum them).
  (Waitress serves a process's requests from threads, so a process has one set of counters.)
- **Read at scrape time** (never failing the scrape: a source that does not answer leaves its metrics out and
  is logged): the outbox, the database connection pool, the runs and planning jobs waiting, running or past
  their lease, and the depth of the process's queues and dead-letter queues as the broker counts them.
- **No personal data in labels**: a route is its template (``/teams/<team_id>``), never the path; queues,
  policies, statuses, stages and channels are fixed words.

Every metric is listed in docs/metrics.md (a test holds the list and the registered metrics equal).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request
from kombu.connection import Connection
from kombu.entity import Queue
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool
from waitress.server import create_server
from waitress.wasyncore import close_all

from .db import READ_ONLY, utcnow

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "<unmatched>"  # a path no route takes (a 404): never the path itself

# -- HTTP --------------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter("werkplaats_http_requests", "HTTP requests answered, by route template, method and status",
                        ["service", "route", "method", "status"])
HTTP_DURATION = Histogram("werkplaats_http_request_duration_seconds",
                          "Time to answer an HTTP request, by route template and method",
                          ["service", "route", "method"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))

# -- messages (consumer.py) --------------------------------------------------------------------------

MESSAGES_CONSUMED = Counter("werkplaats_messages_consumed", "Messages applied (effect and inbox row committed)",
                            ["service", "queue"])
MESSAGES_DUPLICATE = Counter("werkplaats_messages_duplicate",
                             "Messages acknowledged without effect: their id was in the inbox already",
                             ["service", "queue"])
MESSAGES_RETRIED = Counter("werkplaats_messages_retried", "Messages sent through the retry exchange after a "
                           "handler failure", ["service", "queue"])
MESSAGES_DEAD_LETTERED = Counter("werkplaats_messages_dead_lettered", "Messages put in the dead-letter queue",
                                 ["service", "queue"])

# -- matching runs and planning jobs -------------------------------------------------------------------

RUN_STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
MATCHING_RUNS = Counter("werkplaats_matching_runs", "Matching runs ended, by policy and how they ended",
                        ["policy", "status"])
MATCHING_RUN_STAGE = Histogram("werkplaats_matching_run_stage_seconds",
                               "Time a matching run spent in each stage (reading, pre-check, building, solving, "
                               "extracting, recording, failing)", ["stage"], buckets=RUN_STAGE_BUCKETS)
PLAN_JOBS = Counter("werkplaats_plan_jobs", "Planning jobs ended, by kind (kickoffs, workshops) and how they ended",
                    ["kind", "status"])
PLAN_JOB_STAGE = Histogram("werkplaats_plan_job_stage_seconds",
                           "Time a planning job spent in each stage (reading, solving, applying, failing)",
                           ["kind", "stage"], buckets=RUN_STAGE_BUCKETS)

# -- notices (scheduling) ----------------------------------------------------------------------------

NOTICE_DELIVERIES = Counter("werkplaats_notice_deliveries", "Notice delivery attempts by channel (email, webhook) "
                            "and outcome (sent; failed: to be retried or given up)", ["channel", "outcome"])


NOTICE_CHANNELS = ("email", "webhook")


def start_at_zero(counter: Counter, *label_sets: dict[str, str]) -> None:
    """Serve these series from the start, at 0: Prometheus sees the first increment of a series that exists
    (a rule on ``increase(...)`` misses one that appears already at 1)."""
    for labels in label_sets:
        counter.labels(**labels)


def notice_attempt(channel: str, ok: bool) -> None:
    NOTICE_DELIVERIES.labels(channel=channel, outcome="sent" if ok else "failed").inc()


class StageClock:
    """Times the stages of one run or job: ``enter(name)`` ends the stage before it (observed into
    ``histogram`` with ``labels``) and starts ``name``; entering the current stage again changes nothing;
    ``close()`` ends the last one."""

    def __init__(self, histogram: Histogram, **labels: str) -> None:
        self.histogram, self.labels = histogram, labels
        self.stage: str | None = None
        self.since = time.monotonic()

    def enter(self, stage: str) -> None:
        if stage == self.stage:
            return
        self.close()
        self.stage, self.since = stage, time.monotonic()

    def close(self) -> None:
        if self.stage is not None:
            self.histogram.labels(**self.labels, stage=self.stage).observe(time.monotonic() - self.since)
            self.stage = None


# -- HTTP instrumentation --------------------------------------------------------------------------


def install_http_metrics(app: Flask, service: str) -> None:
    """Count and time every request of ``app``. Install it first, so its clock starts before any other
    before-request function (authentication may refuse the request: that answer is counted too)."""

    @app.before_request
    def _start_clock() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED_ROUTE
        method = request.method
        HTTP_REQUESTS.labels(service=service, route=route, method=method, status=str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            HTTP_DURATION.labels(service=service, route=route, method=method).observe(time.perf_counter() - started)
        return response


# -- the outbox, read at scrape time -------------------------------------------------------------------


def outbox_state(engine: Engine, outbox: sa.Table) -> tuple[int, float]:
    """(rows waiting to be published, age in seconds of the oldest of them; 0 when none waits)."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(outbox.c.created_at))
                                     .where(outbox.c.sent_at.is_(None))).one()
    if not count or oldest is None:
        return 0, 0.0
    now = utcnow()
    if oldest.tzinfo is None:  # SQLite keeps naive UTC
        now = now.replace(tzinfo=None)
    return int(count), max(0.0, (now - oldest).total_seconds())


class OutboxCollector(Collector):
    """``werkplaats_outbox_waiting`` and ``werkplaats_outbox_oldest_age_seconds``, read from the database at
    each scrape. When the database does not answer, the two are left out of the scrape (and the failure logged)."""

    def __init__(self, service: str, engine: Engine, outbox: sa.Table) -> None:
        self.service, self.engine, self.outbox = service, engine, outbox

    def collect(self) -> Iterable[Metric]:
        try:
            waiting, age = outbox_state(self.engine, self.outbox)
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("outbox metrics not read", extra={"error": type(exc).__name__})
            return
        rows = GaugeMetricFamily("werkplaats_outbox_waiting", "Outbox rows not yet published", labels=["service"])
        rows.add_metric([self.service], waiting)
        yield rows
        oldest = GaugeMetricFamily("werkplaats_outbox_oldest_age_seconds",
                                   "Age of the oldest outbox row not yet published (0 when none waits)",
                                   labels=["service"])
        oldest.add_metric([self.service], age)
        yield oldest


# -- the gauges read at scrape time (besides the outbox) -------------------------------------------------


@dataclass(frozen=True)
class GaugeSpec:
    """A gauge a collector computes at each scrape: its name, help text and labels (docs/metrics.md lists it)."""

    name: str
    documentation: str
    labels: tuple[str, ...]

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=list(self.labels))


POOL_CONNECTIONS = GaugeSpec("werkplaats_db_pool_connections",
                             "Database connections of this process's pool: checked_out (in use), idle (open in the "
                             "pool), overflow (open beyond the pool's size)", ("service", "state"))
POOL_MAX = GaugeSpec("werkplaats_db_pool_max_connections",
                     "Most connections this process's pool opens (its size plus the overflow it allows)", ("service",))
WORK_ITEMS = GaugeSpec("werkplaats_work_items",
                       "Matching runs (kind run) and planning jobs (kickoffs, workshops) queued, running, or "
                       "past_lease: running, but their worker stopped renewing the lease", ("service", "kind", "state"))
QUEUE_MESSAGES = GaugeSpec("werkplaats_queue_messages", "Messages ready in a queue this process consumes, as the "
                           "broker counts them", ("service", "queue"))
DEAD_LETTER_QUEUE_MESSAGES = GaugeSpec("werkplaats_dead_letter_queue_messages",
                                       "Messages in the dead-letter queue of a queue this process consumes, as the "
                                       "broker counts them", ("service", "queue"))
SCRAPE_GAUGES = (POOL_CONNECTIONS, POOL_MAX, WORK_ITEMS, QUEUE_MESSAGES, DEAD_LETTER_QUEUE_MESSAGES)
WORK_STATES = ("queued", "running", "past_lease")


class PoolCollector(Collector):
    """``werkplaats_db_pool_connections`` and ``werkplaats_db_pool_max_connections`` of this process's engine
    (SQLAlchemy's QueuePool; an engine with another pool reports nothing). Per process: sum over instances."""

    def __init__(self, service: str, engine: Engine) -> None:
        self.service, self.engine = service, engine

    def collect(self) -> Iterable[Metric]:
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return
        size, checked_out, idle = pool.size(), pool.checkedout(), pool.checkedin()
        connections = POOL_CONNECTIONS.family()
        for state, value in (("checked_out", checked_out), ("idle", idle),
                             ("overflow", max(0, checked_out + idle - size))):
            connections.add_metric([self.service, state], value)
        yield connections
        most = POOL_MAX.family()
        most.add_metric([self.service], size + max(0, pool._max_overflow))
        yield most


@dataclass(frozen=True)
class LeasedWork:
    """A table of leased work (matching's runs, scheduling's plan jobs): ``status`` queued or running and
    ``lease_until``; ``kind`` names its kind, either a fixed word or, with ``kind_column``, that column's value
    (one of ``kinds``)."""

    table: sa.FromClause
    kinds: tuple[str, ...]
    kind_column: str | None = None


class WorkCollector(Collector):
    """``werkplaats_work_items``: the runs or jobs queued, running (lease held) and past their lease (running, but
    no worker renews the lease: it died or hangs). Read from the database at each scrape; every kind and state is
    reported, 0 included, so an alert rule always finds its series."""

    def __init__(self, service: str, engine: Engine, work: LeasedWork) -> None:
        self.service, self.engine, self.work = service, engine, work

    def counts(self) -> dict[tuple[str, str], int]:
        t = self.work.table
        kind: Any = t.c[self.work.kind_column] if self.work.kind_column else sa.literal(self.work.kinds[0])
        now = utcnow()
        state = sa.case((t.c.status == "queued", "queued"),
                        (sa.or_(t.c.lease_until.is_(None), t.c.lease_until >= now), "running"), else_="past_lease")
        query = (sa.select(kind.label("kind"), state.label("state"), sa.func.count())
                 .where(t.c.status.in_(("queued", "running"))).group_by(kind, state))
        with self.engine.connect().execution_options(**READ_ONLY) as conn:
            return {(str(k), str(s)): int(n) for k, s, n in conn.execute(query)}

    def collect(self) -> Iterable[Metric]:
        try:
            counts = self.counts()
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("work metrics not read", extra={"error": type(exc).__name__})
            return
        items = WORK_ITEMS.family()
        for kind in self.work.kinds:
            for state in WORK_STATES:
                items.add_metric([self.service, kind, state], counts.get((kind, state), 0))
        yield items


QUEUE_READ_TIMEOUT = 3.0


class QueueDepthCollector(Collector):
    """``werkplaats_queue_messages`` and ``werkplaats_dead_letter_queue_messages`` of the queues this process
    consumes: the broker's own count (a passive declare, which creates nothing and needs no permission; on
    RabbitMQ and on the embedded Redis broker alike). Read at each scrape in a thread of its own and waited for
    at most ``timeout`` seconds: a broker that does not answer leaves the two out of the scrape (and is logged),
    and while one read hangs no other starts. ``queues`` pairs each queue's label (its name without the
    namespace) with the queue and its dead-letter queue."""

    def __init__(self, service: str, connect: Callable[[], Connection],
                 queues: Sequence[tuple[str, Queue, Queue]], timeout: float = QUEUE_READ_TIMEOUT) -> None:
        self.service, self.connect, self.queues, self.timeout = service, connect, list(queues), timeout
        self._reading: threading.Thread | None = None
        self._lock = threading.Lock()

    def depths(self) -> list[tuple[str, int, int]]:
        """(label, messages ready, messages dead-lettered) of each queue; a queue the broker does not know is
        left out on RabbitMQ and counted 0 on the Redis transport (where an empty queue does not exist)."""
        found: list[tuple[str, int, int]] = []
        with self.connect() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=self.timeout)
            redis = conn.transport.driver_type == "redis"
            for label, queue, dead in self.queues:
                ready, dlq = _message_count(conn, queue, redis), _message_count(conn, dead, redis)
                if ready is not None and dlq is not None:
                    found.append((label, ready, dlq))
        return found

    def collect(self) -> Iterable[Metric]:
        if not self.queues:
            return
        result: dict[str, list[tuple[str, int, int]]] = {}

        def read() -> None:
            try:
                result["depths"] = self.depths()
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the broker is down
                log.warning("queue metrics not read", extra={"error": type(exc).__name__})

        with self._lock:
            if self._reading is not None and self._reading.is_alive():
                log.warning("queue metrics not read: the previous read still waits for the broker")
                return
            self._reading = threading.Thread(target=read, name="queue-metrics", daemon=True)
            self._reading.start()
            reading = self._reading
        reading.join(self.timeout)
        if "depths" not in result:
            if reading.is_alive():
                log.warning("queue metrics not read: the broker did not answer in time",
                            extra={"timeout": self.timeout})
            return
        ready, dead = QUEUE_MESSAGES.family(), DEAD_LETTER_QUEUE_MESSAGES.family()
        for label, in_queue, in_dlq in result["depths"]:
            ready.add_metric([self.service, label], in_queue)
            dead.add_metric([self.service, label], in_dlq)
        yield ready
        yield dead


def _message_count(conn: Connection, queue: Queue, redis: bool) -> int | None:
    channel = conn.channel()
    try:
        _, count, _ = queue(channel).queue_declare(passive=True)
        return int(count)
    except conn.channel_errors:  # not found (RabbitMQ closes the channel)
        return 0 if redis else None
    finally:
        with contextlib.suppress(Exception):  # already closed by the broker
            channel.close()


class _Process(Collector):
    """The process-wide metrics (prometheus-client's default registry) inside a service's own registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def registry_for(*collectors: Collector) -> CollectorRegistry:
    """What a process serves at /metrics: its counters and histograms, plus ``collectors`` (read at scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Process())
    for collector in collectors:
        registry.register(collector)
    return registry


class MetricsServer:
    """``/metrics`` (and nothing else) on a port of its own, served by waitress in a thread."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        metrics_app = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != METRICS_PATH:
                start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
                return [b"not found: metrics are at /metrics\n"]
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]

        # bound here, so a port already taken fails before waitress starts anything (and leaks no socket)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        self.server: Any = create_server(app, sockets=[sock], threads=2)
        self.port = int(self.server.effective_port)
        self._thread = threading.Thread(target=self.server.run, name="metrics", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics served", extra={"port": self.port, "path": METRICS_PATH})
        return self

    def close(self) -> None:
        """Stop serving: the sockets are closed in the server's own loop (closing them from another thread would
        pull them from under its select), which then ends."""
        def close_in_loop() -> None:
            self.server.task_dispatcher.shutdown()
            close_all(self.server._map)

        self.server.trigger.pull_trigger(close_in_loop)
        self._thread.join(timeout=5)


def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> MetricsServer | None:
    """Serve /metrics on ``host:port`` (0: not at all). A port already taken is logged, not fatal: the service
    serves its API without metrics rather than not at all."""
    if not port:
        return None
    try:
        return MetricsServer(registry, host, port).start()
    except OSError as exc:
        log.error("metrics port not available; serving without /metrics",
                  extra={"port": port, "error": type(exc).__name__})
        return None
