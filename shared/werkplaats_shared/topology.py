"""The kombu topology, derived once from the message contracts.

- one durable topic exchange per producing service (``<service>.events``), event type as routing key;
- one durable queue per (consumer, producer) pair (``<consumer>.from-<producer>``), bound to the
  event types that consumer takes from that producer;
- a dead-letter exchange with one ``<queue>.dlq`` per queue, and a retry exchange through which a
  consumer re-queues a message for a bounded number of further attempts.

On RabbitMQ the queues are quorum queues with a delivery limit and the dead-letter exchange as
their native dead-letter target, so even a consumer that dies on every delivery cannot loop forever.

With one broker user per service (production), a service may configure only its own exchange and its
own queues: its ``Topology(owner=service)`` declares those and only checks (passively) that the other
exchanges exist. The whole topology, the users and their permissions are loaded into RabbitMQ at boot
from ``deploy/rabbitmq/definitions.json``, which ``python -m werkplaats_shared.topology`` generates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
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
    """Names and kombu entities for one namespace (empty in production, unique per test run).

    With one broker user per service, ``owner`` is the service whose own user declares the entities and
    ``producer_users`` names each producing service's broker user, the only sender whose messages its
    consumers accept. On a single-user broker both are empty: any service declares everything and the
    sender is not checked.
    """

    def __init__(self, namespace: str = "", *, quorum: bool = False, owner: str | None = None,
                 producer_users: Mapping[str, str] | None = None) -> None:
        self.namespace = namespace
        self.quorum = quorum
        self.owner = owner
        self.producer_users = dict(producer_users or {})
        shared = owner is not None  # declared by the broker's definitions, never by a service user
        self.dead_letter = Exchange(self._n(DEAD_LETTER_EXCHANGE), type="direct", durable=True, passive=shared)
        self.retry = Exchange(self._n(RETRY_EXCHANGE), type="direct", durable=True, passive=shared)

    def _n(self, name: str) -> str:
        return f"{self.namespace}{name}"

    def exchange(self, producer: str) -> Exchange:
        foreign = self.owner is not None and producer != self.owner
        return Exchange(self._n(f"{producer}.events"), type="topic", durable=True, passive=foreign)

    def queue_name(self, spec: QueueSpec) -> str:
        return self._n(spec.name)

    def producer_of(self, queue_name: str) -> str:
        return next(spec.producer for spec in QUEUE_SPECS if self.queue_name(spec) == queue_name)

    def queues_for(self, consumer: str) -> list[Queue]:
        return [self._queue(spec) for spec in QUEUE_SPECS if spec.consumer == consumer]

    def queues_from(self, producer: str) -> list[Queue]:
        return [self._queue(spec) for spec in QUEUE_SPECS if spec.producer == producer]

    def dead_letter_queue(self, queue_name: str) -> Queue:
        return Queue(f"{queue_name}.dlq", self.dead_letter, routing_key=queue_name, durable=True)

    def publish_declarations(self, producer: str) -> list[Exchange | Queue]:
        """What a producer declares before publishing: its exchange and, on a single-user broker, the
        queues bound to it, so nothing published before the first consumer started is lost (with one user
        per service those queues come from the broker's definitions)."""
        if self.owner is not None:
            return [self.exchange(producer)]
        return [self.exchange(producer), *self.queues_from(producer)]

    def declarations(self) -> list[Exchange | Queue]:
        """What this service declares at start: everything on a single-user broker, else its own."""
        if self.owner is None:
            return self.all_entities()
        entities: list[Exchange | Queue] = [self.exchange(self.owner)]
        for queue in self.queues_for(self.owner):
            entities += [queue, self.dead_letter_queue(queue.name)]
        return entities

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
        for entity in self.declarations():
            entity(channel).declare()

    def permissions(self, service: str) -> dict[str, str]:
        """RabbitMQ permissions (regular expressions) of ``service``'s own broker user: configure its
        exchange and queues; publish to its exchange and the retry and dead-letter exchanges; read its
        queues; bind them to the exchanges of its producers."""
        queues = [self.queue_name(s) for s in QUEUE_SPECS if s.consumer == service]
        own_queues = queues + [f"{q}.dlq" for q in queues]
        producers = sorted({s.producer for s in QUEUE_SPECS if s.consumer == service})
        exchange = self.exchange(service).name
        shared = [self.retry.name, self.dead_letter.name]
        return {
            "configure": _exactly([exchange, *own_queues]),
            "write": _exactly([exchange, *shared, *own_queues]),
            "read": _exactly([*own_queues, *(self.exchange(p).name for p in producers), *shared]),
        }


def _exactly(names: list[str]) -> str:
    return "^(" + "|".join(re.sub(r"([^A-Za-z0-9_-])", r"\\\1", n) for n in names) + ")$"


def rabbitmq_definitions(vhost: str = "/") -> dict[str, Any]:
    """RabbitMQ definitions: the production topology, one broker user per service (named after it) with
    its permissions, and an administrator. Names and passwords are ``${VARIABLE}`` placeholders that
    deploy/rabbitmq/entrypoint.sh fills in from the environment."""
    topology = Topology("", quorum=True)
    exchanges = [topology.dead_letter, topology.retry, *(topology.exchange(s) for s in SERVICES)]
    queues: list[Queue] = []
    for service in SERVICES:
        for queue in topology.queues_for(service):
            queues += [queue, topology.dead_letter_queue(queue.name)]
    pairs = set()
    for queue in queues:
        pairs |= {(queue.name, b.exchange.name, b.routing_key) for b in queue.bindings}
        if queue.exchange is not None and queue.exchange.name:
            pairs.add((queue.name, queue.exchange.name, queue.routing_key))
    bindings = [{"source": source, "vhost": vhost, "destination": destination, "destination_type": "queue",
                 "routing_key": key, "arguments": {}} for destination, source, key in sorted(pairs)]
    admin = "${RABBITMQ_DEFAULT_USER}"
    users = [{"name": admin, "password": "${RABBITMQ_DEFAULT_PASS}", "tags": ["administrator"]}]
    users += [{"name": s, "password": f"${{{s.upper()}_BROKER_PASSWORD}}", "tags": []} for s in SERVICES]
    permissions = [{"user": admin, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}]
    permissions += [{"user": s, "vhost": vhost, **topology.permissions(s)} for s in SERVICES]
    return {
        "vhosts": [{"name": vhost}],
        "users": users,
        "permissions": permissions,
        "exchanges": [{"name": e.name, "vhost": vhost, "type": e.type, "durable": e.durable,
                       "auto_delete": e.auto_delete, "internal": False, "arguments": {}} for e in exchanges],
        "queues": [{"name": q.name, "vhost": vhost, "durable": q.durable, "auto_delete": q.auto_delete,
                    "arguments": getattr(q, "queue_arguments", None) or {}} for q in queues],
        "bindings": bindings,
    }


if __name__ == "__main__":
    print(json.dumps(rabbitmq_definitions(), indent=2))
