"""Workshop use cases: programmes, rooms, facilitators and interest; the optimiser (PuLP, HiGHS in
memory) that decides which sessions run and seats entrepreneurs; the waitlist, where a cancelled seat
goes to the next in line with a notice."""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pulp
import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession
from werkplaats_shared.auth import Principal
from werkplaats_shared.db import utcnow

from .. import workshop_solver
from ..adapters import orm
from ..adapters import workshop_orm as w
from ..adapters.ics import invitation as ics_invitation
from ..adapters.mailer import Attachment, render_text
from ..domain import workshops as ws
from ..domain.calendar import TZ

log = logging.getLogger(__name__)
SOLVER_TIME_LIMIT = 20.0
SOLVER_GAP = 1e-4  # HiGHS's default relative MIP gap
NOTICE_KIND = "workshop_seat"  # a seat: at planning, or promoted from the waitlist
UPDATE_KIND = "workshop_seat_update"  # the seat's session moved, or the seat moved to another session
CANCEL_KIND = "workshop_seat_cancellation"
WAITLIST_KIND = "workshop_waitlisted"
INVITATION_KINDS = (NOTICE_KIND, UPDATE_KIND, CANCEL_KIND)  # these carry an .ics (one UID per seat)
NOTICE_KINDS = (*INVITATION_KINDS, WAITLIST_KIND)


class NotFound(Exception):
    pass


class Refused(Exception):
    """Input the use case cannot take: the field at fault, why, and the HTTP status that says so."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.field, self.reason, self.status = field, reason, status


# ---- the optimiser --------------------------------------------------------------------------


def make_solver(time_limit: float = SOLVER_TIME_LIMIT) -> pulp.LpSolver:
    return pulp.HiGHS(msg=False, timeLimit=time_limit)


@dataclass(frozen=True)
class Outcome:
    status: str  # optimal, feasible (time limit reached), empty (nothing to plan) or not_solved
    plan: ws.Plan
    reason: str | None = None
    objective: float = 0.0
    variables: int = 0
    constraints: int = 0
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    bound: float | None = None  # the solver's bound on the objective, when it reports one
    gap: float | None = None  # relative gap between the plan and that bound (0 when proven optimal)


def nothing_to_plan(problem: ws.Problem, c: ws.Candidates) -> str | None:
    """Why no session can run at all (None when some can)."""
    if not problem.interests:
        return "no interest registered"
    if not problem.slots:
        return "no candidate slots"
    if not problem.facilitators:
        return "no facilitators"
    if not problem.rooms and problem.online_capacity <= 0:
        return "no rooms and no online sessions"
    if not c.staffings:
        return ("no session is possible: no slot where a room (or online), a facilitator of the theme and "
                "enough interested entrepreneurs come together")
    return None


def optimise(problem: ws.Problem, solver: pulp.LpSolver | None = None, keep: ws.Plan | None = None,
             time_limit: float = SOLVER_TIME_LIMIT, gap: float = SOLVER_GAP) -> Outcome:
    """Decide which sessions run and who sits where: the most seats, the least travel, each wanted
    session left unscheduled at a penalty. Without ``solver``: the session formulation
    (``workshop_solver``, HiGHS in memory from a greedy start) within ``time_limit`` seconds; with a PuLP
    ``solver``: the plain model over every (facilitator, session) and (interest, session) pair."""
    if solver is not None:
        return optimise_plain(problem, solver, keep)
    started = time.perf_counter()
    c = ws.candidates(problem)
    empty = nothing_to_plan(problem, c)
    if empty is not None:
        return Outcome("empty", ws.Plan(frozenset(), frozenset()), empty)
    solved = workshop_solver.solve(problem, keep, max(time_limit - (time.perf_counter() - started), 1.0), gap, c=c)
    if solved.status == "not_solved":
        return Outcome("not_solved", solved.plan, "the solver found no plan in the time limit", 0.0,
                       solved.variables, solved.constraints, time.perf_counter() - started, solved.solve_seconds)
    terms = ws.objective_terms(problem, c)
    objective = sum(terms.get(k, 0.0) for k in solved.plan.values())
    return Outcome(solved.status, solved.plan, None, objective, solved.variables, solved.constraints,
                   solved.build_seconds, solved.solve_seconds, solved.bound, solved.gap)


def optimise_plain(problem: ws.Problem, solver: pulp.LpSolver | None = None, keep: ws.Plan | None = None
                   ) -> Outcome:
    """The plain model: a 0/1 variable per feasible (facilitator, session) and (interest, session) pair,
    the domain's rows as they are, solved by the PuLP ``solver`` (HiGHS by default)."""
    started = time.perf_counter()
    c = ws.candidates(problem)
    empty = nothing_to_plan(problem, c)
    if empty is not None:
        return Outcome("empty", ws.Plan(frozenset(), frozenset()), empty)
    lp = pulp.LpProblem("workshops", pulp.LpMaximize)
    var: dict[ws.Key, pulp.LpVariable] = {}
    for i, staffing in enumerate(c.staffings):
        var[staffing] = lp.add_variable(f"run_{i}", 0, 1, cat=pulp.LpBinary)
    for i, seat in enumerate(sorted(c.seats)):
        var[seat] = lp.add_variable(f"seat_{i}", 0, 1, cat=pulp.LpBinary)
    rows = list(ws.hard_rows(problem, c))
    for i, row in enumerate(rows):
        lhs = pulp.LpAffineExpression([(var[k], coef) for k, coef in row.terms])
        lp.addConstraint(lhs <= row.rhs if row.sense == "<=" else lhs >= row.rhs, f"{row.group}_{i}")
    lp.setObjective(pulp.LpAffineExpression([(var[k], coef)
                                             for k, coef in ws.objective_terms(problem, c, keep).items()]))
    built = time.perf_counter()
    lp.solve(solver or make_solver())
    solved = time.perf_counter()
    if lp.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        return Outcome("not_solved", ws.Plan(frozenset(), frozenset()),
                       f"the solver found no plan ({pulp.LpStatus[lp.status]})", 0.0, len(var), len(rows),
                       built - started, solved - built)
    chosen = {k for k, v in var.items() if (v.value() or 0.0) > 0.5}
    plan = ws.Plan(frozenset(k for k in chosen if isinstance(k, ws.Staffing)),
                   frozenset(k for k in chosen if isinstance(k, ws.Seat)))
    status = "optimal" if lp.sol_status == pulp.LpSolutionOptimal else "feasible"
    return Outcome(status, plan, None, ws.objective_value(problem, plan), len(var), len(rows), built - started,
                   solved - built)


