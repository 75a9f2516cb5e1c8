"""Kickoff proposals: first weeks of the period, weekdays only, never on a Dutch public holiday, the
coordinator's kickoffs per day capped, in Europe/Amsterdam."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from scheduling.adapters.calendar_data import dutch_public_holidays
from scheduling.domain import calendar
from scheduling.domain.calendar import TZ, period_start, propose_kickoff, window_start

HOLIDAYS = dutch_public_holidays(range(2026, 2033))


def test_the_maintained_library_knows_the_dutch_public_holidays() -> None:
    for day in (date(2027, 1, 1), date(2027, 3, 29), date(2027, 4, 27), date(2027, 5, 6), date(2027, 5, 17),
                date(2027, 12, 25), date(2027, 12, 26)):
        assert day in HOLIDAYS
    assert date(2027, 3, 30) not in HOLIDAYS


@pytest.mark.parametrize(("code", "start"), [
    ("2027-S1", date(2027, 2, 1)), ("2027-S2", date(2027, 9, 1)), ("2025-Q1", date(2025, 1, 1)),
    ("2025-Q3", date(2025, 7, 1)), ("2025-Q5", None), ("spring", None)])
def test_period_codes_give_the_start_of_the_period(code: str, start: date | None) -> None:
    assert period_start(code) == start


def test_the_window_opens_at_the_period_start_but_never_before_the_day_after_acceptance() -> None:
    assert window_start("2027-S1", date(2026, 11, 27)) == date(2027, 2, 1)
    assert window_start("2027-S1", date(2027, 2, 10)) == date(2027, 2, 11)
    assert window_start("unknown", date(2027, 2, 10)) == date(2027, 2, 11)


def test_a_holiday_and_the_weekend_are_skipped() -> None:
    # Good Friday 26 March 2027, the weekend, Easter Monday 29 March: the first slot is Tuesday 30 March
    proposal = propose_kickoff(date(2027, 3, 26), HOLIDAYS, [])
    assert proposal.starts_at == datetime(2027, 3, 30, 10, 0, tzinfo=TZ)
    assert proposal.ends_at == datetime(2027, 3, 30, 11, 0, tzinfo=TZ)
    assert proposal.starts_at.utcoffset() == timedelta(hours=2)  # summer time by then
    winter = propose_kickoff(date(2027, 2, 1), HOLIDAYS, []).starts_at
    assert winter is not None and winter.astimezone(UTC).hour == 9


def test_the_coordinators_kickoffs_per_day_are_capped_by_the_slots() -> None:
    day = date(2027, 3, 30)
    booked = [datetime.combine(day, slot, tzinfo=TZ) for slot in calendar.SLOTS]
    assert propose_kickoff(day, HOLIDAYS, booked[:2]).starts_at == datetime(2027, 3, 30, 13, 30, tzinfo=TZ)
    # a full day moves to the next weekday; bookings may come back in UTC
    in_utc = [b.astimezone(UTC) for b in booked]
    assert propose_kickoff(day, HOLIDAYS, in_utc).starts_at == datetime(2027, 3, 31, 10, 0, tzinfo=TZ)


def test_no_free_slot_in_the_window_is_reported_with_a_reason() -> None:
    first = date(2027, 12, 24)  # Christmas week: Fri 24 free, then 25-26 holidays and a weekend
    booked = [datetime.combine(first, slot, tzinfo=TZ) for slot in calendar.SLOTS]
    proposal = propose_kickoff(first, HOLIDAYS, booked, weeks=0)
    assert proposal.starts_at is None and proposal.ends_at is None and proposal.reason
    assert propose_kickoff(first, HOLIDAYS, booked, weeks=1).starts_at == datetime(2027, 12, 27, 10, 0, tzinfo=TZ)


def test_no_proposal_from_any_start_day_falls_on_a_holiday_or_weekend_or_outside_the_window() -> None:
    day = date(2026, 1, 1)
    while day < date(2028, 1, 1):
        starts_at = propose_kickoff(day, HOLIDAYS, []).starts_at
        assert starts_at is not None and starts_at.tzinfo is TZ
        assert starts_at.date() not in HOLIDAYS and starts_at.weekday() < 5, day
        assert day <= starts_at.date() < day + timedelta(weeks=calendar.KICKOFF_WEEKS)
        day += timedelta(days=1)
