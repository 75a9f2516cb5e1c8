"""Database plumbing shared by the services: engines, the outbox/inbox/api-key tables, migrations."""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .contracts import SCOPES

log = logging.getLogger(__name__)

# Rows stored before keys had scopes, and keys announced by apikey.issued v1, hold every scope.
ALL_SCOPES_DEFAULT = json.dumps(list(SCOPES))
DEAD_LETTER_REPLAYS = "dead_letter_replays"
# Execution option of a connection that only reads: on SQLite its transaction takes no write lock, so it never waits
# for a writer (``engine.connect().execution_options(**READ_ONLY)``); other databases ignore it.
READ_ONLY_OPTION = "werkplaats_read_only"
READ_ONLY = {READ_ONLY_OPTION: True}


def utcnow() -> datetime:
    return datetime.now(UTC)


def covers_workspace(first: Any, every: Any, workspace_id: str) -> sa.ColumnElement[bool]:
    """A row of a round over one or several workspaces (``first``: its first workspace's column, ``every``: the
    JSON list of all of them, null for one only) that covers ``workspace_id``. JSON is text in SQLite and
    PostgreSQL alike, and a list of ids holds each as a quoted string."""
    return sa.or_(first == workspace_id,
                  sa.and_(every.is_not(None), sa.cast(every, sa.Text).contains(json.dumps(workspace_id),
                                                                              autoescape=True)))


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # hide_parameters: a database error names the statement, never the values (no personal data in logs)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                  hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy drive transactions (pysqlite's own handling defers BEGIN badly).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            # Deleted and overwritten content is zeroed on disk, not left in free pages (erasure).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        writers = _WriterQueue()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(READ_ONLY_OPTION):
                # a reader only (metrics, /ready): with the write-ahead log it reads the last commit and never
                # waits for a writer (the outbox relay holds the write lock while it retries a publish)
                conn.exec_driver_sql("BEGIN")
                return
            # Take the write lock up front: no deadlock between two read-then-write transactions.
            writers.enter(conn)
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                writers.leave(conn)
                raise

        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _sqlite_end(conn: Any) -> None:
            writers.leave(conn)

        @event.listens_for(engine, "checkin")
        @event.listens_for(engine, "invalidate")
        def _sqlite_returned(_dbapi_conn: Any, record: Any, *_exc: Any) -> None:
            writers.leave(record)  # a connection given back or dropped with its transaction still open

        return engine
    # A database host that does not answer at all fails a connection attempt in 5 s instead of the
    # system's TCP timeout: the consumer that waits for it keeps its broker heartbeats on time.
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args,
                            hide_parameters=True)


class _WriterQueue:
    """The writers of one SQLite database in this process, one at a time.

    SQLite lets one transaction write at a time (``BEGIN IMMEDIATE``); a writer that finds the lock taken
    polls for it, sleeping 1, 2, 5, 10 … 100 ms between tries, so under concurrent requests the lock stood
    free while the next writer slept (a quarter of the time, eight clients on intake). Here the threads of
    this process wait on a Python lock first, handed on as a transaction commits or rolls back (SQLAlchemy's
    events come just before the driver's COMMIT or ROLLBACK: a writer let in that instant may still wait on
    SQLite a moment); SQLite's own lock still serialises them with other processes. A thread that opens a second write
    transaction while it holds one is not queued (SQLite refuses it after its busy timeout, as before), and a
    writer queued longer than the busy timeout goes on to SQLite, which decides."""

    WAIT_SECONDS = 30.0  # the busy timeout

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    def enter(self, conn: Any) -> None:
        """Wait for this process's writers before ``conn`` (anything with the connection's ``info``) writes."""
        if self._owner == threading.get_ident():
            return
        if self._lock.acquire(timeout=self.WAIT_SECONDS):
            self._owner = threading.get_ident()
            conn.info[_QUEUED] = True

    def leave(self, conn: Any) -> None:
        """Let the next writer in, if ``conn`` was let in (idempotent)."""
        if conn.info.pop(_QUEUED, False):
            self._owner = None
            self._lock.release()


_QUEUED = "werkplaats.sqlite_writer_queued"