# ---- programmes, rooms, facilitators, interest ----------------------------------------------


def _slots(items: Iterable[dict[str, Any]]) -> frozenset[ws.Slot]:
    return frozenset(ws.Slot(date.fromisoformat(s["date"]), s["day_part"]) for s in items)


def _slot_dicts(items: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"date": s["date"].isoformat() if isinstance(s["date"], date) else s["date"], "day_part": s["day_part"]}
            for s in items]


def visible_programmes(principal: Principal, newest_first: bool = False) -> sa.Select[Any]:
    """Coordinators see their own programmes, entrepreneurs every programme they can register for or
    are registered in (their offer is public: slots, themes, locations, no personal data)."""
    order = (w.WorkshopProgramme.created_at.desc(), w.WorkshopProgramme.id.desc()) if newest_first else (
        w.WorkshopProgramme.created_at, w.WorkshopProgramme.id)
    query = sa.select(w.WorkshopProgramme).order_by(*order)
    if principal.role == "coordinator":
        return query.where(w.WorkshopProgramme.coordinator_id == principal.organisation_id)
    if principal.role == "entrepreneur":
        mine = sa.select(w.WorkshopInterest.programme_id).where(
            w.WorkshopInterest.firm_id == principal.organisation_id)
        return query.where(sa.or_(w.WorkshopProgramme.status == "open", w.WorkshopProgramme.id.in_(mine)))
    return query.where(sa.false())


def get_programme(session: DbSession, principal: Principal, programme_id: str,
                  lock: bool = False) -> w.WorkshopProgramme:
    query = visible_programmes(principal).where(w.WorkshopProgramme.id == programme_id)
    found: w.WorkshopProgramme | None = session.execute(
        query.with_for_update() if lock else query).scalar_one_or_none()
    if found is None:
        raise NotFound(programme_id)
    return found


def _own_programme(session: DbSession, principal: Principal, programme_id: str,
                   planned_too: bool = False) -> w.WorkshopProgramme:
    """A coordinator's programme (locked for this transaction) that is still open for changes, or with
    ``planned_too`` also one that has been planned (rooms, facilitators, a re-plan)."""
    programme = get_programme(session, principal, programme_id, lock=True)
    if principal.role != "coordinator":
        raise NotFound(programme_id)
    if programme.status != "open" and not planned_too:
        raise Refused("programme_id", "this programme has been planned; it cannot change any more", 409)
    return programme


def create_programme(session: DbSession, principal: Principal, data: dict[str, Any]) -> w.WorkshopProgramme:
    programme = w.WorkshopProgramme(
        id=str(uuid.uuid4()), coordinator_id=principal.organisation_id, title=data["title"],
        slots=_slot_dicts(data["slots"]), sessions_wanted=dict(data.get("sessions_wanted") or {}),
        max_sessions_per_location_day=data["max_sessions_per_location_day"],
        online_capacity=data["online_capacity"], min_participants=data["min_participants"],
        status="open", plan_report=None, created_at=utcnow(), planned_at=None)
    session.add(programme)
    return programme


def programme_view(session: DbSession, programme: w.WorkshopProgramme) -> dict[str, Any]:
    rooms = session.execute(sa.select(w.WorkshopRoom.municipality_code, w.WorkshopRoom.name).where(
        w.WorkshopRoom.programme_id == programme.id).order_by(w.WorkshopRoom.municipality_code,
                                                              w.WorkshopRoom.name)).all()
    return {"id": programme.id, "title": programme.title, "status": programme.status,
            "slots": programme.slots,
            "sessions_wanted": programme.sessions_wanted,
            "max_sessions_per_location_day": programme.max_sessions_per_location_day,
            "online_capacity": programme.online_capacity, "min_participants": programme.min_participants,
            "locations": [{"municipality_code": code, "name": name} for code, name in dict.fromkeys(rooms)],
            "plan_report": programme.plan_report, "created_at": programme.created_at,
            "planned_at": programme.planned_at}


def _check_availability(programme: w.WorkshopProgramme, availability: list[dict[str, Any]]) -> None:
    offered = _slots(programme.slots)
    for i, slot in enumerate(_slot_dicts(availability)):
        if ws.Slot(date.fromisoformat(slot["date"]), slot["day_part"]) not in offered:
            raise Refused(f"availability.{i}", "not one of the programme's candidate slots")


def add_room(session: DbSession, principal: Principal, programme_id: str, data: dict[str, Any]) -> w.WorkshopRoom:
    """A room for the programme; added after planning, the next re-plan may use it."""
    programme = _own_programme(session, principal, programme_id, planned_too=True)
    _check_availability(programme, data["availability"])
    room = w.WorkshopRoom(id=str(uuid.uuid4()), programme_id=programme.id, municipality_code=data["municipality_code"],
                          name=data["name"], capacity=data["capacity"],
                          availability=_slot_dicts(data["availability"]), created_at=utcnow())
    session.add(room)
    return room


def add_facilitator(session: DbSession, principal: Principal, programme_id: str,
                    data: dict[str, Any]) -> w.WorkshopFacilitator:
    programme = _own_programme(session, principal, programme_id, planned_too=True)
    _check_availability(programme, data["availability"])
    facilitator = w.WorkshopFacilitator(
        id=str(uuid.uuid4()), programme_id=programme.id, label=data["label"], themes=sorted(data["themes"]),
        availability=_slot_dicts(data["availability"]), created_at=utcnow())
    session.add(facilitator)
    return facilitator


def rooms_of(session: DbSession, principal: Principal, programme_id: str) -> list[w.WorkshopRoom]:
    if principal.role != "coordinator":
        raise NotFound(programme_id)
    programme = get_programme(session, principal, programme_id)
    return list(session.execute(sa.select(w.WorkshopRoom).where(w.WorkshopRoom.programme_id == programme.id)
                                .order_by(w.WorkshopRoom.created_at, w.WorkshopRoom.id)).scalars())


def facilitators_of(session: DbSession, principal: Principal, programme_id: str) -> list[w.WorkshopFacilitator]:
    if principal.role != "coordinator":
        raise NotFound(programme_id)
    programme = get_programme(session, principal, programme_id)
    return list(session.execute(
        sa.select(w.WorkshopFacilitator).where(w.WorkshopFacilitator.programme_id == programme.id)
        .order_by(w.WorkshopFacilitator.created_at, w.WorkshopFacilitator.id)).scalars())


