"""The kombu topology derived from the contracts."""

from __future__ import annotations

from werkplaats_shared.contracts import CONTRACTS
from werkplaats_shared.topology import DELIVERY_LIMIT, QUEUE_SPECS, Topology


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
