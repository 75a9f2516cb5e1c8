"""Dutch public holidays from the maintained ``holidays`` library."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import holidays


def dutch_public_holidays(years: Iterable[int]) -> dict[date, str]:
    return dict(holidays.country_holidays("NL", years=list(years)))
