"""Weeks many schools take off besides the official school holidays, offered on the institution's calendar so
that marking them is one click instead of typing ISO weeks; and the school-holiday region suggested from a
campus's province.

- Carnival week: the Monday to Friday after carnival Sunday (49 days before Easter Sunday). Southern schools
  often take it instead of, or on top of, the advised spring holiday.
- The second May week: the official May holiday is the week whose Monday falls between 26 April and 2 May
  (with the weekends around it: 2025, 2026, 2027 and 2028 all follow this); many schools add the week after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from dateutil.easter import easter


@dataclass(frozen=True)
class ExtraWeek:
    kind: str  # "carnival" or "may"
    monday: date

    @property
    def friday(self) -> date:
        return self.monday + timedelta(days=4)

    @property
    def iso_week(self) -> str:
        year, week, _day = self.monday.isocalendar()
        return f"{year}-W{week:02d}"


def carnival_week(year: int) -> ExtraWeek:
    return ExtraWeek("carnival", easter(year) - timedelta(days=48))


def second_may_week(year: int) -> ExtraWeek:
    april_26 = date(year, 4, 26)
    holiday_monday = april_26 + timedelta(days=(7 - april_26.weekday()) % 7)  # the first Monday from 26 April
    return ExtraWeek("may", holiday_monday + timedelta(days=7))


def extra_weeks(today: date) -> list[ExtraWeek]:
    """The carnival and second May weeks of this school year and the next (1 August to 31 July) not yet over."""
    first_year = today.year + 1 if today.month >= 8 else today.year  # the calendar year of this school year's spring
    weeks = [w for year in (first_year, first_year + 1) for w in (carnival_week(year), second_may_week(year))]
    return [w for w in weeks if w.friday >= today]


# The school-holiday region most of each province follows (news reporting; no official list). Provinces are split:
# Zeewolde (Flevoland) follows midden, Hattem (Gelderland) and Eemnes (Utrecht) noord, southern Gelderland with
# Nijmegen zuid; so this only suggests the region, and the institution chooses.
PROVINCE_REGIONS = {
    "Groningen": "noord", "Fryslân": "noord", "Drenthe": "noord", "Overijssel": "noord", "Noord-Holland": "noord",
    "Flevoland": "noord", "Zuid-Holland": "midden", "Utrecht": "midden", "Gelderland": "midden",
    "Zeeland": "zuid", "Noord-Brabant": "zuid", "Limburg": "zuid",
}


def suggested_region(provinces: list[str]) -> str | None:
    """The region of the first campus province that has one (the main campus is listed first), or None."""
    return next((PROVINCE_REGIONS[p] for p in provinces if p in PROVINCE_REGIONS), None)
