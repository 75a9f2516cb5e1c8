"""Placements: the published matches a caller may see, in the words people know them by.

A firm sees the teams placed on its assignments (team code, institution, level, size, skills); an
institution sees where its teams were placed (assignment title and firm); a coordinator sees every
placement of its workspaces. Only the current (last published) run of each batch counts: a match a
re-run dropped is no placement any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased
from werkplaats_shared.auth import Principal

from ..adapters import orm


@dataclass(frozen=True)
class Placement:
    match_id: str
    batch_id: str
    run_id: str
    period: str
    score: float
    assignment_id: str
    assignment_title: str
    assignment_status: str
    firm_id: str
    firm_name: str
    team_id: str
    team_code: str
    team_level: str
    team_size: int
    team_skills: list[Any]
    institution_id: str
    institution_name: str


def placements_query(principal: Principal, filters: dict[str, Any]) -> sa.Select[Any]:
    """The caller's placements as rows for ``placement_of``, in order of period, title, team code."""
    firm = aliased(orm.Organisation)
    institution = aliased(orm.Organisation)
    query = (
        sa.select(orm.BatchMatch, orm.Batch, orm.Assignment, orm.Team, firm, institution)
        .join(orm.Batch, sa.and_(orm.Batch.id == orm.BatchMatch.batch_id, orm.Batch.run_id == orm.BatchMatch.run_id))
        .join(orm.Assignment, orm.Assignment.id == orm.BatchMatch.assignment_id)
        .join(orm.Team, orm.Team.id == orm.BatchMatch.team_id)
        .join(firm, firm.id == orm.Assignment.firm_id)
        .join(institution, institution.id == orm.Team.institution_id)
        .order_by(orm.Batch.period, orm.Assignment.title, orm.Team.code, orm.BatchMatch.match_id)
    )
    if principal.role == "entrepreneur":
        query = query.where(orm.Assignment.firm_id == principal.organisation_id)
    elif principal.role == "institution":
        query = query.where(orm.Team.institution_id == principal.organisation_id)
    elif principal.role == "coordinator":
        query = query.join(orm.Workspace, orm.Workspace.id == orm.Batch.workspace_id).where(
            orm.Workspace.organisation_id == principal.organisation_id)
    else:
        query = query.where(sa.false())
    if filters.get("assignment_id"):
        query = query.where(orm.Assignment.id == filters["assignment_id"])
    if filters.get("team_id"):
        query = query.where(orm.Team.id == filters["team_id"])
    if filters.get("period"):
        query = query.where(orm.Batch.period == filters["period"])
    if filters.get("match_id"):
        query = query.where(orm.BatchMatch.match_id.in_(filters["match_id"]))
    return cast("sa.Select[Any]", query)


def placement_of(_session: Session | None, row: Any) -> Placement:
    m, b, a, t, f, i = row
    return Placement(match_id=m.match_id, batch_id=b.id, run_id=m.run_id, period=b.period, score=m.score,
                     assignment_id=a.id, assignment_title=a.title, assignment_status=a.status, firm_id=f.id,
                     firm_name=f.name, team_id=t.id, team_code=t.code, team_level=t.level, team_size=t.size,
                     team_skills=list(t.skills), institution_id=i.id, institution_name=i.name)


def visible_placements(session: Session, principal: Principal, filters: dict[str, Any]) -> list[Placement]:
    return [placement_of(session, row) for row in session.execute(placements_query(principal, filters)).all()]


def get_placement(session: Session, principal: Principal, match_id: str) -> Placement | None:
    found = visible_placements(session, principal, {"match_id": [match_id]})
    return found[0] if found else None
