"""Kickoff windows and the coordinator's slot grid, in Europe/Amsterdam. The planning rules (firm
availability, school holidays, non-teaching weeks, double booking, daily cap) are in ``kickoffs``;
``propose_kickoff`` is the earlier first-free-slot rule (weekdays, public holidays, the slot grid), kept
as a simple baseline.

Periods reach scheduling as codes only (``2027-S1``, ``2025-Q3``); their start follows the Dutch
academic convention: S1 starts on 1 February, S2 on 1 September, quarters on their first day. A code of
another form starts the window on the day after acceptance.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Container
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Amsterdam")
KICKOFF_WEEKS = 2
KICKOFF_DURATION = timedelta(hours=1)
# the coordinator's kickoff slots on a working day; their number caps the kickoffs per day
SLOTS = (time(10, 0), time(11, 30), time(13, 30), time(15, 0))
SEMESTER_STARTS = {1: (2, 1), 2: (9, 1)}


@dataclass(frozen=True)
class Proposal:
    starts_at: datetime | None
    reason: str | None = None  # why there is no slot

    @property
    def ends_at(self) -> datetime | None:
        return self.starts_at + KICKOFF_DURATION if self.starts_at else None


def period_start(code: str) -> date | None:
    if m := re.fullmatch(r"(\d{4})-S([12])", code):
        month, day = SEMESTER_STARTS[int(m.group(2))]
        return date(int(m.group(1)), month, day)
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", code):
        return date(int(m.group(1)), 3 * (int(m.group(2)) - 1) + 1, 1)
    return None


def window_start(period_code: str, accepted_on: date) -> date:
    """The kickoff window opens at the period's start, and never before the day after acceptance."""
    start = period_start(period_code)
    earliest = accepted_on + timedelta(days=1)
    return max(start, earliest) if start else earliest


def propose_kickoff(first_day: date, holidays: Container[date], booked: Collection[datetime],
                    weeks: int = KICKOFF_WEEKS) -> Proposal:
    """The first free slot on a weekday that is not a holiday, within ``weeks`` weeks from ``first_day``."""
    taken = {b.astimezone(TZ).replace(tzinfo=None) for b in booked}
    for offset in range(weeks * 7):
        day = first_day + timedelta(days=offset)
        if day.weekday() >= 5 or day in holidays:
            continue
        for slot in SLOTS:
            local = datetime.combine(day, slot)
            if local not in taken:
                return Proposal(local.replace(tzinfo=TZ))
    return Proposal(None, f"no free weekday slot without a public holiday in the {weeks} weeks "
                          f"from {first_day.isoformat()}")
