"""Themed workshops, free of frameworks: the theme catalogue, the planning problem (rooms, facilitators,
candidate slots, entrepreneurs' interest), which combinations are feasible, the hard rules as labelled
linear rows (one generator per constraint family), the objective, a validator that checks any plan
against those same rows, and the waitlist order.

Decisions are 0/1 values keyed by ``Staffing`` (a session runs with this facilitator) and ``Seat``
(an interest is seated in a session). A session is a theme at a venue (a room, or online) in a slot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from typing import TypeVar

from .calendar import TZ

T = TypeVar("T")
G = TypeVar("G")

ONLINE = "online"
DAY_PARTS = ("morning", "afternoon", "evening")
DAY_PART_LABELS = {"morning": {"nl": "ochtend", "en": "morning"},
                   "afternoon": {"nl": "middag", "en": "afternoon"},
                   "evening": {"nl": "avond", "en": "evening"}}

# when a day part's session runs, in Europe/Amsterdam: what invitations put in calendars
DAY_PART_HOURS = {"morning": (time(9, 30), time(12, 0)), "afternoon": (time(13, 30), time(16, 0)),
                  "evening": (time(19, 0), time(21, 30))}

THEMES: dict[str, dict[str, str]] = {
    "cyber_resilience": {"nl": "Cyberweerbaarheid", "en": "Cyber resilience"},
    "online_marketing": {"nl": "Online marketing", "en": "Online marketing"},
    "ai": {"nl": "Kunstmatige intelligentie (AI)", "en": "Artificial intelligence (AI)"},
    "webshop": {"nl": "Webshop", "en": "Webshop"},
    "data_automation": {"nl": "Data en automatisering", "en": "Data and automation"},
    "digital_roadmap": {"nl": "Digitale routekaart", "en": "Digital roadmap"},
}

# Objective weights: a seat outweighs any travel, a session left unscheduled costs a fixed penalty, and
# each step down an entrepreneur's ranked locations counts as one unit of travel. Among plans equal on
# all that, earlier registrations are seated first: their tie-break sums to less than 0.25 over any plan.
SEAT_WEIGHT = 100.0
UNSCHEDULED_PENALTY = 10.0
TRAVEL_WEIGHT = 1.0
EARLY_BIRD = 0.5
# Re-planning prefers the current plan: keeping a firm's seat outweighs any travel saving (at most 9 steps)
# and the registration-order tie-break, but never a seat more; keeping a session (same facilitator) counts a
# little on its own.
KEEP_SEAT_WEIGHT = 20.0
KEEP_SESSION_WEIGHT = 1.0


@dataclass(frozen=True, order=True)
class Slot:
    day: date
    day_part: str  # one of DAY_PARTS


def slot_times(slot: Slot) -> tuple[datetime, datetime]:
    """A slot's start and end, timezone-aware in Europe/Amsterdam."""
    start, end = DAY_PART_HOURS[slot.day_part]
    return datetime.combine(slot.day, start, TZ), datetime.combine(slot.day, end, TZ)


@dataclass(frozen=True)
class Room:
    room_id: str
    municipality: str  # CBS municipality code, e.g. GM0363
    capacity: int
    available: frozenset[Slot]


@dataclass(frozen=True)
class Facilitator:
    facilitator_id: str
    themes: frozenset[str]
    available: frozenset[Slot]


@dataclass(frozen=True)
class Interest:
    """An entrepreneur's interest in one theme; ``locations`` is ranked, most preferred first."""

    interest_id: str
    firm_id: str
    theme: str
    locations: tuple[str, ...]
    online_ok: bool
    days: frozenset[date]
    order: int = 0  # registration order: the earlier, the higher on a waitlist


@dataclass(frozen=True, order=True)
class Session:
    theme: str
    venue: str  # a room id, or ONLINE
    slot: Slot


@dataclass(frozen=True, order=True)
class Staffing:
    session: Session
    facilitator_id: str


@dataclass(frozen=True, order=True)
class Seat:
    interest_id: str
    session: Session


Key = Staffing | Seat


