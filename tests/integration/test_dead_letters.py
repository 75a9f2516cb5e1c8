"""Dead letters can be seen and replayed (issue 19, item 4): listing takes nothing away, a replay puts the
message back into its original queue with a fresh attempt budget and an audit row, and nothing is dropped
silently (a replay that dies again is back in the dead-letter queue, with its reason)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from matching import bootstrap
from matching.entrypoints.api import create_matching_app
from sqlalchemy.orm import Session
from werkplaats_shared import broker
from werkplaats_shared.auth import generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.deadletters import DeadLetter, DeadLetterQueues, audit_writer, replays_table

from .harness import Harness, batch_envelope, outbox, record_effect, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def harness(broker_url: str, namespace: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(broker_url, namespace, f"sqlite:///{tmp_path / 'svc.sqlite3'}", max_deliveries=2)
    yield h
    h.stop()


def _dead_letter_two(h: Harness, fixed: dict[str, bool]) -> tuple[str, str]:
    """A batch whose handler fails (until ``fixed``) and a body that is not JSON: both end as dead letters."""
    def handler(session: Session, envelope: Envelope) -> None:
        if envelope.payload["batch_id"] == "poison" and not fixed["yes"]:
            raise KeyError("a bug, fixed in the next release")
        record_effect(session, envelope)

    h.start_consumer({"batch.submitted": handler})
    h.publish_raw(batch_envelope("poison").to_json(), message_id="m-poison")
    h.publish_raw(b"\xff not json", message_id="m-junk")
    h.publish_raw(batch_envelope("fine").to_json(), message_id="m-fine")
    wait_until(lambda: h.effect_count("fine") == 1, what="the good message")
    with broker.connect(h.settings) as conn:
        dlqs = DeadLetterQueues(conn, h.topology, "matching")
        wait_until(lambda: len(dlqs.browse()) == 2, what="two dead letters")
    return "m-poison", "m-junk"


def _replays(h: Harness) -> list[dict[str, Any]]:
    table = replays_table(outbox)
    with h.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.replayed_at))]


def test_dead_letters_are_listed_shown_and_replayed_with_an_audit_row(harness: Harness) -> None:
    fixed = {"yes": False}
    poison, junk = _dead_letter_two(harness, fixed)
    with broker.connect(harness.settings) as conn:
        dlqs = DeadLetterQueues(conn, harness.topology, "matching")
        listed = {d.message_id: d for d in dlqs.browse()}
        assert set(listed) == {poison, junk}
        assert listed[poison].reason == "gave up after 2 attempts: KeyError"
        assert listed[poison].type == "batch.submitted" and listed[poison].queue == harness.queue_name
        assert listed[junk].reason.startswith("undecodable")
        assert {d.message_id for d in dlqs.browse()} == {poison, junk}  # listing took nothing away
        shown = dlqs.show(poison)
        assert shown is not None
        detail = shown.detail()
        assert detail["body"]["payload"]["batch_id"] == "poison" and detail["replayable"] is True
        assert detail["headers"]["x-original-queue"] == harness.queue_name
        assert dlqs.show("no-such-id") is None

        fixed["yes"] = True  # the release with the fix is out: the operator replays the batch
        result = dlqs.replay([poison, "no-such-id"], audit_writer(harness.engine, replays_table(outbox), "test"))
        assert [d.message_id for d in result.replayed] == [poison] and result.missing == ["no-such-id"]
        wait_until(lambda: harness.effect_count("poison") == 1, what="the replayed batch applied")
        assert [d.message_id for d in dlqs.browse()] == [junk]
        (row,) = _replays(harness)
        assert (row["message_id"], row["queue"], row["type"], row["reason"], row["actor"]) == (
            poison, harness.queue_name, "batch.submitted", "gave up after 2 attempts: KeyError", "test")

        # a replay that dies again is not lost: it is back in the dead-letter queue with its reason
        again = dlqs.replay(None, audit_writer(harness.engine, replays_table(outbox), "test"))
        assert [d.message_id for d in again.replayed] == [junk]
        wait_until(lambda: [d.message_id for d in dlqs.browse()] == [junk], what="the junk dead again")
        (back,) = dlqs.browse()
        assert back.reason.startswith("undecodable") and back.headers.get("x-replays") == 1
        assert len(_replays(harness)) == 2
    assert harness.effect_count() == 2  # fine and poison, each once


def test_a_message_refused_for_its_sender_is_never_replayed() -> None:
    letter = DeadLetter(queue="matching.from-intake", message_id="m", type="batch.submitted",
                        reason="unauthorised sender: user_id 'scheduling' is not intake's broker user 'intake'",
                        attempts=None, body="{}", headers={})
    assert letter.refusal is not None and letter.summary()["replayable"] is False


@pytest.mark.rabbitmq
def test_the_dlq_command_lists_shows_and_replays(rabbitmq_url: str, namespace: str, tmp_path: Path) -> None:
    h = Harness(rabbitmq_url, namespace, f"sqlite:///{tmp_path / 'harness.sqlite3'}", max_deliveries=2)
    try:
        fixed = {"yes": False}
        poison, junk = _dead_letter_two(h, fixed)
        env = {**os.environ, "WERKPLAATS_BROKER_URL": rabbitmq_url, "WERKPLAATS_NAMESPACE": namespace,
               "WERKPLAATS_DATA_DIR": str(tmp_path), "WERKPLAATS_LOG_LEVEL": "WARNING",
               "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path / 'matching.sqlite3'}"}

        def dlq(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "matching", "dlq", *args], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=60)

        listed = dlq("list")
        assert listed.returncode == 0, listed.stderr
        out = json.loads(listed.stdout)
        assert out["counts"]["matching.from-intake"] == 2
        assert {d["message_id"] for d in out["dead_letters"]} == {poison, junk}
        shown = dlq("show", poison)
        assert shown.returncode == 0 and json.loads(shown.stdout)["body"]["payload"]["batch_id"] == "poison"
        assert dlq("show", "nope").returncode == 1
        fixed["yes"] = True
        replayed = dlq("replay", poison)
        assert replayed.returncode == 0, replayed.stderr
        assert [d["message_id"] for d in json.loads(replayed.stdout)["replayed"]] == [poison]
        wait_until(lambda: h.effect_count("poison") == 1, what="the replayed batch applied")
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'matching.sqlite3'}")
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT message_id, actor FROM dead_letter_replays")).all()
        finally:
            engine.dispose()
        assert [tuple(r) for r in rows] == [(poison, "cli")]
        assert dlq("replay").returncode == 2  # neither ids nor --all: a usage error
        assert json.loads(dlq("list", "--queue", "matching.from-intake").stdout)["counts"] == {
            "matching.from-intake": 1}
    finally:
        h.stop()



def test_the_operator_api_lists_shows_and_replays(broker_url: str, namespace: str, tmp_path: Path) -> None:
    h = Harness(broker_url, namespace, f"sqlite:///{tmp_path / 'harness.sqlite3'}", max_deliveries=2)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    infra = bootstrap.bootstrap(Settings.from_env("matching", {
        "WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_NAMESPACE": namespace, "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path / 'matching.sqlite3'}"}))
    try:
        fixed = {"yes": False}
        poison, junk = _dead_letter_two(h, fixed)
        keys = {}
        for role in ("operator", "coordinator"):
            key = generate_key()
            with infra.engine.begin() as conn:
                conn.execute(infra.api_keys.insert().values(
                    key_id=key.key_id, organisation_id=str(uuid.uuid4()), role=role, secret_hash=key.secret_hash,
                    created_at=utcnow()))
            keys[role] = (key.key_id, {"Authorization": f"Bearer {key.plaintext}"})
        client = create_matching_app(infra).test_client()
        operator, coordinator = keys["operator"][1], keys["coordinator"][1]

        assert client.get("/dead-letters", headers=coordinator).status_code == 403
        assert client.post("/dead-letters/replays", json={"all": True}, headers=coordinator).status_code == 403
        assert client.get("/runs", headers=operator).status_code == 403  # the operator is no party
        assert client.get("/dead-letters").status_code == 401
        listed = client.get("/dead-letters", headers=operator)
        assert listed.status_code == 200, listed.get_data(as_text=True)
        body = listed.get_json()
        assert body["counts"]["matching.from-intake"] == 2 and set(body["counts"]) == {
            "matching.from-intake", "matching.from-scheduling"}
        assert {d["message_id"]: d["reason"][:11] for d in body["dead_letters"]} == {
            poison: "gave up aft", junk: "undecodable"}
        assert all(d["queue"] == "matching.from-intake" for d in body["dead_letters"])
        shown = client.get(f"/dead-letters/{poison}", headers=operator).get_json()
        assert shown["body"]["payload"]["batch_id"] == "poison" and shown["replayable"] is True
        assert client.get("/dead-letters/nope", headers=operator).status_code == 404
        bad_queue = client.get("/dead-letters?queue=intake.from-matching", headers=operator)
        assert bad_queue.status_code == 422 and bad_queue.get_json()["errors"][0]["field"] == "queue"
        wrongs: list[dict[str, Any]] = [{}, {"all": True, "message_ids": [poison]}, {"message_ids": []},
                                        {"all": True, "x": 1}]
        for wrong in wrongs:
            assert client.post("/dead-letters/replays", json=wrong, headers=operator).status_code == 422, wrong

        fixed["yes"] = True
        replayed = client.post("/dead-letters/replays", json={"message_ids": [poison, "nope"]}, headers=operator)
        assert replayed.status_code == 200, replayed.get_data(as_text=True)
        result = replayed.get_json()
        assert [d["message_id"] for d in result["replayed"]] == [poison] and result["missing"] == ["nope"]
        wait_until(lambda: h.effect_count("poison") == 1, what="the replayed batch applied")
        with infra.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT message_id, actor, reason FROM dead_letter_replays")).all()
        assert [tuple(r) for r in rows] == [(poison, f"operator:{keys['operator'][0]}",
                                             "gave up after 2 attempts: KeyError")]
        after = client.get("/dead-letters", headers=operator).get_json()
        assert [d["message_id"] for d in after["dead_letters"]] == [junk]
    finally:
        infra.engine.dispose()
        h.stop()
        root.handlers[:] = handlers
        root.setLevel(level)


def test_an_operator_organisation_from_the_admin_command_reaches_only_the_operator_routes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from intake import bootstrap as intake_bootstrap
    from intake.entrypoints.cli import admin
    from matching.entrypoints.handlers import HANDLERS
    from werkplaats_shared.contracts import parse_envelope

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    env = {"WERKPLAATS_DATA_DIR": str(tmp_path)}
    intake = intake_bootstrap.bootstrap(Settings.from_env("intake", env))
    matching = bootstrap.bootstrap(Settings.from_env("matching", env))
    try:
        monkeypatch.setenv("WERKPLAATS_DATA_DIR", str(tmp_path))  # the admin command reads the environment
        admin(["create-organisation", "--name", "Beheer", "--role", "operator"])
        with intake.engine.connect() as conn:
            (body,) = conn.execute(sa.select(intake.outbox.c.body)
                                   .where(intake.outbox.c.type == "apikey.issued")).scalars()
        envelope = parse_envelope(json.loads(body))  # the contract accepts the operator role
        assert envelope.payload["role"] == "operator"
        with matching.session_factory.begin() as session:
            HANDLERS[envelope.type](session, envelope)
        org_id = envelope.payload["organisation_id"]
        key = generate_key()  # the admin command printed its key once; a second key of the organisation calls
        with matching.engine.begin() as conn:
            conn.execute(matching.api_keys.insert().values(key_id=key.key_id, organisation_id=org_id,
                                                           role="operator", secret_hash=key.secret_hash,
                                                           created_at=utcnow()))
        client = create_matching_app(matching).test_client()
        auth = {"Authorization": f"Bearer {key.plaintext}"}
        assert client.get("/runs", headers=auth).status_code == 403
        assert client.get("/matches", headers=auth).status_code == 403
        refused = client.get("/dead-letters?queue=nope", headers=auth)  # past authorization: the queue is checked
        assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "queue"
    finally:
        intake.engine.dispose()
        matching.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)
