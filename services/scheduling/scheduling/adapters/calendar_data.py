"""Calendar facts: Dutch public holidays from the maintained ``holidays`` library, and the school
holidays per region from the shipped, sourced data file ``data/school_holidays.json``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache

import holidays

REGIONS = ("noord", "midden", "zuid")
SCHOOL_HOLIDAYS_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "school_holidays.json")


def dutch_public_holidays(years: Iterable[int]) -> dict[date, str]:
    return dict(holidays.country_holidays("NL", years=list(years)))


@dataclass(frozen=True)
class SchoolHoliday:
    name: str
    region: str
    start: date
    end: date  # inclusive
    school_year: str
    source: str


@cache
def school_holidays() -> tuple[SchoolHoliday, ...]:
    with open(SCHOOL_HOLIDAYS_FILE, encoding="utf-8") as fh:
        data = json.load(fh)
    return tuple(
        SchoolHoliday(h["name"], h["region"], date.fromisoformat(h["start"]), date.fromisoformat(h["end"]),
                      year, entry["source"])
        for year, entry in sorted(data["school_years"].items()) for h in entry["holidays"])


@cache
def school_years_covered() -> frozenset[str]:
    """The school years (``2027-2028``) the data file has dates for; any other year's are unknown."""
    with open(SCHOOL_HOLIDAYS_FILE, encoding="utf-8") as fh:
        return frozenset(json.load(fh)["school_years"])


def school_holidays_by_region() -> dict[str, list[tuple[date, date]]]:
    by_region: dict[str, list[tuple[date, date]]] = {r: [] for r in REGIONS}
    for h in school_holidays():
        by_region[h.region].append((h.start, h.end))
    return by_region
