"""The extra weeks the institution calendar offers in one click: carnival week and the second May week."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from portal.domain.school_weeks import PROVINCE_REGIONS, carnival_week, extra_weeks, second_may_week, suggested_region
from werkplaats_shared.geo import PARTS_OF_COUNTRY

HOLIDAYS = Path(__file__).parents[2] / "services/scheduling/scheduling/data/school_holidays.json"


@pytest.mark.parametrize(("year", "monday"), [
    (2026, date(2026, 2, 16)),  # carnival 14-17 February 2026
    (2027, date(2027, 2, 8)),   # carnival 6-9 February 2027 (a Nijmegen school's calendar: off 8-12 February)
    (2028, date(2028, 2, 28)),  # carnival 26-29 February 2028
])
def test_carnival_week_is_the_monday_to_friday_after_carnival_sunday(year: int, monday: date) -> None:
    week = carnival_week(year)
    assert (week.monday, week.friday) == (monday, monday + timedelta(days=4))


def test_the_second_may_week_follows_the_official_may_holiday_in_every_year_the_data_knows() -> None:
    data = json.loads(HOLIDAYS.read_text(encoding="utf-8"))
    seen = 0
    for entry in data["school_years"].values():
        for holiday in entry["holidays"]:
            if holiday["name"] == "meivakantie":
                last_sunday = date.fromisoformat(holiday["end"])
                assert second_may_week(last_sunday.year).monday == last_sunday + timedelta(days=1)
                seen += 1
    assert seen >= 9  # three regions, three school years
    # 2025: King's Day fell on a Sunday and was kept on Saturday 26 April; the holiday ran 26 April - 4 May
    assert second_may_week(2025).monday == date(2025, 5, 5)


def test_only_weeks_of_this_and_the_next_school_year_not_yet_over_are_offered() -> None:
    offered = extra_weeks(date(2027, 2, 10))  # in carnival week 2027
    assert [(w.kind, w.iso_week) for w in offered] == [
        ("carnival", "2027-W06"), ("may", "2027-W18"), ("carnival", "2028-W09"), ("may", "2028-W19")]
    assert [w.kind for w in extra_weeks(date(2027, 5, 8))] == ["carnival", "may"]  # 2028's, after 7 May 2027
    autumn = extra_weeks(date(2026, 12, 5))
    assert [w.monday.year for w in autumn] == [2027, 2027, 2028, 2028]


def test_a_region_is_suggested_for_every_province_from_the_first_campus_that_has_one() -> None:
    assert set(PROVINCE_REGIONS) == set(PARTS_OF_COUNTRY) and set(PROVINCE_REGIONS.values()) == {
        "noord", "midden", "zuid"}
    assert suggested_region(["Limburg", "Groningen"]) == "zuid"
    assert suggested_region(["Atlantis", "Gelderland"]) == "midden"
    assert suggested_region(["Fryslân"]) == suggested_region(["Noord-Holland"]) == "noord"
    assert suggested_region([]) is None
