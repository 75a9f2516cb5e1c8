"""Many assignments of one firm in one request (``POST /assignments/bulk``): all of them, or none.

Every item follows the rules of ``POST /assignments`` (``services.submit_assignment``): the same request
schema, the same routing (an assignment of a firm outside the requested workspace's working area goes to
the workspace that covers the firm, or the firm is referred), the same period, team-range and preference
checks. What differs is the cost per item: the firm, the working areas, every workspace and every
institution the items name are read once for the whole request, the assignments are written with one
multi-row INSERT (executemany) and their ``assignment.submitted`` messages with another, in the same
transaction, so an item costs no statement of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from werkplaats_shared.auth import Principal
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import utcnow

from ..adapters import orm
from ..domain.model import (
    AssignmentStatus,
    DomainError,
    Routing,
    check_period,
    check_preferred_levels,
    check_team_range,
    route,
)
from . import services
from .services import Emit

EmitAll = Callable[[Sequence[Envelope]], None]
_ORGS = cast(sa.Table, orm.Organisation.__table__)
_WORKSPACES = cast(sa.Table, orm.Workspace.__table__)
_ASSIGNMENTS = cast(sa.Table, orm.Assignment.__table__)
# built once: a statement built per request costs more than SQLite takes to run it
_ORGANISATIONS_BY_ID = sa.select(_ORGS.c.id, _ORGS.c.role, _ORGS.c.municipality).where(
    _ORGS.c.id.in_(sa.bindparam("ids", expanding=True)))
_WORKSPACES_IN_ORDER = sa.select(_WORKSPACES.c.id, _WORKSPACES.c.name, _WORKSPACES.c.periods,
                                 _WORKSPACES.c.municipalities).order_by(_WORKSPACES.c.created_at, _WORKSPACES.c.id)
MAX_ITEMS = 5000  # items of one request (POST /assignments/bulk, at most 8 MiB), all written in one transaction
_IN_CHUNK = 500


@dataclass(frozen=True)
class Problem:
    """What is wrong with one item: its position in the request's list (from 0), the field, and why."""

    row: int
    field: str
    reason: str


class ItemsRejected(Exception):
    """The request is refused whole: nothing was stored."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


@dataclass(frozen=True)
class Submitted:
    row: int
    id: str
    workspace_id: str
    status: str
    routing: Routing


def flatten_messages(messages: Any, path: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested error messages as (dotted path, reason) pairs."""
    if isinstance(messages, dict):
        out: list[tuple[str, str]] = []
        for key, value in messages.items():
            out += flatten_messages(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(messages, list):
        return [item for m in messages for item in flatten_messages(m, path)]
    return [(path or "_item", str(messages))]


def _organisations(conn: Connection, ids: set[str]) -> dict[str, Any]:
    """The organisations among ``ids`` (id, role and municipality only), by id."""
    found: dict[str, Any] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start:start + _IN_CHUNK]
        found.update((row.id, row) for row in conn.execute(_ORGANISATIONS_BY_ID, {"ids": chunk}))
    return found


@dataclass(frozen=True)
class _Workspace:
    id: str
    name: str
    periods: list[Any]


def _workspaces(session: Session, conn: Connection) -> tuple[dict[str, _Workspace], dict[str, frozenset[str]]]:
    """Every workspace's id, name and calendar, and the working areas (as ``services.working_areas`` reads
    them, oldest workspace first), in one read of the table: a request names one workspace, and routing may
    send an item to any other."""
    rows = conn.execute(_WORKSPACES_IN_ORDER).all()
    areas = session.info.get("working_areas")
    if areas is None:
        areas = session.info["working_areas"] = {row.id: frozenset(row.municipalities) for row in rows}
    return {row.id: _Workspace(row.id, row.name, row.periods) for row in rows}, areas


