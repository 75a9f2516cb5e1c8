"""The local broker keeps every consumer's copy of a message until that consumer acknowledges it.

An exchange routes one message to several queues (``matches.published`` to scheduling and intake, for one);
one consumer's acknowledgement must not take away another consumer's unacknowledged copy, which that consumer
gets back when it stops before acknowledging. Run on the embedded broker (where kombu's Redis transport gave
all copies one tag) and on RabbitMQ."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kombu.entity import Exchange, Queue
from werkplaats_shared.broker import connect
from werkplaats_shared.config import Settings

from ..conftest import delete_namespace


@pytest.mark.parametrize("kind", ["topic", "direct"])  # the kinds the topology declares
def test_one_consumers_ack_leaves_the_other_consumers_copy_on_the_broker(
        broker_url: str, tmp_path: Path, kind: str) -> None:
    settings = Settings.from_env("intake", {"WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_DATA_DIR": str(tmp_path)})
    name = f"t{uuid.uuid4().hex[:10]}"
    exchange = Exchange(f"{name}.events", type=kind, durable=True)
    first, second = (Queue(f"{name}.{who}", exchange, routing_key="matches.published", durable=True)
                     for who in ("scheduling", "intake"))
    try:
        with connect(settings) as publisher, connect(settings) as a, connect(settings) as b:
            for conn in (a, b):
                for queue in (first, second):
                    queue(conn.default_channel).declare()
            publisher.Producer().publish({"run": 1}, exchange=exchange, routing_key="matches.published",
                                         serializer="json", declare=[exchange])
            got_a = first(a.default_channel).get(no_ack=False)
            got_b = second(b.default_channel).get(no_ack=False)
            assert got_a is not None and got_b is not None
            assert got_a.payload == got_b.payload == {"run": 1}
            got_b.ack()  # the second consumer is done with its copy
        # the first stopped without acknowledging: its copy is back on its queue, the second's is gone
        with connect(settings) as again:
            back = first(again.default_channel).get(no_ack=False)
            assert back is not None and back.payload == {"run": 1}
            back.ack()
            assert second(again.default_channel).get(no_ack=False) is None
    finally:
        with connect(settings) as conn:
            for queue in (first, second):
                queue(conn.default_channel).delete()
            exchange(conn.default_channel).delete()
        if broker_url.startswith("amqp"):
            delete_namespace(broker_url, f"{name}.")
