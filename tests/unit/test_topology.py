"""The kombu topology derived from the contracts."""

from __future__ import annotations

import re

import pytest
from werkplaats_shared import broker
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import CONTRACTS
from werkplaats_shared.topology import DELIVERY_LIMIT, QUEUE_SPECS, SERVICES, Topology


def test_every_consumer_of_every_contract_has_a_bound_queue() -> None:
    for contract in CONTRACTS:
        for consumer in contract.consumers:
            spec = next(s for s in QUEUE_SPECS if s.consumer == consumer and s.producer == contract.producer)
            assert contract.type in spec.routing_keys
    assert {s.name for s in QUEUE_SPECS} == {"matching.from-intake", "scheduling.from-intake",
                                             "scheduling.from-matching", "intake.from-matching",
                                             "intake.from-scheduling", "matching.from-scheduling"}


def test_names_carry_the_namespace_and_queues_are_durable() -> None:
    topology = Topology("t1.")
    assert topology.exchange("intake").name == "t1.intake.events"
    assert topology.exchange("intake").type == "topic"
    for queue in topology.queues_for("scheduling"):
        assert queue.name.startswith("t1.scheduling.from-")
        assert queue.durable
        keys = {b.routing_key for b in queue.bindings}
        assert queue.name in keys  # bound to the retry exchange under its own name
    assert topology.dead_letter_queue("t1.matching.from-intake").name == "t1.matching.from-intake.dlq"


def test_rabbitmq_queues_are_quorum_queues_with_a_delivery_limit_and_dead_letter_target() -> None:
    queue = Topology("", quorum=True).queues_for("matching")[0]
    assert queue.queue_arguments == {  # type: ignore[attr-defined]
        "x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": "werkplaats.dead-letter", "x-dead-letter-routing-key": queue.name}
    assert Topology("").queues_for("matching")[0].queue_arguments is None  # type: ignore[attr-defined]


# -- one broker user per service ---------------------------------------------------------------------

PRODUCTION = Topology("", quorum=True)
EVERY_NAME = sorted({e.name for e in PRODUCTION.all_entities()} | {"amq.default", "amq.topic", ""})


def allowed(service: str, operation: str) -> set[str]:
    regex = PRODUCTION.permissions(service)[operation]
    return {name for name in EVERY_NAME if re.search(regex, name)}


def own_queues(service: str) -> set[str]:
    queues = {q.name for q in PRODUCTION.queues_for(service)}
    return queues | {f"{q}.dlq" for q in queues}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_user_configures_only_its_own_exchange_and_queues(service: str) -> None:
    assert allowed(service, "configure") == {f"{service}.events"} | own_queues(service)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_user_publishes_only_to_its_own_exchange_and_the_retry_and_dead_letter_exchanges(
        service: str) -> None:
    # write on its own queues is what binding them needs; nothing is published to a queue directly,
    # since the default exchange (amq.default) is not writable
    assert allowed(service, "write") == ({f"{service}.events", "werkplaats.retry", "werkplaats.dead-letter"}
                                         | own_queues(service))


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_user_reads_only_its_own_queues(service: str) -> None:
    producers = {s.producer for s in QUEUE_SPECS if s.consumer == service}
    exchanges = {f"{p}.events" for p in producers} | {"werkplaats.retry", "werkplaats.dead-letter"}
    assert allowed(service, "read") == own_queues(service) | exchanges  # exchanges: to bind its queues


def settings(service: str, users: str, url: str = "") -> Settings:
    return Settings.from_env(service, {"WERKPLAATS_BROKER_URL": url or f"amqp://{service}:pw@rabbit//",
                                       "WERKPLAATS_BROKER_PRODUCER_USERS": users})


USERS = "intake=svc-intake, matching=svc-matching,scheduling=svc-scheduling"


def test_with_producer_users_a_service_declares_only_its_own_entities() -> None:
    topology = broker.topology_for(settings("matching", USERS, "amqp://svc-matching:pw@rabbit//"))
    assert topology.producer_users == {"intake": "svc-intake", "matching": "svc-matching",
                                       "scheduling": "svc-scheduling"}
    declared = topology.declarations()
    assert {e.name for e in declared} == {"matching.events"} | own_queues("matching")
    assert not declared[0].passive  # type: ignore[union-attr]
    foreign = [b.exchange for q in topology.queues_for("matching") for b in q.bindings]
    assert foreign and all(e.passive for e in foreign)  # checked, never created by matching
    assert [e.name for e in topology.publish_declarations("matching")] == ["matching.events"]
    assert topology.producer_of("matching.from-scheduling") == "scheduling"


def test_without_producer_users_any_service_declares_everything() -> None:
    topology = broker.topology_for(Settings.from_env("matching", {"WERKPLAATS_BROKER_URL": "amqp://guest@r//"}))
    assert topology.producer_users == {}
    assert {e.name for e in topology.declarations()} == {e.name for e in topology.all_entities()}
    assert not any(getattr(e, "passive", False) for e in topology.declarations())
    assert {e.name for e in topology.publish_declarations("intake")} == (
        {"intake.events"} | {q.name for q in topology.queues_from("intake")})


@pytest.mark.parametrize(("service", "users", "url", "complaint"), [
    ("intake", "intake=a,matching=b", "", "no broker user for scheduling"),
    ("intake", "intake=a,matching=b,scheduling=c,billing=d", "", "unknown service 'billing'"),
    ("intake", "intake=a,matching=a,scheduling=c", "", "its own broker user"),
    ("intake", "intake=a,matching,scheduling=c", "", "'matching' is not service=user"),
    ("intake", "intake=intake,matching=b,scheduling=c", "redis+socket:///tmp/b.sock", "needs an amqp://"),
    ("matching", "intake=a,matching=b,scheduling=c", "", "connects as 'matching'"),
    ("matching", "intake=a,matching=b,scheduling=c", "amqp://rabbit//", "connects as 'guest'"),
])
def test_producer_users_that_cannot_be_enforced_are_refused_at_start(
        service: str, users: str, url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="WERKPLAATS_BROKER_PRODUCER_USERS") as info:
        settings(service, users, url or f"amqp://{service if service != 'intake' else 'a'}:pw@rabbit//")
    assert complaint in str(info.value)
