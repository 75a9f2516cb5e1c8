"""Transactional outbox: business rows and outgoing messages commit together; a relay publishes
unsent rows with publisher confirms and marks them sent only after the broker confirmed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from .contracts import Envelope
from .db import READ_ONLY, utcnow
from .publisher import Outgoing, Publisher
from .tracing import current_traceparent
from .transient import is_transient

log = logging.getLogger(__name__)


def add_to_outbox(session: Session, outbox: sa.Table, envelope: Envelope) -> None:
    """Add the message to the outbox, with the current trace context (the relay sends it in the headers)."""
    add_all_to_outbox(session, outbox, [envelope])


def add_all_to_outbox(session: Session, outbox: sa.Table, envelopes: Sequence[Envelope]) -> None:
    """Add the messages to the outbox in one statement (an import's thousands of rows), in their order."""
    if not envelopes:
        return
    now, traceparent = utcnow(), current_traceparent()
    # a microsecond apart: the relay sends by created_at, so they leave in the order they were made
    rows = [{"message_id": e.message_id, "type": e.type, "version": e.version, "body": e.to_json(),
             "created_at": now + timedelta(microseconds=i), "attempts": 0, "traceparent": traceparent}
            for i, e in enumerate(envelopes)]
    session.execute(outbox.insert(), rows if len(rows) > 1 else rows[0])


class OutboxRelay:
    def __init__(self, engine: Engine, outbox: sa.Table, publisher: Publisher, batch_size: int = 100):
        self.engine = engine
        self.outbox = outbox
        self.publisher = publisher
        self.batch_size = batch_size

    def relay_once(self) -> int:
        """Publish one batch of unsent messages in creation order; return how many were sent."""
        query = (
            sa.select(self.outbox.c.message_id, self.outbox.c.type, self.outbox.c.version, self.outbox.c.body,
                      self.outbox.c.traceparent)
            .where(self.outbox.c.sent_at.is_(None))
            .order_by(self.outbox.c.created_at, self.outbox.c.message_id)
            .limit(self.batch_size)
        )
        if self.engine.dialect.name == "postgresql":
            # Several relay replicas share the work without publishing a row twice at once: the rows stay
            # locked (only they, not the table) while they are published.
            with self.engine.begin() as conn:
                sent, failed = self._publish(conn.execute(query.with_for_update(skip_locked=True)).all())
                self._record(conn, sent, failed)
        else:
            # SQLite has one write lock for the whole database: read what is due without it, publish, and take
            # it only to record the outcome, so that no request waits while the broker is spoken to. A row
            # published but not yet marked (the process stopped in between) is published again: at least once,
            # as always; consumers ignore the duplicate (inbox).
            with self.engine.connect().execution_options(**READ_ONLY) as conn:
                rows = conn.execute(query).all()
            sent, failed = self._publish(rows)
            if sent or failed:
                with self.engine.begin() as conn:
                    self._record(conn, sent, failed)
        if sent:
            log.info("outbox relayed", extra={"count": len(sent)})
        return len(sent)

    def _publish(self, rows: Sequence[Any]) -> tuple[list[str], tuple[str, str] | None]:
        """Publish the rows in order (in one go where the broker allows): the ids the broker holds, and the first
        one it does not hold with the error, when publishing failed. The rows after it stay unsent."""
        if not rows:
            return [], None
        messages = [Outgoing(body, message_type, message_id, version, traceparent)
                    for message_id, message_type, version, body, traceparent in rows]
        held, error = self.publisher.publish_many(messages)
        sent = [m.message_id for m in messages[:held]]
        if error is None:
            return sent, None
        failed = messages[held].message_id
        log.warning("outbox publish failed", extra={"message_id": failed, "error": type(error).__name__})
        return sent, (failed, type(error).__name__)

    def _record(self, conn: Connection, sent: list[str], failed: tuple[str, str] | None) -> None:
        if sent:
            conn.execute(self.outbox.update().where(self.outbox.c.message_id.in_(sent))
                         .values(sent_at=utcnow(), attempts=self.outbox.c.attempts + 1, last_error=None))
        if failed is not None:
            conn.execute(self.outbox.update().where(self.outbox.c.message_id == failed[0])
                         .values(attempts=self.outbox.c.attempts + 1, last_error=failed[1]))

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(self.outbox).where(self.outbox.c.sent_at.is_(None))
            ).scalar_one())

    def run(self, stop: threading.Event, interval: float, tick: Callable[[], None] | None = None) -> None:
        backoff = interval
        while not stop.is_set():
            if tick is not None:
                tick()
            try:
                sent = self.relay_once()
                backoff = interval
            except Exception as exc:
                if is_transient(exc):  # unsent rows wait in the outbox until the database answers
                    log.warning("outbox relay waiting for the infrastructure", extra={"error": type(exc).__name__})
                else:
                    log.exception("outbox relay cycle failed")
                sent = 0
                backoff = min(backoff * 2, 10.0)
            if sent < self.batch_size:
                stop.wait(backoff)
