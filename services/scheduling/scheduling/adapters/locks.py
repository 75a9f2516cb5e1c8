"""Serialised kickoff planning. Two plans (or a plan and an acceptance) that share a coordinator, firm or
team must not both read the same free slots: each takes PostgreSQL transaction-level advisory locks on
the coordinator, then on the firms and teams it plans, before it reads the kickoffs already booked. Locks
are always taken in one global order (coordinators, firms, teams; each sorted), so two planners never
wait on each other in a cycle, and they are released at commit or rollback. SQLite needs none: every
write transaction there starts with BEGIN IMMEDIATE, which serialises writers already."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

ORDER = ("coordinator", "firm", "team")


def lock_key(kind: str, ident: str) -> int:
    """A stable signed 64-bit key (pg_advisory_xact_lock's argument) for one resource."""
    digest = hashlib.sha256(f"werkplaats.scheduling.kickoffs:{kind}:{ident}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_for_planning(session: Session, *, coordinators: Iterable[str] = (), firms: Iterable[str] = (),
                      teams: Iterable[str] = ()) -> int:
    """Wait for and hold (until the transaction ends) the planning locks of these resources; returns how
    many were taken. A caller that takes locks in two steps must not go back to an earlier kind."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    taken = 0
    for kind, ids in zip(ORDER, (coordinators, firms, teams), strict=True):
        for ident in sorted(set(ids)):
            session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(kind, ident)})
            taken += 1
    return taken