def register_interest(session: DbSession, principal: Principal, programme_id: str,
                      data: dict[str, Any]) -> w.WorkshopInterest:
    programme = get_programme(session, principal, programme_id)
    if programme.status != "open":
        raise Refused("programme_id", "this programme has been planned and takes no more interest", 409)
    if not data["locations"] and not data["online_ok"]:
        raise Refused("locations", "name at least one location, or accept online sessions")
    taken = session.execute(sa.select(w.WorkshopInterest.id).where(
        w.WorkshopInterest.programme_id == programme.id, w.WorkshopInterest.firm_id == principal.organisation_id,
        w.WorkshopInterest.theme == data["theme"])).first()
    if taken is not None:
        raise Refused("theme", "you have already registered interest in this theme", 409)
    interest = w.WorkshopInterest(
        id=str(uuid.uuid4()), programme_id=programme.id, firm_id=principal.organisation_id, theme=data["theme"],
        locations=list(data["locations"]), online_ok=data["online_ok"],
        available_days=sorted(d.isoformat() for d in data["available_days"]), registered_at=utcnow())
    session.add(interest)
    return interest


def interests_query(session: DbSession, principal: Principal, programme_id: str) -> sa.Select[Any]:
    """All interest in the programme for its coordinator; an entrepreneur's own otherwise (NotFound: no
    programme the caller may see)."""
    programme = get_programme(session, principal, programme_id)
    query = sa.select(w.WorkshopInterest).where(w.WorkshopInterest.programme_id == programme.id)
    if principal.role != "coordinator":
        query = query.where(w.WorkshopInterest.firm_id == principal.organisation_id)
    return query.order_by(w.WorkshopInterest.registered_at, w.WorkshopInterest.id)


def interests_of(session: DbSession, principal: Principal, programme_id: str) -> list[w.WorkshopInterest]:
    return list(session.execute(interests_query(session, principal, programme_id)).scalars())


# ---- planning -------------------------------------------------------------------------------


def _interests(session: DbSession, programme_id: str) -> list[w.WorkshopInterest]:
    return list(session.execute(sa.select(w.WorkshopInterest).where(w.WorkshopInterest.programme_id == programme_id)
                                .order_by(w.WorkshopInterest.registered_at, w.WorkshopInterest.id)).scalars())


def _withdrawn(session: DbSession, programme_id: str) -> set[str]:
    """Interests whose firm gave up every place it had (cancelled, nothing seated or waiting): a re-plan
    seats them no more."""
    places: dict[str, set[str]] = {}
    for interest_id, status in session.execute(sa.select(
            w.WorkshopRegistration.interest_id, w.WorkshopRegistration.status).where(
            w.WorkshopRegistration.programme_id == programme_id)).all():
        places.setdefault(interest_id, set()).add(status)
    return {i for i, statuses in places.items() if "cancelled" in statuses and not statuses & {"seated", "waitlisted"}}


def problem_of(session: DbSession, programme: w.WorkshopProgramme) -> ws.Problem:
    rooms = session.execute(sa.select(w.WorkshopRoom).where(w.WorkshopRoom.programme_id == programme.id)
                            .order_by(w.WorkshopRoom.id)).scalars()
    facilitators = session.execute(sa.select(w.WorkshopFacilitator).where(
        w.WorkshopFacilitator.programme_id == programme.id).order_by(w.WorkshopFacilitator.id)).scalars()
    withdrawn = _withdrawn(session, programme.id)
    return ws.Problem(
        slots=_slots(programme.slots),
        rooms=tuple(ws.Room(r.id, r.municipality_code, r.capacity, _slots(r.availability)) for r in rooms),
        facilitators=tuple(ws.Facilitator(f.id, frozenset(f.themes), _slots(f.availability)) for f in facilitators),
        interests=tuple(ws.Interest(i.id, i.firm_id, i.theme, tuple(i.locations), i.online_ok,
                                    frozenset(date.fromisoformat(d) for d in i.available_days), order)
                        for order, i in enumerate(_interests(session, programme.id))
                        if i.id not in withdrawn),
        sessions_wanted={str(k): int(v) for k, v in programme.sessions_wanted.items()},
        max_sessions_per_location_day=programme.max_sessions_per_location_day,
        online_capacity=programme.online_capacity, min_participants=programme.min_participants)


def plan_programme(session: DbSession, principal: Principal, programme_id: str,
                   solver: pulp.LpSolver | None = None) -> dict[str, Any]:
    """Run the optimiser over the programme and store its sessions, seats and waitlists, with a seat
    notice for everyone seated. A plan with nothing to run leaves the programme open and says why. A
    planned programme is planned again (see ``replan``)."""
    programme = _own_programme(session, principal, programme_id, planned_too=True)
    return apply_plan(session, programme, solver)


def apply_plan(session: DbSession, programme: w.WorkshopProgramme, solver: pulp.LpSolver | None = None,
               outcome: Outcome | None = None) -> dict[str, Any]:
    """``plan_programme`` for a programme already checked and locked; ``outcome``: the optimiser's outcome
    for the programme as it is now (a plan job solves it first), else it is solved here."""
    if programme.status == "planned":
        return replan(session, programme, solver, outcome)
    problem = problem_of(session, programme)
    outcome = outcome or optimise(problem, solver)
    seated_interests = {s.interest_id for s in outcome.plan.seats}
    report = _report(problem, outcome)
    programme.plan_report = copy.deepcopy(report)  # not the dict mutated below (it would hide the change)
    if outcome.status not in ("optimal", "feasible"):
        log.info("workshop plan not made", extra={"programme_id": programme.id, "status": outcome.status})
        return report
    now = utcnow()
    rooms = {r.room_id: r for r in problem.rooms}
    rows: dict[ws.Session, w.WorkshopSession] = {}
    for s, facilitator_id in outcome.plan.sessions().items():
        room = rooms.get(s.venue)
        rows[s] = w.WorkshopSession(
            id=str(uuid.uuid4()), programme_id=programme.id, theme=s.theme, room_id=room.room_id if room else None,
            municipality_code=room.municipality if room else None, slot_date=s.slot.day, day_part=s.slot.day_part,
            facilitator_id=facilitator_id, capacity=ws.capacity_of(problem, s), created_at=now)
        session.add(rows[s])
    session.flush()
    seats = sorted(outcome.plan.seats)
    for seat in seats:
        reg = w.WorkshopRegistration(
            id=str(uuid.uuid4()), programme_id=programme.id, session_id=rows[seat.session].id,
            interest_id=seat.interest_id, firm_id=_firm(problem, seat.interest_id), status="seated",
            created_at=now, updated_at=now)
        session.add(reg)
        _queue_notice(session, programme, rows[seat.session], reg, promoted=False)
    candidates = ws.candidates(problem)
    waitlisted: set[str] = set()
    for seat in sorted(candidates.seats):  # the unseated wait for every running session they could attend
        if seat.interest_id in seated_interests or seat.session not in rows:
            continue
        waitlisted.add(seat.interest_id)
        session.add(w.WorkshopRegistration(
            id=str(uuid.uuid4()), programme_id=programme.id, session_id=rows[seat.session].id,
            interest_id=seat.interest_id, firm_id=_firm(problem, seat.interest_id), status="waitlisted",
            created_at=now, updated_at=now))
    session.flush()
    for interest_id in sorted(waitlisted):
        _queue_waitlisted(session, programme, interest_id, _firm(problem, interest_id))
    report["figures"]["waitlisted"] = len(waitlisted)
    programme.plan_report = copy.deepcopy(report)
    programme.status, programme.planned_at = "planned", now
    log.info("workshop plan made", extra={"programme_id": programme.id, "sessions": len(rows),
                                          "seated": len(seated_interests), "waitlisted": len(waitlisted)})
    return report


