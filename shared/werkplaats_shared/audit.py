"""The personal-data access log every service keeps in its own database: every read or change of
personal data, every refused attempt on a protected route (401, 403, 404) and every erasure, with who,
what, when and the outcome. Never the data itself: the subject is named by its pseudonymous id.

The table is append-only. The code has no update or delete path for it, and a trigger (SQLite and
PostgreSQL) refuses UPDATE and DELETE, so even an operator's stray statement fails.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from .auth import PUBLIC_PATHS, Principal
from .db import utcnow

log = logging.getLogger(__name__)

TABLE = "personal_data_access_log"
ACTIONS = ("read", "write", "denied", "erase", "retention")
DENIED_STATUSES = frozenset({401, 403, 404})


def access_log_table(metadata: sa.MetaData) -> sa.Table:
    table = sa.Table(
        TABLE, metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("subject_type", sa.String(40), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=True, index=True),
        sa.Column("actor_organisation_id", sa.String(36), nullable=True),
        sa.Column("actor_role", sa.String(20), nullable=True),
        sa.Column("actor_key_id", sa.String(32), nullable=True),
        sa.Column("method", sa.String(10), nullable=True),
        sa.Column("route", sa.String(200), nullable=True),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("message_id", sa.String(64), nullable=True),
    )
    for statement in append_only_ddl(TABLE):
        sa.event.listen(table, "after_create", sa.DDL(statement.sql).execute_if(dialect=statement.dialect))
    return table


@dataclass(frozen=True)
class DialectStatement:
    dialect: str
    sql: str


def append_only_ddl(table: str) -> list[DialectStatement]:
    """Triggers that refuse UPDATE and DELETE on ``table`` (for metadata.create_all and migrations)."""
    refuse = f"{table} is append-only"
    statements = [DialectStatement("sqlite", (
        f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{refuse}'); END")) for verb in ("UPDATE", "DELETE")]
    statements += [
        DialectStatement("postgresql", (
            f"CREATE OR REPLACE FUNCTION {table}_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{refuse}'; END $$")),
        DialectStatement("postgresql", (
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_refuse()")),
    ]
    return statements


def drop_append_only_ddl(table: str) -> list[DialectStatement]:
    return [DialectStatement("sqlite", f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
            for verb in ("update", "delete")] + [
        DialectStatement("postgresql", f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"),
        DialectStatement("postgresql", f"DROP FUNCTION IF EXISTS {table}_refuse()"),
    ]


def record(target: Session | Connection, table: sa.Table, *, action: str, subject_type: str,
           subject_id: str | None, actor: Principal | None = None, actor_organisation_id: str | None = None,
           method: str | None = None, route: str | None = None, status: int | None = None,
           message_id: str | None = None, at: datetime | None = None) -> None:
    """Append one entry, in the caller's transaction (an erasure and its record commit together)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if subject_id is not None:  # an id taken from a refused URL: as PostgreSQL can store it (no NUL, 64 at most)
        subject_id = subject_id.replace("\x00", "\\0")[:64]
    target.execute(_insert(table), {
        "at": at or utcnow(), "action": action, "subject_type": subject_type, "subject_id": subject_id,
        "actor_organisation_id": actor.organisation_id if actor else actor_organisation_id,
        "actor_role": actor.role if actor else None, "actor_key_id": actor.key_id if actor else None,
        "method": method, "route": route, "status": status, "message_id": message_id,
    })


@functools.cache
def _insert(table: sa.Table) -> sa.Insert:
    """The entry's INSERT, built once per table: a personal-data route writes one on every request."""
    return table.insert()


def entries(engine: Engine, table: sa.Table, **equal: Any) -> list[dict[str, Any]]:
    query = sa.select(table).order_by(table.c.id)
    for name, value in equal.items():
        query = query.where(table.c[name] == value)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def install_access_audit(app: Flask, engine: Engine, table: sa.Table, personal: Mapping[str, str]) -> None:
    """Log every request to a personal-data route (``personal`` maps a URL rule to the kind of data it
    serves) and every refused request (401, 403, 404) to any route of the service.

    The subject is the object id in the URL, or else the calling organisation (its own contact, its own
    profile). A request whose entry cannot be written fails (500): no unlogged access."""

    @app.after_request
    def _audit(response: Response) -> Response:
        rule = request.url_rule
        path = request.path
        if path in PUBLIC_PATHS or request.method == "OPTIONS":
            return response
        denied = response.status_code in DENIED_STATUSES
        subject_type = personal.get(rule.rule) if rule is not None else None
        if not denied and (subject_type is None or response.status_code >= 400):
            return response
        if denied and rule is None and response.status_code == 404:
            return response  # no such route: nothing protected was asked for
        principal: Principal | None = g.get("principal")
        view_args = request.view_args or {}
        object_ids = [str(v) for k, v in view_args.items() if k.endswith("_id")]
        subject_id = object_ids[-1] if object_ids else (principal.organisation_id if principal else None)
        if denied:
            action = "denied"
        else:
            action = "read" if request.method == "GET" else "write"
        with engine.begin() as conn:
            record(conn, table, action=action, subject_type=subject_type or "route", subject_id=subject_id,
                   actor=principal, method=request.method, route=rule.rule if rule is not None else None,
                   status=response.status_code)
        return response
