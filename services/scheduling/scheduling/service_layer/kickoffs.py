"""Kickoff use cases: place an accepted match's kickoff, plan a batch's kickoffs at once, move or cancel
one, and the calendar settings the rules read (institutions' region and non-teaching periods, firms'
availability). Every change of a kickoff's time queues an invitation notice in the same transaction:
the same UID with a higher SEQUENCE, METHOD:CANCEL for a cancellation."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared.db import utcnow

from .. import kickoff_optimiser
from ..adapters import orm
from ..adapters.calendar_data import dutch_public_holidays, school_holidays_by_region, school_years_covered
from ..adapters.locks import lock_for_planning
from ..domain import calendar
from ..domain import kickoffs as rules_
from ..domain.calendar import KICKOFF_DURATION, TZ
from ..domain.kickoffs import Booking, Calendars, FirmAvailability, InstitutionCalendar, Kickoff, Rules, TimeWindow

log = logging.getLogger(__name__)
OPEN = ("proposed", "unplaced")
DEFAULT_RULES = Rules()


class NotFound(Exception):
    pass


class Invalid(Exception):
    """A request that breaks a rule: the field and why, for a 422 answer."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their (UTC) offset."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ---- calendar settings ----------------------------------------------------------------------


def set_institution_calendar(session: Session, institution_id: str, region: str | None,
                             non_teaching: Sequence[tuple[date, date]]) -> orm.InstitutionCalendar:
    row = session.get(orm.InstitutionCalendar, institution_id)
    if row is None:
        row = orm.InstitutionCalendar(institution_id=institution_id)
        session.add(row)
    row.region = region
    row.non_teaching = [{"start": a.isoformat(), "end": b.isoformat()} for a, b in sorted(set(non_teaching))]
    row.updated_at = utcnow()
    return row


def set_firm_availability(session: Session, firm_id: str, windows: Sequence[TimeWindow],
                          blocked: Iterable[date], venue: str, address: str | None) -> orm.FirmAvailability:
    row = session.get(orm.FirmAvailability, firm_id)
    if row is None:
        row = orm.FirmAvailability(firm_id=firm_id)
        session.add(row)
    row.windows = [{"weekday": w.weekday, "start": w.start.strftime("%H:%M"), "end": w.end.strftime("%H:%M")}
                   for w in sorted(set(windows), key=lambda w: (w.weekday, w.start, w.end))]
    row.blocked_dates = sorted({d.isoformat() for d in blocked})
    row.venue, row.address, row.updated_at = venue, address, utcnow()
    return row


def _institution(row: orm.InstitutionCalendar) -> InstitutionCalendar:
    return InstitutionCalendar(row.region, tuple((date.fromisoformat(r["start"]), date.fromisoformat(r["end"]))
                                                 for r in row.non_teaching))


def _firm(row: orm.FirmAvailability) -> FirmAvailability:
    return FirmAvailability(
        tuple(TimeWindow(w["weekday"], time.fromisoformat(w["start"]), time.fromisoformat(w["end"]))
              for w in row.windows),
        frozenset(date.fromisoformat(d) for d in row.blocked_dates), row.venue, row.address)


def load_calendars(session: Session, kickoffs: Sequence[Kickoff]) -> Calendars:
    years = {y for k in kickoffs for y in range(k.first_day.year, k.last_day.year + 1)}
    institutions = {k.institution_id for k in kickoffs}
    firms = {k.firm_id for k in kickoffs}
    return Calendars(
        public_holidays=dutch_public_holidays(sorted(years)),
        school_holidays=school_holidays_by_region(),
        school_years=school_years_covered(),
        institutions={r.institution_id: _institution(r) for r in session.execute(
            sa.select(orm.InstitutionCalendar).where(orm.InstitutionCalendar.institution_id.in_(institutions)))
            .scalars()},
        firms={r.firm_id: _firm(r) for r in session.execute(
            sa.select(orm.FirmAvailability).where(orm.FirmAvailability.firm_id.in_(firms))).scalars()})


def coordinator_rules(session: Session, coordinator_id: str) -> Rules:
    """The rules a coordinator's kickoffs are placed by: the daily cap the coordinator chose when planning
    last (the default until then)."""
    chosen = session.get(orm.CoordinatorSettings, coordinator_id)
    return Rules(chosen.kickoff_daily_cap) if chosen is not None else DEFAULT_RULES