def _report(problem: ws.Problem, outcome: Outcome) -> dict[str, Any]:
    return {"status": outcome.status, "reason": outcome.reason, "objective": outcome.objective,
            "unscheduled": ws.unscheduled(problem, outcome.plan),
            "figures": {"interests": len(problem.interests), "sessions": len(outcome.plan.staffings),
                        "seated": len({s.interest_id for s in outcome.plan.seats}), "waitlisted": 0,
                        "travel": _travel(problem, outcome.plan),
                        "variables": outcome.variables, "constraints": outcome.constraints,
                        "solve_seconds": round(outcome.solve_seconds, 3), "solver": "HiGHS"}}


def _key(s: w.WorkshopSession) -> ws.Session:
    return ws.Session(s.theme, s.room_id or ws.ONLINE, ws.Slot(s.slot_date, s.day_part))


def _running(session: DbSession, programme_id: str) -> list[w.WorkshopSession]:
    return list(session.execute(sa.select(w.WorkshopSession).where(
        w.WorkshopSession.programme_id == programme_id, w.WorkshopSession.status == "running")
        .order_by(w.WorkshopSession.id)).scalars())


def current_plan(session: DbSession, programme_id: str) -> ws.Plan:
    """The plan as stored: the running sessions and the seats taken in them."""
    rows = {s.id: s for s in _running(session, programme_id)}
    seats = session.execute(sa.select(w.WorkshopRegistration).where(
        w.WorkshopRegistration.programme_id == programme_id, w.WorkshopRegistration.status == "seated")).scalars()
    return ws.Plan(frozenset(ws.Staffing(_key(s), s.facilitator_id) for s in rows.values()),
                   frozenset(ws.Seat(r.interest_id, _key(rows[r.session_id])) for r in seats if r.session_id in rows))


def replan(session: DbSession, programme: w.WorkshopProgramme, solver: pulp.LpSolver | None = None,
           outcome: Outcome | None = None) -> dict[str, Any]:
    """Plan a planned programme again (after cancellations, moves, new rooms or facilitators), preferring the
    current plan: a firm keeps its seat unless that costs another firm one. Sessions no longer run are
    dropped; a firm whose seat moved gets an updated invitation (same UID, higher SEQUENCE), one that lost
    it a cancellation (METHOD:CANCEL), one newly seated an invitation; waitlists are rebuilt, and a firm
    newly on a waitlist is told so. Nothing changes when the solver finds no plan."""
    problem = problem_of(session, programme)
    before = current_plan(session, programme.id)
    outcome = outcome or optimise(problem, solver, keep=before)
    report = _report(problem, outcome)
    if outcome.status not in ("optimal", "feasible"):
        report["reason"] = report["reason"] or "nothing could be planned; the current plan stays"
        log.info("workshop re-plan not made", extra={"programme_id": programme.id, "status": outcome.status})
        return report
    now = utcnow()
    rooms = {r.room_id: r for r in problem.rooms}
    rows = {_key(s): s for s in _running(session, programme.id)}
    for key, s in rows.items():
        if key not in outcome.plan.sessions():
            s.status = "dropped"
    for key, facilitator_id in outcome.plan.sessions().items():
        if key in rows:
            rows[key].facilitator_id = facilitator_id
            continue
        room = rooms.get(key.venue)
        rows[key] = w.WorkshopSession(
            id=str(uuid.uuid4()), programme_id=programme.id, theme=key.theme, room_id=room.room_id if room else None,
            municipality_code=room.municipality if room else None, slot_date=key.slot.day,
            day_part=key.slot.day_part, facilitator_id=facilitator_id, capacity=ws.capacity_of(problem, key),
            created_at=now, status="running")
        session.add(rows[key])
    session.flush()
    running = {key: rows[key] for key in outcome.plan.sessions()}
    seat_of = {seat.interest_id: running[seat.session] for seat in outcome.plan.seats}
    could_wait: dict[str, list[w.WorkshopSession]] = {}
    for seat in sorted(ws.candidates(problem).seats):
        if seat.interest_id not in seat_of and seat.session in running:
            could_wait.setdefault(seat.interest_id, []).append(running[seat.session])
    changes = {"kept": 0, "moved": 0, "new": 0, "dropped": 0}
    newly_waiting: list[tuple[str, str]] = []
    for interest in problem.interests:
        regs = list(session.execute(sa.select(w.WorkshopRegistration).where(
            w.WorkshopRegistration.interest_id == interest.interest_id)).scalars())
        by_session = {r.session_id: r for r in regs}
        seated = next((r for r in regs if r.status == "seated"), None)
        target = seat_of.get(interest.interest_id)
        was_waiting = any(r.status == "waitlisted" for r in regs)
        if target is not None and seated is not None and seated.session_id == target.id:
            changes["kept"] += 1
        elif target is not None and seated is not None:
            if (other := by_session.get(target.id)) is not None:
                session.delete(other)  # a waitlist place in the session the seat moves to
                session.flush()
            seated.session_id, seated.updated_at = target.id, now
            _queue_notice(session, programme, target, seated, kind=UPDATE_KIND)
            changes["moved"] += 1
        elif target is not None:
            reg = by_session.get(target.id)
            if reg is None:
                reg = w.WorkshopRegistration(
                    id=str(uuid.uuid4()), programme_id=programme.id, session_id=target.id,
                    interest_id=interest.interest_id, firm_id=interest.firm_id, status="seated", created_at=now,
                    updated_at=now)
                session.add(reg)
            reg.status, reg.updated_at = "seated", now
            _queue_notice(session, programme, target, reg)
            changes["new"] += 1
        elif seated is not None:
            old = session.get(w.WorkshopSession, seated.session_id)
            assert old is not None
            seated.status, seated.updated_at = "dropped", now
            _queue_notice(session, programme, old, seated, kind=CANCEL_KIND, by_plan=True)
            changes["dropped"] += 1
        wait_in = {s.id: s for s in could_wait.get(interest.interest_id, [])}
        for r in regs:
            if r.status == "waitlisted" and r.session_id not in wait_in:
                r.status, r.updated_at = "released", now
        for session_id in sorted(wait_in):
            reg = by_session.get(session_id)
            if reg is not None and reg.status in ("cancelled", "seated"):
                continue  # a place the firm gave up stays given up
            if reg is None or session.get(w.WorkshopRegistration, reg.id) is None:
                session.add(w.WorkshopRegistration(
                    id=str(uuid.uuid4()), programme_id=programme.id, session_id=session_id,
                    interest_id=interest.interest_id, firm_id=interest.firm_id, status="waitlisted",
                    created_at=now, updated_at=now))
            elif reg.status != "waitlisted":
                reg.status, reg.updated_at = "waitlisted", now
        if wait_in and not was_waiting and target is None:
            newly_waiting.append((interest.interest_id, interest.firm_id))
    session.flush()
    for interest_id, firm_id in newly_waiting:
        _queue_waitlisted(session, programme, interest_id, firm_id)
    report["figures"]["waitlisted"] = len(could_wait)
    report["figures"]["changes"] = changes
    programme.plan_report, programme.planned_at = copy.deepcopy(report), now
    log.info("workshop re-plan made", extra={"programme_id": programme.id, **changes})
    return report


