"""Deterministic scheduling instances for the benchmark: a regional workshop programme and a round of
kickoffs. The same size and seed always give the same instance.

Workshops (``workshop_problem``): six themes (weighted as firms ask for them), eight municipalities of
one region (Utrecht and its neighbours), 20 rooms in them (capacity 12 to 30, each available in about
two thirds of the slots), 30 facilitators (one to three themes, each available in about half the slots),
60 slots (20 weekdays x morning, afternoon, evening), an online venue of 25 seats. Interests: a firm
(about 1.4 themes each) in a home municipality ranks one to three locations (home first, then
neighbours), accepts online sessions in 30% of cases and can come on three to ten of the 20 days.
Each theme asks for as many sessions as one per 16 interested firms; at least 5 participants per session,
at most 3 sessions per location and day. Rooms, facilitators and slots stay the same at every size.

Kickoffs (``kickoff_problem``): the accepted matches of a round starting 1 February 2027, each with a
kickoff window of 8 weeks (so the Dutch voorjaarsvakantie and the institutions' own weeks bind), spread
over 50 coordinators (each its own workspace: a firm's and a team's kickoffs have one coordinator);
firms with one to three matches, each with two to five weekday windows (mornings, afternoons or both)
and now and then a blocked date; institutions in the three school-holiday regions, a quarter with a
non-teaching week; a daily cap of three kickoffs per coordinator (of four slots).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, time, timedelta

from scheduling.domain import kickoffs as ko
from scheduling.domain import workshops as ws

# ---- workshops -----------------------------------------------------------------------------------

THEME_WEIGHTS = {"cyber_resilience": 0.24, "online_marketing": 0.22, "ai": 0.2, "webshop": 0.14,
                 "data_automation": 0.12, "digital_roadmap": 0.08}
# Utrecht and neighbouring municipalities (CBS codes), each with its neighbours, nearest first
PLACES: dict[str, tuple[str, ...]] = {
    "GM0344": ("GM0355", "GM0307", "GM0356"),  # Utrecht: Zeist, Amersfoort, Nieuwegein
    "GM0307": ("GM0313", "GM0355", "GM0344"),  # Amersfoort: Bunschoten.. (nearby), Zeist, Utrecht
    "GM0355": ("GM0344", "GM0307", "GM0345"),  # Zeist: Utrecht, Amersfoort, Veenendaal
    "GM0356": ("GM0344", "GM0353", "GM0355"),  # Nieuwegein: Utrecht, IJsselstein, Zeist
    "GM0345": ("GM0340", "GM0355", "GM0307"),  # Veenendaal: Rhenen, Zeist, Amersfoort
    "GM0353": ("GM0356", "GM0344", "GM0340"),  # IJsselstein
    "GM0313": ("GM0307", "GM0355", "GM0344"),  # Bunschoten
    "GM0340": ("GM0345", "GM0353", "GM0355"),  # Rhenen
}
PLACE_WEIGHTS = {"GM0344": 0.34, "GM0307": 0.18, "GM0355": 0.1, "GM0356": 0.1, "GM0345": 0.1, "GM0353": 0.07,
                 "GM0313": 0.05, "GM0340": 0.06}
ROOMS_PER_PLACE = {"GM0344": 6, "GM0307": 4, "GM0355": 2, "GM0356": 2, "GM0345": 2, "GM0353": 2, "GM0313": 1,
                   "GM0340": 1}
FIRST_DAY = date(2027, 3, 1)  # a Monday
INTERESTS_PER_SESSION = 16


@dataclass(frozen=True)
class WorkshopSize:
    interests: int
    rooms: int = 20
    facilitators: int = 30
    days: int = 20  # weekdays; three day parts each: 60 slots


def _weekdays(first: date, n: int) -> list[date]:
    out: list[date] = []
    day = first
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def workshop_problem(size: WorkshopSize, seed: int = 1) -> ws.Problem:
    rng = random.Random(f"workshops-{seed}-{size.interests}")
    days = _weekdays(FIRST_DAY, size.days)
    slots = [ws.Slot(d, part) for d in days for part in ws.DAY_PARTS]
    places = [p for p, n in ROOMS_PER_PLACE.items() for _ in range(n)]
    places = (places * (size.rooms // len(places) + 1))[:size.rooms]
    rooms = tuple(ws.Room(f"room{k:02d}", place, rng.choice((12, 15, 16, 20, 20, 24, 30)),
                          frozenset(s for s in slots if rng.random() < (0.45 if s.day_part == "evening" else 0.75)))
                  for k, place in enumerate(places))
    themes = list(THEME_WEIGHTS)
    facilitators = []
    for k in range(size.facilitators):
        mine = {rng.choices(themes, weights=list(THEME_WEIGHTS.values()))[0]}
        while len(mine) < 3 and rng.random() < 0.45:
            mine.add(rng.choice(themes))
        # a facilitator keeps some days free: available on about half the slots, in blocks of days
        free_days = set(rng.sample(days, rng.randint(size.days // 3, 2 * size.days // 3)))
        facilitators.append(ws.Facilitator(f"fac{k:02d}", frozenset(mine), frozenset(
            s for s in slots if s.day in free_days and rng.random() < 0.8)))
    interests: list[ws.Interest] = []
    firm = 0
    while len(interests) < size.interests:
        firm += 1
        home = rng.choices(list(PLACE_WEIGHTS), weights=list(PLACE_WEIGHTS.values()))[0]
        locations = (home, *PLACES[home][:rng.choice((0, 1, 1, 2, 2))])
        wanted = rng.sample(themes, min(len(themes), 1 + (rng.random() < 0.3) + (rng.random() < 0.1)))
        for theme in wanted:
            if len(interests) == size.interests:
                break
            if rng.random() < THEME_WEIGHTS[theme] * 4 or theme == wanted[0]:
                can = frozenset(rng.sample(days, rng.randint(3, 10)))
                n = len(interests)
                interests.append(ws.Interest(f"int{n:05d}", f"firm{firm:05d}", theme, locations,
                                             rng.random() < 0.3, can, n))
    per_theme: dict[str, int] = {}
    for i in interests:
        per_theme[i.theme] = per_theme.get(i.theme, 0) + 1
    wanted_sessions = {t: math.ceil(n / INTERESTS_PER_SESSION) for t, n in per_theme.items()}
    return ws.Problem(frozenset(slots), rooms, tuple(facilitators), tuple(interests), wanted_sessions,
                      max_sessions_per_location_day=3, online_capacity=25, min_participants=5)


# ---- kickoffs ------------------------------------------------------------------------------------

KICKOFF_START = date(2027, 2, 1)
KICKOFF_WEEKS = 8
REGIONS = ("noord", "midden", "zuid")


@dataclass(frozen=True)
class KickoffInstance:
    kickoffs: tuple[ko.Kickoff, ...]
    fixed: tuple[ko.Booking, ...]
    calendars: ko.Calendars
    rules: ko.Rules


def kickoff_problem(n: int, coordinators: int = 50, seed: int = 1, weeks: int = KICKOFF_WEEKS) -> KickoffInstance:
    from scheduling.adapters.calendar_data import dutch_public_holidays, school_holidays_by_region, school_years_covered

    rng = random.Random(f"kickoffs-{seed}-{n}-{coordinators}")
    first, last = ko.window_days(KICKOFF_START, weeks)
    institutions = {}
    for k in range(max(3, n // 50)):
        own: tuple[tuple[date, date], ...] = ()
        if rng.random() < 0.25:
            start = KICKOFF_START + timedelta(weeks=rng.randrange(weeks))
            own = ((start, start + timedelta(days=4)),)
        institutions[f"inst{k:03d}"] = ko.InstitutionCalendar(rng.choice(REGIONS), own)
    kickoffs: list[ko.Kickoff] = []
    firms: dict[str, ko.FirmAvailability] = {}
    firm = 0
    while len(kickoffs) < n:
        firm += 1
        firm_id = f"firm{firm:05d}"
        coordinator = f"coord{rng.randrange(coordinators):02d}"
        weekdays = sorted(rng.sample(range(5), rng.randint(2, 5)))
        parts = rng.choice(((time(9), time(12, 30)), (time(13), time(17)), (time(9), time(17)), (time(9), time(17))))
        blocked = frozenset(first + timedelta(days=rng.randrange(7 * weeks)) for _ in range(rng.choice((0, 0, 1, 3))))
        firms[firm_id] = ko.FirmAvailability(tuple(ko.TimeWindow(d, *parts) for d in weekdays), blocked)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            if len(kickoffs) == n:
                break
            m = len(kickoffs)
            kickoffs.append(ko.Kickoff(f"match{m:05d}", firm_id, f"team{m:05d}",
                                       rng.choice(list(institutions)), coordinator, first, last))
    cal = ko.Calendars(dutch_public_holidays([first.year, last.year]), school_holidays_by_region(),
                       institutions, firms, school_years_covered())
    return KickoffInstance(tuple(kickoffs), (), cal, ko.Rules(daily_cap=3))
