"""Configuration read from environment variables only.

Every variable a service reads is listed in ``ENV_VARS``; the README documents the same list and a
test checks that docker-compose sets nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import unquote, urlsplit

ENV_VARS: dict[str, str] = {
    "WERKPLAATS_DATABASE_URL": "SQLAlchemy URL of this service's own database "
    "(default: SQLite file under WERKPLAATS_DATA_DIR)",
    "WERKPLAATS_BROKER_URL": "kombu URL of the message broker, e.g. amqp://user:pw@rabbitmq:5672// "
    "or redis+socket:///path/broker.sock",
    "WERKPLAATS_BROKER_PRODUCER_USERS": "broker user of each producing service, e.g. "
    "intake=intake,matching=matching,scheduling=scheduling: a consumer then handles only messages whose "
    "RabbitMQ-validated user_id is the broker user of the message's producer and dead-letters the rest; needs "
    "an amqp:// WERKPLAATS_BROKER_URL whose user is this service's own; required with one broker user per "
    "service (docker-compose sets it). Default empty: no check, for single-user brokers such as the local "
    "embedded Redis, which validates no sender",
    "WERKPLAATS_DATA_DIR": "directory for local state (SQLite files, mail sink); default ./.werkplaats",
    "WERKPLAATS_NAMESPACE": "prefix for every exchange and queue name (isolates test runs); default empty",
    "WERKPLAATS_HTTP_HOST": "address the HTTP API binds to; default 127.0.0.1",
    "WERKPLAATS_HTTP_PORT": "port of the HTTP API; default per service (intake 8101, matching 8102, "
    "scheduling 8103)",
    "WERKPLAATS_SMTP_HOST": "SMTP server for notices (scheduling) and sign-in and invitation mails (intake); "
    "default 127.0.0.1",
    "WERKPLAATS_SMTP_PORT": "SMTP port (scheduling, intake); default 1025",
    "WERKPLAATS_MAIL_FROM": "sender address of notices and sign-in mails; default werkplaats@localhost",
    "WERKPLAATS_MAIL_CONCURRENCY": "how many SMTP connections scheduling sends one pass's notices over in "
    "parallel (1 to 32); default 4",
    "WERKPLAATS_MAIL_PER_CONNECTION": "how many notices scheduling sends over one SMTP connection before it "
    "opens a new one (1 to 10000; 1: a connection per mail); default 100",
    "WERKPLAATS_SECRET_KEY": "secret that signs the accept/decline links in notices (scheduling) and the "
    "account tokens every service accepts (the same value in all three; at least 32 characters; required by "
    "scheduling; without it the other services accept API keys only; changing it invalidates links and tokens)",
    "WERKPLAATS_PUBLIC_URL": "base URL at which entrepreneurs reach scheduling's API, used in the links of "
    "notices (scheduling); default http://127.0.0.1:<WERKPLAATS_HTTP_PORT>",
    "WERKPLAATS_PORTAL_URL": "base URL of the web portal, used in the sign-in and invitation links intake e-mails "
    "(intake); default http://127.0.0.1:8100",
    "WERKPLAATS_INTAKE_URL": "base URL of intake's API as the portal and matching reach it (portal; matching fetches "
    "large batch snapshots from it); default http://127.0.0.1:8101",
    "WERKPLAATS_SNAPSHOT_INLINE_BYTES": "largest batch snapshot intake sends inside the batch.submitted message "
    "(intake; 10000-100000000 bytes, default 1000000); a larger one stays in intake and matching fetches it by "
    "reference (needs WERKPLAATS_SECRET_KEY in both; without it every snapshot travels inline)",
    "WERKPLAATS_MATCHING_URL": "base URL of matching's API as the portal reaches it (portal); default "
    "http://127.0.0.1:8102",
    "WERKPLAATS_SCHEDULING_URL": "base URL of scheduling's API as the portal reaches it (portal); default "
    "http://127.0.0.1:8103",
    "WERKPLAATS_PORTAL_SESSION_STORE": "where the portal keeps its server-side sessions (the signed-in person's "
    "short-lived tokens): empty (default) for files under WERKPLAATS_DATA_DIR, or redis://host:6379/1 for several "
    "replicas",
    "WERKPLAATS_TRUSTED_PROXIES": "number of reverse proxies in front of the service whose X-Forwarded-For header "
    "is trusted for the client address of rate limits (0-5); default 0: the header is ignored",
    "WERKPLAATS_ANSWER_DEADLINE_DAYS": "days a firm has to answer a match notice before its unanswered match counts "
    "as declined (scheduling; 1-14, default 10)",
    "WERKPLAATS_WEBHOOK_ALLOW_LOOPBACK": "test-only: true lets webhooks target loopback addresses over http "
    "or https (scheduling); default false, unset in production",
    "WERKPLAATS_SOLVER": "matching solver: highs (default) or cbc",
    "WERKPLAATS_WORKSHOP_PLAN_GAP": "relative gap a workshop plan job is solved to, as a fraction (scheduling worker; "
    "0-0.5, default 0.01: the plan is proven within 1% of the best possible, or the job's time limit ends the "
    "search first); the job's progress and result show the gap reached (`gap`) beside this target (`target_gap`)",
    "WERKPLAATS_SOLVER_TIME_LIMIT": "matching solver time limit in seconds; default 60",
    "WERKPLAATS_MAX_OPEN_RUNS": "matching runs a coordinator may have queued or running at once (matching; 1-100, "
    "default 5); a re-run request beyond it gets 429 with Retry-After",
    "WERKPLAATS_MAX_DELIVERIES": "attempts per message before it goes to the dead-letter queue; default 5",
    "WERKPLAATS_VISIBILITY_TIMEOUT": "seconds before an unacknowledged message is redelivered on the "
    "redis transport; default 30",
    "WERKPLAATS_POLL_INTERVAL": "seconds between outbox/job polls; default 0.5",
    "WERKPLAATS_LOG_LEVEL": "log level; default INFO",
    "WERKPLAATS_PROCESS": "which loops a process runs: all (default), api or worker",
    "WERKPLAATS_HTTP_PROCESSES": "processes that serve the HTTP API of a WERKPLAATS_PROCESS=api container, "
    "on one listening socket (1-32, default 1; each with 8 threads): one per core the container may use",
    "WERKPLAATS_METRICS_PORT": "port of the process's Prometheus /metrics, apart from the API's (default: the HTTP "
    "port + 1000; 0: none). Never publish it: only Prometheus on the internal network should reach it",
    "WERKPLAATS_METRICS_HOST": "address the /metrics port listens on; default 127.0.0.1",
    "WERKPLAATS_RATE_LIMIT": "requests allowed per API key, e.g. '600 per minute' (default); beyond it 429",
    "WERKPLAATS_RATE_LIMIT_STORAGE": "where rate-limit counters live: memory:// (default, per process) or "
    "redis://host:6379/0 (shared by replicas)",
    "WERKPLAATS_RETENTION_TEAM_DAYS": "days after a team's period ends before intake erases its code (retention "
    "job; 1-3650, default 365)",
    "WERKPLAATS_RETENTION_FIRM_DAYS": "days a firm may go without a new assignment before intake erases its contact "
    "data everywhere (name, KvK number, assignment texts; scheduling's contact, webhook, availability; 1-3650, "
    "default 365)",
    "WERKPLAATS_RETENTION_DELIVERY_DAYS": "days scheduling keeps each delivery attempt of a notice (1-3650, "
    "default 365)",
    "WERKPLAATS_RETENTION_PLAN_JOB_DAYS": "days scheduling keeps a plan job's record (status, progress, result) "
    "after it ended: done, failed, cancelled or rejected (1-3650, default 90); what it planned stays",
    "WERKPLAATS_RETENTION_INTERVAL": "seconds between runs of the retention job (intake and scheduling workers; "
    "1-86400, default 3600)",
    "WERKPLAATS_IMPORT_PARSERS": "uploads (CSV/XLSX imports) intake reads at once, each in a process of its own "
    "off the request threads (1-8, default 2); an upload that finds none free within 2 s gets 503 with Retry-After",
    "WERKPLAATS_IMPORT_PARSE_SECONDS": "seconds intake may spend reading one uploaded file before it is refused "
    "with 413 and its reading process stopped (1-600, default 120: a full 10,000-row workbook takes tens of "
    "seconds on a busy machine)",
    "WERKPLAATS_RECONCILE_AFTER_SECONDS": "seconds a batch may stay submitted without a run outcome before intake's "
    "reconciliation announces it to matching again (batch.submitted, same message id; 60-604800, default 900)",
    "WERKPLAATS_RECONCILE_INTERVAL": "seconds between runs of intake's reconciliation job (intake worker; 1-86400, "
    "default 60)",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "OpenTelemetry collector to send traces to over OTLP/HTTP, e.g. "
    "http://otel-collector:4318 (spans go to <endpoint>/v1/traces); unset (the default): traces are not exported "
    "and nothing goes over the network, the log lines still carry trace_id",
    "WERKPLAATS_FAULT": "test-only fault injection, e.g. kill-after-commit:<consumer>:<message-type>:<marker-file>; "
    "unset in production",
}

DEFAULT_PORTS = {"intake": 8101, "matching": 8102, "scheduling": 8103}


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    broker_url: str
    data_dir: str
    namespace: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    mail_from: str = "werkplaats@localhost"
    mail_concurrency: int = 4
    mail_per_connection: int = 100
    secret_key: str = field(default="", repr=False)
    public_url: str = ""
    portal_url: str = "http://127.0.0.1:8100"
    trusted_proxies: int = 0
    webhook_allow_loopback: bool = False
    solver: str = "highs"
    solver_time_limit: float = 60.0
    max_open_runs: int = 5
    max_deliveries: int = 5
    visibility_timeout: int = 30
    poll_interval: float = 0.5
    log_level: str = "INFO"
    process: str = "all"
    http_processes: int = 1
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: no /metrics server
    rate_limit: str = "600 per minute"
    rate_limit_storage: str = "memory://"
    import_parsers: int = 2
    import_parse_seconds: int = 120
    reconcile_after_seconds: int = 900
    reconcile_interval: int = 60
    intake_url: str = "http://127.0.0.1:8101"
    snapshot_inline_bytes: int = 1_000_000
    # (service, broker user) pairs; empty: a single-user broker, senders are not checked
    broker_producer_users: tuple[tuple[str, str], ...] = ()

    @property
    def producer_users(self) -> dict[str, str]:
        return dict(self.broker_producer_users)

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        data_dir = e.get("WERKPLAATS_DATA_DIR", os.path.abspath(".werkplaats"))
        database_url = e.get("WERKPLAATS_DATABASE_URL") or (
            f"sqlite:///{os.path.join(data_dir, service + '.sqlite3')}"
        )
        broker_url = e.get("WERKPLAATS_BROKER_URL") or (
            f"redis+socket://{os.path.join(data_dir, 'broker.sock')}"
        )
        process = e.get("WERKPLAATS_PROCESS", "all")
        if process not in ("all", "api", "worker"):
            raise ValueError("WERKPLAATS_PROCESS must be all, api or worker")
        solver = e.get("WERKPLAATS_SOLVER", "highs").lower()
        if solver not in ("highs", "cbc"):
            raise ValueError("WERKPLAATS_SOLVER must be highs or cbc")
        http_port = int(e.get("WERKPLAATS_HTTP_PORT", DEFAULT_PORTS.get(service, 8100)))
        allow_loopback = e.get("WERKPLAATS_WEBHOOK_ALLOW_LOOPBACK", "false").lower()
        if allow_loopback not in ("true", "false", "1", "0", ""):
            raise ValueError("WERKPLAATS_WEBHOOK_ALLOW_LOOPBACK must be true or false")
        producer_users = parse_producer_users(e.get("WERKPLAATS_BROKER_PRODUCER_USERS", ""), service, broker_url)
        return cls(
            service=service,
            database_url=database_url,
            broker_url=broker_url,
            data_dir=data_dir,
            namespace=e.get("WERKPLAATS_NAMESPACE", ""),
            http_host=e.get("WERKPLAATS_HTTP_HOST", "127.0.0.1"),
            http_port=http_port,
            smtp_host=e.get("WERKPLAATS_SMTP_HOST", "127.0.0.1"),
            smtp_port=int(e.get("WERKPLAATS_SMTP_PORT", "1025")),
            mail_from=e.get("WERKPLAATS_MAIL_FROM", "werkplaats@localhost"),
            mail_concurrency=_bounded_int(e, "WERKPLAATS_MAIL_CONCURRENCY", 4, 1, 32),
            mail_per_connection=_bounded_int(e, "WERKPLAATS_MAIL_PER_CONNECTION", 100, 1, 10000),
            secret_key=e.get("WERKPLAATS_SECRET_KEY", ""),
            public_url=(e.get("WERKPLAATS_PUBLIC_URL") or f"http://127.0.0.1:{http_port}").rstrip("/"),
            portal_url=(e.get("WERKPLAATS_PORTAL_URL") or "http://127.0.0.1:8100").rstrip("/"),
            trusted_proxies=_bounded_int(e, "WERKPLAATS_TRUSTED_PROXIES", 0, 0, 5),
            webhook_allow_loopback=allow_loopback in ("true", "1"),
            solver=solver,
            solver_time_limit=float(e.get("WERKPLAATS_SOLVER_TIME_LIMIT", "60")),
            max_open_runs=_bounded_int(e, "WERKPLAATS_MAX_OPEN_RUNS", 5, 1, 100),
            max_deliveries=int(e.get("WERKPLAATS_MAX_DELIVERIES", "5")),
            visibility_timeout=int(e.get("WERKPLAATS_VISIBILITY_TIMEOUT", "30")),
            poll_interval=float(e.get("WERKPLAATS_POLL_INTERVAL", "0.5")),
            log_level=e.get("WERKPLAATS_LOG_LEVEL", "INFO"),
            process=process,
            http_processes=_bounded_int(e, "WERKPLAATS_HTTP_PROCESSES", 1, 1, 32),
            metrics_host=e.get("WERKPLAATS_METRICS_HOST", "127.0.0.1"),
            metrics_port=metrics_port(e, http_port),
            rate_limit=e.get("WERKPLAATS_RATE_LIMIT", "600 per minute"),
            rate_limit_storage=e.get("WERKPLAATS_RATE_LIMIT_STORAGE", "memory://"),
            import_parsers=_bounded_int(e, "WERKPLAATS_IMPORT_PARSERS", 2, 1, 8),
            import_parse_seconds=_bounded_int(e, "WERKPLAATS_IMPORT_PARSE_SECONDS", 120, 1, 600),
            reconcile_after_seconds=_bounded_int(e, "WERKPLAATS_RECONCILE_AFTER_SECONDS", 900, 60, 604800),
            reconcile_interval=_bounded_int(e, "WERKPLAATS_RECONCILE_INTERVAL", 60, 1, 86400),
            broker_producer_users=tuple(sorted(producer_users.items())),
            intake_url=(e.get("WERKPLAATS_INTAKE_URL") or f"http://127.0.0.1:{DEFAULT_PORTS['intake']}").rstrip("/"),
            snapshot_inline_bytes=_bounded_int(e, "WERKPLAATS_SNAPSHOT_INLINE_BYTES", 1_000_000, 10_000, 100_000_000),
        )


def metrics_port(e: Mapping[str, str], http_port: int) -> int:
    """WERKPLAATS_METRICS_PORT, by default the HTTP port + 1000; 0 (no /metrics) or a port 1-65535."""
    default = http_port + 1000 if http_port + 1000 <= 65535 else 0
    return _bounded_int(e, "WERKPLAATS_METRICS_PORT", default, 0, 65535)


def _bounded_int(e: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = e.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return value


def broker_user(broker_url: str) -> str:
    """The user a kombu AMQP URL authenticates as (kombu's default is guest)."""
    return unquote(urlsplit(broker_url).username or "guest")


def parse_producer_users(value: str, service: str, broker_url: str) -> dict[str, str]:
    """Parse WERKPLAATS_BROKER_PRODUCER_USERS ("intake=intake,matching=matching,...")."""
    variable = "WERKPLAATS_BROKER_PRODUCER_USERS"
    if not value.strip():
        return {}
    users: dict[str, str] = {}
    for item in value.split(","):
        producer, sep, user = (part.strip() for part in item.partition("="))
        if not sep or not producer or not user:
            raise ValueError(f"{variable}: {item.strip()!r} is not service=user")
        if producer not in DEFAULT_PORTS:
            raise ValueError(f"{variable}: unknown service {producer!r} (expected one of {', '.join(DEFAULT_PORTS)})")
        if producer in users:
            raise ValueError(f"{variable}: {producer} is listed twice")
        users[producer] = user
    missing = [s for s in DEFAULT_PORTS if s not in users]
    if missing:
        raise ValueError(f"{variable}: no broker user for {', '.join(missing)}")
    if len(set(users.values())) != len(users):
        raise ValueError(f"{variable}: every service needs its own broker user")
    if not broker_url.startswith(("amqp://", "amqps://", "pyamqp://")):
        raise ValueError(f"{variable} needs an amqp:// WERKPLAATS_BROKER_URL: only RabbitMQ validates the "
                         "sender of a message")
    if service in users and broker_user(broker_url) != users[service]:
        raise ValueError(f"WERKPLAATS_BROKER_URL connects as {broker_user(broker_url)!r}, but {variable} "
                         f"names {users[service]!r} as {service}'s broker user")
    return users
