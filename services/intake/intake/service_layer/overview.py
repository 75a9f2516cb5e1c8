"""A workspace at a glance, for its coordinator: open assignments and teams counted per period and level,
referrals and handovers counted. Counts only: no names, no ids of firms or teams."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared.auth import Principal

from ..adapters import orm
from ..domain.model import AssignmentStatus
from .services import NotFound

# waiting for a round, in one, or left without a team: what a coordinator still has to place
OPEN = (AssignmentStatus.SUBMITTED.value, AssignmentStatus.IN_BATCH.value, AssignmentStatus.UNMATCHED.value)


def workspace_overview(session: Session, principal: Principal, workspace_id: str) -> dict[str, Any]:
    ws = session.get(orm.Workspace, workspace_id)
    if ws is None or principal.role != "coordinator" or ws.organisation_id != principal.organisation_id:
        raise NotFound(workspace_id)
    per_level: Counter[tuple[str, str]] = Counter()
    assignments = 0
    for period, levels in session.execute(sa.select(orm.Assignment.period, orm.Assignment.accepted_levels).where(
            orm.Assignment.workspace_id == workspace_id, orm.Assignment.status.in_(OPEN))):
        assignments += 1
        for level in sorted(set(levels or [])):
            per_level[(period, level)] += 1
    teams = session.execute(sa.select(orm.Team.period, orm.Team.level, sa.func.count()).where(
        orm.Team.workspace_id == workspace_id).group_by(orm.Team.period, orm.Team.level)).all()
    referrals = session.execute(sa.select(sa.func.count()).select_from(orm.Referral).where(
        orm.Referral.from_workspace_id == workspace_id)).scalar_one()
    handovers = session.execute(sa.select(sa.func.count()).select_from(orm.Handover).where(sa.or_(
        orm.Handover.from_workspace_id == workspace_id, orm.Handover.to_workspace_id == workspace_id))).scalar_one()
    return {
        "workspace_id": workspace_id,
        "open_assignments": assignments,
        "open_assignments_by_period_level": [{"period": p, "level": lv, "count": n}
                                             for (p, lv), n in sorted(per_level.items())],
        "teams": sum(int(n) for _p, _lv, n in teams),
        "teams_by_period_level": [{"period": p, "level": lv, "count": int(n)} for p, lv, n in sorted(teams)],
        "referrals": int(referrals), "handovers": int(handovers),
    }
