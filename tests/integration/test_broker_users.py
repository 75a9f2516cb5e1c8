"""One broker user per service, on the real RabbitMQ: the production definitions
(deploy/rabbitmq/definitions.json) are imported into a fresh virtual host with fresh users, and each
service connects as its own user, as in docker-compose.yml.

RabbitMQ refuses what a service's permissions do not allow and any publish whose user_id is not the
sender's own user; consumers dead-letter what does not come from the producer's broker user.

The virtual host and users are made with rabbitmqctl, so the broker of WERKPLAATS_TEST_RABBITMQ_URL
must be the local node; both are deleted afterwards (queues go with the virtual host).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from amqp.exceptions import AccessRefused, PreconditionFailed
from kombu.connection import Connection
from kombu.messaging import Producer
from sqlalchemy.orm import Session
from werkplaats_shared import broker
from werkplaats_shared.config import Settings
from werkplaats_shared.consumer import MessageConsumer
from werkplaats_shared.contracts import Envelope
from werkplaats_shared.db import make_engine, make_session_factory
from werkplaats_shared.metrics import QueueDepthCollector, registry_for
from werkplaats_shared.publisher import Publisher
from werkplaats_shared.topology import SERVICES

from .harness import batch_envelope, effects, inbox, metadata, record_effect, wait_until

pytestmark = pytest.mark.rabbitmq

DEFINITIONS = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "definitions.json"
IN_CI = os.environ.get("CI", "").lower() == "true"


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


@dataclass
class BrokerUsers:
    """A virtual host loaded with the production definitions; the URL of each service's own user and of
    the administrator (the user of WERKPLAATS_TEST_RABBITMQ_URL)."""

    vhost: str
    users: dict[str, str]
    urls: dict[str, str]
    admin_url: str
    binding_count: int

    def settings(self, service: str, database_url: str = "sqlite://") -> Settings:
        mapping = ",".join(f"{s}={u}" for s, u in self.users.items())
        return Settings.from_env(service, {
            "WERKPLAATS_BROKER_URL": self.urls[service], "WERKPLAATS_BROKER_PRODUCER_USERS": mapping,
            "WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_MAX_DELIVERIES": "3"})


def definitions_for_test_vhost(vhost: str, users: dict[str, str], passwords: dict[str, str],
                               admin: str) -> dict[str, Any]:
    """The production definitions, moved to ``vhost``, with fresh users; the administrator entry becomes
    permissions for the existing user ``admin`` (importing it as a user would reset its password)."""
    text = DEFINITIONS.read_text(encoding="utf-8")
    for service in SERVICES:
        text = text.replace(f"${{{service.upper()}_BROKER_PASSWORD}}", passwords[service])
    definitions: dict[str, Any] = json.loads(text.replace("${RABBITMQ_DEFAULT_USER}", admin))
    definitions["vhosts"] = [{"name": vhost}]
    definitions["users"] = [dict(u, name=users[u["name"]]) for u in definitions["users"] if u["name"] in users]
    definitions["permissions"] = [dict(p, user=users.get(p["user"], p["user"]))
                                  for p in definitions["permissions"]]
    for kind in ("permissions", "exchanges", "queues", "bindings"):
        for entry in definitions[kind]:
            assert entry["vhost"] == "/"
            entry["vhost"] = vhost
    return definitions


@pytest.fixture(scope="module")
def broker_users(rabbitmq_url: str) -> Iterator[BrokerUsers]:
    if shutil.which("rabbitmqctl") is None:
        reason = "rabbitmqctl not found: this test makes its own virtual host and users on the local node"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    url = urlsplit(rabbitmq_url)
    admin = url.username or "guest"
    tag = secrets.token_hex(4)
    vhost = f"wp-test-users-{tag}"
    users = {s: f"wp-test-{tag}-{s}" for s in SERVICES}
    passwords = {s: secrets.token_urlsafe(12) for s in SERVICES}
    definitions = definitions_for_test_vhost(vhost, users, passwords, admin)
    host = f"{url.hostname or '127.0.0.1'}:{url.port or 5672}"
    state = BrokerUsers(
        vhost, users, {s: f"amqp://{users[s]}:{passwords[s]}@{host}/{vhost}" for s in SERVICES},
        f"amqp://{admin}:{url.password or 'guest'}@{host}/{vhost}", len(definitions["bindings"]))
    # rabbitmqctl runs as the rabbitmq user when called by root: the file must be readable by it
    fd, path = tempfile.mkstemp(prefix="wp-test-definitions-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(definitions, fh)
        os.chmod(path, 0o644)
        rabbitmqctl("import_definitions", path)
        # the import runs in the background: wait for its last step, the bindings
        wait_until(lambda: _binding_count(vhost) >= state.binding_count, timeout=15, what="definitions imported")
        os.remove(path)
        yield state
    finally:
        if os.path.exists(path):
            os.remove(path)
        errors = []
        for args in (("delete_vhost", vhost), *(("delete_user", user) for user in users.values())):
            try:
                rabbitmqctl(*args)
            except RuntimeError as exc:
                if "does not exist" not in str(exc) and "not found" not in str(exc).lower():
                    errors.append(str(exc))
        assert not errors, errors


def _binding_count(vhost: str) -> int:
    try:
        lines = rabbitmqctl("list_bindings", "-p", vhost, "source_name", "destination_name").splitlines()
    except RuntimeError:
        return 0
    return sum(1 for line in lines[1:] if line.split("\t")[0])  # not the default exchange's


class Consumer:
    """Matching's real consumer, connected as matching's broker user, recording what its handler saw."""

    def __init__(self, settings: Settings, database_url: str, fail_first: set[str] | None = None) -> None:
        self.settings = settings
        self.engine = make_engine(database_url)
        metadata.create_all(self.engine)
        self.session_factory = make_session_factory(self.engine)
        self.handled: list[str] = []
        self._fail_first = set(fail_first or ())
        broker.declare_topology(settings)  # as the service does at start, with its own user's rights
        self.connection = broker.connect(settings)
        self.consumer = MessageConsumer(
            connection=self.connection, topology=broker.topology_for(settings), service=settings.service,
            session_factory=self.session_factory, inbox=inbox, handlers={"batch.submitted": self.handle},
            max_deliveries=settings.max_deliveries)
        self.thread = threading.Thread(target=self.consumer.run, daemon=True)
        self.thread.start()

    def handle(self, session: Session, envelope: Envelope) -> None:
        batch_id = envelope.payload["batch_id"]
        self.handled.append(batch_id)
        if batch_id in self._fail_first:
            self._fail_first.discard(batch_id)
            raise RuntimeError("transient")
        record_effect(session, envelope)

    def effect_count(self, batch_id: str) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(effects.select().where(effects.c.batch_id == batch_id)).all())

    def stop(self) -> None:
        self.consumer.should_stop = True
        self.thread.join(10)
        self.connection.release()
        self.engine.dispose()


@pytest.fixture
def matching_consumer(broker_users: BrokerUsers, tmp_path: Path) -> Iterator[Callable[..., Consumer]]:
    started: list[Consumer] = []

    def start(fail_first: set[str] | None = None) -> Consumer:
        database_url = f"sqlite:///{tmp_path / 'matching.sqlite3'}"
        consumer = Consumer(broker_users.settings("matching", database_url), database_url, fail_first)
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.stop()


def publish_as(broker_users: BrokerUsers, service: str, producer: str, envelope: Envelope) -> None:
    """Publish with the shared Publisher, connected as ``service``'s own broker user, to ``producer``'s
    exchange."""
    settings = broker_users.settings(service)
    with broker.connect(settings) as conn:
        Publisher(conn, broker.topology_for(settings), producer).publish_raw(
            envelope.to_json(), message_type=envelope.type, message_id=envelope.message_id)


def publish_raw(url: str, envelope: Envelope, *, exchange: str, routing_key: str, **properties: Any) -> None:
    with Connection(url, connect_timeout=5, transport_options={"confirm_publish": True}) as conn:
        Producer(conn.default_channel).publish(
            envelope.to_json(), exchange=exchange, routing_key=routing_key, content_type="application/json",
            content_encoding="utf-8", delivery_mode=2, message_id=envelope.message_id, **properties)


def dead_letters(url: str, queue: str, expected: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with Connection(url, connect_timeout=5) as conn:
        channel = conn.default_channel

        def take() -> bool:
            message = channel.basic_get(f"{queue}.dlq", no_ack=True)
            if message is not None:
                found.append({"body": json.loads(message.body), "headers": dict(message.headers or {}),
                              "user_id": message.properties.get("user_id")})
            return len(found) >= expected

        wait_until(take, timeout=10, what=f"{expected} dead letter(s) in {queue}.dlq")
    return found


def queue_depth(url: str, queue: str) -> int:
    with Connection(url, connect_timeout=5) as conn:
        _, count, _ = conn.default_channel.queue_declare(queue, passive=True)
        return int(count)


def test_the_producers_own_user_is_handled_and_a_failed_attempt_is_retried(
        broker_users: BrokerUsers, matching_consumer: Callable[..., Consumer]) -> None:
    consumer = matching_consumer(fail_first={"retried"})
    publish_as(broker_users, "intake", "intake", batch_envelope("from-intake"))
    publish_as(broker_users, "intake", "intake", batch_envelope("retried"))
    wait_until(lambda: consumer.effect_count("from-intake") == 1, what="intake's message handled")
    # the retry copy goes through the retry exchange as matching's own user, and is accepted as such
    wait_until(lambda: consumer.effect_count("retried") == 1, what="the retry handled")
    assert consumer.handled.count("retried") == 2


@pytest.mark.parametrize(("what", "operation"), [
    ("publish to intake's exchange", lambda ch: Producer(ch).publish("{}", exchange="intake.events",
                                                                     routing_key="batch.submitted")),
    ("publish through the default exchange", lambda ch: Producer(ch).publish(
        "{}", exchange="", routing_key="matching.from-intake")),
    ("read intake's queue", lambda ch: ch.basic_get("intake.from-matching")),
    ("declare intake's exchange", lambda ch: ch.exchange_declare("intake.events", "topic", durable=True)),
    ("delete the retry exchange", lambda ch: ch.exchange_delete("werkplaats.retry")),
    ("declare a queue of its own choosing", lambda ch: ch.queue_declare("matching-side-door", durable=True)),
])
def test_a_service_user_is_refused_what_is_not_its_own(
        broker_users: BrokerUsers, what: str, operation: Callable[[Any], Any]) -> None:
    with Connection(broker_users.urls["matching"], connect_timeout=5,
                    transport_options={"confirm_publish": True}) as conn:
        with pytest.raises(AccessRefused):
            operation(conn.default_channel)
    assert queue_depth(broker_users.admin_url, "matching.from-intake") == 0


def test_matchings_user_cannot_publish_as_intake(broker_users: BrokerUsers) -> None:
    with pytest.raises(AccessRefused, match=r"exchange 'intake\.events'.* refused"):
        publish_as(broker_users, "matching", "intake", batch_envelope("posing-as-intake"))
    for queue in ("matching.from-intake", "scheduling.from-intake"):
        assert queue_depth(broker_users.admin_url, queue) == 0


def test_a_forged_user_id_is_refused_by_the_broker(broker_users: BrokerUsers) -> None:
    with pytest.raises(PreconditionFailed, match="user_id property set to"):
        publish_raw(broker_users.urls["matching"], batch_envelope("forged"), exchange="matching.events",
                    routing_key="matches.published", user_id=broker_users.users["intake"])
    assert queue_depth(broker_users.admin_url, "scheduling.from-matching") == 0


def test_messages_not_from_the_producers_user_are_dead_lettered_unhandled(
        broker_users: BrokerUsers, matching_consumer: Callable[..., Consumer]) -> None:
    consumer = matching_consumer()
    admin = urlsplit(broker_users.admin_url).username
    # an administrator puts a message straight into matching's queue
    publish_raw(broker_users.admin_url, batch_envelope("from-admin"), exchange="",
                routing_key="matching.from-intake", user_id=admin)
    publish_raw(broker_users.admin_url, batch_envelope("from-nobody"), exchange="",
                routing_key="matching.from-intake")
    # scheduling sends intake's message type through its own exchange, on a key matching takes from it
    publish_raw(broker_users.urls["scheduling"], batch_envelope("from-scheduling"), exchange="scheduling.events",
                routing_key="match.responded", user_id=broker_users.users["scheduling"])
    publish_as(broker_users, "intake", "intake", batch_envelope("from-intake"))
    wait_until(lambda: consumer.effect_count("from-intake") == 1, what="intake's message handled")

    dead = dead_letters(broker_users.urls["matching"], "matching.from-intake", 2)
    reasons = {d["body"]["payload"]["batch_id"]: d["headers"]["x-death-reason"] for d in dead}
    intake_user = broker_users.users["intake"]
    assert reasons == {
        "from-admin": f"unauthorised sender: user_id {admin!r} is not intake's broker user {intake_user!r}",
        "from-nobody": f"unauthorised sender: user_id None is not intake's broker user {intake_user!r}",
    }
    (dead_from_scheduling,) = dead_letters(broker_users.urls["matching"], "matching.from-scheduling", 1)
    assert dead_from_scheduling["headers"]["x-death-reason"] == (
        f"unauthorised sender: batch.submitted v1 comes from intake's broker user {intake_user!r}, "
        f"not {broker_users.users['scheduling']!r}")
    assert all(d["headers"]["x-original-queue"].startswith("matching.from-") for d in [*dead, dead_from_scheduling])
    assert consumer.handled == ["from-intake"]


def test_a_service_reads_the_depth_of_its_queues_and_dead_letter_queues_as_its_own_user(
        broker_users: BrokerUsers) -> None:
    """The queue-depth metrics (werkplaats_shared.metrics.QueueDepthCollector) with production's permissions:
    matching's own user counts its queues and their dead-letter queues (a passive declare) and nothing else."""
    settings = broker_users.settings("matching")
    topology = broker.topology_for(settings)
    queues = [(q.name, q, topology.dead_letter_queue(q.name)) for q in topology.queues_for("matching")]
    registry = registry_for(QueueDepthCollector("matching", lambda: broker.connect(settings), queues))

    def depth(metric: str, queue: str) -> float | None:
        return registry.get_sample_value(metric, {"service": "matching", "queue": queue})

    assert depth("werkplaats_dead_letter_queue_messages", "matching.from-intake") == 0
    try:
        publish_raw(broker_users.admin_url, batch_envelope("waiting"), exchange="", routing_key="matching.from-intake")
        publish_raw(broker_users.admin_url, batch_envelope("dead"), exchange="",
                    routing_key="matching.from-intake.dlq")
        wait_until(lambda: depth("werkplaats_queue_messages", "matching.from-intake") == 1, what="depth 1")
        wait_until(lambda: depth("werkplaats_dead_letter_queue_messages", "matching.from-intake") == 1,
                   what="dead-letter queue depth 1")
        assert depth("werkplaats_dead_letter_queue_messages", "matching.from-scheduling") == 0
    finally:
        with Connection(broker_users.admin_url, connect_timeout=5) as conn:
            for queue in ("matching.from-intake", "matching.from-intake.dlq"):
                conn.default_channel.queue_purge(queue)
