"""Queue consumers: validate, apply once (inbox), ack after commit, dead-letter what can never work.

- The body is decoded here, not by kombu: an undecodable or schema-invalid message is published to
  the queue's dead-letter queue with the reason, then acknowledged, and the consumer goes on
  (kombu's ConsumerMixin would otherwise ack and drop it).
- The effect and the inbox row ``(consumer, message_id)`` commit in one transaction; a message whose
  id is already in the inbox is acknowledged without a second effect.
- A handler failure is retried through the retry exchange a bounded number of times, then dead-lettered.
  A message that refers to something the service was not told of (``NotYetKnown``: a workspace, batch or run
  not announced) is retried the same way, since the fact may be on its way on another queue, and then
  dead-lettered with the reason (``unknown reference: ...``); an operator replays it once the fact arrived.
- A message is handled in a span whose parent is the W3C trace context in its ``traceparent`` header
  (tracing.py): the trace of the request that made it goes on through the handler.
- An infrastructure failure is not a handler failure (DESIGN.md §3 rule 5): when applying a message fails on
  a transient error (``transient.is_transient``), or on any error while the database does not answer, the
  message stays unacknowledged on the broker and counts no attempt; the consumer cancels its consumers (no
  more deliveries), waits with capped backoff until the database answers ``SELECT 1`` (keeping the broker
  connection's heartbeats going), applies the held message again, and then consumes again.
- With one broker user per service, a message is handled only when its ``user_id`` (set and validated
  by RabbitMQ) is the broker user of the contract's producer, or this consumer's own user for a retry
  through the retry exchange; anything else is dead-lettered unread. On a single-user broker (the local
  embedded Redis validates no ``user_id``) the sender is not checked.
- Messages are taken in batches: up to ``batch_size`` deliveries are kept unacknowledged (the prefetch) until
  none more is waiting (``batch_wait`` seconds) or the batch is full; then the valid ones are applied in
  delivery order in one transaction, each with its inbox row, and acknowledged after the commit (on the embedded
  broker all in one round trip; its transport also takes the deliveries the prefetch allows in one). When that
  transaction fails for any reason, it is rolled back and the batch is handled one message at a time as above,
  so a poison message is retried and dead-lettered alone and its batch-mates are applied.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from kombu.connection import Connection
from kombu.message import Message
from kombu.messaging import Producer
from kombu.mixins import ConsumerMixin
from marshmallow import ValidationError
from opentelemetry.trace import Span, SpanKind
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .broker import sender_id
from .contracts import Envelope, contract_for, parse_envelope
from .db import utcnow
from .faults import maybe_kill_after_commit
from .metrics import MESSAGES_CONSUMED, MESSAGES_DEAD_LETTERED, MESSAGES_DUPLICATE, MESSAGES_RETRIED
from .publisher import RETRY_POLICY
from .topology import Topology
from .tracing import activate, deactivate, span_from, start_span
from .transient import CAP_SECONDS, Backoff, database_answers, is_transient

log = logging.getLogger(__name__)

Handler = Callable[[Session, Envelope], None]

BATCH_SIZE = 100  # deliveries taken before applying them in one transaction (also the prefetch)
BATCH_WAIT = 0.02  # seconds to wait for one more delivery before applying a partial batch


class PermanentError(Exception):
    """A message that can never be applied, whatever the number of attempts."""


class NotYetKnown(Exception):
    """A message refers to something this service was not told of (a workspace, a batch, a run). The fact may
    still be on its way, so the message is retried within its budget; then it is dead-lettered with the reason
    (an operator can replay it once the fact has arrived)."""


class MessageConsumer(ConsumerMixin):  # type: ignore[misc]
    def __init__(
        self,
        *,
        connection: Connection,
        topology: Topology,
        service: str,
        session_factory: sessionmaker[Session],
        inbox: sa.Table,
        handlers: dict[str, Handler],
        max_deliveries: int = 5,
        probe: Callable[[], bool] | None = None,
        backoff_cap: float = CAP_SECONDS,
        batch_size: int = BATCH_SIZE,
        batch_wait: float = BATCH_WAIT,
    ) -> None:
        self.connection = connection
        self.topology = topology
        self.service = service
        self.session_factory = session_factory
        self.inbox = inbox
        self.handlers = handlers
        self.max_deliveries = max_deliveries
        self._producer: Producer | None = None
        engine = session_factory.kw.get("bind")
        self.probe: Callable[[], bool] = probe or (lambda: engine is not None and database_answers(engine))
        self.backoff_cap = backoff_cap
        self.batch_size = max(1, batch_size)
        self.batch_wait = batch_wait
        # Deliveries taken but not yet applied (unacknowledged on the broker), in order.
        self._batch: list[tuple[str, Message]] = []
        # Messages kept unacknowledged on the broker while the infrastructure does not answer, in order.
        self._held: list[tuple[str, Message]] = []
        self._consumers: list[Any] = []
        self._consume_connection: Connection | None = None
        self._consume_channel: Any = None
        self.transient_waits = 0  # rounds of waiting for the infrastructure (for tests and logs)
        self.state = "starting"  # consuming, or waiting for the infrastructure (shown by /ready)

    # -- kombu wiring -------------------------------------------------------------------------

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        self._producer = None
        consumers = []
        for queue in self.topology.queues_for(self.service):
            consumers.append(
                consumer_cls(
                    queues=[queue],
                    on_message=self._bind(queue.name),
                    accept=["application/json"],
                    prefetch_count=self.batch_size,
                    on_decode_error=self.on_decode_error,
                )
            )
        return consumers

    def _bind(self, queue_name: str) -> Callable[[Message], None]:
        return lambda message: self.on_message(queue_name, message)

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        self.dead_letter(message.delivery_info.get("routing_key", ""), message, "undecodable")

    def on_connection_revived(self) -> None:
        self._producer = None
        self._held = []  # the old channel's deliveries are gone: the broker delivers them again
        self._batch = []

    def on_consume_ready(self, connection: Connection, channel: Any, consumers: list[Any], **_: Any) -> None:
        self._consume_connection, self._consume_channel, self._consumers = connection, channel, list(consumers)
        self.state = "consuming"

    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self.connection.channel())
        return self._producer

    # -- message handling ---------------------------------------------------------------------

    def on_message(self, queue_name: str, message: Message) -> None:
        if self._held:  # paused for the infrastructure: keep it, untouched, after the ones held before
            self._held.append((queue_name, message))
            return
        if self.batch_size == 1:
            self.handle(queue_name, message)
            return
        self._batch.append((queue_name, message))
        if len(self._batch) >= self.batch_size:
            self.flush()

    def acknowledged(self, queue_name: str, message: Message) -> None:
        """Called after a message was applied (or recognised as applied before) and acknowledged."""

    def consume(self, limit: int | None = None, timeout: float | None = None, safety_interval: float = 1,
                **kwargs: Any) -> Iterator[None]:
        """kombu's loop (ConsumerMixin.consume), except that taken deliveries are applied as a batch once no
        more is waiting within ``batch_wait`` seconds, and before stopping."""
        elapsed = 0.0
        handled = 0
        with self.consumer_context(**kwargs) as (conn, _channel, _consumers):
            while not self.should_stop and (limit is None or handled < limit):
                self.on_iteration()
                waiting = bool(self._batch)
                try:
                    conn.drain_events(timeout=self.batch_wait if waiting else safety_interval)
                except TimeoutError:
                    if waiting:
                        self.flush()
                        continue
                    conn.heartbeat_check()
                    elapsed += safety_interval
                    if timeout and elapsed >= timeout:
                        raise
                except OSError:
                    if not self.should_stop:
                        raise
                else:
                    handled += 1
                    elapsed = 0
                    yield
            if self._batch:  # stopping: apply what was taken (unacknowledged ones come back to the next consumer)
                try:
                    self.flush()
                except (*conn.connection_errors, *conn.channel_errors):
                    log.info("broker connection lost while stopping; unacknowledged messages are delivered again")

    def flush(self) -> None:
        """Apply the taken deliveries: the valid ones in one transaction, then acknowledge them; on a failure of
        that transaction, one by one (``handle``), so that a poison message is retried or dead-lettered alone."""
        batch, self._batch = self._batch, []
        ready: list[_Ready] = []
        for queue_name, message in batch:
            if self._held:
                self._held.append((queue_name, message))
                continue
            span = start_span(self.service, f"consume {self._queue(queue_name)}", SpanKind.CONSUMER, message.headers)
            with _active(span):
                prepared = self._prepare(queue_name, message)
            if prepared is None:
                span.end()
            else:
                ready.append(_Ready(queue_name, message, prepared[0], prepared[1], span))
        if not ready:
            return
        try:
            outcomes = self.apply_batch(ready)
        except Exception as exc:  # noqa: BLE001 - the whole transaction is rolled back
            for item in ready:
                item.span.end()
            if self._holds(exc):  # the infrastructure: keep them all on the broker, in order
                log.warning("infrastructure unavailable; messages kept on the broker, no attempt counted",
                            extra={"held": len(ready), "error": type(exc).__name__})
                self._held.extend((item.queue_name, item.message) for item in ready)
                return
            log.info("batch failed; applying its messages one by one",
                     extra={"size": len(ready), "error": type(exc).__name__})
            for item in ready:
                if self._held:
                    self._held.append((item.queue_name, item.message))
                else:
                    self.handle(item.queue_name, item.message)
            return
        with self._acks_together():
            for item, outcome in zip(ready, outcomes, strict=True):
                with _active(item.span):
                    if not isinstance(outcome, Exception):  # committed: acknowledged whatever comes after
                        self._acknowledge(item.queue_name, item.message, item.envelope, outcome)
                    elif self._held:
                        self._held.append((item.queue_name, item.message))
                    else:
                        self._failed(item.queue_name, item.message, item.envelope, outcome)
                item.span.end()

    def _acks_together(self) -> AbstractContextManager[None]:
        """The batch's acknowledgements in one round trip where the transport offers it (the embedded Redis:
        redis_transport.QoS.acks_together); RabbitMQ takes them without waiting for an answer anyway."""
        qos = getattr(self._consume_channel, "qos", None)
        together = getattr(qos, "acks_together", None)
        return together() if together is not None else nullcontext()

    def handle(self, queue_name: str, message: Message) -> None:
        """Handle one delivery in a span whose parent is the trace context in its headers (the span of the
        request or handler that made the message), so its log lines and what it makes carry that trace id."""
        with span_from(self.service, f"consume {self._queue(queue_name)}", SpanKind.CONSUMER, message.headers):
            self._handle(queue_name, message)

    def _prepare(self, queue_name: str, message: Message) -> tuple[Envelope, Handler] | None:
        """The message's envelope and handler; or None when it was dead-lettered (refused, unreadable, invalid,
        or of a type without a handler)."""
        refusal = self.sender_refusal(queue_name, message)
        if refusal is not None:
            self.dead_letter(queue_name, message, refusal)
            return None
        if message.content_type != "application/json":
            self.dead_letter(queue_name, message, f"content type {message.content_type!r} not accepted")
            return None
        try:
            raw = json.loads(message.body)
        except (ValueError, UnicodeDecodeError):
            self.dead_letter(queue_name, message, "undecodable: body is not valid JSON")
            return None
        try:
            envelope = parse_envelope(raw)
        except ValidationError as exc:
            self.dead_letter(queue_name, message, f"schema-invalid: {_flatten(exc.messages)}")
            return None
        refusal = self.producer_refusal(envelope, message)
        if refusal is not None:
            self.dead_letter(queue_name, message, refusal)
            return None
        handler = self.handlers.get(envelope.type)
        if handler is None:
            self.dead_letter(queue_name, message, f"no handler for {envelope.type}")
            return None
        return envelope, handler

    def _handle(self, queue_name: str, message: Message) -> None:
        prepared = self._prepare(queue_name, message)
        if prepared is None:
            return
        envelope, handler = prepared
        try:
            applied = self.apply(queue_name, envelope, handler)
        except Exception as exc:  # noqa: BLE001 - sorted by _failed: rejected, held, retried or dead-lettered
            self._failed(queue_name, message, envelope, exc)
            return
        self._acknowledge(queue_name, message, envelope, applied)

    def _holds(self, exc: Exception) -> bool:
        """Whether applying failed on the infrastructure (the message is kept on the broker, no attempt counted)."""
        return not isinstance(exc, (PermanentError, ValidationError)) and (is_transient(exc) or not self.probe())

    def _failed(self, queue_name: str, message: Message, envelope: Envelope, exc: Exception) -> None:
        """Applying the message failed with ``exc`` (rolled back): dead-letter, hold, or retry it."""
        if isinstance(exc, (PermanentError, ValidationError)):
            self.dead_letter(queue_name, message, f"rejected: {exc}")
            return
        if self._holds(exc):
            log.warning("infrastructure unavailable; message kept on the broker, no attempt counted",
                        extra={"message_id": envelope.message_id, "queue": queue_name,
                               "error": type(exc).__name__})
            self._held.append((queue_name, message))
            return
        if isinstance(exc, NotYetKnown):
            log.warning("message refers to what this service does not know (yet)",
                        extra={"message_id": envelope.message_id, "queue": queue_name, "reason": str(exc)[:300]})
            self.retry_or_dead_letter(queue_name, message, f"unknown reference: {exc}")
            return
        log.error("handler failed", exc_info=exc, extra={"message_id": envelope.message_id, "queue": queue_name})
        self.retry_or_dead_letter(queue_name, message, type(exc).__name__)

    def _acknowledge(self, queue_name: str, message: Message, envelope: Envelope, applied: bool) -> None:
        maybe_kill_after_commit(queue_name.removeprefix(self.topology.namespace), envelope.type)
        message.ack()
        (MESSAGES_CONSUMED if applied else MESSAGES_DUPLICATE).labels(self.service, self._queue(queue_name)).inc()
        log.info(
            "message applied" if applied else "duplicate message ignored",
            extra={"message_id": envelope.message_id, "type": envelope.type, "queue": queue_name},
        )
        self.acknowledged(queue_name, message)

    # -- infrastructure outages ---------------------------------------------------------------

    def on_iteration(self) -> None:
        """Between deliveries: if a message is held, stop consuming until the infrastructure answers."""
        if not self._held:
            return
        for consumer in self._consumers:
            consumer.cancel()  # no more deliveries; the held ones stay unacknowledged on the broker
        backoff = Backoff(cap=self.backoff_cap)
        self.state = "waiting for the infrastructure"
        while self._held and not self.should_stop:
            self.transient_waits += 1
            delay = backoff.next()
            log.warning("waiting for the infrastructure", extra={
                "held": len(self._held), "wait_seconds": delay, "attempt": self.transient_waits})
            self._pump(delay)
            if self.should_stop or not self.probe():
                continue
            pending, self._held = self._held, []
            while pending:
                queue_name, message = pending.pop(0)
                self.handle(queue_name, message)
                if self._held:  # failed on the infrastructure again: keep the rest behind it
                    self._held.extend(pending)
                    break
        if self._held:  # stopping: the broker delivers the held messages again to the next consumer
            return
        log.info("infrastructure answers again; consuming")
        self.state = "consuming"
        for consumer in self._consumers:
            consumer.consume()

    def _pump(self, seconds: float) -> None:
        """Wait ``seconds`` while keeping the broker connection alive (heartbeats, cancel replies). A
        delivery that was already under way when consuming stopped is held with the others."""
        conn = self._consume_connection
        deadline = time.monotonic() + seconds
        while not self.should_stop and (left := deadline - time.monotonic()) > 0:
            if conn is None:
                time.sleep(min(left, 1.0))
                continue
            try:
                conn.drain_events(timeout=min(left, 1.0))
            except TimeoutError:
                conn.heartbeat_check()

    def _queue(self, queue_name: str) -> str:
        """The queue's name without the namespace (a metric label)."""
        return queue_name.removeprefix(self.topology.namespace)

    def _is_retry(self, message: Message) -> bool:
        return bool(message.delivery_info.get("exchange") == self.topology.retry.name)

    def sender_refusal(self, queue_name: str, message: Message) -> str | None:
        """Why the sender may not put messages in this queue, or None (also on a single-user broker)."""
        users = self.topology.producer_users
        if not users:
            return None
        sender = message.properties.get("user_id")
        if self._is_retry(message):
            expected, whose = sender_id(self.connection), "this consumer's own (retry)"
        else:
            producer = self.topology.producer_of(queue_name)
            expected, whose = users.get(producer), f"{producer}'s"
        if sender is None or sender != expected:
            return f"unauthorised sender: user_id {sender!r} is not {whose} broker user {expected!r}"
        return None

    def producer_refusal(self, envelope: Envelope, message: Message) -> str | None:
        """Why the sender may not send this type of message, or None: only its contract's producer may."""
        users = self.topology.producer_users
        if not users or self._is_retry(message):  # a retry was checked on its first delivery
            return None
        producer = contract_for(envelope.type, envelope.version).producer
        sender = message.properties.get("user_id")
        if sender != users.get(producer):
            return (f"unauthorised sender: {envelope.type} v{envelope.version} comes from {producer}'s broker "
                    f"user {users.get(producer)!r}, not {sender!r}")
        return None

    def apply(self, queue_name: str, envelope: Envelope, handler: Handler) -> bool:
        """Apply the handler and record the inbox row in one transaction; False if already applied."""
        consumer = queue_name.removeprefix(self.topology.namespace)
        try:
            with self.session_factory.begin() as session:
                seen = session.execute(
                    sa.select(self.inbox.c.message_id).where(
                        self.inbox.c.consumer == consumer, self.inbox.c.message_id == envelope.message_id
                    )
                ).first()
                if seen is not None:
                    return False
                session.execute(self.inbox.insert().values(
                    consumer=consumer, message_id=envelope.message_id, type=envelope.type,
                    received_at=utcnow(),
                ))
                handler(session, envelope)
        except IntegrityError:
            with self.session_factory() as session:
                seen = session.execute(
                    sa.select(self.inbox.c.message_id).where(
                        self.inbox.c.consumer == consumer, self.inbox.c.message_id == envelope.message_id
                    )
                ).first()
            if seen is not None:  # a competing consumer applied it first
                return False
            raise
        return True

    def apply_batch(self, ready: list[_Ready]) -> list[bool | Exception]:
        """Apply the messages in order in one transaction, each in a savepoint with its inbox row: for each, True
        (applied), False (applied before, or earlier in this batch), or the exception its handler raised (its
        savepoint rolled back, the others kept). A transient failure is raised (all rolled back). The database is
        not probed here (on SQLite that waits for this transaction's own lock): ``_failed`` does it after commit."""
        keys = [(item.queue_name.removeprefix(self.topology.namespace), item.envelope.message_id) for item in ready]
        outcomes: list[bool | Exception] = []
        with self.session_factory.begin() as session:
            seen: set[tuple[str, str]] = set()
            for consumer in {key[0] for key in keys}:
                ids = [mid for c, mid in keys if c == consumer]
                seen.update((consumer, mid) for mid in session.execute(
                    sa.select(self.inbox.c.message_id).where(
                        self.inbox.c.consumer == consumer, self.inbox.c.message_id.in_(ids))).scalars())
            for item, (consumer, message_id) in zip(ready, keys, strict=True):
                if (consumer, message_id) in seen:
                    outcomes.append(False)
                    continue
                try:
                    with _active(item.span), session.begin_nested():  # flushed in the span (trace ids)
                        session.execute(self.inbox.insert().values(
                            consumer=consumer, message_id=message_id, type=item.envelope.type,
                            received_at=utcnow()))
                        item.handler(session, item.envelope)
                except Exception as exc:
                    if is_transient(exc):  # the infrastructure: roll back and keep them all on the broker
                        raise
                    if isinstance(exc, IntegrityError) and session.execute(
                            sa.select(self.inbox.c.message_id).where(
                                self.inbox.c.consumer == consumer, self.inbox.c.message_id == message_id)
                    ).first() is not None:
                        outcomes.append(False)  # a competing consumer applied it first
                    else:
                        outcomes.append(exc)
                    continue
                seen.add((consumer, message_id))
                outcomes.append(True)
        return outcomes

    def dead_letter(self, queue_name: str, message: Message, reason: str) -> None:
        log.warning("message dead-lettered", extra={"queue": queue_name, "reason": reason[:300]})
        headers = dict(message.headers or {})
        headers.update({"x-death-reason": reason[:500], "x-original-queue": queue_name})
        self._publish_copy(message, self.topology.dead_letter, queue_name, headers)
        message.ack()
        MESSAGES_DEAD_LETTERED.labels(self.service, self._queue(queue_name)).inc()

    def retry_or_dead_letter(self, queue_name: str, message: Message, reason: str) -> None:
        headers = dict(message.headers or {})
        attempts = int(headers.get("x-attempts", 1))
        if attempts >= self.max_deliveries:
            self.dead_letter(queue_name, message, f"gave up after {attempts} attempts: {reason}")
            return
        headers["x-attempts"] = attempts + 1
        time.sleep(min(0.2 * 2 ** attempts, 5.0))
        self._publish_copy(message, self.topology.retry, queue_name, headers)
        message.ack()
        MESSAGES_RETRIED.labels(self.service, self._queue(queue_name)).inc()

    def _publish_copy(self, message: Message, exchange: Any, routing_key: str, headers: dict[str, Any]) -> None:
        sender = sender_id(self.connection)
        publish = self.connection.ensure(self.producer(), self.producer().publish, **RETRY_POLICY)
        publish(
            message.body,
            exchange=exchange,
            routing_key=routing_key,
            content_type=message.content_type or "application/octet-stream",
            content_encoding=message.content_encoding or "binary",
            delivery_mode=2,
            headers=headers,
            message_id=message.properties.get("message_id"),
            declare=[exchange],
            **({"user_id": sender} if sender else {}),
        )


@dataclass
class _Ready:
    """A taken delivery that passed the checks, with its envelope, handler and span (ended once acknowledged)."""

    queue_name: str
    message: Message
    envelope: Envelope
    handler: Handler
    span: Span


@contextmanager
def _active(span: Span) -> Iterator[None]:
    token = activate(span)
    try:
        yield
    finally:
        deactivate(token)


def _flatten(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, dict):
        return "; ".join(_flatten(v, f"{prefix}{k}.") for k, v in messages.items())
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return f"{prefix.rstrip('.')}: {' '.join(messages)}"
    if isinstance(messages, list):
        return "; ".join(_flatten(m, prefix) for m in messages)
    return f"{prefix.rstrip('.')}: {messages}"
