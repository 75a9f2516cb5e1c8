"""Publishing with confirms, persistent delivery and a bounded retry policy."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kombu.connection import Connection
from kombu.messaging import Producer

from .broker import sender_id
from .topology import Topology

log = logging.getLogger(__name__)

RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}


@dataclass(frozen=True)
class Outgoing:
    """A message as the outbox holds it: its JSON body, type (the routing key), version and id, and the W3C trace
    context it was made in (sent in its headers when given)."""

    body: str
    message_type: str
    message_id: str
    version: int | None = None
    traceparent: str | None = None

    def headers(self) -> dict[str, Any]:
        headers: dict[str, Any] = {"type": self.message_type, "version": self.version}
        if self.traceparent:
            headers["traceparent"] = self.traceparent
        return headers


# Redis commands a batch buffers before kombu sends them (one LPUSH per queue a message goes to): more than a relay
# cycle makes, so that a cycle is one pipeline, all sent or none known sent.
_BATCH_COMMANDS = 100_000


class Publisher:
    """Publishes envelopes of one producing service to its topic exchange.

    On RabbitMQ the connection is opened with ``confirm_publish``, so ``publish`` returns only
    once the broker confirmed the message and raises otherwise. Every message carries the connection's
    broker user as ``user_id``, which RabbitMQ validates: consumers know the sender for sure.
    """

    def __init__(self, connection: Connection, topology: Topology, service: str) -> None:
        self.connection = connection
        self.topology = topology
        self.exchange = topology.exchange(service)
        self._declare = topology.publish_declarations(service)
        self._lock = threading.Lock()
        self._producer: Producer | None = None

    def _get_producer(self) -> Producer:
        if self._producer is None:
            producer = Producer(self.connection.default_channel, exchange=self.exchange, auto_declare=False)
            # declared once per channel (kombu remembers them per connection), not checked on every publish
            for entity in self._declare:
                producer.maybe_declare(entity)
            self._producer = producer
        return self._producer

    def _reset(self, *_: Any) -> None:
        self._producer = None

    def publish_raw(self, body: str, *, message_type: str, message_id: str, traceparent: str | None = None) -> None:
        """Publish one message; ``traceparent`` (W3C trace context) goes in its headers when given."""
        outgoing = Outgoing(body, message_type, message_id, json.loads(body).get("version"), traceparent)
        with self._lock:
            publish = self.connection.ensure(
                self, self._do_publish, errback=self._reset, **RETRY_POLICY
            )
            publish(body, message_type, message_id, outgoing.headers())

    def publish_many(self, messages: Sequence[Outgoing]) -> tuple[int, Exception | None]:
        """Publish the messages in this order with as few round trips as the broker allows: how many of them the
        broker holds for sure (from the first), and the error that stopped the rest, if any.

        On the embedded Redis, kombu's ``Producer.batch`` sends them in one pipeline: they are all held once it ran,
        and none for sure when it failed (some may have been queued: the caller sends them again, at least once).
        On RabbitMQ (no batch transport in kombu) each is published with its confirm, so those confirmed before a
        failure count. A connection lost on the way is re-established within ``RETRY_POLICY``, and the messages
        not yet held are published again, in order."""
        done = 0

        def publish_rest() -> None:
            nonlocal done
            producer = self._get_producer()
            if producer.supports_batch_publish:
                with producer.batch(max_size=_BATCH_COMMANDS):
                    for message in messages[done:]:
                        self._do_publish(message.body, message.message_type, message.message_id, message.headers())
                done = len(messages)
            else:
                for message in messages[done:]:
                    self._do_publish(message.body, message.message_type, message.message_id, message.headers())
                    done += 1

        with self._lock:
            try:
                self.connection.ensure(self, publish_rest, errback=self._reset, **RETRY_POLICY)()
            except Exception as exc:  # noqa: BLE001 - reported to the caller, which keeps the rest for later
                return done, exc
        return done, None

    def _do_publish(self, body: str, routing_key: str, message_id: str, headers: dict[str, Any]) -> None:
        sender = sender_id(self.connection)
        self._get_producer().publish(
            body,
            routing_key=routing_key,
            exchange=self.exchange,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            message_id=message_id,
            headers=headers,
            **({"user_id": sender} if sender else {}),
        )

    def revive(self, channel: Any) -> None:  # called by Connection.ensure after reconnecting
        self._producer = None
