"""The kickoff planning rules, shared by the optimiser, the validator and a coordinator's move.

A kickoff is one hour with the firm, the team and the coordinator, on the coordinator's slot grid
(``calendar.SLOTS``) on a weekday in the kickoff window. A (kickoff, slot) pair is feasible when the
firm is available then (weekly time windows, not a blocked date) and the day is no Dutch public
holiday, no school holiday of the institution's region and not in the institution's non-teaching
periods. Across kickoffs: no firm, team or coordinator in two kickoffs at once, and at most
``daily_cap`` kickoffs per coordinator per day. Kickoffs outside the plan (other batches, moved by
hand) are fixed bookings that take their share of these limits.

Each constraint family is a generator of labelled rows ``sum(x[pair]) <= rhs``; the optimiser adds them
to its model and ``violations`` evaluates the very same rows on any plan.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from .calendar import KICKOFF_DURATION, SLOTS, TZ

WEEKDAYS = range(5)  # Monday to Friday: teams meet on school days
DEFAULT_DAILY_CAP = len(SLOTS)
VENUES = ("on_site", "online")

NO_COMMON_SLOT = "no_common_slot"
HOLIDAYS = "holidays"
DAILY_CAP = "daily_cap"
REASONS = {
    NO_COMMON_SLOT: "no free weekday slot: the firm is not available at any slot in the window",
    HOLIDAYS: "no free weekday slot: every slot the firm can make falls on a public holiday, a school "
              "holiday of the institution's region or one of its non-teaching weeks",
    DAILY_CAP: "no free weekday slot: every possible slot is taken by other kickoffs of the firm, team or "
               "coordinator, or by the coordinator's daily cap",
}


@dataclass(frozen=True)
class TimeWindow:
    weekday: int  # 0 = Monday
    start: time
    end: time

    def holds(self, start: datetime, end: datetime) -> bool:
        return (start.weekday() == self.weekday and start.date() == end.date()
                and self.start <= start.time() and end.time() <= self.end)


ANY_WORKING_HOUR = tuple(TimeWindow(d, time(9, 0), time(17, 0)) for d in WEEKDAYS)


@dataclass(frozen=True)
class FirmAvailability:
    """No registered availability means: any working hour on a weekday, place to be agreed."""

    windows: tuple[TimeWindow, ...] = ANY_WORKING_HOUR
    blocked: frozenset[date] = frozenset()
    venue: str | None = None
    address: str | None = None

    def allows(self, start: datetime, end: datetime) -> bool:
        return start.date() not in self.blocked and any(w.holds(start, end) for w in self.windows)


@dataclass(frozen=True)
class InstitutionCalendar:
    region: str | None = None  # noord, midden or zuid
    non_teaching: tuple[tuple[date, date], ...] = ()  # inclusive ranges


def school_year_of(day: date) -> str:
    """The Dutch school year a day belongs to: 1 August to 31 July, e.g. ``2026-2027``."""
    first = day.year if day.month >= 8 else day.year - 1
    return f"{first}-{first + 1}"


@dataclass(frozen=True)
class Calendars:
    """Everything that closes a day: public holidays, school holidays per region, institutions' own."""

    public_holidays: Mapping[date, str]
    school_holidays: Mapping[str, Sequence[tuple[date, date]]]  # region -> inclusive ranges
    institutions: Mapping[str, InstitutionCalendar] = field(default_factory=dict)
    firms: Mapping[str, FirmAvailability] = field(default_factory=dict)
    # the school years whose holidays are known; None: every year's (no coverage check)
    school_years: frozenset[str] | None = None

    def firm(self, firm_id: str) -> FirmAvailability:
        return self.firms.get(firm_id, FirmAvailability())

    def closed(self, day: date, institution_id: str) -> str | None:
        """Why the day is closed for the institution's team, or None."""
        if day in self.public_holidays:
            return "public holiday"
        cal = self.institutions.get(institution_id, InstitutionCalendar())
        if cal.region and any(a <= day <= b for a, b in self.school_holidays.get(cal.region, ())):
            return "school holiday"
        if any(a <= day <= b for a, b in cal.non_teaching):
            return "non-teaching week"
        return None

    def school_holidays_unknown(self, day: date, institution_id: str) -> str | None:
        """The school year whose holidays are unknown for the institution's region on ``day``, or None.
        A day inside a listed holiday is known, even when that holiday runs into the next school year."""
        region = self.institutions.get(institution_id, InstitutionCalendar()).region
        if region is None or self.school_years is None or school_year_of(day) in self.school_years:
            return None
        if any(a <= day <= b for a, b in self.school_holidays.get(region, ())):
            return None
        return school_year_of(day)

    def school_holiday_unchecked(self, day: date, institution_id: str) -> str | None:
        """For an institution that chose no school-holiday region: the school year of ``day`` when the day
        may be a school holiday (it is one in some region, or the year's holidays are unknown), else None."""
        if self.institutions.get(institution_id, InstitutionCalendar()).region is not None:
            return None
        if any(a <= day <= b for spans in self.school_holidays.values() for a, b in spans):
            return school_year_of(day)
        if self.school_years is not None and school_year_of(day) not in self.school_years:
            return school_year_of(day)
        return None