def submit_assignments(session: Session, emit: Emit, principal: Principal, items: list[tuple[int, dict[str, Any]]],
                       rejected: list[Problem] | None = None, emit_all: EmitAll | None = None) -> list[Submitted]:
    """Submit every item (its row, and its fields loaded by ``AssignmentIn``) as the caller's assignment, or
    none: ItemsRejected names every bad item, with ``rejected`` (items the schema refused already), in the
    order of the rows. A firm without a profile: DomainError, as for one assignment. The messages go to the
    outbox in the items' order, through ``emit_all`` in one statement when it is given, else one by one.

    What is read and written here goes through SQLAlchemy Core (rows, not ORM objects): this runs once per
    firm in a national round, inside SQLite's write lock, and the ORM's identity map and unit of work cost
    more than the statements. A referral (rare) loads the ORM objects ``services.refer`` takes."""
    conn = session.connection()
    wished = {i for _, d in items for i in d.get("preferred_institutions", [])}
    organisations = _organisations(conn, wished | {principal.organisation_id})  # the firm and the wished
    firm = organisations.get(principal.organisation_id)
    if firm is None:
        raise services.NotFound(principal.organisation_id)
    if firm.municipality is None:
        raise DomainError("firm", "register the firm first (POST /firm) so we know where it is")
    workspaces, areas = _workspaces(session, conn)
    institutions = {i for i in wished if i in organisations and organisations[i].role == "institution"}

    problems: list[Problem] = list(rejected or [])
    rows: list[dict[str, Any]] = []
    routings: list[tuple[int, Routing]] = []
    now = utcnow()
    for n, data in items:
        try:
            requested = workspaces.get(data["workspace_id"])
            if requested is None:
                raise DomainError("workspace_id", "no such workspace")
            routing = route(firm.municipality, requested.id, areas)
            ws = workspaces[routing.workspace_id]
            try:
                check_period(ws.periods, data["period"])
            except DomainError as exc:
                if routing.outcome != "routed":
                    raise
                raise DomainError("period", f"{exc.reason}; the firm's area is served by workspace {ws.name}, "
                                            "whose calendar has other periods") from None
            check_team_range(data["min_teams"], data["max_teams"])
            preferred_levels = list(dict.fromkeys(data.get("preferred_levels", [])))
            check_preferred_levels(data["accepted_levels"], preferred_levels)
            preferred_institutions = list(dict.fromkeys(data.get("preferred_institutions", [])))
            for i, institution_id in enumerate(preferred_institutions):
                if institution_id not in institutions:
                    raise DomainError(f"preferred_institutions.{i}", "no such institution")
        except DomainError as exc:
            problems.append(Problem(n, exc.field, exc.reason))
            continue
        status = AssignmentStatus.REFERRED if routing.outcome == "referred" else AssignmentStatus.SUBMITTED
        rows.append({
            "id": str(uuid.uuid4()), "firm_id": firm.id, "workspace_id": ws.id, "batch_id": None,
            "title": data["title"], "description": data["description"], "period": data["period"],
            "accepted_levels": sorted(set(data["accepted_levels"])),
            "required_skills": sorted(set(data["required_skills"])),
            "nice_to_have_skills": sorted(set(data["nice_to_have_skills"])),
            "min_teams": data["min_teams"], "max_teams": data["max_teams"], "theme": data.get("theme"),
            "kind": data.get("kind", "project"), "mode": data.get("mode", "on_site"),
            "preferred_institutions": preferred_institutions, "preferred_levels": preferred_levels,
            "routed_from_workspace_id": requested.id if routing.outcome == "routed" else None,
            "status": status.value, "created_at": now,
        })
        routings.append((n, routing))
    if problems:
        raise ItemsRejected(sorted(problems, key=lambda p: p.row))
    if rows:
        conn.execute(_ASSIGNMENTS.insert(), rows)
    messages: list[Envelope] = []
    submitted: list[Submitted] = []
    for row, (n, routing) in zip(rows, routings, strict=True):
        if routing.outcome == "referred":
            firm_object = services.caller_organisation(session, principal)
            assignment = session.get(orm.Assignment, row["id"])
            assert assignment is not None
            services.refer(session, messages.append, firm_object, assignment, routing.workspace_id,
                           routing.reason)  # the requested one
        else:
            messages.append(make_envelope("assignment.submitted", 1, {
                "assignment_id": row["id"], "firm_id": firm.id, "workspace_id": row["workspace_id"],
                "period": row["period"], "theme": row["theme"], "accepted_levels": row["accepted_levels"],
                "routed_from_workspace_id": row["routed_from_workspace_id"]}))
        submitted.append(Submitted(n, row["id"], row["workspace_id"], row["status"], routing))
    if emit_all is not None:
        emit_all(messages)
    else:
        for message in messages:
            emit(message)
    return submitted
