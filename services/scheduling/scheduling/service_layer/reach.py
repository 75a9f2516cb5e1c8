"""Scheduling's reach figures in a date range (see werkplaats_shared.reach): the workshop sessions the
coordinator's programmes run in the range (held, or planned for a day in it) and the entrepreneurs seated in
them, each firm counted once however many sessions it attends. Workshop programmes belong to the coordinator,
not to one workspace: these figures are the coordinator's over all its workspaces. Counts only."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared.geo import municipality
from werkplaats_shared.reach import ONLINE, UNKNOWN, Counted, figure

from ..adapters import workshop_orm as w


def _region(code: str | None) -> tuple[str, ...]:
    if not code:
        return (ONLINE,)
    found = municipality(code)
    return (found.province if found is not None else UNKNOWN,)


def reach(session: Session, coordinator_id: str, first: date, last: date) -> dict[str, Any]:
    sessions = list(session.execute(
        sa.select(w.WorkshopSession).join(w.WorkshopProgramme, w.WorkshopProgramme.id == w.WorkshopSession.programme_id)
        .where(w.WorkshopProgramme.coordinator_id == coordinator_id, w.WorkshopSession.status == "running",
               w.WorkshopSession.slot_date >= first, w.WorkshopSession.slot_date <= last)).scalars())
    by_id = {s.id: s for s in sessions}
    seats: list[w.WorkshopRegistration] = list(session.execute(sa.select(w.WorkshopRegistration).where(
        w.WorkshopRegistration.session_id.in_(list(by_id)), w.WorkshopRegistration.status == "seated")).scalars()) \
        if by_id else []

    def dims(s: w.WorkshopSession) -> dict[str, tuple[str, ...]]:
        return {"region": _region(s.municipality_code), "theme": (s.theme,)}

    dimensions = ("region", "theme", "month")
    return {"workspace_id": None, "from_": first, "to": last, "figures": [
        figure("workshops_given", [Counted(s.id, s.slot_date, dims(s)) for s in sessions], dimensions),
        figure("workshop_participants", [Counted(r.firm_id, by_id[r.session_id].slot_date,
                                                 dims(by_id[r.session_id])) for r in seats], dimensions)]}