@dataclass(frozen=True)
class Kickoff:
    """One kickoff to place, in its window ``first_day`` .. ``last_day`` (inclusive)."""

    match_id: str
    firm_id: str
    team_id: str
    institution_id: str
    coordinator_id: str
    first_day: date
    last_day: date
    current: datetime | None = None  # its slot so far, kept when still possible (minimum change)


@dataclass(frozen=True)
class Booking:
    """A kickoff that is not being planned but occupies its firm, team and coordinator."""

    match_id: str
    firm_id: str
    team_id: str
    coordinator_id: str
    starts_at: datetime

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + KICKOFF_DURATION


@dataclass(frozen=True)
class Rules:
    daily_cap: int = DEFAULT_DAILY_CAP
    slot_times: tuple[time, ...] = SLOTS


Pair = tuple[str, datetime]  # (match id, slot start)


@dataclass(frozen=True)
class Row:
    label: str
    pairs: tuple[Pair, ...]
    rhs: int


def window_days(first_day: date, weeks: int) -> tuple[date, date]:
    return first_day, first_day + timedelta(days=7 * weeks - 1)


def slot_starts(k: Kickoff, rules: Rules) -> Iterator[datetime]:
    day = k.first_day
    while day <= k.last_day:
        if day.weekday() in WEEKDAYS:
            for t in rules.slot_times:
                yield datetime.combine(day, t, TZ)
        day += timedelta(days=1)


def pair_problem(k: Kickoff, start: datetime, cal: Calendars) -> str | None:
    """Why this kickoff cannot be at ``start`` on its own (ignoring other kickoffs), or None."""
    start = start.astimezone(TZ)
    end = start + KICKOFF_DURATION
    if not k.first_day <= start.date() <= k.last_day:
        return "outside the kickoff window"
    if start.weekday() not in WEEKDAYS:
        return "not a weekday"
    if not cal.firm(k.firm_id).allows(start, end):
        return "the firm is not available"
    return cal.closed(start.date(), k.institution_id)


@dataclass(frozen=True)
class Candidates:
    """The feasible slots per kickoff, and for kickoffs without any, why."""

    slots: Mapping[str, tuple[datetime, ...]]
    reasons: Mapping[str, str]  # match id -> NO_COMMON_SLOT or HOLIDAYS


