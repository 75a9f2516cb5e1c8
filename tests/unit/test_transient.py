"""What counts as the infrastructure failing (transient: wait and retry, never use up a message's retry
budget, never fail a run, 503 on the APIs) and what is the work failing (counts, fails, 500)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from amqp.exceptions import ConnectionForced, RecoverableConnectionError
from flask import Flask
from kombu.exceptions import OperationalError as KombuOperationalError
from marshmallow import ValidationError
from psycopg import errors as pg
from werkplaats_shared.consumer import PermanentError
from werkplaats_shared.db import make_engine
from werkplaats_shared.http import create_app
from werkplaats_shared.transient import Backoff, is_transient, retry_transient, wait_for


def _raised(work: Any) -> BaseException:
    try:
        work()
    except Exception as exc:  # noqa: BLE001 - the error is what the test looks at
        return exc
    raise AssertionError("no error raised")


def _wrapped(orig: Exception, cls: type[sa.exc.DBAPIError] = sa.exc.OperationalError) -> sa.exc.DBAPIError:
    """A driver error as SQLAlchemy hands it to our code."""
    return cls("SELECT 1", {}, orig)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    yield engine
    engine.dispose()


def test_sqlite_database_is_locked_is_transient(sqlite_engine: Any, tmp_path: Path) -> None:
    holder = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        impatient = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}", connect_args={"timeout": 0})

        def write() -> None:
            with impatient.begin() as conn:
                conn.execute(sa.text("INSERT INTO t (id) VALUES (1)"))

        locked = _raised(write)
        impatient.dispose()
    finally:
        holder.rollback()
        holder.close()
    assert "database is locked" in str(locked)
    assert is_transient(locked)


def test_errors_of_the_work_on_sqlite_are_not_transient(sqlite_engine: Any) -> None:
    def missing_table() -> None:
        with sqlite_engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))

    def duplicate_key() -> None:
        with sqlite_engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t (id) VALUES (7)"))
            conn.execute(sa.text("INSERT INTO t (id) VALUES (7)"))

    no_table, duplicate = _raised(missing_table), _raised(duplicate_key)
    assert isinstance(no_table, sa.exc.OperationalError)  # sqlite calls it "operational" all the same
    assert not is_transient(no_table)
    assert isinstance(duplicate, sa.exc.IntegrityError) and not is_transient(duplicate)


def test_postgresql_that_does_not_answer_is_transient() -> None:
    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    try:
        refused = _raised(engine.connect)
    finally:
        engine.dispose()
    assert isinstance(refused, sa.exc.OperationalError) and is_transient(refused)


@pytest.mark.parametrize("orig", [
    pg.SerializationFailure("could not serialize access due to concurrent update"),
    pg.DeadlockDetected("deadlock detected"),
    pg.LockNotAvailable("canceling statement due to lock timeout"),
    pg.AdminShutdown("terminating connection due to administrator command"),
    pg.CannotConnectNow("the database system is starting up"),
    pg.TooManyConnections("too many connections for database"),
    psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    psycopg.OperationalError('connection failed: FATAL: database "x" is not currently accepting connections'),
])
def test_postgresql_infrastructure_errors_are_transient(orig: Exception) -> None:
    assert is_transient(_wrapped(orig))


@pytest.mark.parametrize("orig, cls", [
    (pg.QueryCanceled("canceling statement due to statement timeout"), sa.exc.OperationalError),
    (pg.UndefinedTable('relation "x" does not exist'), sa.exc.ProgrammingError),
    (pg.UniqueViolation("duplicate key value violates unique constraint"), sa.exc.IntegrityError),
    (pg.NumericValueOutOfRange("integer out of range"), sa.exc.DataError),
    (pg.CharacterNotInRepertoire("invalid byte sequence for encoding"), sa.exc.DataError),
])
def test_postgresql_errors_of_the_work_are_not_transient(orig: Exception, cls: type[sa.exc.DBAPIError]) -> None:
    assert not is_transient(_wrapped(orig, cls))


def test_a_dropped_connection_is_transient_whatever_the_driver_says() -> None:
    dropped = sa.exc.DBAPIError("SELECT 1", {}, psycopg.DatabaseError("?"), connection_invalidated=True)
    assert is_transient(dropped)


@pytest.mark.parametrize("exc", [
    KombuOperationalError("broker unreachable"), RecoverableConnectionError("connection lost"),
    ConnectionForced("closed by the broker"), ConnectionRefusedError(111, "refused"),
    ConnectionResetError(104, "reset"), TimeoutError("timed out"), sa.exc.TimeoutError("QueuePool limit reached"),
])
def test_broker_and_network_errors_are_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    ValueError("bad value"), KeyError("missing"), RuntimeError("bug"), PermanentError("never"),
    ValidationError({"x": ["bad"]}), sa.exc.NoResultFound(),
])
def test_errors_of_the_work_are_not_transient(exc: Exception) -> None:
    assert not is_transient(exc)


def test_an_error_raised_from_a_transient_one_is_transient() -> None:
    try:
        try:
            raise _wrapped(pg.AdminShutdown("terminating connection"))
        except sa.exc.OperationalError as inner:
            raise RuntimeError("while recording the result") from inner
    except RuntimeError as outer:
        assert is_transient(outer)
    try:
        try:
            raise _wrapped(pg.AdminShutdown("terminating connection"))
        except sa.exc.OperationalError:
            raise KeyError("a bug met while handling it") from None
    except KeyError as unrelated:
        assert not is_transient(unrelated)


def test_backoff_is_capped() -> None:
    backoff = Backoff(start=0.5, cap=10)
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10, 10]
    backoff.reset()
    assert backoff.next() == 0.5


def test_wait_for_logs_each_attempt_and_gives_up_only_when_stopped(caplog: pytest.LogCaptureFixture) -> None:
    answers = iter([False, False, True])
    waits: list[float] = []
    assert wait_for(lambda: next(answers), "database", sleep=waits.append)
    assert waits == [0.5, 1.0]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "database unreachable; waiting 0.5 s (attempt 1)", "database unreachable; waiting 1.0 s (attempt 2)"]
    stop = threading.Event()
    stop.set()
    assert not wait_for(lambda: False, "database", stop=stop)


def test_retry_transient_repeats_only_what_failed_on_the_infrastructure(sqlite_engine: Any) -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise _wrapped(pg.AdminShutdown("terminating connection"))
        return "done"

    assert retry_transient(flaky, lambda: True, "stage") == "done" and len(calls) == 2
    bugs: list[int] = []

    def buggy() -> None:
        bugs.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        retry_transient(buggy, lambda: True, "stage")
    assert len(bugs) == 1  # the database answers: the error is the work's own
    health = iter([False, True, True])
    with pytest.raises(KeyError):  # any error while the database does not answer is waited out, once
        retry_transient(buggy, lambda: next(health), "stage")
    assert len(bugs) == 3


def _app_raising(exc: Exception) -> Flask:
    app, _api = create_app("test")

    @app.get("/boom")
    def boom() -> str:
        raise exc

    return app


def test_the_api_answers_503_with_retry_after_for_a_transient_error_in_dutch_or_english() -> None:
    client = _app_raising(_wrapped(pg.AdminShutdown("terminating connection"))).test_client()
    for headers, lang, start in [({}, "nl", "De database"), ({"Accept-Language": "en"}, "en", "The database")]:
        resp = client.get("/boom", headers=headers)
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
        assert resp.headers["Content-Language"] == lang
        body = resp.get_json()
        assert body["status"] == 503 and body["error"] == "Service Unavailable"
        assert body["message"].startswith(start) and body["errors"][0]["field"] == "_service"
    assert client.get("/boom?lang=en").get_json()["message"].startswith("The database")


def test_the_api_still_answers_500_for_a_bug() -> None:
    resp = _app_raising(_wrapped(pg.UndefinedTable("no such relation"), sa.exc.ProgrammingError)).test_client().get(
        "/boom")
    assert resp.status_code == 500 and "Retry-After" not in resp.headers


@pytest.mark.parametrize("text", [
    'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  password authentication '
    'failed for user "matching"',
    'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  database "matchng" does '
    'not exist',
    'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  no pg_hba.conf entry for '
    'host "10.0.0.7"',
])
def test_a_misconfiguration_is_not_transient_no_wait_cures_it(text: str) -> None:
    assert not is_transient(_wrapped(psycopg.OperationalError(text)))
