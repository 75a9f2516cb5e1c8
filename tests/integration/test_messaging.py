"""The shared messaging library against real brokers: the embedded Redis and RabbitMQ."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session
from werkplaats_shared import broker
from werkplaats_shared.contracts import Envelope

from .harness import Harness, batch_envelope, record_effect, wait_until

HERE = Path(__file__).parent


@pytest.fixture
def harness(broker_url: str, namespace: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(broker_url, namespace, f"sqlite:///{tmp_path / 'svc.sqlite3'}")
    yield h
    h.stop()


def test_outbox_message_reaches_consumer_and_is_applied_once(harness: Harness) -> None:
    harness.start_consumer({"batch.submitted": record_effect})
    harness.emit_in_transaction(batch_envelope("b1"))
    assert harness.unsent() == 1
    assert harness.relay_once() == 1
    assert harness.unsent() == 0
    wait_until(lambda: harness.effect_count("b1") == 1, what="effect")
    assert harness.relay_once() == 0  # marked sent: never published twice


def test_same_message_delivered_twice_has_one_effect(harness: Harness) -> None:
    harness.start_consumer({"batch.submitted": record_effect})
    body = batch_envelope("b2").to_json()
    harness.publish_raw(body, message_id="dup")
    harness.publish_raw(body, message_id="dup")
    harness.publish_raw(batch_envelope("b3").to_json())
    wait_until(lambda: harness.effect_count("b3") == 1, what="later message")
    wait_until(lambda: harness.queue_depth() == 0, what="queue drained")
    assert harness.effect_count("b2") == 1


def test_undecodable_and_schema_invalid_go_to_dead_letter_queue(harness: Harness) -> None:
    harness.start_consumer({"batch.submitted": record_effect})
    harness.publish_raw(b"\xff\xfe{not json", message_id="bad-1")
    invalid = batch_envelope("b4").to_dict()
    invalid["payload"]["teams"] = [{"team_id": "t", "institution_id": "i", "level": "MBO", "skills": [],
                                    "student_name": "not allowed"}]
    harness.publish_raw(json.dumps(invalid), message_id="bad-2")
    harness.publish_raw(b"\x80\x04K\x01.", content_type="application/x-python-serialize", message_id="bad-3")
    harness.publish_raw(batch_envelope("b5").to_json())
    wait_until(lambda: harness.effect_count("b5") == 1, what="good message after bad ones")
    dead = harness.dead_letters(3)
    reasons = sorted(d["headers"]["x-death-reason"].split(":")[0] for d in dead)
    assert reasons == ["content type 'application/x-python-serialize' not accepted", "schema-invalid",
                       "undecodable"]
    assert all(d["headers"]["x-original-queue"] == harness.queue_name for d in dead)
    assert harness.effect_count() == 1


def test_failing_handler_is_retried_a_bounded_number_of_times(harness: Harness) -> None:
    calls: list[str] = []

    def flaky(session: Session, envelope: Envelope) -> None:
        calls.append(envelope.payload["batch_id"])
        if envelope.payload["batch_id"] == "always-fails" or calls.count(envelope.payload["batch_id"]) == 1:
            raise RuntimeError("transient")
        record_effect(session, envelope)

    harness.start_consumer({"batch.submitted": flaky})
    harness.publish_raw(batch_envelope("once-fails").to_json(), message_id="m1")
    harness.publish_raw(batch_envelope("always-fails").to_json(), message_id="m2")
    wait_until(lambda: harness.effect_count("once-fails") == 1, what="retry to succeed")
    dead = harness.dead_letters(1)
    assert "gave up after 3 attempts" in dead[0]["headers"]["x-death-reason"]
    assert calls.count("always-fails") == 3
    assert harness.effect_count("always-fails") == 0


def test_relayed_messages_carry_the_senders_broker_user_on_rabbitmq(harness: Harness, broker_url: str) -> None:
    harness.emit_in_transaction(batch_envelope("sender"))
    assert harness.relay_once() == 1
    queue = next(q for q in harness.topology.queues_for("matching") if q.name == harness.queue_name)
    with broker.connect(harness.settings) as conn:
        message = wait_until(lambda: queue(conn.default_channel).get(no_ack=True), what="relayed message")
    # RabbitMQ validates user_id against the connection's user; the embedded Redis checks nothing, so
    # nothing is claimed there
    expected = (urlsplit(broker_url).username or "guest") if broker.is_amqp(broker_url) else None
    assert message.properties.get("user_id") == expected
    assert json.loads(message.body)["payload"]["batch_id"] == "sender"


def test_relay_keeps_messages_while_broker_is_unreachable(harness: Harness) -> None:
    harness.emit_in_transaction(batch_envelope("b6"))
    assert harness.relay_once("amqp://guest:guest@127.0.0.1:1//") == 0
    assert harness.unsent() == 1
    harness.start_consumer({"batch.submitted": record_effect})
    assert harness.relay_once() == 1
    wait_until(lambda: harness.effect_count("b6") == 1, what="effect after broker is back")


@pytest.mark.postgres
def test_outbox_and_inbox_on_postgres(broker_url: str, namespace: str, make_postgres_db) -> None:  # type: ignore[no-untyped-def]
    h = Harness(broker_url, namespace, make_postgres_db("msg"))
    try:
        h.start_consumer({"batch.submitted": record_effect})
        h.emit_in_transaction(batch_envelope("pg1"))
        body = batch_envelope("pg2").to_json()
        h.publish_raw(body, message_id="pg-dup")
        h.publish_raw(body, message_id="pg-dup")
        assert h.relay_once() == 1
        wait_until(lambda: h.effect_count("pg1") == 1 and h.effect_count("pg2") == 1, what="effects")
        wait_until(lambda: h.queue_depth() == 0, what="queue drained")
        assert h.effect_count() == 2
    finally:
        h.stop()


def test_consumer_killed_after_commit_before_ack_applies_redelivery_once(
        broker_url: str, namespace: str, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'svc.sqlite3'}"
    h = Harness(broker_url, namespace, db_url)
    marker = tmp_path / "killed"
    env = {**os.environ, "WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_NAMESPACE": namespace,
           "WERKPLAATS_DATABASE_URL": db_url, "WERKPLAATS_VISIBILITY_TIMEOUT": "2",
           "WERKPLAATS_FAULT": f"kill-after-commit:matching.from-intake:batch.submitted:{marker}"}
    cmd = [sys.executable, str(HERE / "consumer_process.py")]
    first = None
    try:
        first = subprocess.Popen(cmd, env=env)
        batch_id = f"k-{uuid.uuid4().hex[:6]}"
        h.publish_raw(batch_envelope(batch_id).to_json(), message_id=batch_id)
        assert first.wait(30) == -signal.SIGKILL
        assert marker.exists()
        assert h.effect_count(batch_id) == 1  # committed before the kill
        second = subprocess.Popen(cmd, env=env)
        try:
            wait_until(lambda: h.queue_depth() == 0 and _redelivered(h, batch_id), timeout=30,
                       what="redelivery acknowledged")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        assert h.effect_count(batch_id) == 1
    finally:
        if first is not None and first.poll() is None:  # the fault did not fire: never leave it running
            first.kill()
            first.wait()
        h.stop()


def _redelivered(h: Harness, batch_id: str) -> bool:
    log = Path(h.settings.database_url.removeprefix("sqlite:///")).with_name("acked.log")
    return log.exists() and batch_id in log.read_text()