def choose_daily_cap(session: Session, coordinator_id: str, daily_cap: int) -> orm.CoordinatorSettings:
    if not 1 <= daily_cap <= len(calendar.SLOTS):
        raise Invalid("daily_cap", f"the daily cap is 1 to {len(calendar.SLOTS)} kickoffs (the slots of a day)")
    row = session.get(orm.CoordinatorSettings, coordinator_id)
    if row is None:
        row = orm.CoordinatorSettings(coordinator_id=coordinator_id)
        session.add(row)
    row.kickoff_daily_cap, row.updated_at = daily_cap, utcnow()
    return row


# ---- building the problem -------------------------------------------------------------------


def as_request(row: orm.Kickoff, weeks: int) -> Kickoff:
    accepted_on = aware(row.created_at).astimezone(TZ).date()
    first, last = rules_.window_days(calendar.window_start(row.period, accepted_on), weeks)
    current = aware(row.starts_at).astimezone(TZ) if row.status == "proposed" and row.starts_at else None
    return Kickoff(row.match_id, row.firm_id, row.team_id, row.institution_id, row.coordinator_id, first, last,
                   current)


def fixed_bookings(session: Session, kickoffs: Sequence[Kickoff]) -> list[Booking]:
    """The placed kickoffs outside ``kickoffs`` that share a firm, team or coordinator with them."""
    if not kickoffs:
        return []
    q = sa.select(orm.Kickoff).where(
        orm.Kickoff.status == "proposed", orm.Kickoff.starts_at.is_not(None),
        orm.Kickoff.match_id.not_in([k.match_id for k in kickoffs]),
        sa.or_(orm.Kickoff.firm_id.in_({k.firm_id for k in kickoffs}),
               orm.Kickoff.team_id.in_({k.team_id for k in kickoffs}),
               orm.Kickoff.coordinator_id.in_({k.coordinator_id for k in kickoffs})))
    return [Booking(r.match_id, r.firm_id, r.team_id, r.coordinator_id, aware(r.starts_at).astimezone(TZ))
            for r in session.execute(q).scalars() if r.starts_at is not None]


# ---- invitations ----------------------------------------------------------------------------


def snapshot(row: orm.Kickoff, method: str) -> dict[str, Any]:
    """What an invitation says, frozen when it is queued: a later change queues its own."""
    assert row.starts_at is not None and row.ends_at is not None
    return {"uid": row.uid, "sequence": row.sequence, "method": method,
            "starts_at": aware(row.starts_at).astimezone(TZ).isoformat(),
            "ends_at": aware(row.ends_at).astimezone(TZ).isoformat(), "venue": row.venue,
            "status": "CONFIRMED" if row.confirmed else "TENTATIVE"}


def _queue(session: Session, row: orm.Kickoff, kind: str, method: str) -> orm.Notice:
    notice = orm.Notice(
        id=str(uuid.uuid4()), kind=kind, subject_id=row.match_id, sequence=row.sequence, firm_id=row.firm_id,
        coordinator_id=row.coordinator_id, run_id=row.run_id, batch_id=row.batch_id, period=row.period,
        matches=[{"match_id": row.match_id, "assignment_id": row.assignment_id, "team_id": row.team_id}],
        details={"kickoff": snapshot(row, method)}, status="pending", attempts=0, created_at=utcnow(),
        webhook_status="pending" if session.get(orm.Webhook, row.firm_id) else None, webhook_attempts=0)
    session.add(notice)
    return notice