@dataclass(frozen=True)
class Move:
    session_id: str
    date: date
    day_part: str
    room_id: str | None  # None: online
    facilitator_id: str | None  # None: keep the facilitator


def move_session(session: DbSession, principal: Principal, programme_id: str, move: Move) -> dict[str, Any]:
    """Move a running session to another slot, room (or online) or facilitator, checked by the rules the
    optimiser uses (its own rows, through the validator); its seated firms get updated invitations, waiting
    firms that cannot make the new slot leave its waitlist, and seats a bigger room adds go to those waiting."""
    programme = _own_programme(session, principal, programme_id, planned_too=True)
    if programme.status != "planned":
        raise Refused("programme_id", "this programme has not been planned; there is no session to move", 409)
    row = session.execute(sa.select(w.WorkshopSession).where(
        w.WorkshopSession.id == move.session_id, w.WorkshopSession.programme_id == programme.id,
        w.WorkshopSession.status == "running").with_for_update()).scalar_one_or_none()
    if row is None:
        raise Refused("session_id", "no running session of this programme has this id")
    problem = problem_of(session, programme)
    if move.room_id is not None and problem.room(move.room_id) is None:
        raise Refused("room_id", "not a room of this programme")
    facilitator_id = move.facilitator_id or row.facilitator_id
    if all(f.facilitator_id != facilitator_id for f in problem.facilitators):
        raise Refused("facilitator_id", "not a facilitator of this programme")
    old_key = _key(row)
    new_key = ws.Session(row.theme, move.room_id or ws.ONLINE, ws.Slot(move.date, move.day_part))
    if new_key == old_key and facilitator_id == row.facilitator_id:
        raise Refused("session_id", "the session is there already")
    current = current_plan(session, programme.id)
    moved = ws.Plan(
        frozenset(ws.Staffing(new_key, facilitator_id) if s.session == old_key else s for s in current.staffings),
        frozenset(ws.Seat(s.interest_id, new_key) if s.session == old_key else s for s in current.seats))
    if new_key != old_key and new_key in {s.session for s in current.staffings}:
        raise Refused("session_id", "a session of this theme already runs there")
    broken = ws.violations(problem, moved)
    if broken:
        raise Refused("session_id", f"the move breaks a planning rule: {broken[0]}")
    row.slot_date, row.day_part, row.facilitator_id = move.date, move.day_part, facilitator_id
    room = problem.room(move.room_id) if move.room_id else None
    row.room_id, row.municipality_code = (room.room_id, room.municipality) if room else (None, None)
    row.capacity = ws.capacity_of(problem, new_key)
    now = utcnow()
    for reg in session.execute(sa.select(w.WorkshopRegistration).where(
            w.WorkshopRegistration.session_id == row.id,
            w.WorkshopRegistration.status.in_(("seated", "waitlisted")))).scalars():
        interest = problem.interest(reg.interest_id)
        if reg.status == "seated":
            if (old_key.slot, old_key.venue) != (new_key.slot, new_key.venue):
                _queue_notice(session, programme, row, reg, kind=UPDATE_KIND)
        elif interest is None or not ws.can_attend(problem, interest, new_key):
            reg.status, reg.updated_at = "released", now
    session.flush()
    promoted = 0
    while _promote_next(session, row.id) is not None:  # a bigger room's free seats go to those waiting
        promoted += 1
        session.flush()
    log.info("workshop session moved", extra={"programme_id": programme.id, "session_id": row.id,
                                              "promoted": promoted})
    return session_view(session, row)


def _travel(problem: ws.Problem, plan: ws.Plan) -> float:
    total = 0.0
    for seat in plan.seats:
        interest = problem.interest(seat.interest_id)
        assert interest is not None
        total += ws.travel(problem, interest, seat.session)
    return total


def _firm(problem: ws.Problem, interest_id: str) -> str:
    interest = problem.interest(interest_id)
    assert interest is not None
    return interest.firm_id


