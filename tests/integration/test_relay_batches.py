"""Messages go through the broker in batches: the outbox relay publishes a cycle's rows at once (one pipeline on the
embedded Redis), a consumer takes the deliveries its prefetch allows at once and acknowledges a batch together. Order
and at-least-once delivery stay as they were: on the embedded Redis and RabbitMQ, with SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from kombu.entity import Queue
from kombu.messaging import Producer
from sqlalchemy.orm import Session
from werkplaats_shared import broker
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.outbox import add_all_to_outbox

from .harness import Harness, batch_envelope, effects, outbox, record_effect, wait_until

HERE = Path(__file__).parent


@pytest.fixture
def harness(broker_url: str, namespace: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(broker_url, namespace, f"sqlite:///{tmp_path / 'svc.sqlite3'}")
    yield h
    h.stop()


def team_registered() -> Envelope:
    """A message no queue is bound to (no service consumes it yet)."""
    return make_envelope("team.registered", 1, {
        "team_id": uuid.uuid4().hex, "institution_id": "i1", "workspace_id": "w1", "level": "HBO",
        "period": "2027-P1", "skills": ["web"]})


def effects_in_order(h: Harness) -> list[str]:
    with h.engine.connect() as conn:
        return list(conn.execute(sa.select(effects.c.batch_id).order_by(effects.c.id)).scalars())


def test_relayed_batches_arrive_in_outbox_order_once_each(harness: Harness) -> None:
    made: list[Envelope] = []
    for i in range(250):  # among messages no queue takes, as intake's imports make them
        made += [batch_envelope(f"b{i:03d}"), team_registered()]
    with harness.sf.begin() as session:
        add_all_to_outbox(session, outbox, made)
    cycles = 0
    while harness.unsent():
        assert harness.relay_once() > 0
        cycles += 1
    assert cycles == 5  # 100 rows a cycle
    assert harness.relay_once() == 0  # all marked sent: none published twice
    harness.start_consumer({"batch.submitted": record_effect})
    wait_until(lambda: harness.effect_count() >= 250 and harness.queue_depth() == 0, 60, "all applied")
    harness.stop_consumers()
    assert effects_in_order(harness) == [f"b{i:03d}" for i in range(250)]


def test_a_consumer_killed_with_many_deliveries_taken_loses_none(harness: Harness, tmp_path: Path) -> None:
    """The consumer takes all waiting deliveries at once, applies the first batch, and is killed before it
    acknowledged any of them: the next consumer gets every one back and applies each once."""
    ids = [f"k{i:02d}-{uuid.uuid4().hex[:4]}" for i in range(60)]
    with broker.connect(harness.settings) as conn:
        producer = Producer(conn.default_channel)
        for batch_id in ids:
            producer.publish(batch_envelope(batch_id).to_json(), exchange=harness.topology.exchange("intake"),
                             routing_key="batch.submitted", content_type="application/json",
                             content_encoding="utf-8", message_id=batch_id, delivery_mode=2)
    marker = tmp_path / "killed"
    env = {**os.environ, "WERKPLAATS_BROKER_URL": harness.settings.broker_url,
           "WERKPLAATS_NAMESPACE": harness.settings.namespace, "WERKPLAATS_DATABASE_URL": harness.settings.database_url,
           "WERKPLAATS_VISIBILITY_TIMEOUT": "2",
           "WERKPLAATS_FAULT": f"kill-after-commit:matching.from-intake:batch.submitted:{marker}"}
    cmd = [sys.executable, str(HERE / "consumer_process.py")]
    first = subprocess.Popen(cmd, env=env)
    try:
        assert first.wait(30) == -signal.SIGKILL
        applied_before = harness.effect_count()
        assert applied_before > 1  # a batch of several was committed before the kill
        second = subprocess.Popen(cmd, env=env)
        try:
            wait_until(lambda: harness.effect_count() == 60 and harness.queue_depth() == 0 and _all_acked(harness, ids),
                       timeout=60, what="every message applied and acknowledged")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
    finally:
        if first.poll() is None:  # the fault did not fire: never leave it running
            first.kill()
            first.wait()
    assert sorted(effects_in_order(harness)) == sorted(ids)  # each once


def test_a_failing_handler_in_a_taken_batch_is_retried_alone(harness: Harness) -> None:
    calls: dict[str, int] = {}

    def fails_once(session: Session, envelope: Envelope) -> None:
        batch_id = envelope.payload["batch_id"]
        calls[batch_id] = calls.get(batch_id, 0) + 1
        if batch_id == "b10" and calls[batch_id] == 1:
            raise RuntimeError("first attempt fails")
        record_effect(session, envelope)

    with harness.sf.begin() as session:
        add_all_to_outbox(session, outbox, [batch_envelope(f"b{i:02d}") for i in range(30)])
    assert harness.relay_once() == 30
    harness.start_consumer({"batch.submitted": fails_once})
    wait_until(lambda: harness.effect_count() == 30 and harness.queue_depth() == 0, 30, "all applied")
    harness.stop_consumers()
    assert sorted(effects_in_order(harness)) == [f"b{i:02d}" for i in range(30)]
    assert calls["b10"] == 2  # retried through the retry exchange, once


def _all_acked(h: Harness, ids: list[str]) -> bool:
    log = Path(h.settings.database_url.removeprefix("sqlite:///")).with_name("acked.log")
    return log.exists() and set(ids) <= set(log.read_text().split())


@pytest.mark.rabbitmq
def test_relay_marks_sent_only_what_rabbitmq_confirmed(rabbitmq_url: str, namespace: str, tmp_path: Path) -> None:
    """A cycle's confirms are awaited together: a message the broker refuses (a queue of its route is full and
    rejects publishes) and those after it stay unsent, those before it are marked sent."""
    h = Harness(rabbitmq_url, namespace, f"sqlite:///{tmp_path / 'svc.sqlite3'}")
    full = Queue(f"{namespace}full", h.topology.exchange("intake"), routing_key="batch.submitted", durable=True,
                 queue_arguments={"x-max-length": 5, "x-overflow": "reject-publish"})
    try:
        with broker.connect(h.settings) as conn:
            full(conn.default_channel).declare()
        made = [batch_envelope(f"c{i}") for i in range(8)]
        with h.sf.begin() as session:
            add_all_to_outbox(session, outbox, made)
        assert h.relay_once() == 5
        with h.engine.connect() as conn:
            rows = {r.message_id: r for r in conn.execute(sa.select(outbox))}
        assert [rows[e.message_id].sent_at is not None for e in made] == [True] * 5 + [False] * 3
        assert rows[made[5].message_id].attempts == 1 and rows[made[5].message_id].last_error
        assert all(rows[e.message_id].attempts == 0 for e in made[6:])
    finally:
        with broker.connect(h.settings) as conn:
            full(conn.default_channel).delete()
        h.stop()
