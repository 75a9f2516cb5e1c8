"""Publishing with confirms, persistent delivery and a bounded retry policy."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from kombu.connection import Connection
from kombu.messaging import Producer

from .broker import sender_id
from .topology import Topology

log = logging.getLogger(__name__)

RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}


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
            self._producer = Producer(self.connection.default_channel, exchange=self.exchange)
        return self._producer

    def _reset(self, *_: Any) -> None:
        self._producer = None

    def publish_raw(self, body: str, *, message_type: str, message_id: str, traceparent: str | None = None) -> None:
        """Publish one message; ``traceparent`` (W3C trace context) goes in its headers when given."""
        envelope = json.loads(body)
        headers = {"type": message_type, "version": envelope.get("version")}
        if traceparent:
            headers["traceparent"] = traceparent
        with self._lock:
            publish = self.connection.ensure(
                self, self._do_publish, errback=self._reset, **RETRY_POLICY
            )
            publish(body, message_type, message_id, headers)

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
            declare=self._declare,
            **({"user_id": sender} if sender else {}),
        )

    def revive(self, channel: Any) -> None:  # called by Connection.ensure after reconnecting
        self._producer = None