def candidates(kickoffs: Iterable[Kickoff], cal: Calendars, rules: Rules) -> Candidates:
    slots: dict[str, tuple[datetime, ...]] = {}
    reasons: dict[str, str] = {}
    closed: dict[tuple[date, str], bool] = {}
    # which slot times a firm's weekly windows allow on each weekday (the same for every week)
    allowed: dict[tuple[str, int], tuple[time, ...]] = {}
    for k in kickoffs:
        firm = cal.firm(k.firm_id)
        firm_ok: list[datetime] = []
        feasible: list[datetime] = []
        day = k.first_day
        while day <= k.last_day:
            if day.weekday() in WEEKDAYS and day not in firm.blocked:
                key = (k.firm_id, day.weekday())
                if key not in allowed:
                    allowed[key] = tuple(t for t in rules.slot_times if firm.allows(
                        datetime.combine(day, t, TZ), datetime.combine(day, t, TZ) + KICKOFF_DURATION))
                starts = [datetime.combine(day, t, TZ) for t in allowed[key]]
                firm_ok += starts
                shut = (day, k.institution_id)
                if shut not in closed:
                    closed[shut] = cal.closed(*shut) is not None
                if not closed[shut]:
                    feasible += starts
            day += timedelta(days=1)
        slots[k.match_id] = tuple(feasible)
        if not feasible:
            reasons[k.match_id] = HOLIDAYS if firm_ok else NO_COMMON_SLOT
    return Candidates(slots, reasons)


def _overlaps(a: datetime, b: datetime) -> bool:
    return a < b + KICKOFF_DURATION and b < a + KICKOFF_DURATION


def _no_double_booking(kickoffs: Sequence[Kickoff], pairs: Sequence[Pair], fixed: Sequence[Booking],
                       attr: str) -> Iterator[Row]:
    """For each start a resource (firm, team or coordinator) might be at: all its pairs that overlap
    that start may hold at most one kickoff, and none if a fixed booking overlaps it already."""
    owner = {k.match_id: getattr(k, attr) for k in kickoffs}
    by_who: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_who[owner[p[0]]].append(p)
    busy: dict[str, list[datetime]] = defaultdict(list)
    for b in fixed:
        busy[getattr(b, attr)].append(b.starts_at)
    name = attr.removesuffix("_id")
    for who, own in sorted(by_who.items()):
        if who not in busy and len({p[0] for p in own}) == 1:
            continue  # one kickoff's own pairs: its one-slot row holds them already
        own.sort(key=lambda p: (p[1], p[0]))
        starts = [p[1] for p in own]
        for start in sorted(set(starts)):
            # pairs whose hour overlaps this start's hour (on the slot grid: the same start)
            lo = bisect_right(starts, start - KICKOFF_DURATION)
            hi = bisect_left(starts, start + KICKOFF_DURATION)
            members = tuple(sorted(own[lo:hi]))
            taken = any(_overlaps(start, b) for b in busy.get(who, ()))
            if len(members) > 1 or taken:
                yield Row(f"{name}_once[{who},{start.isoformat()}]", members, 0 if taken else 1)


def one_slot_per_kickoff(kickoffs: Sequence[Kickoff], pairs: Sequence[Pair], fixed: Sequence[Booking],
                         rules: Rules) -> Iterator[Row]:
    by_kickoff: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_kickoff[p[0]].append(p)
    for match_id, members in sorted(by_kickoff.items()):
        yield Row(f"one_slot[{match_id}]", tuple(members), 1)


def firm_once(kickoffs: Sequence[Kickoff], pairs: Sequence[Pair], fixed: Sequence[Booking],
              rules: Rules) -> Iterator[Row]:
    yield from _no_double_booking(kickoffs, pairs, fixed, "firm_id")


def team_once(kickoffs: Sequence[Kickoff], pairs: Sequence[Pair], fixed: Sequence[Booking],
              rules: Rules) -> Iterator[Row]:
    yield from _no_double_booking(kickoffs, pairs, fixed, "team_id")


def coordinator_once(kickoffs: Sequence[Kickoff], pairs: Sequence[Pair], fixed: Sequence[Booking],
                     rules: Rules) -> Iterator[Row]:
    yield from _no_double_booking(kickoffs, pairs, fixed, "coordinator_id")


