"""A deterministic workshop programme of a given size, stored directly (the API would take one request per
interest): rooms in a few municipalities, facilitators with two themes each, slots over two weeks, and
interest spread over themes, places and days."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

from scheduling.adapters import workshop_orm as w
from scheduling.domain.workshops import DAY_PARTS, THEMES
from sqlalchemy.orm import Session, sessionmaker
from werkplaats_shared.db import utcnow

MUNICIPALITIES = ("GM0344", "GM0363", "GM0599", "GM0518", "GM0772")


def store_programme(sf: sessionmaker[Session], coordinator_id: str, interests: int, *, rooms: int = 6,
                    facilitators: int = 8, days: int = 10, seed: int = 17) -> str:
    rng = random.Random(seed)
    themes = sorted(THEMES)
    start = date(2031, 3, 3)
    weekdays = [start + timedelta(days=d) for d in range(14) if (start + timedelta(days=d)).weekday() < 5][:days]
    slots = [{"date": d.isoformat(), "day_part": part} for d in weekdays for part in DAY_PARTS[:2]]
    now = utcnow()
    pid = str(uuid.uuid4())
    with sf.begin() as session:
        session.add(w.WorkshopProgramme(
            id=pid, coordinator_id=coordinator_id, title="Regionaal programma", slots=slots,
            sessions_wanted={t: 3 for t in themes}, max_sessions_per_location_day=2, online_capacity=0,
            min_participants=3, status="open", plan_report=None, created_at=now, planned_at=None))
        for i in range(rooms):
            session.add(w.WorkshopRoom(
                id=str(uuid.uuid4()), programme_id=pid, municipality_code=MUNICIPALITIES[i % len(MUNICIPALITIES)],
                name=f"Zaal {i + 1}", capacity=rng.choice((8, 12, 16)),
                availability=rng.sample(slots, k=len(slots) * 2 // 3), created_at=now))
        for i in range(facilitators):
            session.add(w.WorkshopFacilitator(
                id=str(uuid.uuid4()), programme_id=pid, label=f"F-{i + 1:02d}", themes=sorted(rng.sample(themes, 2)),
                availability=rng.sample(slots, k=len(slots) // 2), created_at=now))
        for i in range(interests):
            session.add(w.WorkshopInterest(
                id=str(uuid.uuid4()), programme_id=pid, firm_id=f"firm-{i:05d}", theme=rng.choice(themes),
                locations=rng.sample(MUNICIPALITIES, k=2), online_ok=False,
                available_days=sorted(d.isoformat() for d in rng.sample(weekdays, k=4)),
                registered_at=now + timedelta(microseconds=i)))
    return pid
