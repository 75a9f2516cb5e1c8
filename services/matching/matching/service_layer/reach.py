"""Matching's reach figures for one workspace and date range (see werkplaats_shared.reach): the assignments
served and the teams placed by each round's current published matching, a round dated by its submission. A
team placed in several rounds counts once. A round over several workspaces counts under each of them: an
assignment served under the workspace it belongs to, a team placed under the one it is registered in, so the
workspaces' figures added up count each once. Counts only."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared.db import covers_workspace
from werkplaats_shared.reach import UNKNOWN, Counted, figure

from ..adapters import orm


class NotYours(Exception):
    """Matching knows the workspace as another coordinator's: 403."""


def _day(moment: datetime) -> date:
    return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()


def reach(session: Session, coordinator_id: str, workspace_id: str, first: date, last: date) -> dict[str, Any]:
    covers = covers_workspace(orm.Batch.workspace_id, orm.Batch.workspace_ids, workspace_id)
    others = session.execute(sa.select(sa.func.count()).select_from(orm.Batch).where(
        covers, orm.Batch.coordinator_id != coordinator_id)).scalar_one()
    if others:
        raise NotYours(workspace_id)
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    served: list[Counted] = []
    placed: list[Counted] = []
    rows = session.execute(
        sa.select(orm.Batch, orm.Run)
        .join(orm.Run, orm.Run.batch_id == orm.Batch.batch_id)
        .where(covers, orm.Batch.coordinator_id == coordinator_id,
               orm.Batch.created_at >= start, orm.Batch.created_at < end, orm.Run.status == "published"))
    for batch, run in rows:
        on = _day(batch.created_at)
        teams = {t["team_id"]: t for t in run.snapshot.get("teams", [])}
        assignments = {a["assignment_id"]: a for a in run.snapshot.get("assignments", [])}
        lead = batch.workspace_id
        for match in session.execute(sa.select(orm.Match).where(orm.Match.run_id == run.id)).scalars():
            assignment, team = assignments.get(match.assignment_id, {}), teams.get(match.team_id, {})
            region = (assignment.get("region") or UNKNOWN,)
            level = (team.get("level") or UNKNOWN,)
            dims = {"region": region, "level": level, "period": (run.period,)}
            # under the workspace the assignment (the team) belongs to; a snapshot that does not say: the first
            if assignment.get("workspace_id", lead) == workspace_id:
                served.append(Counted(match.assignment_id, on, dims))
            if team.get("workspace_id", lead) == workspace_id:
                placed.append(Counted(match.team_id, on, dims))
    dimensions = ("region", "level", "period", "month")
    return {"workspace_id": workspace_id, "from_": first, "to": last,
            "figures": [figure("assignments_served", served, dimensions), figure("teams_placed", placed, dimensions)]}
