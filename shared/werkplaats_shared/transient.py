"""Infrastructure failing is not a message failing (DESIGN.md §3, delivery rule 5).

``is_transient`` tells an error of the infrastructure (the database or the broker unreachable, a
connection dropped, a serialization failure, a lock timeout, SQLite's "database is locked") from an
error of the work itself. A transient error never uses up a message's retry budget, never fails a
matching run and answers 503 (not 500) on the APIs: the caller waits, with capped backoff, until the
database answers a ``SELECT 1`` again (``wait_for``), then carries on.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

T = TypeVar("T")

# SQLSTATEs of PostgreSQL errors that say nothing about the statement: a retry of the same work can succeed.
TRANSIENT_SQLSTATES = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (lock_timeout, NOWAIT)
    "57P01",  # admin_shutdown (pg_terminate_backend, a stopping server)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (server starting or in recovery)
    "57P05",  # idle_session_timeout
    "53300",  # too_many_connections (also a database's CONNECTION LIMIT)
    "25006",  # read_only_sql_transaction (a fail-over promoted the wrong node, briefly)
})
TRANSIENT_SQLSTATE_CLASSES = ("08",)  # connection_exception and all its kinds
# Texts of connection-level failures that come without a SQLSTATE (the connection never got a result).
TRANSIENT_TEXTS = (
    "not currently accepting connections", "connection refused", "could not connect", "server closed the connection",
    "connection is closed", "the connection is lost", "consuming input failed", "terminating connection",
    "too many connections", "connection timeout expired", "connection to server", "ssl syscall error",
    "no connection to the server", "connection already closed", "the database system is",
)
# Refusals that no wait cures: a misconfiguration (wrong user, password, database name, TLS) fails loudly.
PERMANENT_TEXTS = ("password authentication failed", "does not exist", "no pg_hba.conf entry",
                   "authentication failed", "server does not support ssl", "invalid connection option",
                   "permission denied")
SQLITE_TRANSIENT_TEXTS = ("database is locked", "database table is locked", "database is busy")

CAP_SECONDS = 10.0


def _broker_errors() -> tuple[type[BaseException], ...]:
    from amqp import exceptions as amqp_exc
    from kombu import exceptions as kombu_exc

    errors: list[type[BaseException]] = [kombu_exc.OperationalError, amqp_exc.RecoverableConnectionError,
                                         amqp_exc.ConnectionForced]
    try:
        from redis import exceptions as redis_exc

        errors += [redis_exc.ConnectionError, redis_exc.TimeoutError, redis_exc.BusyLoadingError]
    except ImportError:  # pragma: no cover - redis is a dependency of the local broker only
        pass
    return tuple(errors)


def _driver_error_is_transient(orig: BaseException) -> bool:
    if isinstance(orig, sqlite3.OperationalError):
        return any(text in str(orig).lower() for text in SQLITE_TRANSIENT_TEXTS)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith(TRANSIENT_SQLSTATE_CLASSES)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is installed wherever PostgreSQL is used
        return False
    if isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError):
        # no SQLSTATE: the failure is the connection's, not a statement's (unless it is a misconfiguration)
        return not _is_misconfiguration(orig)
    return False


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or an error it was raised from) is the infrastructure failing, not the work."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        if _one_is_transient(current):
            return True
        current = current.__cause__
    return False


def _one_is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig: BaseException = exc.orig if exc.orig is not None else exc
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or isinstance(
                orig, sqlite3.OperationalError):
            if _is_misconfiguration(orig):
                return False
            return _driver_error_is_transient(orig) or _text_is_transient(orig)
        return bool(getattr(orig, "sqlstate", None)) and _driver_error_is_transient(orig)
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True  # a pool that cannot hand out a live connection
    if isinstance(exc, sa_exc.PendingRollbackError):
        return "invalid transaction" in str(exc) or "connection was invalidated" in str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        return _driver_error_is_transient(exc)
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, _broker_errors()):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, psycopg.Error):
        return _driver_error_is_transient(exc)
    return False


def _is_misconfiguration(orig: BaseException) -> bool:
    if getattr(orig, "sqlstate", None):  # a statement's error: its SQLSTATE decides
        return False
    text = str(orig).lower()
    return any(t in text for t in PERMANENT_TEXTS)


def _text_is_transient(orig: BaseException) -> bool:
    text = str(orig).lower()
    return any(t in text for t in TRANSIENT_TEXTS)


def database_answers(engine: Engine, *, raise_permanent: bool = False) -> bool:
    """The cheap probe: does the database answer ``SELECT 1`` now? With ``raise_permanent``, an error no
    wait cures (a wrong user, password or database name) is raised instead of answering False."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception as exc:
        if raise_permanent and not is_transient(exc):
            raise
        return False


class Backoff:
    """Capped exponential waits: 0.5 s, 1 s, 2 s, ... up to ``cap`` seconds."""

    def __init__(self, start: float = 0.5, cap: float = CAP_SECONDS) -> None:
        self.start, self.cap, self.attempt = start, cap, 0

    def next(self) -> float:
        delay = min(self.start * 2.0 ** self.attempt, self.cap)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


def wait_for(probe: Callable[[], bool], what: str, *, stop: threading.Event | None = None,
             sleep: Callable[[float], object] | None = None, backoff: Backoff | None = None,
             first_wait: bool = False) -> bool:
    """Wait, with capped backoff and a log line per attempt, until ``probe`` answers True; False if
    ``stop`` was set first. ``first_wait`` waits once before the first probe (a failure just seen)."""
    backoff = backoff or Backoff()
    pause: Callable[[float], object] = sleep or (stop.wait if stop is not None else time.sleep)
    attempt = 0
    if first_wait:
        pause(backoff.next())
    while stop is None or not stop.is_set():
        attempt += 1
        if probe():
            if attempt > 1:
                log.info("%s answers again", what, extra={"attempt": attempt})
            return True
        delay = backoff.next()
        log.warning("%s unreachable; waiting %.1f s (attempt %d)", what, delay, attempt,
                    extra={"attempt": attempt, "wait_seconds": delay})
        pause(delay)
    return False


def retry_transient(work: Callable[[], T], probe: Callable[[], bool], what: str, *,
                    stop: threading.Event | None = None) -> T:
    """Run ``work``; when it fails on the infrastructure (a transient error, or any error while the
    database does not answer), wait until the database answers and run it again. Errors of the work
    itself propagate. ``work`` must be one transaction, or safe to repeat."""
    backoff = Backoff()
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_transient(exc) and probe():
                raise
            log.warning("%s hit an infrastructure error; retrying once the database answers", what,
                        extra={"error": type(exc).__name__})
            if not wait_for(probe, "database", stop=stop, backoff=backoff, first_wait=True):
                raise