def checkpoint_wal(engine: Engine) -> None:
    """SQLite: copy the write-ahead log into the database file and truncate it, so page images written
    before an erasure stay in no file (with ``secure_delete`` the freed space in the database is zeroed).
    Waits for readers (busy timeout). Nothing to do on other databases."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        row = cursor.fetchone()
        busy = bool(row and row[0])
        cursor.close()
    finally:
        raw.close()
    if busy:
        log.warning("write-ahead log not truncated: a reader or writer held it past the busy timeout")


_CHECKPOINT_PENDING = "werkplaats.checkpoint_after_commit"


def checkpoint_after_commit(session: Session) -> None:
    """Checkpoint the session's database (``checkpoint_wal``) once its transaction has committed."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine.dialect.name != "sqlite" or session.info.get(_CHECKPOINT_PENDING):
        return  # several erasures in one transaction (the retention job): one checkpoint
    session.info[_CHECKPOINT_PENDING] = True

    fired = False

    def after_commit(done: Session) -> None:
        nonlocal fired
        # SQLAlchemy calls after_commit for a released savepoint too (a batched consumer applies each message in
        # one): the outer transaction still holds the write lock then, and the checkpoint would wait the busy
        # timeout for it. Checkpoint once the outermost transaction has committed.
        if fired or done.in_nested_transaction():
            return
        fired = True
        done.info.pop(_CHECKPOINT_PENDING, None)
        try:
            checkpoint_wal(engine)
        except sa.exc.OperationalError as exc:  # the erasure is committed; the next checkpoint catches up
            log.warning("write-ahead log checkpoint failed", extra={"error": type(exc).__name__})

    event.listen(session, "after_commit", after_commit)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def messaging_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    """The outbox, inbox and api_keys tables every service keeps in its own database.

    Beside them, on the same metadata, ``disabled_accounts``: the accounts whose tokens no service accepts
    any more, ``revoked_sessions``: the sign-in sessions whose tokens no service accepts any more (auth.py finds
    both through ``api_keys.metadata``), and ``dead_letter_replays``: the audit record of replayed dead letters
    (deadletters.py finds it through ``outbox.metadata``)."""
    outbox = sa.Table(
        "outbox", metadata,
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(500), nullable=True),
        # the W3C trace context the message was made in (tracing.py): the relay sends it in the headers
        sa.Column("traceparent", sa.String(64), nullable=True),
        sa.Index("ix_outbox_unsent", "sent_at", "created_at"),
    )
    inbox = sa.Table(
        "inbox", metadata,
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    api_keys = sa.Table(
        "api_keys", metadata,
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("organisation_id", sa.String(36), nullable=False, index=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scopes", sa.JSON, nullable=False, server_default=ALL_SCOPES_DEFAULT),
    )
    sa.Table(
        "disabled_accounts", metadata,
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "revoked_sessions", metadata,
        sa.Column("session_id", sa.String(32), primary_key=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(  # the audit record of every dead letter an operator replayed (deadletters.py)
        DEAD_LETTER_REPLAYS, metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False, index=True),
        sa.Column("type", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
    )
    return outbox, inbox, api_keys


def upgrade_database(url: str, script_location: str, *, wait: bool = True) -> None:
    """Bring a service's database to the newest Alembic revision. A database that does not answer yet
    (a service started before it, or during an outage) is waited for with capped backoff and a log line
    per attempt; a migration cut off by a dropped connection runs again (each revision is transactional).
    A refusal no wait cures (wrong user, password or database name) is raised at once."""
    from alembic import command
    from alembic.config import Config

    from .transient import database_answers, retry_transient, wait_for

    engine = make_engine(url)
    try:
        if wait:
            wait_for(lambda: database_answers(engine, raise_permanent=True), "database")
            retry_transient(lambda: _upgrade(engine, script_location, command, Config),
                            lambda: database_answers(engine), "migration")
        else:
            _upgrade(engine, script_location, command, Config)
    finally:
        engine.dispose()


def _upgrade(engine: Engine, script_location: str, command: Any, config: Any) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # An API and a worker of one service may start together: one migrates, the other waits.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(740211801)"))
        cfg = config()
        cfg.set_main_option("script_location", script_location)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def database_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means not reachable
        return False