def set_slot(session: Session, row: orm.Kickoff, start: datetime | None, reason: str | None,
             venue: str | None) -> bool:
    """Give the kickoff its (new) slot, or none, and queue what its firm must hear. True if it changed."""
    old = aware(row.starts_at).astimezone(TZ) if row.status == "proposed" and row.starts_at else None
    if start is None:
        row.reason = f"{reason}: {rules_.REASONS[reason]}" if reason in rules_.REASONS else reason
        if old is None:
            changed = row.status != "unplaced"
            row.status = "unplaced"
            return changed
        row.sequence += 1
        _queue(session, row, "kickoff_cancellation", "CANCEL")  # the old time, cancelled
        row.status, row.starts_at, row.ends_at, row.updated_at = "unplaced", None, None, utcnow()
        row.firm_agreed_at = row.institution_agreed_at = None
        return True
    if old == start and row.venue == venue:
        return False
    invited_before = row.notice_id != ""
    if invited_before:
        row.sequence += 1
    row.status, row.reason, row.venue, row.updated_at = "proposed", None, venue, utcnow()
    row.firm_agreed_at = row.institution_agreed_at = None  # a new time is tentative until both agree again
    row.starts_at, row.ends_at = start.astimezone(UTC), (start + KICKOFF_DURATION).astimezone(UTC)
    kind = "kickoff_update" if invited_before and old is not None else "kickoff_notice"
    row.notice_id = _queue(session, row, kind, "REQUEST").id
    return True


# ---- use cases ------------------------------------------------------------------------------


WARNING_TEXTS = {
    "school_holidays_unknown": {
        "nl": "De schoolvakanties van regio {region} in schooljaar {school_year} zijn niet bekend: controleer of "
              "deze kennismakingen niet in een schoolvakantie vallen.",
        "en": "The school holidays of region {region} in school year {school_year} are not known: check that "
              "these kickoffs do not fall in a school holiday.",
    },
    "school_region_not_chosen": {
        "nl": "De instelling van deze kennismakingen heeft geen schoolvakantieregio gekozen, dus met haar "
              "schoolvakanties (schooljaar {school_year}) is geen rekening gehouden: vraag de instelling haar regio "
              "te kiezen in haar kalender, en plan daarna opnieuw.",
        "en": "The institution of these kickoffs has not chosen its school-holiday region, so its school holidays "
              "(school year {school_year}) were not avoided: ask the institution to choose its region in its "
              "calendar, then plan again.",
    },
}


def warning_view(warning: rules_.UnknownSchoolHolidays) -> dict[str, Any]:
    facts = {"school_year": warning.school_year, "region": warning.region}
    code = "school_holidays_unknown" if warning.region is not None else "school_region_not_chosen"
    texts = WARNING_TEXTS[code]
    return {"code": code, **facts, "match_ids": list(warning.match_ids),
            "message_nl": texts["nl"].format(**facts), "message_en": texts["en"].format(**facts)}


@dataclass(frozen=True)
class PlanReport:
    batch_id: str
    kickoffs: list[orm.Kickoff]
    placed: int
    unplaced: int
    changed: int
    solver: str
    seconds: float
    warnings: list[dict[str, Any]]
    daily_cap: int


def _plan_rows(session: Session, rows: Sequence[orm.Kickoff], weeks: int, rules: Rules
               ) -> tuple[list[Kickoff], list[Booking], Calendars, rules_.Plan]:
    requests = [as_request(r, weeks) for r in rows]
    fixed = fixed_bookings(session, requests)
    cal = load_calendars(session, requests)
    return requests, fixed, cal, kickoff_optimiser.plan(requests, fixed, cal, rules)


def _apply(session: Session, rows: Sequence[orm.Kickoff], cal: Calendars, plan: rules_.Plan) -> int:
    changed = 0
    for row in rows:
        venue = cal.firm(row.firm_id).venue
        changed += set_slot(session, row, plan.placed.get(row.match_id), plan.unplaced.get(row.match_id), venue)
    return changed


def place_accepted(session: Session, notice: orm.Notice, match: dict[str, Any], accepted_at: datetime,
                   weeks: int = calendar.KICKOFF_WEEKS, rules: Rules | None = None) -> orm.Kickoff:
    """The kickoff of a just accepted match, placed around the kickoffs that exist (in the caller's
    transaction) by the coordinator's rules (its chosen daily cap); a batch plan may later improve it."""
    institutions = (notice.details or {}).get("institutions", {})
    row = orm.Kickoff(
        match_id=match["match_id"], notice_id="", firm_id=notice.firm_id, coordinator_id=notice.coordinator_id,
        run_id=match.get("run_id", notice.run_id), batch_id=notice.batch_id, period=notice.period,
        assignment_id=match["assignment_id"],
        team_id=match["team_id"], institution_id=institutions.get(match["match_id"], ""), status="unplaced",
        uid=f"kickoff-{match['match_id']}@werkplaats", sequence=0, created_at=accepted_at)
    lock_for_planning(session, coordinators=[row.coordinator_id], firms=[row.firm_id], teams=[row.team_id])
    session.add(row)
    _, _, cal, plan = _plan_rows(session, [row], weeks, rules or coordinator_rules(session, row.coordinator_id))
    _apply(session, [row], cal, plan)
    if row.status == "unplaced":
        log.warning("kickoff not placed", extra={"match_id": row.match_id, "reason": plan.unplaced[row.match_id]})
    for warning in plan.warnings:
        log.warning("kickoff placed where school holidays are unknown", extra={
            "match_id": row.match_id, "school_year": warning.school_year, "region": warning.region})
    return row