@dataclass(frozen=True)
class Problem:
    slots: frozenset[Slot]
    rooms: tuple[Room, ...]
    facilitators: tuple[Facilitator, ...]
    interests: tuple[Interest, ...]
    sessions_wanted: Mapping[str, int] = field(default_factory=dict)  # per theme; default 1 with interest
    max_sessions_per_location_day: int = 2
    online_capacity: int = 0  # 0: no online sessions
    min_participants: int = 1

    @cached_property
    def _rooms(self) -> dict[str, Room]:
        return {r.room_id: r for r in self.rooms}

    @cached_property
    def _interests(self) -> dict[str, Interest]:
        return {i.interest_id: i for i in self.interests}

    def room(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def interest(self, interest_id: str) -> Interest | None:
        return self._interests.get(interest_id)

    def wanted(self, theme: str) -> int:
        if theme in self.sessions_wanted:
            return self.sessions_wanted[theme]
        return 1 if any(i.theme == theme for i in self.interests) else 0

    def demanded_themes(self) -> list[str]:
        return sorted({i.theme for i in self.interests} | {t for t, n in self.sessions_wanted.items() if n > 0})


# ---- feasible combinations (only these become variables) ------------------------------------


def capacity_of(problem: Problem, session: Session) -> int:
    if session.venue == ONLINE:
        return problem.online_capacity
    room = problem.room(session.venue)
    return room.capacity if room else 0


def location_of(problem: Problem, session: Session) -> str:
    if session.venue == ONLINE:
        return ONLINE
    room = problem.room(session.venue)
    return room.municipality if room else ""


def can_attend(problem: Problem, interest: Interest, session: Session) -> bool:
    if interest.theme != session.theme or session.slot.day not in interest.days:
        return False
    if session.venue == ONLINE:
        return interest.online_ok
    return location_of(problem, session) in interest.locations


def travel(problem: Problem, interest: Interest, session: Session) -> float:
    """Steps down the entrepreneur's ranked locations; online costs no travel."""
    if session.venue == ONLINE:
        return 0.0
    return float(interest.locations.index(location_of(problem, session)))


@dataclass(frozen=True)
class Candidates:
    staffings: tuple[Staffing, ...]
    seats: dict[Seat, float]  # with the seat's travel


def candidates(problem: Problem) -> Candidates:
    """Every facilitator/session and interest/session combination that can happen: a candidate slot, a
    room or facilitator available then, a facilitator of the theme, a session someone could attend."""
    venues: list[tuple[str, frozenset[Slot]]] = [(r.room_id, r.available) for r in problem.rooms if r.capacity > 0]
    if problem.online_capacity > 0:
        venues.append((ONLINE, problem.slots))
    by_theme: dict[str, list[Interest]] = {}
    for interest in problem.interests:
        by_theme.setdefault(interest.theme, []).append(interest)
    staffings: list[Staffing] = []
    seats: dict[Seat, float] = {}
    for theme in problem.demanded_themes():
        if problem.wanted(theme) <= 0:
            continue
        for venue, available in venues:
            for slot in sorted(available & problem.slots):
                session = Session(theme, venue, slot)
                attendees = [i for i in by_theme.get(theme, ()) if can_attend(problem, i, session)]
                if len(attendees) < max(problem.min_participants, 1):
                    continue
                staff = [f.facilitator_id for f in problem.facilitators
                         if theme in f.themes and slot in f.available]
                if not staff:
                    continue
                staffings += [Staffing(session, f) for f in sorted(staff)]
                for i in attendees:
                    seats[Seat(i.interest_id, session)] = travel(problem, i, session)
    return Candidates(tuple(staffings), seats)


# ---- the hard rules as linear rows ----------------------------------------------------------

GROUPS: dict[str, dict[str, str]] = {
    "one_facilitator": {"en": "a session runs at most once, with one facilitator",
                        "nl": "een sessie loopt hoogstens één keer, met één begeleider"},
    "room_once": {"en": "a room holds at most one session per slot",
                  "nl": "een zaal heeft hoogstens één sessie per dagdeel"},
    "facilitator_once": {"en": "a facilitator leads at most one session per slot",
                         "nl": "een begeleider leidt hoogstens één sessie per dagdeel"},
    "location_day_cap": {"en": "at most the cap of sessions per location per day",
                         "nl": "hoogstens het maximum aantal sessies per locatie per dag"},
    "sessions_wanted": {"en": "at most the wanted number of sessions per theme",
                        "nl": "hoogstens het gewenste aantal sessies per thema"},
    "capacity": {"en": "seats only in a running session, within its capacity",
                 "nl": "plaatsen alleen in een sessie die doorgaat, binnen de capaciteit"},
    "min_participants": {"en": "a running session has at least the minimum number of participants",
                         "nl": "een sessie die doorgaat heeft minstens het minimum aantal deelnemers"},
    "one_seat_per_theme": {"en": "an entrepreneur gets at most one seat per theme",
                           "nl": "een ondernemer krijgt hoogstens één plaats per thema"},
    "firm_once": {"en": "an entrepreneur is seated in at most one session per slot",
                  "nl": "een ondernemer zit hoogstens in één sessie per dagdeel"},
}


@dataclass(frozen=True)
class Row:
    """One labelled linear constraint ``sum(coef * value[key]) <sense> rhs`` over 0/1 decisions."""

    group: str
    label: str
    terms: tuple[tuple[Key, float], ...]
    sense: str  # "<=" or ">="
    rhs: float

    def lhs(self, values: Mapping[Key, float]) -> float:
        return sum(coef * values.get(key, 0.0) for key, coef in self.terms)

    def holds(self, values: Mapping[Key, float], tolerance: float = 1e-6) -> bool:
        lhs = self.lhs(values)
        return lhs <= self.rhs + tolerance if self.sense == "<=" else lhs >= self.rhs - tolerance


def _grouped(items: Iterable[T], key: Callable[[T], G]) -> dict[G, list[T]]:
    out: dict[G, list[T]] = {}
    for item in sorted(items):  # type: ignore[type-var]
        out.setdefault(key(item), []).append(item)
    return out


def _ones(keys: Iterable[Key]) -> tuple[tuple[Key, float], ...]:
    return tuple((k, 1.0) for k in keys)


def one_facilitator(problem: Problem, c: Candidates) -> Iterator[Row]:
    for session, staff in _grouped(c.staffings, lambda s: s.session).items():
        yield Row("one_facilitator", f"{session.theme} at {session.venue} on {_slot(session.slot)}",
                  _ones(staff), "<=", 1)


def room_once(problem: Problem, c: Candidates) -> Iterator[Row]:
    rooms = [s for s in c.staffings if s.session.venue != ONLINE]
    for (venue, slot), staff in _grouped(rooms, lambda s: (s.session.venue, s.session.slot)).items():
        yield Row("room_once", f"room {venue} on {_slot(slot)}", _ones(staff), "<=", 1)


def facilitator_once(problem: Problem, c: Candidates) -> Iterator[Row]:
    for (who, slot), staff in _grouped(c.staffings, lambda s: (s.facilitator_id, s.session.slot)).items():
        yield Row("facilitator_once", f"facilitator {who} on {_slot(slot)}", _ones(staff), "<=", 1)


def location_day_cap(problem: Problem, c: Candidates) -> Iterator[Row]:
    rooms = [s for s in c.staffings if s.session.venue != ONLINE]
    by_place = _grouped(rooms, lambda s: (location_of(problem, s.session), s.session.slot.day))
    for (place, day), staff in by_place.items():
        yield Row("location_day_cap", f"location {place} on {day.isoformat()}", _ones(staff), "<=",
                  problem.max_sessions_per_location_day)


def sessions_wanted(problem: Problem, c: Candidates) -> Iterator[Row]:
    for theme, staff in _grouped(c.staffings, lambda s: s.session.theme).items():
        yield Row("sessions_wanted", f"theme {theme}", _ones(staff), "<=", problem.wanted(theme))


def capacity(problem: Problem, c: Candidates) -> Iterator[Row]:
    """Seats in a session only when it runs, at most its capacity; at least the minimum when it runs."""
    seats = _grouped(c.seats, lambda s: s.session)
    for session, staff in _grouped(c.staffings, lambda s: s.session).items():
        label = f"{session.theme} at {session.venue} on {_slot(session.slot)}"
        taken = _ones(seats.get(session, []))
        yield Row("capacity", label, (*taken, *((s, -float(capacity_of(problem, session))) for s in staff)),
                  "<=", 0)
        yield Row("min_participants", label,
                  (*taken, *((s, -float(problem.min_participants)) for s in staff)), ">=", 0)


def seat_needs_session(problem: Problem, c: Candidates) -> Iterator[Row]:
    """A seat only in a session that runs, one row per seat: implied by the capacity rows for whole
    numbers, but it keeps the LP relaxation tight, which is what lets the solver prove optimality."""
    staff = _grouped(c.staffings, lambda s: s.session)
    for seat in sorted(c.seats):
        yield Row("capacity", f"seat of interest {seat.interest_id} in {seat.session.theme} at "
                              f"{seat.session.venue} on {_slot(seat.session.slot)}",
                  ((seat, 1.0), *((s, -1.0) for s in staff.get(seat.session, []))), "<=", 0)


def one_seat_per_theme(problem: Problem, c: Candidates) -> Iterator[Row]:
    for interest_id, seats in _grouped(c.seats, lambda s: s.interest_id).items():
        yield Row("one_seat_per_theme", f"interest {interest_id}", _ones(seats), "<=", 1)


def firm_once(problem: Problem, c: Candidates) -> Iterator[Row]:
    """A firm interested in several themes is never seated in two sessions of one slot."""
    firm = {i.interest_id: i.firm_id for i in problem.interests}
    themes: dict[str, set[str]] = {}
    for i in problem.interests:
        themes.setdefault(i.firm_id, set()).add(i.theme)
    several = [s for s in c.seats if len(themes.get(firm.get(s.interest_id, ""), ())) > 1]
    for (who, slot), seats in _grouped(several, lambda s: (firm[s.interest_id], s.session.slot)).items():
        if len({s.session.theme for s in seats}) > 1:
            yield Row("firm_once", f"firm {who} on {_slot(slot)}", _ones(seats), "<=", 1)


CONSTRAINT_FAMILIES = (one_facilitator, room_once, facilitator_once, location_day_cap, sessions_wanted,
                       capacity, seat_needs_session, one_seat_per_theme, firm_once)


def hard_rows(problem: Problem, c: Candidates) -> Iterator[Row]:
    for family in CONSTRAINT_FAMILIES:
        yield from family(problem, c)


def _slot(slot: Slot) -> str:
    return f"{slot.day.isoformat()} {slot.day_part}"


# ---- the objective --------------------------------------------------------------------------


def objective_terms(problem: Problem, c: Candidates, keep: Plan | None = None) -> dict[Key, float]:
    """Maximised: a seat is worth SEAT_WEIGHT less its travel (and a sliver for a later registration); a
    running session saves the penalty it would cost unscheduled (the wanted sessions' total penalty is a
    constant, left out). When re-planning, what ``keep`` (the current plan) already has earns a bonus."""
    kept = keep or Plan(frozenset(), frozenset())
    terms: dict[Key, float] = {s: UNSCHEDULED_PENALTY + (KEEP_SESSION_WEIGHT if s in kept.staffings else 0.0)
                               for s in c.staffings}
    n = len(problem.interests)
    rank = {i.interest_id: k for k, i in enumerate(waitlist_order(problem.interests))}
    for seat, cost in c.seats.items():
        terms[seat] = (SEAT_WEIGHT - TRAVEL_WEIGHT * cost - EARLY_BIRD * rank[seat.interest_id] / (n * (n + 1))
                       + (KEEP_SEAT_WEIGHT if seat in kept.seats else 0.0))
    return terms


def objective_value(problem: Problem, plan: Plan) -> float:
    terms = objective_terms(problem, candidates(problem))
    return sum(terms.get(k, 0.0) for k in plan.values())


# ---- plans and the validator ----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    staffings: frozenset[Staffing]
    seats: frozenset[Seat]

    def values(self) -> dict[Key, float]:
        return {**{s: 1.0 for s in self.staffings}, **{s: 1.0 for s in self.seats}}

    def sessions(self) -> dict[Session, str]:
        """The running sessions and their facilitators."""
        return {s.session: s.facilitator_id for s in sorted(self.staffings)}


def violations(problem: Problem, plan: Plan) -> list[str]:
    """Every rule the plan breaks, checked with the optimiser's own rows; empty when the plan holds."""
    c = candidates(problem)
    found: list[str] = []
    feasible_staff = set(c.staffings)
    for staffing in sorted(plan.staffings - feasible_staff):
        s = staffing.session
        found.append(f"impossible session {s.theme} at {s.venue} on {_slot(s.slot)} "
                     f"with facilitator {staffing.facilitator_id}")
    for seat in sorted(plan.seats - set(c.seats)):
        found.append(f"impossible seat for interest {seat.interest_id} in {seat.session.theme} "
                     f"at {seat.session.venue} on {_slot(seat.session.slot)}")
    union = Candidates(tuple(sorted(feasible_staff | plan.staffings)),
                       {**{s: 0.0 for s in plan.seats}, **c.seats})
    values = plan.values()
    for row in hard_rows(problem, union):
        if not row.holds(values):
            found.append(f"{row.group}: {row.label} ({row.lhs(values):g} {row.sense} {row.rhs:g} broken)")
    return found


# ---- reasons and the waitlist ---------------------------------------------------------------


def unscheduled(problem: Problem, plan: Plan) -> list[dict[str, object]]:
    """Per theme, the wanted sessions that do not run, and why."""
    c = candidates(problem)
    running: dict[str, int] = {}
    for s in plan.staffings:
        running[s.session.theme] = running.get(s.session.theme, 0) + 1
    out: list[dict[str, object]] = []
    for theme in problem.demanded_themes():
        missing = problem.wanted(theme) - running.get(theme, 0)
        if missing <= 0:
            continue
        out.append({"theme": theme, "sessions": missing, "reason": _why_not(problem, c, theme)})
    return out


def _why_not(problem: Problem, c: Candidates, theme: str) -> str:
    interested = [i for i in problem.interests if i.theme == theme]
    if len(interested) < max(problem.min_participants, 1):
        return "not enough interest"
    if not any(theme in f.themes and f.available & problem.slots for f in problem.facilitators):
        return "no facilitator for this theme is available in a candidate slot"
    if not any(s.session.theme == theme for s in c.staffings):
        return ("no room or online session in a slot that a facilitator of this theme and enough "
                "interested entrepreneurs can make")
    return "rooms, facilitators or the per-location cap were needed for other sessions"


def waitlist_order(interests: Iterable[Interest]) -> list[Interest]:
    """Earliest registration first; ties by id, so the order never depends on storage."""
    return sorted(interests, key=lambda i: (i.order, i.interest_id))
