"""The kombu topology, derived once from the message contracts.

- one durable topic exchange per producing service (``<service>.events``), event type as routing key;
- one durable queue per (consumer, producer) pair (``<consumer>.from-<producer>``), bound to the
  event types that consumer takes from that producer;
- a dead-letter exchange with one ``<queue>.dlq`` per queue, and a retry exchange through which a
  consumer re-queues a message for a bounded number of further attempts.

On RabbitMQ the queues are quorum queues with a delivery limit and the dead-letter exchange as
their native dead-letter target, so even a consumer that dies on every delivery cannot loop forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kombu.entity import Exchange, Queue, binding

from .contracts import CONTRACTS

SERVICES = ("intake", "matching", "scheduling")
DEAD_LETTER_EXCHANGE = "werkplaats.dead-letter"
RETRY_EXCHANGE = "werkplaats.retry"
# Broker-side cap on redeliveries of one message (consumer crashes included); part of the queue's
# declaration, so it is a constant: changing it needs new queues.
DELIVERY_LIMIT = 10


@dataclass(frozen=True)
class QueueSpec:
    name: str
    consumer: str
    producer: str
    routing_keys: tuple[str, ...]


def _queue_specs() -> tuple[QueueSpec, ...]:
    keys: dict[tuple[str, str], list[str]] = {}
    for contract in CONTRACTS:
        for consumer in contract.consumers:
            keys.setdefault((consumer, contract.producer), []).append(contract.type)
    return tuple(
        QueueSpec(f"{consumer}.from-{producer}", consumer, producer, tuple(sorted(set(rks))))
        for (consumer, producer), rks in sorted(keys.items())
    )


QUEUE_SPECS = _queue_specs()


class Topology:
    """Names and kombu entities for one namespace (empty in production, unique per test run)."""

    def __init__(self, namespace: str = "", *, quorum: bool = False) -> None:
        self.namespace = namespace
        self.quorum = quorum
        self.dead_letter = Exchange(self._n(DEAD_LETTER_EXCHANGE), type="direct", durable=True)
        self.retry = Exchange(self._n(RETRY_EXCHANGE), type="direct", durable=True)

    def _n(self, name: str) -> str:
        return f"{self.namespace}{name}"

    def exchange(self, producer: str) -> Exchange:
        return Exchange(self._n(f"{producer}.events"), type="topic", durable=True)

    def queue_name(self, spec: QueueSpec) -> str:
        return self._n(spec.name)

    def queues_for(self, consumer: str) -> list[Queue]:
        return [self._queue(spec) for spec in QUEUE_SPECS if spec.consumer == consumer]

    def queues_from(self, producer: str) -> list[Queue]:
        return [self._queue(spec) for spec in QUEUE_SPECS if spec.producer == producer]

    def dead_letter_queue(self, queue_name: str) -> Queue:
        return Queue(f"{queue_name}.dlq", self.dead_letter, routing_key=queue_name, durable=True)

    def all_entities(self) -> list[Exchange | Queue]:
        entities: list[Exchange | Queue] = [self.dead_letter, self.retry]
        entities += [self.exchange(s) for s in SERVICES]
        for spec in QUEUE_SPECS:
            entities.append(self._queue(spec))
            entities.append(self.dead_letter_queue(self.queue_name(spec)))
        return entities

    def _queue(self, spec: QueueSpec) -> Queue:
        name = self.queue_name(spec)
        arguments: dict[str, object] = {}
        if self.quorum:
            arguments = {
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.dead_letter.name,
                "x-dead-letter-routing-key": name,
            }
        bindings = [binding(self.exchange(spec.producer), routing_key=rk) for rk in spec.routing_keys]
        bindings.append(binding(self.retry, routing_key=name))
        return Queue(name, bindings=bindings, durable=True, queue_arguments=arguments or None)

    def declare_all(self, channel: Any) -> None:
        for entity in self.all_entities():
            entity(channel).declare()
