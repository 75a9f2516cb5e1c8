"""Transactional outbox: business rows and outgoing messages commit together; a relay publishes
unsent rows with publisher confirms and marks them sent only after the broker confirmed."""

from __future__ import annotations

import logging
import threading
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .contracts import Envelope
from .db import utcnow
from .publisher import Publisher
from .tracing import current_traceparent
from .transient import is_transient

log = logging.getLogger(__name__)


def add_to_outbox(session: Session, outbox: sa.Table, envelope: Envelope) -> None:
    """Add the message to the outbox, with the current trace context (the relay sends it in the headers)."""
    session.execute(
        outbox.insert().values(
            message_id=envelope.message_id,
            type=envelope.type,
            version=envelope.version,
            body=envelope.to_json(),
            created_at=utcnow(),
            attempts=0,
            traceparent=current_traceparent(),
        )
    )


class OutboxRelay:
    def __init__(self, engine: Engine, outbox: sa.Table, publisher: Publisher, batch_size: int = 100):
        self.engine = engine
        self.outbox = outbox
        self.publisher = publisher
        self.batch_size = batch_size

    def relay_once(self) -> int:
        """Publish one batch of unsent messages in creation order; return how many were sent."""
        sent = 0
        query = (
            sa.select(self.outbox.c.message_id, self.outbox.c.type, self.outbox.c.body, self.outbox.c.traceparent)
            .where(self.outbox.c.sent_at.is_(None))
            .order_by(self.outbox.c.created_at, self.outbox.c.message_id)
            .limit(self.batch_size)
        )
        if self.engine.dialect.name == "postgresql":
            # Several relay replicas share the work without publishing a row twice at once.
            query = query.with_for_update(skip_locked=True)
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            for message_id, message_type, body, traceparent in rows:
                try:
                    self.publisher.publish_raw(body, message_type=message_type, message_id=message_id,
                                               traceparent=traceparent)
                except Exception as exc:  # noqa: BLE001 - recorded, retried on the next cycle
                    log.warning("outbox publish failed", extra={"message_id": message_id,
                                                                "error": type(exc).__name__})
                    conn.execute(
                        self.outbox.update().where(self.outbox.c.message_id == message_id)
                        .values(attempts=self.outbox.c.attempts + 1, last_error=type(exc).__name__)
                    )
                    break
                conn.execute(
                    self.outbox.update().where(self.outbox.c.message_id == message_id)
                    .values(sent_at=utcnow(), attempts=self.outbox.c.attempts + 1, last_error=None)
                )
                sent += 1
        if sent:
            log.info("outbox relayed", extra={"count": sent})
        return sent

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