def sessions_of(session: DbSession, principal: Principal, programme_id: str) -> list[dict[str, Any]]:
    """The planned sessions with their seats taken and waitlist length (coordinator)."""
    if principal.role != "coordinator":
        raise NotFound(programme_id)
    programme = get_programme(session, principal, programme_id)
    rows = session.execute(sa.select(w.WorkshopSession).where(w.WorkshopSession.programme_id == programme.id,
                                                              w.WorkshopSession.status == "running")
                           .order_by(w.WorkshopSession.slot_date, w.WorkshopSession.day_part,
                                     w.WorkshopSession.theme, w.WorkshopSession.id)).scalars().all()
    counts: dict[tuple[str, str], int] = {}
    for session_id, status, n in session.execute(
            sa.select(w.WorkshopRegistration.session_id, w.WorkshopRegistration.status, sa.func.count())
            .where(w.WorkshopRegistration.programme_id == programme.id)
            .group_by(w.WorkshopRegistration.session_id, w.WorkshopRegistration.status)).all():
        counts[(session_id, status)] = int(n)
    return [{**session_view(session, s), "seated": counts.get((s.id, "seated"), 0),
             "waitlisted": counts.get((s.id, "waitlisted"), 0)} for s in rows]


def session_view(session: DbSession, s: w.WorkshopSession) -> dict[str, Any]:
    room = session.get(w.WorkshopRoom, s.room_id) if s.room_id else None
    return {"id": s.id, "programme_id": s.programme_id, "theme": s.theme, "date": s.slot_date,
            "day_part": s.day_part, "venue": "room" if room else ws.ONLINE,
            "room_id": s.room_id, "location_name": room.name if room else None,
            "municipality_code": s.municipality_code, "facilitator_id": s.facilitator_id, "capacity": s.capacity,
            "status": s.status}


# ---- registrations, the waitlist and cancellations ------------------------------------------


def _visible_registrations(principal: Principal) -> sa.Select[Any]:
    query = sa.select(w.WorkshopRegistration).order_by(w.WorkshopRegistration.created_at, w.WorkshopRegistration.id)
    if principal.role == "entrepreneur":
        return query.where(w.WorkshopRegistration.firm_id == principal.organisation_id)
    if principal.role == "coordinator":
        own = sa.select(w.WorkshopProgramme.id).where(w.WorkshopProgramme.coordinator_id == principal.organisation_id)
        return query.where(w.WorkshopRegistration.programme_id.in_(own))
    return query.where(sa.false())


def _waiting(session: DbSession, session_id: str) -> list[w.WorkshopRegistration]:
    """A session's waitlist in order: earliest registered interest first."""
    return list(session.execute(
        sa.select(w.WorkshopRegistration).join(w.WorkshopInterest, w.WorkshopInterest.id ==
                                               w.WorkshopRegistration.interest_id)
        .where(w.WorkshopRegistration.session_id == session_id, w.WorkshopRegistration.status == "waitlisted")
        .order_by(w.WorkshopInterest.registered_at, w.WorkshopInterest.id)).scalars())


def registration_view(session: DbSession, reg: w.WorkshopRegistration) -> dict[str, Any]:
    s = session.get(w.WorkshopSession, reg.session_id)
    assert s is not None
    position = None
    if reg.status == "waitlisted":
        position = 1 + [r.id for r in _waiting(session, reg.session_id)].index(reg.id)
    return {"id": reg.id, "programme_id": reg.programme_id, "interest_id": reg.interest_id, "firm_id": reg.firm_id,
            "status": reg.status,
            "waitlist_position": position, "session": session_view(session, s), "updated_at": reg.updated_at}


def registrations(session: DbSession, principal: Principal, programme_id: str | None = None,
                  status: str | None = None, session_id: str | None = None) -> list[dict[str, Any]]:
    query = registrations_query(principal, programme_id, status, session_id)
    return [registration_view(session, r) for r in session.execute(query).scalars()]


def registrations_query(principal: Principal, programme_id: str | None = None, status: str | None = None,
                        session_id: str | None = None) -> sa.Select[Any]:
    """The caller's registrations (rows for ``registration_view``), oldest first."""
    query = _visible_registrations(principal)
    if programme_id is not None:
        query = query.where(w.WorkshopRegistration.programme_id == programme_id)
    if session_id is not None:
        query = query.where(w.WorkshopRegistration.session_id == session_id)
    if status is not None:
        query = query.where(w.WorkshopRegistration.status == status)
    return query


@dataclass(frozen=True)
class Cancelled:
    registration: dict[str, Any]
    promoted_id: str | None  # the registration that got the freed seat


def cancel_registration(session: DbSession, principal: Principal, registration_id: str) -> Cancelled:
    """Cancel a seat or a waitlist place. A freed seat goes to the first on the session's waitlist who
    holds no seat in the theme yet; their other waitlist places are released and they get a notice."""
    reg = session.execute(_visible_registrations(principal).where(w.WorkshopRegistration.id == registration_id)
                          .with_for_update()).scalar_one_or_none()
    if reg is None:
        raise NotFound(registration_id)
    if reg.status not in ("seated", "waitlisted"):
        raise Refused("registration_id", f"this registration is {reg.status} and cannot be cancelled", 409)
    was_seated = reg.status == "seated"
    reg.status, reg.updated_at = "cancelled", utcnow()
    if was_seated:  # the invitation sent for the seat is withdrawn from the firm's calendar
        s = session.get(w.WorkshopSession, reg.session_id)
        programme = session.get(w.WorkshopProgramme, reg.programme_id)
        assert s is not None and programme is not None
        _queue_notice(session, programme, s, reg, kind=CANCEL_KIND)
    promoted = _promote_next(session, reg.session_id) if was_seated else None
    session.flush()
    log.info("workshop registration cancelled", extra={"registration_id": reg.id, "promoted": promoted is not None})
    return Cancelled(registration_view(session, reg), promoted.id if promoted else None)