def visible(coordinator_id: str) -> sa.Select[orm.Kickoff]:
    return sa.select(orm.Kickoff).where(orm.Kickoff.coordinator_id == coordinator_id)


def plan_batch(session: Session, coordinator_id: str, batch_id: str, weeks: int = calendar.KICKOFF_WEEKS,
               daily_cap: int | None = None) -> PlanReport:
    """Plan all open kickoffs of a batch at once; kickoffs of other batches stay where they are. Planning
    is serialised per coordinator, firm and team (see adapters.locks), so a plan running at the same time
    as another, or as an acceptance, sees the other's kickoffs as fixed bookings. A ``daily_cap`` given is
    the coordinator's choice from now on, for acceptances and moves too."""
    lock_for_planning(session, coordinators=[coordinator_id])
    if daily_cap is not None:
        choose_daily_cap(session, coordinator_id, daily_cap)
    rules = coordinator_rules(session, coordinator_id)
    rows = list(session.execute(visible(coordinator_id).where(
        orm.Kickoff.batch_id == batch_id, orm.Kickoff.status.in_(OPEN)).order_by(orm.Kickoff.match_id)).scalars())
    if not rows:
        _nothing_to_plan(session, coordinator_id, batch_id)
    lock_for_planning(session, firms=[r.firm_id for r in rows], teams=[r.team_id for r in rows])
    _, _, cal, plan = _plan_rows(session, rows, weeks, rules)
    changed = _apply(session, rows, cal, plan)
    log.info("kickoffs planned", extra={"batch_id": batch_id, "placed": len(plan.placed),
                                        "unplaced": len(plan.unplaced), "changed": changed,
                                        "warnings": len(plan.warnings)})
    return PlanReport(batch_id, rows, len(plan.placed), len(plan.unplaced), changed, plan.solver, plan.seconds,
                      [warning_view(w) for w in plan.warnings], rules.daily_cap)


def _nothing_to_plan(session: Session, coordinator_id: str, batch_id: str) -> NoReturn:
    """Why a batch of this coordinator has no kickoff to plan (422), or 404 when the batch is not theirs."""
    kickoffs = session.execute(visible(coordinator_id).where(orm.Kickoff.batch_id == batch_id)).scalars().all()
    if kickoffs:
        raise Invalid("batch_id", f"no kickoff of this batch is open to plan: all {len(kickoffs)} are cancelled")
    notices = session.execute(sa.select(orm.Notice.matches).where(
        orm.Notice.coordinator_id == coordinator_id, orm.Notice.batch_id == batch_id,
        orm.Notice.kind == "match_notice")).scalars().all()
    if not notices:
        raise NotFound(batch_id)
    published = sum(len(m) for m in notices)
    declined = session.execute(sa.select(sa.func.count()).select_from(orm.MatchResponse).where(
        orm.MatchResponse.batch_id == batch_id, orm.MatchResponse.decision == "declined")).scalar_one()
    raise Invalid("batch_id", f"no match of this batch has been accepted yet ({published} published, "
                  f"{declined} declined): a kickoff is planned once a firm accepts its match")


MOVE_REASONS = {
    "one_slot": "the kickoff can only have one slot",
    "firm_once": "the firm has another kickoff at that time",
    "team_once": "the team has another kickoff at that time",
    "coordinator_once": "the coordinator has another kickoff at that time",
    "daily_cap": "the coordinator's kickoffs for that day are at the daily cap",
}


