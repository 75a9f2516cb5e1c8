"""Dead letters seen and replayed by an operator (DESIGN.md §3, rule 5): nothing is dropped silently.

Every queue ``<consumer>.from-<producer>`` has its dead-letter queue ``<queue>.dlq`` (topology.py). A
message lands there when the consumer refuses it (with ``x-death-reason`` and ``x-original-queue``, see
consumer.py) or when RabbitMQ's own delivery limit of a quorum queue is reached (with RabbitMQ's
``x-death`` header).

- **list** and **show** browse without taking anything: the messages are fetched unacknowledged and given
  back, in their order, when the channel closes.
- **replay** puts a dead letter back into its original queue through the retry exchange (the consumer's
  own broker user, so the consumer takes it as its own retry) with a fresh attempt budget, and only once
  the broker confirmed that copy, writes the audit row ``dead_letter_replays`` and removes the dead letter.
  A crash in between leaves the dead letter where it was and at most one extra copy, which the consumer's
  inbox ignores. A message refused for its sender is never replayed (a replay would launder it).

``python -m <service> dlq list|show|replay`` is the command; the operator API (``/dead-letters``) uses the
same functions.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from kombu.connection import Connection
from kombu.message import Message
from kombu.messaging import Producer
from sqlalchemy.engine import Engine

from .broker import sender_id
from .db import DEAD_LETTER_REPLAYS, utcnow
from .topology import Topology

LIST_LIMIT = 1000
NEVER_REPLAYED = ("unauthorised sender",)
# Headers of a dead letter that its replayed copy does not carry: a replay starts a fresh attempt budget.
DROPPED_HEADERS = ("x-death-reason", "x-original-queue", "x-attempts", "x-death", "x-first-death-queue",
                   "x-first-death-reason", "x-first-death-exchange", "x-last-death-queue", "x-last-death-reason",
                   "x-last-death-exchange", "x-delivery-count")


def replays_table(any_messaging_table: sa.Table) -> sa.Table:
    """The audit record of every replay (declared with the messaging tables, db.py)."""
    return any_messaging_table.metadata.tables[DEAD_LETTER_REPLAYS]


@dataclass(frozen=True)
class DeadLetter:
    queue: str  # the original queue, where a replay puts it back
    message_id: str
    type: str | None
    reason: str
    attempts: int | None
    body: str
    headers: dict[str, Any] = field(repr=False)

    @property
    def refusal(self) -> str | None:
        """Why this dead letter may not be replayed, or None."""
        if self.reason.startswith(NEVER_REPLAYED):
            return "refused for its sender: a replay would pass it off as the consumer's own retry"
        return None

    def summary(self) -> dict[str, Any]:
        return {"queue": self.queue, "message_id": self.message_id, "type": self.type, "reason": self.reason,
                "attempts": self.attempts, "replayable": self.refusal is None}

    def detail(self) -> dict[str, Any]:
        try:
            body: Any = json.loads(self.body)
        except ValueError:
            body = self.body
        headers = {k: v for k, v in self.headers.items() if isinstance(v, str | int | float | bool)}
        return {**self.summary(), "headers": headers, "body": body}


@dataclass
class ReplayResult:
    replayed: list[DeadLetter] = field(default_factory=list)
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"replayed": [d.summary() for d in self.replayed],
                "refused": [{**d.summary(), "refusal": why} for d, why in self.refused],
                "missing": self.missing}


def _text(body: Any) -> str:
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body).decode("utf-8", errors="replace")
    return str(body)


def _dead_letter(queue: str, message: Message) -> DeadLetter:
    headers = dict(message.headers or {})
    body = _text(message.body)
    reason = headers.get("x-death-reason")
    if not reason:  # dead-lettered by RabbitMQ itself (a quorum queue's delivery limit)
        deaths = headers.get("x-death") or []
        first = deaths[0] if deaths and isinstance(deaths[0], dict) else {}
        reason = f"broker: {first.get('reason') or headers.get('x-first-death-reason') or 'unknown'}"
    kind = headers.get("type")
    if not isinstance(kind, str):
        try:
            decoded = json.loads(body)
            kind = decoded.get("type") if isinstance(decoded, dict) else None
        except ValueError:
            kind = None
    attempts = headers.get("x-attempts")
    return DeadLetter(queue=queue, message_id=str(message.properties.get("message_id") or ""),
                      type=kind if isinstance(kind, str) else None, reason=str(reason)[:500],
                      attempts=int(attempts) if isinstance(attempts, int) else None, body=body, headers=headers)


class DeadLetterQueues:
    """The dead-letter queues of one consuming service."""

    def __init__(self, connection: Connection, topology: Topology, service: str) -> None:
        self.connection = connection
        self.topology = topology
        self.service = service

    def queues(self) -> list[str]:
        return [q.name for q in self.topology.queues_for(self.service)]

    @contextmanager
    def _fetched(self, queue: str, limit: int) -> Iterator[list[tuple[DeadLetter, Message]]]:
        """The first ``limit`` dead letters of ``queue``, held unacknowledged; those not acknowledged go
        back, in order, when the channel closes."""
        channel = self.connection.channel()
        try:
            bound = self.topology.dead_letter_queue(queue)(channel)
            bound.declare()
            held: list[tuple[DeadLetter, Message]] = []
            while len(held) < limit:
                message = bound.get(no_ack=False)
                if message is None:
                    break
                held.append((_dead_letter(queue, message), message))
            yield held
        finally:
            channel.close()

    def browse(self, queue: str | None = None, limit: int = LIST_LIMIT) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for name in self.selected(queue):
            with self._fetched(name, limit - len(found)) as held:
                found += [letter for letter, _ in held]
            if len(found) >= limit:
                break
        return found

    def show(self, message_id: str) -> DeadLetter | None:
        return next((d for d in self.browse() if d.message_id == message_id), None)

    def replay(self, message_ids: list[str] | None, record: Callable[[DeadLetter], None],
               queue: str | None = None) -> ReplayResult:
        """Replay the named dead letters (all of them with None); ``record`` writes the audit row and
        must raise if it cannot: the dead letter then stays."""
        result = ReplayResult()
        wanted = None if message_ids is None else set(message_ids)
        seen: set[str] = set()
        for name in self.selected(queue):
            with self._fetched(name, LIST_LIMIT) as held:
                for letter, message in held:
                    if wanted is not None and letter.message_id not in wanted:
                        continue
                    seen.add(letter.message_id)
                    refusal = letter.refusal
                    if refusal is not None:
                        result.refused.append((letter, refusal))
                        continue
                    self._publish(letter)
                    record(letter)
                    message.ack()
                    result.replayed.append(letter)
        result.missing = sorted((wanted or set()) - seen)
        return result

    def selected(self, queue: str | None) -> list[str]:
        names = self.queues()
        if queue is None:
            return names
        full = queue if queue in names else f"{self.topology.namespace}{queue}"
        if full not in names:
            raise ValueError(f"{queue!r} is not a queue of {self.service}: one of "
                             f"{', '.join(n.removeprefix(self.topology.namespace) for n in names)}")
        return [full]

    def _publish(self, letter: DeadLetter) -> None:
        headers = {k: v for k, v in letter.headers.items() if k not in DROPPED_HEADERS}
        replays = headers.get("x-replays")
        headers.update({"x-replays": (replays if isinstance(replays, int) else 0) + 1,
                        "x-replayed-after": letter.reason[:300]})
        sender = sender_id(self.connection)
        channel = self.connection.channel()
        try:
            Producer(channel).publish(
                letter.body, exchange=self.topology.retry, routing_key=letter.queue,
                content_type="application/json", content_encoding="utf-8", delivery_mode=2,
                headers=headers, message_id=letter.message_id or None, declare=[self.topology.retry],
                **({"user_id": sender} if sender else {}),
            )
        finally:
            channel.close()


def audit_writer(engine: Engine, table: sa.Table, actor: str) -> Callable[[DeadLetter], None]:
    def record(letter: DeadLetter) -> None:
        with engine.begin() as conn:
            conn.execute(table.insert().values(
                id=str(uuid.uuid4()), replayed_at=utcnow(), queue=letter.queue, message_id=letter.message_id,
                type=letter.type, reason=letter.reason, actor=actor[:100]))

    return record


# ---- the command -----------------------------------------------------------------------------


def command(argv: list[str], service: str, open_infrastructure: Callable[[], Any]) -> int:
    """``python -m <service> dlq list|show|replay``: prints JSON, answers 0, or 1 when something asked
    for was refused or not found."""
    parser = argparse.ArgumentParser(prog=f"python -m {service} dlq",
                                     description="see and replay the dead letters of this service's queues")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="the dead letters (without their bodies), per queue")
    listing.add_argument("--queue", help="only this queue, e.g. matching.from-intake")
    show = sub.add_parser("show", help="one dead letter with its headers and body")
    show.add_argument("message_id")
    replay = sub.add_parser("replay", help="put dead letters back into their original queue (audited)")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("message_ids", nargs="*", default=[], metavar="message_id")
    which.add_argument("--all", action="store_true", help="every replayable dead letter")
    replay.add_argument("--queue", help="only this queue, e.g. matching.from-intake")
    args = parser.parse_args(argv)
    if args.command == "replay" and not args.all and not args.message_ids:
        parser.error("name the message ids to replay, or --all")

    infra = open_infrastructure()
    with infra.connection() as conn:
        conn.ensure_connection(max_retries=3)
        dlqs = DeadLetterQueues(conn, infra.topology, service)
        try:
            if args.command == "list":
                letters = dlqs.browse(args.queue)
                counts = {q.removeprefix(infra.topology.namespace): 0 for q in dlqs.selected(args.queue)}
                for letter in letters:
                    counts[letter.queue.removeprefix(infra.topology.namespace)] += 1
                print(json.dumps({"counts": counts, "dead_letters": [d.summary() for d in letters]}, indent=2))
                return 0
            if args.command == "show":
                found = dlqs.show(args.message_id)
                if found is None:
                    print(json.dumps({"error": f"no dead letter with message id {args.message_id}"}),
                          file=sys.stderr)
                    return 1
                print(json.dumps(found.detail(), indent=2))
                return 0
            record = audit_writer(infra.engine, replays_table(infra.outbox), "cli")
            result = dlqs.replay(None if args.all else list(args.message_ids), record, args.queue)
        except ValueError as exc:
            parser.error(str(exc))
    print(json.dumps(result.as_dict(), indent=2))
    return 1 if result.refused or result.missing else 0