def move_registration(session: DbSession, principal: Principal, registration_id: str,
                      session_id: str) -> Cancelled:
    """Move an entrepreneur's seat or waitlist place to another running session of its theme that it can make
    and that has a free seat: it is seated there (its invitation updated, or a new one when it waited); its
    other waitlist places in the theme are released; a seat it leaves goes to the first in that line."""
    reg = session.execute(_visible_registrations(principal).where(w.WorkshopRegistration.id == registration_id)
                          .with_for_update()).scalar_one_or_none()
    if reg is None or principal.role != "coordinator":
        raise NotFound(registration_id)
    if reg.status not in ("seated", "waitlisted"):
        raise Refused("registration_id", f"this registration is {reg.status} and cannot be moved", 409)
    if session_id == reg.session_id:
        raise Refused("session_id", "the entrepreneur is in this session already")
    target = session.execute(sa.select(w.WorkshopSession).where(
        w.WorkshopSession.id == session_id, w.WorkshopSession.programme_id == reg.programme_id,
        w.WorkshopSession.status == "running").with_for_update()).scalar_one_or_none()
    if target is None:
        raise Refused("session_id", "no running session of this programme has this id")
    # the interest row serialises every change of one entrepreneur's seats in the theme, the firm's other
    # interest rows (locked with it, in one order) its seats in one slot across themes
    _lock_firm(session, reg.programme_id, reg.firm_id)
    programme = session.get(w.WorkshopProgramme, reg.programme_id)
    assert programme is not None
    problem = problem_of(session, programme)
    interest = problem.interest(reg.interest_id)
    if interest is None or interest.theme != target.theme:
        raise Refused("session_id", "the session is of another theme than the entrepreneur's interest")
    if not ws.can_attend(problem, interest, _key(target)):
        raise Refused("session_id", "the entrepreneur cannot make this session's day or place")
    seated_elsewhere = session.execute(sa.select(w.WorkshopRegistration.id).where(
        w.WorkshopRegistration.interest_id == reg.interest_id, w.WorkshopRegistration.status == "seated",
        w.WorkshopRegistration.id != reg.id)).first()
    if seated_elsewhere is not None:
        raise Refused("registration_id", "the entrepreneur has a seat in another session of this theme; move "
                                         "that seat", 409)
    if _seated_in_slot(session, target, reg.firm_id, reg.id):
        raise Refused("session_id", "the entrepreneur has a seat in another workshop at this session's time "
                                    "(same day and day part)", 409)
    taken = session.execute(sa.select(sa.func.count()).select_from(w.WorkshopRegistration).where(
        w.WorkshopRegistration.session_id == target.id, w.WorkshopRegistration.status == "seated")).scalar_one()
    if taken >= target.capacity:
        raise Refused("session_id", f"the session is full: {taken} of {target.capacity} seats taken", 409)
    existing = session.execute(sa.select(w.WorkshopRegistration).where(
        w.WorkshopRegistration.session_id == target.id, w.WorkshopRegistration.interest_id == reg.interest_id)
    ).scalar_one_or_none()
    if existing is not None and existing.status == "cancelled":
        raise Refused("session_id", "the entrepreneur cancelled its place in this session", 409)
    was_seated, left = reg.status == "seated", reg.session_id
    now = utcnow()
    if existing is None:  # the same place moves: a seat keeps its invitation, updated
        reg.session_id, reg.status, reg.updated_at = target.id, "seated", now
        seat = reg
        _queue_notice(session, programme, target, seat, kind=UPDATE_KIND if was_seated else NOTICE_KIND,
                      promoted=not was_seated)
    else:  # its place in the target's line becomes the seat; the place it leaves is released
        reg.status, reg.updated_at = "released", now
        if was_seated:
            old = session.get(w.WorkshopSession, left)
            assert old is not None
            _queue_notice(session, programme, old, reg, kind=CANCEL_KIND)
        existing.status, existing.updated_at = "seated", now
        seat = existing
        _queue_notice(session, programme, target, seat, promoted=not was_seated)
    for other in session.execute(sa.select(w.WorkshopRegistration).where(
            w.WorkshopRegistration.interest_id == seat.interest_id, w.WorkshopRegistration.status == "waitlisted",
            w.WorkshopRegistration.id != seat.id)).scalars():
        other.status, other.updated_at = "released", now
    session.flush()
    promoted = _promote_next(session, left) if was_seated else None
    session.flush()
    log.info("workshop registration moved", extra={"registration_id": seat.id, "session_id": target.id,
                                                   "promoted": promoted is not None})
    return Cancelled(registration_view(session, seat), promoted.id if promoted else None)


def _promote_next(session: DbSession, session_id: str) -> w.WorkshopRegistration | None:
    s = session.execute(sa.select(w.WorkshopSession).where(w.WorkshopSession.id == session_id)
                        .with_for_update()).scalar_one()
    seated = session.execute(sa.select(sa.func.count()).select_from(w.WorkshopRegistration).where(
        w.WorkshopRegistration.session_id == session_id, w.WorkshopRegistration.status == "seated")).scalar_one()
    if seated >= s.capacity:
        return None
    for candidate in _waiting(session, session_id):
        # the interest row serialises promotions of one entrepreneur's theme across sessions, the firm's other
        # interest rows (locked with it, in one order) its seats in one slot across themes
        _lock_firm(session, s.programme_id, candidate.firm_id)
        holds = session.execute(sa.select(w.WorkshopRegistration.id).where(
            w.WorkshopRegistration.interest_id == candidate.interest_id,
            w.WorkshopRegistration.status == "seated")).first()
        if holds is not None or _seated_in_slot(session, s, candidate.firm_id, candidate.id):
            continue  # seated in the theme already, or in another session of this slot (firm_once)
        now = utcnow()
        candidate.status, candidate.updated_at = "seated", now
        for other in session.execute(sa.select(w.WorkshopRegistration).where(
                w.WorkshopRegistration.interest_id == candidate.interest_id,
                w.WorkshopRegistration.status == "waitlisted",
                w.WorkshopRegistration.id != candidate.id)).scalars():
            other.status, other.updated_at = "released", now
        programme = session.get(w.WorkshopProgramme, s.programme_id)
        assert programme is not None
        _queue_notice(session, programme, s, candidate, promoted=True)
        return candidate
    return None


def _lock_firm(session: DbSession, programme_id: str, firm_id: str) -> None:
    """Lock a firm's interest rows in a programme, in the order of their ids: changes of its seats in one
    theme, and in one slot across themes, take turns (and never wait on each other crosswise)."""
    session.execute(sa.select(w.WorkshopInterest.id).where(
        w.WorkshopInterest.programme_id == programme_id, w.WorkshopInterest.firm_id == firm_id)
        .order_by(w.WorkshopInterest.id).with_for_update()).all()


def _seated_in_slot(session: DbSession, s: w.WorkshopSession, firm_id: str, except_id: str) -> bool:
    """Whether the firm holds a seat (other than ``except_id``) in another running session of the programme
    in the slot of ``s`` (same date and day part): the firm_once rule says it sits in at most one."""
    found = session.execute(sa.select(w.WorkshopRegistration.id).join(
        w.WorkshopSession, w.WorkshopSession.id == w.WorkshopRegistration.session_id).where(
        w.WorkshopRegistration.programme_id == s.programme_id, w.WorkshopRegistration.firm_id == firm_id,
        w.WorkshopRegistration.status == "seated", w.WorkshopRegistration.id != except_id,
        w.WorkshopSession.id != s.id, w.WorkshopSession.status == "running",
        w.WorkshopSession.slot_date == s.slot_date, w.WorkshopSession.day_part == s.day_part)).first()
    return found is not None


