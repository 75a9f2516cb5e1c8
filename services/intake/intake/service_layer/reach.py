"""Intake's reach figures for one workspace and date range (see werkplaats_shared.reach): firms reached,
assignments submitted, teams and students registered, referrals, and the students in placed teams (the teams of
each round's current published matching, dated by the round's submission: a round over several workspaces
counts under each of them with that workspace's teams). Counts only."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared.db import covers_workspace
from werkplaats_shared.geo import municipality
from werkplaats_shared.reach import UNKNOWN, Counted, figure

from ..adapters import orm


class NotYours(Exception):
    """The workspace is not one of the caller's (or does not exist): 403, telling nothing more."""


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time.min, tzinfo=UTC)
    return start, datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)


def _region(code: str | None) -> tuple[str, ...]:
    found = municipality(code) if code else None
    return (found.province if found is not None else UNKNOWN,)


def _day(moment: datetime) -> date:
    return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()


def reach(session: Session, coordinator_id: str, workspace_id: str, first: date, last: date) -> dict[str, Any]:
    ws = session.get(orm.Workspace, workspace_id)
    if ws is None or ws.organisation_id != coordinator_id:
        raise NotYours(workspace_id)
    start, end = _bounds(first, last)

    def in_range(column: Any) -> Any:
        return sa.and_(column >= start, column < end)

    firms = {f.id: f for f in session.execute(sa.select(orm.Organisation).where(
        orm.Organisation.role == "entrepreneur", orm.Organisation.workspace_id == ws.id)).scalars()}
    assignments = list(session.execute(sa.select(orm.Assignment).where(
        orm.Assignment.workspace_id == ws.id, in_range(orm.Assignment.created_at))).scalars())
    referrals = list(session.execute(sa.select(orm.Referral).where(
        orm.Referral.from_workspace_id == ws.id, in_range(orm.Referral.created_at))).scalars())
    teams = list(session.execute(sa.select(orm.Team).where(
        orm.Team.workspace_id == ws.id, in_range(orm.Team.created_at))).scalars())

    def firm_region(firm_id: str) -> tuple[str, ...]:
        firm = firms.get(firm_id) or session.get(orm.Organisation, firm_id)
        return _region(firm.municipality if firm is not None else None)

    reached = [Counted(f.id, _day(f.created_at), {"region": firm_region(f.id)}) for f in firms.values()
               if start <= _aware(f.created_at) < end]
    reached += [Counted(a.firm_id, _day(a.created_at), {"region": firm_region(a.firm_id)}) for a in assignments]
    reached += [Counted(r.firm_id, _day(r.created_at), {"region": firm_region(r.firm_id)}) for r in referrals]
    themes = {a.id: a.theme for a in assignments}
    for r in referrals:
        if r.assignment_id and r.assignment_id not in themes:
            found = session.get(orm.Assignment, r.assignment_id)
            themes[r.assignment_id] = found.theme if found is not None else None

    placed: list[Counted] = []
    # every round that covers the workspace (a round over several counts under each), with the teams of this
    # workspace only: the workspaces' figures added up count each placed team once
    batches = session.execute(sa.select(orm.Batch).where(
        covers_workspace(orm.Batch.workspace_id, orm.Batch.workspace_ids, ws.id), orm.Batch.run_id.is_not(None),
        in_range(orm.Batch.submitted_at))).scalars()
    for batch in batches:
        assert batch.submitted_at is not None and batch.run_id is not None
        rows = session.execute(sa.select(orm.BatchMatch, orm.Team, orm.Assignment)
                               .join(orm.Team, orm.Team.id == orm.BatchMatch.team_id)
                               .join(orm.Assignment, orm.Assignment.id == orm.BatchMatch.assignment_id)
                               .where(orm.BatchMatch.batch_id == batch.id, orm.BatchMatch.run_id == batch.run_id,
                                      orm.Team.workspace_id == ws.id))
        placed += [Counted(team.id, _day(batch.submitted_at), {
            "region": firm_region(assignment.firm_id), "level": (team.level,), "period": (batch.period,),
            "theme": (assignment.theme,) if assignment.theme else ()}, weight=team.size)
            for _match, team, assignment in rows]

    return {"workspace_id": ws.id, "from_": first, "to": last, "figures": [
        figure("firms_reached", reached, ("region", "month")),
        figure("assignments_submitted", [
            Counted(a.id, _day(a.created_at), {"region": firm_region(a.firm_id), "level": tuple(a.accepted_levels),
                                               "period": (a.period,), "theme": (a.theme,) if a.theme else ()})
            for a in assignments], ("region", "level", "period", "theme", "month")),
        figure("teams_registered", [
            Counted(t.id, _day(t.created_at), {"level": (t.level,), "period": (t.period,)}) for t in teams],
            ("level", "period", "month")),
        figure("students_registered", [
            Counted(t.id, _day(t.created_at), {"level": (t.level,), "period": (t.period,)}, weight=t.size)
            for t in teams], ("level", "period", "month")),
        figure("students_placed", placed, ("region", "level", "period", "theme", "month")),
        figure("referrals", [
            Counted(r.id, _day(r.created_at), {"region": firm_region(r.firm_id),
                                               "theme": (t,) if (t := themes.get(r.assignment_id or "")) else ()})
            for r in referrals], ("region", "theme", "month")),
    ]}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
