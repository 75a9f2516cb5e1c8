"""Publishing with confirms, persistent delivery and a bounded retry policy."""

from __future__ import annotations

import json
import logging
import threading
import time
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


# Seconds RabbitMQ has to confirm a relay cycle's messages before the cycle counts as failed (they are sent again).
CONFIRM_TIMEOUT = 30.0

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
        self._confirming: _ConfirmingChannel | None = None

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
        self._confirming = None

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
        On RabbitMQ they are published on a channel in confirm mode without waiting after each, and then their
        confirms are awaited together (``_ConfirmingChannel``: kombu has no batch for RabbitMQ, and py-amqp waits for
        each confirm): those confirmed in a row before a refusal, a timeout or another failure count. A connection
        lost on the way is re-established within ``RETRY_POLICY``, and the messages not yet held are published
        again, in order."""
        done = 0

        def publish_rest() -> None:
            nonlocal done
            producer = self._get_producer()
            if producer.supports_batch_publish:
                with producer.batch(max_size=_BATCH_COMMANDS):
                    for message in messages[done:]:
                        self._do_publish(message.body, message.message_type, message.message_id, message.headers())
                done = len(messages)
            elif (self.connection.transport_options or {}).get("confirm_publish"):
                if self._confirming is None:
                    self._confirming = _ConfirmingChannel(self.connection, self.exchange, self._declare)
                try:
                    done += self._confirming.publish(messages[done:], self._publish_options())
                except _Unconfirmed as unconfirmed:
                    done += unconfirmed.confirmed
                    self._confirming.close()  # what it still owes us is unknown: a new channel next time
                    self._confirming = None
                    raise unconfirmed.error from None
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

    def _publish_options(self) -> dict[str, Any]:
        sender = sender_id(self.connection)
        return {"exchange": self.exchange, "content_type": "application/json", "content_encoding": "utf-8",
                "delivery_mode": 2, **({"user_id": sender} if sender else {})}

    def _do_publish(self, body: str, routing_key: str, message_id: str, headers: dict[str, Any]) -> None:
        self._get_producer().publish(body, routing_key=routing_key, message_id=message_id, headers=headers,
                                     **self._publish_options())

    def revive(self, channel: Any) -> None:  # called by Connection.ensure after reconnecting
        self._producer = None
        self._confirming = None


class _Unconfirmed(Exception):
    def __init__(self, confirmed: int, error: Exception) -> None:
        super().__init__(confirmed, error)
        self.confirmed, self.error = confirmed, error


class _ConfirmingChannel:
    """RabbitMQ: a channel of the publisher's own in confirm mode on which a batch is published without waiting
    for each message's confirm (py-amqp's ``confirm_publish`` waits after every publish); the confirms are then
    awaited together (the broker acknowledges publishes by sequence number, often several at once)."""

    def __init__(self, connection: Connection, exchange: Any, declare: list[Any]) -> None:
        self.connection = connection
        self.channel = connection.channel()
        self.channel.basic_publish = self.channel._basic_publish  # no wait per message: see publish
        self.channel.confirm_select()
        self.channel._confirm_selected = True
        self.producer = Producer(self.channel, exchange=exchange, auto_declare=False)
        for entity in declare:
            self.producer.maybe_declare(entity)
        self.published = 0  # sequence number of the last message published on the channel
        self.acked_up_to = 0  # every sequence number up to this one is acknowledged ...
        self.acked: set[int] = set()  # ... and these beyond it
        self.nacked: set[int] = set()
        self.nacked_up_to = 0
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)

    def close(self) -> None:
        try:
            self.channel.close()
        except Exception:  # noqa: BLE001 - already closed with its connection
            log.info("confirm channel already closed")

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.acked_up_to = max(self.acked_up_to, tag)
        else:
            self.acked.add(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.nacked_up_to = max(self.nacked_up_to, tag)
        else:
            self.nacked.add(tag)

    def _confirmed_from(self, first: int, last: int) -> tuple[int, bool]:
        """How many of first..last are confirmed in a row from the first, and whether the next one was refused."""
        count = 0
        for tag in range(first, last + 1):
            if tag in self.nacked or (tag <= self.nacked_up_to and tag not in self.acked and tag > self.acked_up_to):
                return count, True
            if tag > self.acked_up_to and tag not in self.acked:
                return count, False
            count += 1
        return count, False

    def publish(self, messages: Sequence[Outgoing], options: dict[str, Any]) -> int:
        """Publish the messages in order and wait for their confirms: how many there are (all), or raise
        ``_Unconfirmed`` with how many were confirmed in a row before one was refused or the wait timed out."""
        first = self.published + 1
        sent = 0
        try:
            for message in messages:
                self.producer.publish(message.body, routing_key=message.message_type, message_id=message.message_id,
                                      headers=message.headers(), **options)
                self.published += 1
                sent += 1
            deadline = time.monotonic() + CONFIRM_TIMEOUT
            while True:
                confirmed, refused = self._confirmed_from(first, self.published)
                if refused:
                    raise _Unconfirmed(confirmed, RuntimeError("the broker refused a message (basic.nack)"))
                if confirmed == sent:
                    return sent
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Unconfirmed(confirmed, TimeoutError("no publisher confirm in time"))
                self.connection.drain_events(timeout=left)
        except _Unconfirmed:
            raise
        except Exception as exc:
            if isinstance(exc, tuple(self.connection.recoverable_connection_errors)):
                raise  # Connection.ensure reconnects and publishes what is not confirmed again
            raise _Unconfirmed(self._confirmed_from(first, self.published)[0], exc) from exc