def move_kickoff(session: Session, coordinator_id: str, match_id: str, starts_at: datetime,
                 weeks: int = calendar.KICKOFF_WEEKS, rules: Rules | None = None) -> orm.Kickoff:
    """Move one kickoff to ``starts_at``, checked by the rules the optimiser uses."""
    lock_for_planning(session, coordinators=[coordinator_id])
    row = session.execute(visible(coordinator_id).where(orm.Kickoff.match_id == match_id)).scalar_one_or_none()
    if row is None:
        raise NotFound(match_id)
    if row.status not in OPEN:
        raise Invalid("match_id", f"a {row.status} kickoff cannot be moved")
    start = starts_at.astimezone(TZ)
    if start.second or start.microsecond or start.minute % 15:
        raise Invalid("starts_at", "a kickoff starts on a quarter of an hour")
    lock_for_planning(session, firms=[row.firm_id], teams=[row.team_id])
    request = as_request(row, weeks)
    fixed = fixed_bookings(session, [request])
    cal = load_calendars(session, [request])
    broken = rules_.violations([request], {match_id: start}, fixed, cal, rules or coordinator_rules(session,
                                                                                                   coordinator_id))
    if broken:
        label = broken[0]
        reason = label.split(": ", 1)[1] if ": " in label else MOVE_REASONS.get(label.split("[")[0], label)
        raise Invalid("starts_at", reason)
    set_slot(session, row, start, None, cal.firm(row.firm_id).venue)
    return row


def cancel_kickoff(session: Session, coordinator_id: str, match_id: str, reason: str | None = None
                   ) -> orm.Kickoff:
    """Cancel a kickoff (once; a second cancellation changes nothing), keeping the coordinator's reason."""
    row = session.execute(visible(coordinator_id).where(orm.Kickoff.match_id == match_id)).scalar_one_or_none()
    if row is None:
        raise NotFound(match_id)
    if row.status == "cancelled":
        return row
    if row.status == "proposed" and row.starts_at is not None:
        row.sequence += 1
        _queue(session, row, "kickoff_cancellation", "CANCEL")
    row.status, row.updated_at, row.reason = "cancelled", utcnow(), reason
    return row


# ---- agreeing to the proposed time ----------------------------------------------------------------


class Conflict(Invalid):
    """The request concerns a state that has changed since the caller saw it: 409."""

    status = 409


AGREEING_SIDES = {"entrepreneur": "firm", "institution": "institution"}


def agree_to_kickoff(session: Session, role: str, organisation_id: str, match_id: str, sequence: int,
                     now: datetime | None = None) -> orm.Kickoff:
    """The firm or the team's institution agrees to the kickoff's proposed time, as last sent (``sequence``).
    Once both sides have agreed the kickoff is confirmed: the firm gets the invitation again with the same UID,
    a higher SEQUENCE and STATUS:CONFIRMED. Agreeing twice changes nothing; a move makes it tentative again."""
    side = AGREEING_SIDES.get(role)
    owner = orm.Kickoff.firm_id if side == "firm" else orm.Kickoff.institution_id
    row = None if side is None else session.execute(
        sa.select(orm.Kickoff).where(orm.Kickoff.match_id == match_id, owner == organisation_id)
        .with_for_update()).scalar_one_or_none()
    if row is None:
        raise NotFound(match_id)
    if row.status != "proposed" or row.starts_at is None:
        raise Invalid("match_id", f"a {row.status} kickoff has no proposed time to agree to")
    if row.confirmed:
        return row  # both sides agreed already
    if sequence != row.sequence:
        raise Conflict("sequence", f"the kickoff has changed since (its sequence is now {row.sequence}): "
                                   "read it again and agree to the time it has now")
    moment = now or utcnow()
    if side == "firm" and row.firm_agreed_at is None:
        row.firm_agreed_at = moment
    elif side == "institution" and row.institution_agreed_at is None:
        row.institution_agreed_at = moment
    else:
        return row
    row.updated_at = moment
    if row.confirmed:
        row.sequence += 1
        row.notice_id = _queue(session, row, "kickoff_confirmation", "REQUEST").id
        log.info("kickoff confirmed", extra={"match_id": row.match_id})
    return row