# ---- notices --------------------------------------------------------------------------------


def _next_sequence(session: DbSession, subject_id: str, kinds: tuple[str, ...]) -> int:
    """The next SEQUENCE of a subject's notices of these kinds: 0 for the first, then one higher."""
    last = session.execute(sa.select(sa.func.max(orm.Notice.sequence)).where(
        orm.Notice.subject_id == subject_id, orm.Notice.kind.in_(kinds))).scalar_one_or_none()
    return 0 if last is None else int(last) + 1


def _session_facts(session: DbSession, s: w.WorkshopSession) -> dict[str, Any]:
    room = session.get(w.WorkshopRoom, s.room_id) if s.room_id else None
    return {"session_id": s.id, "theme": s.theme, "date": s.slot_date.isoformat(), "day_part": s.day_part,
            "venue": "room" if room else ws.ONLINE, "location_name": room.name if room else None,
            "municipality_code": s.municipality_code}


def _add_notice(session: DbSession, programme: w.WorkshopProgramme, firm_id: str, kind: str, subject_id: str,
                sequence: int, details: dict[str, Any]) -> orm.Notice:
    notice = orm.Notice(
        id=str(uuid.uuid4()), kind=kind, firm_id=firm_id, coordinator_id=programme.coordinator_id,
        run_id="", batch_id="", period="", matches=[], subject_id=subject_id, sequence=sequence, status="pending",
        attempts=0, created_at=utcnow(), webhook_status="pending" if session.get(orm.Webhook, firm_id) else None,
        webhook_attempts=0, details={"programme_id": programme.id, **details})
    session.add(notice)
    return notice


def _queue_notice(session: DbSession, programme: w.WorkshopProgramme, s: w.WorkshopSession,
                  reg: w.WorkshopRegistration, promoted: bool = False, kind: str = NOTICE_KIND,
                  by_plan: bool = False) -> orm.Notice:
    """A seat's notice with its invitation, through scheduling's notice outbox, in the caller's transaction:
    facts only, no personal data. The invitation (one UID per seat) is frozen now: a later change queues its
    own with a higher SEQUENCE, a cancellation with METHOD:CANCEL."""
    sequence = _next_sequence(session, reg.id, INVITATION_KINDS)
    starts_at, ends_at = ws.slot_times(ws.Slot(s.slot_date, s.day_part))
    return _add_notice(session, programme, reg.firm_id, kind, reg.id, sequence, {
        "registration_id": reg.id, **_session_facts(session, s), "promoted": promoted, "by_plan": by_plan,
        "invitation": {"uid": f"workshop-seat-{reg.id}@werkplaats", "sequence": sequence,
                       "method": "CANCEL" if kind == CANCEL_KIND else "REQUEST",
                       "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()}})


def _queue_waitlisted(session: DbSession, programme: w.WorkshopProgramme, interest_id: str, firm_id: str) -> None:
    """Tell a firm it waits, for which sessions and at which place in each line."""
    places = session.execute(sa.select(w.WorkshopRegistration).where(
        w.WorkshopRegistration.interest_id == interest_id, w.WorkshopRegistration.status == "waitlisted")
        .order_by(w.WorkshopRegistration.id)).scalars().all()
    if not places:
        return
    sessions = []
    theme = ""
    for reg in places:
        s = session.get(w.WorkshopSession, reg.session_id)
        assert s is not None
        theme = s.theme
        position = 1 + [r.id for r in _waiting(session, reg.session_id)].index(reg.id)
        sessions.append({**_session_facts(session, s), "registration_id": reg.id, "position": position})
    sessions.sort(key=lambda x: (x["date"], DAY_PARTS_ORDER[x["day_part"]], x["session_id"]))
    _add_notice(session, programme, firm_id, WAITLIST_KIND, interest_id,
                _next_sequence(session, interest_id, (WAITLIST_KIND,)),
                {"interest_id": interest_id, "theme": theme, "sessions": sessions})


DAY_PARTS_ORDER = {part: i for i, part in enumerate(ws.DAY_PARTS)}


def _labels(facts: dict[str, Any], lang: str) -> dict[str, Any]:
    return {**facts, "day_part_label": ws.DAY_PART_LABELS[facts["day_part"]][lang],
            "date": date.fromisoformat(facts["date"])}


def _context(notice: orm.Notice, lang: str) -> dict[str, Any]:
    details = dict(notice.details or {})
    context: dict[str, Any] = {**details, "theme_label": ws.THEMES[details["theme"]][lang]}
    if notice.kind == WAITLIST_KIND:
        context["sessions"] = [_labels(s, lang) for s in details["sessions"]]
        return context
    context.setdefault("by_plan", False)
    context = _labels(context, lang)
    if "invitation" in details:
        context["starts_at"] = datetime.fromisoformat(details["invitation"]["starts_at"]).astimezone(TZ)
        context["ends_at"] = datetime.fromisoformat(details["invitation"]["ends_at"]).astimezone(TZ)
    return context


def render_notice(notice: orm.Notice, language: str) -> tuple[str, str]:
    """Subject and body of a workshop notice, from the templates, in the firm's language."""
    lang = language if language in ("nl", "en") else "nl"
    context = _context(notice, lang)
    return render_text(f"{notice.kind}_subject", lang, context).strip(), render_text(notice.kind, lang, context)


def invitation(notice: orm.Notice, language: str, organizer: str, attendee: str, description: str,
               stamp: datetime) -> Attachment | None:
    """The .ics of a seat notice (None for notices without one, such as a waitlist notice)."""
    frozen = (notice.details or {}).get("invitation")
    if notice.kind not in INVITATION_KINDS or frozen is None:
        return None
    lang = language if language in ("nl", "en") else "nl"
    context = _context(notice, lang)
    location = "Online" if context["venue"] == ws.ONLINE else str(context["location_name"])
    data = ics_invitation(
        uid=frozen["uid"], sequence=frozen["sequence"], starts_at=context["starts_at"], ends_at=context["ends_at"],
        summary=render_text("workshop_invitation", lang, context).strip(), description=description,
        organizer=organizer, attendee=attendee, stamp=stamp, method=frozen["method"], location=location)
    return Attachment("workshop.ics", "text", "calendar", data, {"method": frozen["method"]})
