"""Independent checks of a workshop plan and a kickoff plan, written from the rules as stated (the
modules' docstrings, DESIGN.md section 5), not from the optimisers' constraint rows: a second opinion on
what the optimisers return, in plain Python, counting and comparing directly.

Workshop plan, hard rules:
- a session runs only with a known facilitator of its theme who is available in its slot, in a
  candidate slot of the programme, in a room of the programme available then (or online when online
  sessions are offered), for a theme with sessions wanted;
- one facilitator per session; a room holds one session per slot; a facilitator leads one session per
  slot; at most the programme's cap of sessions per location (municipality) per day, online not counted;
  at most the wanted number of sessions per theme;
- a seat only in a running session, for an interest of that theme, on a day the firm can come, at one
  of its locations (or online when it accepts online); at most the venue's capacity per session, and a
  running session has at least the minimum number of participants;
- an entrepreneur has at most one seat per theme and is never seated in two sessions of one slot.

Kickoff plan, hard rules:
- a placed kickoff is a known kickoff, placed once, starting in its window on a weekday (on the
  coordinator's slot grid when ``on_grid``), in an hour the firm is available (weekly windows, not a
  blocked date), not on a public holiday, a school holiday of the institution's region or one of the
  institution's non-teaching days;
- no firm, team or coordinator in two kickoffs whose hours overlap, fixed bookings included;
- at most the daily cap of kickoffs per coordinator per day, fixed bookings included.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import kickoffs as ko
from . import workshops as ws
from .calendar import KICKOFF_DURATION, TZ


@dataclass(frozen=True)
class Violation:
    """A broken rule of a workshop plan: ``rule`` names it (a code), ``facts`` say what it is about (ids, a
    theme code, a day and part of the day, counts) so a page can say it in a person's language and name things by
    their names; ``text`` says it in English with the ids (logs, the API's verdict)."""

    rule: str
    text: str
    facts: Mapping[str, str | int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "facts": dict(self.facts)}


def workshop_plan_errors(problem: ws.Problem, plan: ws.Plan) -> list[str]:
    """Every hard rule the workshop plan breaks, in words; [] when it keeps them all."""
    return [v.text for v in workshop_plan_violations(problem, plan)]


def workshop_plan_violations(problem: ws.Problem, plan: ws.Plan, *,
                             earlier: Iterable[ws.Interest] = ()) -> list[Violation]:
    """Every hard rule the workshop plan breaks (``Violation``); [] when it keeps them all. ``earlier``: interests
    the plan was made with that ``problem`` may no longer hold (a seat cancelled while solving), to name the firm
    of a seat whose interest is gone."""
    errors: list[Violation] = []
    rooms = {r.room_id: r for r in problem.rooms}
    staff = {f.facilitator_id: f for f in problem.facilitators}
    interests = {i.interest_id: i for i in problem.interests}
    firm_of = {i.interest_id: i.firm_id for i in (*earlier, *problem.interests)}
    wanted = dict(problem.sessions_wanted)
    interested = Counter(i.theme for i in problem.interests)

    def wants(theme: str) -> int:
        return wanted[theme] if theme in wanted else (1 if interested[theme] else 0)

    def capacity(s: ws.Session) -> int:
        if s.venue == ws.ONLINE:
            return problem.online_capacity
        room = rooms.get(s.venue)
        return room.capacity if room else 0

    def when(slot: ws.Slot) -> dict[str, str | int]:
        return {"day": slot.day.isoformat(), "day_part": slot.day_part}

    def of(s: ws.Session) -> dict[str, str | int]:
        return {"theme": s.theme, "venue": s.venue, **when(s.slot)}

    def add(rule: str, text: str, **facts: str | int) -> None:
        errors.append(Violation(rule, text, facts))

    led_by: dict[ws.Session, list[str]] = defaultdict(list)
    for staffing in plan.staffings:
        led_by[staffing.session].append(staffing.facilitator_id)
    for s, who in sorted(led_by.items()):
        name = f"session {s.theme} at {s.venue} on {s.slot.day} {s.slot.day_part}"
        if len(who) > 1:
            add("session_facilitators", f"{name} has {len(who)} facilitators", **of(s), count=len(who))
        for f_id in who:
            f = staff.get(f_id)
            if f is None:
                add("facilitator_unknown", f"{name}: facilitator {f_id} is not one of the programme's", **of(s),
                    facilitator_id=f_id)
            elif s.theme not in f.themes:
                add("facilitator_theme", f"{name}: facilitator {f_id} does not give this theme", **of(s),
                    facilitator_id=f_id)
            elif s.slot not in f.available:
                add("facilitator_unavailable", f"{name}: facilitator {f_id} is not available then", **of(s),
                    facilitator_id=f_id)
        if s.slot not in problem.slots:
            add("slot_not_candidate", f"{name}: not a candidate slot of the programme", **of(s))
        if wants(s.theme) <= 0:
            add("theme_not_wanted", f"{name}: no session of this theme is wanted", **of(s))
        if s.venue == ws.ONLINE:
            if problem.online_capacity <= 0:
                add("no_online", f"{name}: the programme has no online sessions", **of(s))
        elif s.venue not in rooms:
            add("room_unknown", f"{name}: not a room of the programme", **of(s))
        elif s.slot not in rooms[s.venue].available or rooms[s.venue].capacity <= 0:
            add("room_unavailable", f"{name}: the room is not available then", **of(s))

    for (venue, slot), n in sorted(Counter((s.venue, s.slot) for s in led_by if s.venue != ws.ONLINE).items()):
        if n > 1:
            add("room_twice", f"room {venue} holds {n} sessions on {slot.day} {slot.day_part}", venue=venue,
                **when(slot), count=n)
    for (f_id, slot), n in sorted(Counter((f, s.slot) for s, who in led_by.items() for f in who).items()):
        if n > 1:
            add("facilitator_twice", f"facilitator {f_id} leads {n} sessions on {slot.day} {slot.day_part}",
                facilitator_id=f_id, **when(slot), count=n)
    per_place_day = Counter((rooms[s.venue].municipality, s.slot.day) for s in led_by if s.venue in rooms)
    for (place, day), n in sorted(per_place_day.items()):
        if n > problem.max_sessions_per_location_day:
            add("location_cap", f"location {place} has {n} sessions on {day}, over the cap of "
                f"{problem.max_sessions_per_location_day}", municipality=place, day=day.isoformat(), count=n,
                limit=problem.max_sessions_per_location_day)
    for theme, n in sorted(Counter(s.theme for s in led_by).items()):
        if n > wants(theme):
            add("theme_over", f"theme {theme} has {n} sessions, over the {wants(theme)} wanted", theme=theme,
                count=n, limit=wants(theme))

    seated: dict[ws.Session, int] = Counter()
    seats_of: dict[str, int] = Counter()
    firm_theme: dict[tuple[str, str], int] = Counter()
    firm_slot: dict[tuple[str, ws.Slot], int] = Counter()
    for seat in sorted(plan.seats):
        s = seat.session
        i = interests.get(seat.interest_id)
        name = f"seat of interest {seat.interest_id} in {s.theme} at {s.venue} on {s.slot.day} {s.slot.day_part}"
        # a seat is named by its firm (the interest's), never by the interest's id, on a page
        firm = firm_of.get(seat.interest_id)
        seat_of = {**of(s), **({"firm_id": firm} if firm is not None else {})}
        if s not in led_by:
            add("seat_session_not_running", f"{name}: the session does not run", **seat_of)
        seated[s] += 1
        if i is None:
            add("seat_interest_unknown", f"{name}: no such interest", **seat_of)
            continue
        seats_of[i.interest_id] += 1
        firm_theme[(i.firm_id, s.theme)] += 1
        firm_slot[(i.firm_id, s.slot)] += 1
        if i.theme != s.theme:
            add("seat_other_theme", f"{name}: the interest is in {i.theme}", **seat_of, interest_theme=i.theme)
        if s.slot.day not in i.days:
            add("seat_firm_day", f"{name}: the firm cannot come that day", **seat_of)
        if s.venue == ws.ONLINE:
            if not i.online_ok:
                add("seat_firm_online", f"{name}: the firm does not take online sessions", **seat_of)
        elif s.venue in rooms and rooms[s.venue].municipality not in i.locations:
            add("seat_firm_location", f"{name}: not at one of the firm's locations", **seat_of)
    for s, n in sorted(seated.items()):
        if n > capacity(s):
            add("session_over_capacity", f"session {s.theme} at {s.venue} on {s.slot.day} {s.slot.day_part} "
                f"seats {n}, over its capacity of {capacity(s)}", **of(s), count=n, limit=capacity(s))
    for s in sorted(led_by):
        if seated[s] < problem.min_participants:
            add("session_under_minimum", f"session {s.theme} at {s.venue} on {s.slot.day} {s.slot.day_part} runs "
                f"with {seated[s]} participants, under the minimum of {problem.min_participants}", **of(s),
                count=seated[s], limit=problem.min_participants)
    for interest_id, n in sorted(seats_of.items()):
        if n > 1:
            add("interest_seats", f"interest {interest_id} has {n} seats", firm_id=interests[interest_id].firm_id,
                theme=interests[interest_id].theme, count=n)
    for (firm, theme), n in sorted(firm_theme.items()):
        if n > 1:
            add("firm_theme_seats", f"firm {firm} has {n} seats in theme {theme}", firm_id=firm, theme=theme,
                count=n)
    for (firm, slot), n in sorted(firm_slot.items()):
        if n > 1:
            add("firm_slot_seats", f"firm {firm} is seated in {n} sessions on {slot.day} {slot.day_part}",
                firm_id=firm, **when(slot), count=n)
    return errors


def kickoff_plan_errors(kickoffs: Sequence[ko.Kickoff], plan: Mapping[str, datetime],
                        fixed: Sequence[ko.Booking], cal: ko.Calendars, rules: ko.Rules,
                        on_grid: bool = True) -> list[str]:
    """Every hard rule the kickoff plan (match id -> start) breaks, in words; [] when it keeps them all."""
    errors: list[str] = []
    known = {k.match_id: k for k in kickoffs}
    # (who, start) of every hour taken, per kind of participant; fixed bookings first
    hours: dict[str, list[tuple[str, datetime, str]]] = {"firm": [], "team": [], "coordinator": []}
    for b in fixed:
        start = b.starts_at.astimezone(TZ)
        hours["firm"].append((b.firm_id, start, f"booking {b.match_id}"))
        hours["team"].append((b.team_id, start, f"booking {b.match_id}"))
        hours["coordinator"].append((b.coordinator_id, start, f"booking {b.match_id}"))
    for match_id, when in sorted(plan.items()):
        k = known.get(match_id)
        if k is None:
            errors.append(f"kickoff {match_id} is not one to plan")
            continue
        start = when.astimezone(TZ)
        end = start + KICKOFF_DURATION
        day = start.date()
        name = f"kickoff {match_id} at {start.isoformat()}"
        if not k.first_day <= day <= k.last_day:
            errors.append(f"{name}: outside its window {k.first_day} to {k.last_day}")
        if day.weekday() >= 5:
            errors.append(f"{name}: not a weekday")
        if on_grid and start.time().replace(tzinfo=None) not in rules.slot_times:
            errors.append(f"{name}: not one of the coordinator's slots")
        firm = cal.firms.get(k.firm_id, ko.FirmAvailability())
        if day in firm.blocked:
            errors.append(f"{name}: the firm blocked that date")
        if not any(w.weekday == day.weekday() and end.date() == day and w.start <= start.time().replace(tzinfo=None)
                   and end.time().replace(tzinfo=None) <= w.end for w in firm.windows):
            errors.append(f"{name}: outside the firm's weekly availability")
        if day in cal.public_holidays:
            errors.append(f"{name}: a public holiday")
        institution = cal.institutions.get(k.institution_id, ko.InstitutionCalendar())
        if institution.region and any(a <= day <= b for a, b in cal.school_holidays.get(institution.region, ())):
            errors.append(f"{name}: a school holiday of region {institution.region}")
        if any(a <= day <= b for a, b in institution.non_teaching):
            errors.append(f"{name}: a non-teaching day of the institution")
        hours["firm"].append((k.firm_id, start, f"kickoff {match_id}"))
        hours["team"].append((k.team_id, start, f"kickoff {match_id}"))
        hours["coordinator"].append((k.coordinator_id, start, f"kickoff {match_id}"))
    for kind, taken in hours.items():
        by_who: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        for who, start, what in taken:
            by_who[who].append((start, what))
        for who, own in sorted(by_who.items()):
            own.sort()
            for (first, what_a), (second, what_b) in itertools.pairwise(own):
                if second < first + KICKOFF_DURATION:
                    errors.append(f"{kind} {who} is in {what_a} and {what_b} at once")
    per_day = Counter((who, start.date()) for who, start, _ in hours["coordinator"])
    for (who, on), n in sorted(per_day.items()):
        if n > rules.daily_cap:
            errors.append(f"coordinator {who} has {n} kickoffs on {on}, over the daily cap of {rules.daily_cap}")
    return errors
