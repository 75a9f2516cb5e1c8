"""A small service for messaging tests: its own database (outbox, inbox, an effects table), a real
broker, a real consumer thread. Producer side plays intake, consumer side plays matching."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from amqp.exceptions import ChannelError
from kombu.connection import Connection
from kombu.messaging import Producer
from sqlalchemy.orm import Session
from werkplaats_shared import broker
from werkplaats_shared.config import Settings
from werkplaats_shared.consumer import Handler, MessageConsumer
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import make_engine, make_session_factory, messaging_tables
from werkplaats_shared.outbox import OutboxRelay, add_to_outbox
from werkplaats_shared.publisher import Publisher

metadata = sa.MetaData()
outbox, inbox, api_keys = messaging_tables(metadata)
effects = sa.Table(
    "effects", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.String(64), nullable=False),
)


def batch_payload(batch_id: str) -> dict[str, Any]:
    return {"batch_id": batch_id, "workspace_id": "w1", "coordinator_id": "c1", "period": "P1",
            "policy": "max_fit", "auto_publish": True, "assignments": [], "teams": []}


def batch_envelope(batch_id: str) -> Envelope:
    return make_envelope("batch.submitted", 1, batch_payload(batch_id))


def record_effect(session: Session, envelope: Envelope) -> None:
    session.execute(effects.insert().values(batch_id=envelope.payload["batch_id"]))


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Harness:
    def __init__(self, broker_url: str, namespace: str, database_url: str, max_deliveries: int = 3) -> None:
        self.settings = Settings.from_env("matching", {
            "WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_NAMESPACE": namespace,
            "WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_MAX_DELIVERIES": str(max_deliveries),
            "WERKPLAATS_VISIBILITY_TIMEOUT": "2",
        })
        self.engine = make_engine(database_url)
        metadata.create_all(self.engine)
        self.sf = make_session_factory(self.engine)
        self.topology = broker.topology_for(self.settings)
        broker.declare_topology(self.settings)
        self.queue_name = f"{namespace}matching.from-intake"
        self._threads: list[tuple[MessageConsumer, threading.Thread, Connection]] = []

    # producer side
    def emit_in_transaction(self, envelope: Envelope) -> None:
        with self.sf.begin() as session:
            add_to_outbox(session, outbox, envelope)

    def relay_once(self, broker_url: str | None = None) -> int:
        settings = self.settings if broker_url is None else Settings.from_env("matching", {
            "WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_NAMESPACE": self.settings.namespace})
        with broker.connect(settings) as conn:
            return int(OutboxRelay(self.engine, outbox, Publisher(conn, self.topology, "intake")).relay_once())

    def publish_raw(self, body: bytes | str, *, content_type: str = "application/json",
                    message_id: str = "m-raw", routing_key: str = "batch.submitted") -> None:
        with broker.connect(self.settings) as conn:
            Producer(conn.default_channel).publish(
                body, exchange=self.topology.exchange("intake"), routing_key=routing_key,
                content_type=content_type, content_encoding="binary" if isinstance(body, bytes) else "utf-8",
                message_id=message_id, delivery_mode=2,
            )

    # consumer side
    def start_consumer(self, handlers: dict[str, Handler]) -> MessageConsumer:
        conn = broker.connect(self.settings)
        consumer = MessageConsumer(connection=conn, topology=self.topology, service="matching",
                                   session_factory=self.sf, inbox=inbox, handlers=handlers,
                                   max_deliveries=self.settings.max_deliveries)
        thread = threading.Thread(target=consumer.run, daemon=True)
        thread.start()
        self._threads.append((consumer, thread, conn))
        return consumer

    def stop_consumers(self) -> None:
        """Stop the consumers and close their connections: what they left unacknowledged goes back to the queue."""
        for consumer, thread, conn in self._threads:
            consumer.should_stop = True
            thread.join(10)
            conn.release()
        self._threads = []

    def stop(self) -> None:
        self.stop_consumers()
        self.engine.dispose()

    # inspection
    def effect_count(self, batch_id: str | None = None) -> int:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(effects)
            if batch_id is not None:
                query = query.where(effects.c.batch_id == batch_id)
            return int(conn.execute(query).scalar_one())

    def unsent(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)
                                    .where(outbox.c.sent_at.is_(None))).scalar_one())

    def dead_letters(self, expected: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        with broker.connect(self.settings) as conn:
            bound = self.topology.dead_letter_queue(self.queue_name)(conn.default_channel)
            bound.declare()
            while len(found) < expected and time.monotonic() < deadline:
                message = bound.get(no_ack=False)
                if message is None:
                    time.sleep(0.1)
                    continue
                found.append({"body": message.body, "headers": dict(message.headers or {})})
                message.ack()
        return found

    def queue_depth(self) -> int:
        with broker.connect(self.settings) as conn:
            queue = next(q for q in self.topology.queues_for("matching") if q.name == self.queue_name)
            try:
                _, count, _ = queue(conn.default_channel).queue_declare(passive=True)
            except ChannelError:  # the Redis transport reports an empty queue as missing
                return 0
            return int(str(count))


def announce_workspace_of(session: Session, envelope: Envelope) -> None:
    """What intake sends before a workspace's first batch (workspace.registered), for tests that hand matching a
    ``batch.submitted`` of their own making."""
    from matching.adapters import orm as matching_orm
    from matching.service_layer import services as matching_services

    p = envelope.payload
    if envelope.type == "batch.submitted" and session.get(matching_orm.KnownWorkspace, p["workspace_id"]) is None:
        matching_services.on_workspace_registered(session, workspace_announcement(p["workspace_id"],
                                                                                  p["coordinator_id"]))


def workspace_announcement(workspace_id: str, coordinator_id: str) -> Envelope:
    from werkplaats_shared.db import utcnow

    return make_envelope("workspace.registered", 1, {"workspace_id": workspace_id, "coordinator_id": coordinator_id,
                                                     "registered_at": utcnow().isoformat()})