def coordinator_daily_cap(kickoffs: Sequence[Kickoff], pairs: Sequence[Pair], fixed: Sequence[Booking],
                          rules: Rules) -> Iterator[Row]:
    owner = {k.match_id: k.coordinator_id for k in kickoffs}
    per_day: dict[tuple[str, date], list[Pair]] = defaultdict(list)
    for p in pairs:
        per_day[(owner[p[0]], p[1].astimezone(TZ).date())].append(p)
    booked: dict[tuple[str, date], int] = defaultdict(int)
    for b in fixed:
        booked[(b.coordinator_id, b.starts_at.astimezone(TZ).date())] += 1
    for (who, day), members in sorted(per_day.items()):
        rhs = max(0, rules.daily_cap - booked[(who, day)])
        if len(members) > rhs:
            yield Row(f"daily_cap[{who},{day.isoformat()}]", tuple(sorted(members)), rhs)


CONSTRAINTS = (one_slot_per_kickoff, firm_once, team_once, coordinator_once, coordinator_daily_cap)


def rows(kickoffs: Sequence[Kickoff], pairs: Sequence[Pair], fixed: Sequence[Booking], rules: Rules) -> Iterator[Row]:
    for family in CONSTRAINTS:
        yield from family(kickoffs, pairs, fixed, rules)


def cost(k: Kickoff, start: datetime, rules: Rules) -> int:
    """Earlier is better: the slot's position in the window (0 for the first slot)."""
    return (start.date() - k.first_day).days * len(rules.slot_times) + next(
        (i for i, t in enumerate(rules.slot_times) if t == start.timetz().replace(tzinfo=None)), len(rules.slot_times))


@dataclass(frozen=True)
class UnknownSchoolHolidays:
    """Kickoffs placed on days of a school year whose school holidays are not in the data, or (``region``
    None) for an institution that chose no school-holiday region on a day that may be a school holiday:
    the slot may fall in a holiday nobody could check."""

    school_year: str
    region: str | None
    match_ids: tuple[str, ...]


def unknown_school_holidays(kickoffs: Sequence[Kickoff], placed: Mapping[str, datetime],
                            cal: Calendars) -> list[UnknownSchoolHolidays]:
    found: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for k in kickoffs:
        if k.match_id not in placed:
            continue
        day = placed[k.match_id].astimezone(TZ).date()
        year = cal.school_holidays_unknown(day, k.institution_id)
        if year is not None:
            found[(year, cal.institutions[k.institution_id].region)].append(k.match_id)
        elif (unchecked := cal.school_holiday_unchecked(day, k.institution_id)) is not None:
            found[(unchecked, None)].append(k.match_id)
    order = sorted(found, key=lambda key: (key[0], key[1] is None, key[1] or ""))  # an unchosen region last
    return [UnknownSchoolHolidays(year, region, tuple(sorted(found[(year, region)]))) for year, region in order]


@dataclass(frozen=True)
class Plan:
    placed: Mapping[str, datetime]  # match id -> start (Europe/Amsterdam)
    unplaced: Mapping[str, str]  # match id -> reason code
    solver: str = ""
    seconds: float = 0.0
    warnings: tuple[UnknownSchoolHolidays, ...] = ()
    status: str = ""  # optimal, feasible (a time limit stopped a part), heuristic (a greedy plan)


def violations(kickoffs: Sequence[Kickoff], plan: Mapping[str, datetime], fixed: Sequence[Booking],
               cal: Calendars, rules: Rules) -> list[str]:
    """Every rule the plan breaks, by label; [] for a valid plan. Uses the optimiser's own rows."""
    known = {k.match_id: k for k in kickoffs}
    found = [f"unknown[{m}]" for m in sorted(plan) if m not in known]
    pairs = [(m, s.astimezone(TZ)) for m, s in sorted(plan.items()) if m in known]
    for m, s in pairs:
        if (problem := pair_problem(known[m], s, cal)) is not None:
            found.append(f"infeasible[{m}]: {problem}")
    for row in rows(kickoffs, pairs, fixed, rules):
        if len(row.pairs) > row.rhs:
            found.append(row.label)
    return found
