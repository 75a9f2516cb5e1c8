"""Consumers take waiting messages in batches (one transaction, each message in its own savepoint with its
inbox row): every message still has its effect exactly once and in delivery order, a redelivered message is
still recognised, and a poison message is retried and dead-lettered alone while its batch-mates are applied.
On the embedded Redis and RabbitMQ, with SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from kombu.messaging import Producer
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkplaats_shared import broker
from werkplaats_shared.consumer import PermanentError
from werkplaats_shared.contracts import Envelope

from .harness import Harness, batch_envelope, effects, record_effect, wait_until


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def harness(request: pytest.FixtureRequest, broker_url: str, namespace: str, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "postgres":
        database_url = str(request.getfixturevalue("make_postgres_db")("batched"))
    else:
        database_url = f"sqlite:///{tmp_path / 'svc.sqlite3'}"
    h = Harness(broker_url, namespace, database_url)
    yield h
    h.stop()


def publish(h: Harness, envelopes: list[Envelope]) -> None:
    """Put the messages in the consumer's queue, in this order, over one connection (as intake's relay does)."""
    with broker.connect(h.settings) as conn:
        producer = Producer(conn.default_channel)
        for envelope in envelopes:
            producer.publish(envelope.to_json(), exchange=h.topology.exchange("intake"), routing_key=envelope.type,
                             content_type="application/json", content_encoding="utf-8",
                             message_id=envelope.message_id, delivery_mode=2)


def effects_in_order(h: Harness) -> list[str]:
    with h.engine.connect() as conn:
        return list(conn.execute(sa.select(effects.c.batch_id).order_by(effects.c.id)).scalars())


def count_commits(h: Harness) -> list[int]:
    commits = [0]
    event.listen(h.engine, "commit", lambda _conn: commits.__setitem__(0, commits[0] + 1))
    return commits


def test_waiting_messages_are_applied_once_each_in_order_in_few_transactions(harness: Harness) -> None:
    envelopes = [batch_envelope(f"b{i:03d}") for i in range(300)]
    publish(harness, envelopes)
    commits = count_commits(harness)
    harness.start_consumer({"batch.submitted": record_effect})
    wait_until(lambda: harness.effect_count() >= 300 and harness.queue_depth() == 0, 60, "all applied")
    harness.stop_consumers()
    assert harness.queue_depth() == 0  # every message was acknowledged: none came back
    assert effects_in_order(harness) == [f"b{i:03d}" for i in range(300)]
    assert commits[0] <= 300 // 10  # taken in batches, not a transaction per message


def test_a_redelivered_message_is_recognised_in_a_batch(harness: Harness) -> None:
    first = [batch_envelope(f"r{i:02d}") for i in range(20)]
    publish(harness, first + first[:5])  # five delivered twice in the same batch
    harness.start_consumer({"batch.submitted": record_effect})
    wait_until(lambda: harness.effect_count() == 20 and harness.queue_depth() == 0, 30, "first applied")
    new = [batch_envelope(f"n{i:02d}") for i in range(5)]
    publish(harness, first[10:] + new + first[:10])  # all of them again, among new ones
    wait_until(lambda: harness.effect_count() == 25 and harness.queue_depth() == 0, 30, "new applied")
    harness.stop_consumers()
    assert harness.queue_depth() == 0  # every message was acknowledged: none came back
    assert sorted(effects_in_order(harness)) == sorted([e.payload["batch_id"] for e in first + new])


def test_a_poison_message_is_retried_and_dead_lettered_alone(harness: Harness) -> None:
    calls: list[str] = []

    def handler(session: Session, envelope: Envelope) -> None:
        batch_id = envelope.payload["batch_id"]
        calls.append(batch_id)
        record_effect(session, envelope)  # rolled back with the message's savepoint when it fails below
        if batch_id == "poison":
            raise RuntimeError("cannot apply")
        if batch_id == "rejected":
            raise PermanentError("never applicable")

    envelopes = [batch_envelope(f"p{i:02d}") for i in range(40)]
    envelopes.insert(13, batch_envelope("poison"))
    envelopes.insert(27, batch_envelope("rejected"))
    publish(harness, envelopes)
    harness.start_consumer({"batch.submitted": handler})
    wait_until(lambda: harness.effect_count() == 40, 30, "the batch-mates applied")
    dead = harness.dead_letters(2, timeout=30)
    reasons = sorted(d["headers"]["x-death-reason"] for d in dead)
    assert len(reasons) == 2
    assert reasons[0].startswith("gave up after 3 attempts: RuntimeError")
    assert reasons[1] == "rejected: never applicable"
    assert sorted(effects_in_order(harness)) == [f"p{i:02d}" for i in range(40)]
    assert calls.count("poison") == 3  # once per delivery: the batch does not call it again one by one
    assert calls.count("rejected") == 1
    assert all(calls.count(f"p{i:02d}") == 1 for i in range(40))
    wait_until(lambda: harness.queue_depth() == 0, 20, "queue drained")
    assert harness.dead_letters(1, timeout=1) == []  # no batch-mate went with them
