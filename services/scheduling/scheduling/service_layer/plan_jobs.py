"""Planning as jobs: a coordinator's request to plan a batch's kickoffs or a workshop programme is stored as
a plan job and answered at once (202); a worker claims it under a lease, solves it with a time limit while
a heartbeat renews the lease and shows its progress (stage, elapsed; once solved, the best value and its gap
to the bound), and applies the result in one transaction with the job's ``done``, so a plan takes effect once.

- Claim: the oldest queued job, or a running one whose lease ran out (its worker died), taken with a
  conditional update (``SELECT ... FOR UPDATE SKIP LOCKED`` first on PostgreSQL; SQLite's write
  transactions start with BEGIN IMMEDIATE and are serialised already). Each claim raises ``attempts``;
  a worker only renews, and only applies to, the attempt it claimed.
- Solve outside any transaction, from what was read; apply under the planning locks after checking
  the plan against the rules as they are now (the validator). A kickoff job whose batch or neighbours
  moved while it solved (another plan, an acceptance) plans again inside the lock (a kickoff plan takes
  seconds). A workshop plan is checked as it was solved against the programme as it is now, by the
  independent validator (``domain.plan_checks``): when it still keeps every rule it is applied (a new
  interest waits on the waitlists), else the job ends ``rejected`` with the rules it breaks and nothing of it
  is applied; the coordinator plans again. (Solving again in the lock would hold the programme for up to
  the job's time limit.) A plan the validator rejects is never applied, of either kind.
- A re-plan keeps what can be kept: a proposed kickoff stays at its slot unless that slot now breaks a
  rule; a planned programme keeps seated firms where it can (see ``workshops.replan``).
- Cancel: a queued job never runs; a running one stops its solver at the next HiGHS interrupt check and
  its result is discarded.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from opentelemetry.trace import SpanKind
from sqlalchemy.orm import Session, load_only, sessionmaker
from werkplaats_shared.auth import Principal
from werkplaats_shared.db import utcnow
from werkplaats_shared.metrics import PLAN_JOB_STAGE, PLAN_JOBS, StageClock
from werkplaats_shared.tracing import span_from
from werkplaats_shared.transient import database_answers, retry_transient

from .. import kickoff_optimiser, solver_watch
from ..adapters import orm
from ..adapters import workshop_orm as w
from ..adapters.locks import lock_for_planning
from ..domain import kickoffs as rules_
from ..domain import plan_checks
from ..domain import workshops as ws
from ..domain.calendar import TZ
from ..domain.kickoffs import Booking, Calendars, Kickoff, Rules
from . import kickoffs as kickoff_services
from . import workshops as workshop_services

log = logging.getLogger(__name__)

KINDS = ("kickoffs", "workshops")
OPEN_STATUSES = ("queued", "running")
ENDED_STATUSES = ("done", "failed", "cancelled", "rejected")  # rejected: the validator refused the plan
STATUSES = (*OPEN_STATUSES, *ENDED_STATUSES)
LEASE_SECONDS = 30.0
HEARTBEAT_SECONDS = 1.0
MAX_ATTEMPTS = 3
DEFAULT_TIME_LIMITS = {"kickoffs": 30.0, "workshops": workshop_services.SOLVER_TIME_LIMIT}
MAX_TIME_LIMIT = 300.0
# the relative gap a workshop plan job works to (WERKPLAATS_WORKSHOP_PLAN_GAP): a plan proven within 1% of
# the best possible is the planner's goal; closing the last percent can take minutes more
WORKSHOP_PLAN_GAP = 0.01
MAX_WORKSHOP_PLAN_GAP = 0.5


class NotFound(Exception):
    pass


class Refused(Exception):
    """A request the job cannot take: the field, why, and the HTTP status."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.field, self.reason, self.status = field, reason, status


# ---- progress and the watched solver ----------------------------------------------------------


@dataclass
class Progress:
    """Shared by the solving thread and the heartbeat: the plan's value and its gap once solved, and
    a flag that asks the solver to stop (the job was cancelled, or the worker lost its lease)."""

    started: float = field(default_factory=time.monotonic)
    best: float | None = None
    gap: float | None = None
    time_limit_reached: bool = False
    target_gap: float | None = None  # the gap the solver works to (a workshop plan's), when it has one
    stop: threading.Event = field(default_factory=threading.Event)

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"elapsed_seconds": round(time.monotonic() - self.started, 3),
                                 "best_value": self.best, "gap": self.gap}
        if self.target_gap is not None:
            shown["target_gap"] = self.target_gap
        return shown


# ---- submitting, reading, cancelling -----------------------------------------------------------


def _time_limit(kind: str, time_limit: float | None) -> float:
    if time_limit is None:
        return DEFAULT_TIME_LIMITS[kind]
    if not 1 <= time_limit <= MAX_TIME_LIMIT:
        raise Refused("time_limit", f"the time limit is 1 to {MAX_TIME_LIMIT:g} seconds")
    return float(time_limit)


def _submit(session: Session, kind: str, coordinator_id: str, subject_id: str, params: dict[str, Any],
            time_limit: float | None) -> tuple[orm.PlanJob, bool]:
    """A new queued job, or the open one of the same subject asked with the same settings (a second click
    plans once); an open one with other settings is refused until it ends or is cancelled."""
    limit = _time_limit(kind, time_limit)
    open_job = session.execute(sa.select(orm.PlanJob).where(
        orm.PlanJob.kind == kind, orm.PlanJob.subject_id == subject_id,
        orm.PlanJob.coordinator_id == coordinator_id, orm.PlanJob.status.in_(OPEN_STATUSES))
        .order_by(orm.PlanJob.created_at).with_for_update()).scalars().first()
    if open_job is not None:
        if open_job.params == params and open_job.time_limit == limit:
            return open_job, False
        raise Refused("batch_id" if kind == "kickoffs" else "programme_id",
                      f"a plan of this {'batch' if kind == 'kickoffs' else 'programme'} is {open_job.status} "
                      f"with other settings (plan job {open_job.id}); wait for it or cancel it first", 409)
    job = orm.PlanJob(id=str(uuid.uuid4()), kind=kind, coordinator_id=coordinator_id, subject_id=subject_id,
                      params=params, status="queued", stage="queued", time_limit=limit, attempts=0,
                      created_at=utcnow())
    session.add(job)
    session.flush()
    log.info("plan job queued", extra={"job_id": job.id, "kind": kind})
    return job, True


def submit_kickoff_plan(session: Session, coordinator_id: str, batch_id: str, weeks: int,
                        daily_cap: int | None, time_limit: float | None = None) -> tuple[orm.PlanJob, bool]:
    """Queue the planning of a batch's open kickoffs; what makes it impossible (the batch is not the
    coordinator's, nothing is open to plan) is refused now. A daily cap given is the coordinator's choice
    from now on."""
    lock_for_planning(session, coordinators=[coordinator_id])
    if daily_cap is not None:
        kickoff_services.choose_daily_cap(session, coordinator_id, daily_cap)
    if not _open_kickoffs(session, coordinator_id, batch_id):
        kickoff_services._nothing_to_plan(session, coordinator_id, batch_id)
    return _submit(session, "kickoffs", coordinator_id, batch_id, {"weeks": weeks}, time_limit)


def submit_workshop_plan(session: Session, principal: Principal, programme_id: str,
                         time_limit: float | None = None) -> tuple[orm.PlanJob, bool]:
    programme = workshop_services._own_programme(session, principal, programme_id, planned_too=True)
    return _submit(session, "workshops", principal.organisation_id, programme.id, {}, time_limit)


def get_job(session: Session, coordinator_id: str, job_id: str, lock: bool = False) -> orm.PlanJob:
    query = sa.select(orm.PlanJob).where(orm.PlanJob.id == job_id, orm.PlanJob.coordinator_id == coordinator_id)
    found = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if found is None:
        raise NotFound(job_id)
    return found


LISTED_COLUMNS = (orm.PlanJob.id, orm.PlanJob.kind, orm.PlanJob.coordinator_id, orm.PlanJob.subject_id,
                  orm.PlanJob.status, orm.PlanJob.stage, orm.PlanJob.time_limit, orm.PlanJob.attempts,
                  orm.PlanJob.error, orm.PlanJob.created_at, orm.PlanJob.started_at, orm.PlanJob.finished_at)


def jobs_of(coordinator_id: str, kind: str | None = None, status: str | None = None) -> sa.Select[Any]:
    """A coordinator's plan jobs, newest first, for a list: their light columns only (the params, progress,
    result and verdict are read with one job, never for a page of them)."""
    query = (sa.select(orm.PlanJob).options(load_only(*LISTED_COLUMNS, raiseload=True))
             .where(orm.PlanJob.coordinator_id == coordinator_id)
             .order_by(orm.PlanJob.created_at.desc(), orm.PlanJob.id.desc()))
    if kind is not None:
        query = query.where(orm.PlanJob.kind == kind)
    if status is not None:
        query = query.where(orm.PlanJob.status == status)
    return query


def listed_view(_session: Session, job: orm.PlanJob) -> dict[str, Any]:
    return {"id": job.id, "kind": job.kind, "subject_id": job.subject_id,
            "batch_id": job.subject_id if job.kind == "kickoffs" else None,
            "programme_id": job.subject_id if job.kind == "workshops" else None,
            "status": job.status, "stage": job.stage, "time_limit": job.time_limit, "attempts": job.attempts,
            "error": job.error, "created_at": job.created_at, "started_at": job.started_at,
            "finished_at": job.finished_at}


def delete_ended_jobs(session: Session, older_than: datetime) -> int:
    """Remove the jobs that ended (done, failed, cancelled) before ``older_than``: how many went. What a
    job applied stays; only its record goes."""
    result = session.execute(sa.delete(orm.PlanJob).where(orm.PlanJob.status.in_(ENDED_STATUSES),
                                                          orm.PlanJob.finished_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)  # a DML result has one; the Result type does not say so


def cancel_job(session: Session, coordinator_id: str, job_id: str) -> orm.PlanJob:
    """Cancel a queued or running job (a running one's solver stops at its next check; nothing of it is
    applied). An ended job is refused: done, failed and cancelled stay as they are."""
    job = get_job(session, coordinator_id, job_id, lock=True)
    if job.status not in OPEN_STATUSES:
        raise Refused("job_id", f"the plan job is {job.status} already; only a queued or running one can be "
                                "cancelled", 409)
    job.status, job.stage, job.lease_until, job.finished_at = "cancelled", "done", None, utcnow()
    PLAN_JOBS.labels(kind=job.kind, status="cancelled").inc()
    log.info("plan job cancelled", extra={"job_id": job.id})
    return job


def job_view(session: Session, job: orm.PlanJob) -> dict[str, Any]:
    """The job as the API shows it; a done kickoff job's result lists the batch's kickoffs as they are now."""
    from . import services

    view: dict[str, Any] = {
        "id": job.id, "kind": job.kind, "subject_id": job.subject_id, "status": job.status, "stage": job.stage,
        "time_limit": job.time_limit, "attempts": job.attempts, "progress": job.progress, "error": job.error,
        "verdict": job.verdict, "created_at": job.created_at, "started_at": job.started_at,
        "finished_at": job.finished_at, "result": job.result,
        "batch_id": job.subject_id if job.kind == "kickoffs" else None,
        "programme_id": job.subject_id if job.kind == "workshops" else None,
    }
    progress = job.progress or {}
    view["elapsed_seconds"] = progress.get("elapsed_seconds")
    view["best_value"], view["gap"] = progress.get("best_value"), progress.get("gap")
    if job.kind == "kickoffs" and job.status == "done" and job.result is not None:
        ids = job.result.get("match_ids") or []
        rows = session.execute(sa.select(orm.Kickoff).where(orm.Kickoff.match_id.in_(ids))
                               .order_by(orm.Kickoff.match_id)).scalars().all() if ids else []
        view["kickoffs"] = [services.kickoff_view(k) for k in rows]
    return view


# ---- the worker's side -----------------------------------------------------------------------------


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(orm.PlanJob.status == "queued",
                  sa.and_(orm.PlanJob.status == "running", orm.PlanJob.lease_until < now))


def claim_next_job(sf: sessionmaker[Session], lease: float = LEASE_SECONDS) -> tuple[str, int] | None:
    """Claim the oldest claimable job under a lease of ``lease`` seconds: its id and the attempt this worker
    holds."""
    with sf.begin() as session:
        now = utcnow()
        query = (sa.select(orm.PlanJob.id).where(_claimable(now))
                 .order_by(orm.PlanJob.created_at, orm.PlanJob.id).limit(1))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job_id = session.execute(query).scalar_one_or_none()
        if job_id is None:
            return None
        claimed = session.execute(sa.update(orm.PlanJob).where(orm.PlanJob.id == job_id, _claimable(now)).values(
            status="running", stage="reading", lease_until=now + timedelta(seconds=lease),
            started_at=now, attempts=orm.PlanJob.attempts + 1))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        attempt = session.execute(sa.select(orm.PlanJob.attempts).where(orm.PlanJob.id == job_id)).scalar_one()
        log.info("plan job claimed", extra={"job_id": job_id, "attempt": attempt})
        return job_id, attempt


def _mine(job_id: str, attempt: int) -> sa.ColumnElement[bool]:
    return sa.and_(orm.PlanJob.id == job_id, orm.PlanJob.status == "running", orm.PlanJob.attempts == attempt)


def _heartbeat(sf: sessionmaker[Session], job_id: str, attempt: int, done: threading.Event,
               progress: Progress, stage: list[str], lease: float) -> None:
    """While the worker works: renew the lease, show progress, stop the solver when the job was cancelled
    or another worker took it over. A missed beat is skipped; the next one renews the lease."""
    while not done.wait(min(HEARTBEAT_SECONDS, lease / 3)):
        try:
            with sf.begin() as session:
                renewed = session.execute(sa.update(orm.PlanJob).where(_mine(job_id, attempt)).values(
                    lease_until=utcnow() + timedelta(seconds=lease), progress=progress.as_dict(),
                    stage=stage[0]))
                if renewed.rowcount != 1:  # type: ignore[attr-defined]
                    progress.stop.set()
                    return
        except Exception as exc:  # noqa: BLE001 - logged; the job goes on and the next beat tries again
            log.warning("plan job heartbeat missed", extra={"job_id": job_id, "error": type(exc).__name__})


def _fail(sf: sessionmaker[Session], job_id: str, attempt: int, error: str, progress: Progress | None) -> None:
    with sf.begin() as session:
        session.execute(sa.update(orm.PlanJob).where(_mine(job_id, attempt)).values(
            status="failed", stage="done", error=error[:500], lease_until=None, finished_at=utcnow(),
            progress=progress.as_dict() if progress is not None else None))


def run_pending(sf: sessionmaker[Session], stop: threading.Event | None = None, lease: float = LEASE_SECONDS,
                workshop_gap: float = WORKSHOP_PLAN_GAP) -> int:
    """Claim and do jobs until none is left; how many were done (a loop's body, and the tests' worker).
    ``workshop_gap``: the relative gap a workshop plan is solved to (WERKPLAATS_WORKSHOP_PLAN_GAP)."""
    count = 0
    while stop is None or not stop.is_set():
        claimed = claim_next_job(sf, lease)
        if claimed is None:
            return count
        execute_job(sf, *claimed, stop=stop, lease=lease, workshop_gap=workshop_gap)
        count += 1
    return count


def execute_job(sf: sessionmaker[Session], job_id: str, attempt: int, stop: threading.Event | None = None,
                lease: float = LEASE_SECONDS, workshop_gap: float = WORKSHOP_PLAN_GAP) -> None:
    """Do a claimed job in the trace it was asked in (a child span of the request's context), so its log lines
    and the notices it makes carry that trace id."""
    engine = sf.kw["bind"]
    traceparent = retry_transient(lambda: _traceparent(sf, job_id), lambda: database_answers(engine),
                                  "plan job trace context", stop=stop)
    with span_from("scheduling", "plan job", SpanKind.INTERNAL, {"traceparent": traceparent}) as span:
        span.set_attribute("werkplaats.plan_job_id", job_id)
        _execute_job(sf, job_id, attempt, stop, lease, workshop_gap)


def _traceparent(sf: sessionmaker[Session], job_id: str) -> str | None:
    with sf() as session:
        return session.execute(sa.select(orm.PlanJob.traceparent).where(orm.PlanJob.id == job_id)).scalar_one_or_none()


def _execute_job(sf: sessionmaker[Session], job_id: str, attempt: int, stop: threading.Event | None,
                 lease: float, workshop_gap: float) -> None:
    """A stage that touches the database runs again when the infrastructure failed (see ``retry_transient``); a
    job fails only for a reason of its own."""
    engine = sf.kw["bind"]
    clock: StageClock | None = None  # each stage's duration (metrics), once the job's kind is known

    def stage(what: str, work: Callable[[], Any]) -> Any:
        if clock is not None:
            clock.enter(what)
        return retry_transient(work, lambda: database_answers(engine), f"plan job {what}", stop=stop)

    def read() -> orm.PlanJob | None:
        with sf() as session:
            job = session.get(orm.PlanJob, job_id)
            if job is None or job.status != "running" or job.attempts != attempt:
                return None
            session.expunge(job)
            return job

    job = stage("reading", read)
    if job is None:
        return
    if attempt > MAX_ATTEMPTS:
        stage("failing", lambda: _fail(sf, job_id, attempt, f"gave up after {MAX_ATTEMPTS} attempts", None))
        PLAN_JOBS.labels(kind=job.kind, status="failed").inc()
        return
    clock = StageClock(PLAN_JOB_STAGE, kind=job.kind)
    progress, current = Progress(), _TimedStage(clock, "reading")
    done = threading.Event()
    beat = threading.Thread(target=contextvars.copy_context().run,  # its log lines in the job's trace
                            args=(_heartbeat, sf, job_id, attempt, done, progress, current, lease), daemon=True)
    beat.start()
    try:
        work = _KickoffJob(sf, job, attempt, progress, current) if job.kind == "kickoffs" else \
            _WorkshopJob(sf, job, attempt, progress, current, workshop_gap)
        work.run(stage)
    except Exception as exc:
        if stop is not None and stop.is_set():
            raise  # the worker is stopping: the lease runs out and another worker takes the job
        log.exception("plan job failed", extra={"job_id": job_id})
        reason = exc.reason if isinstance(exc, kickoff_services.Invalid | workshop_services.Refused) \
            else type(exc).__name__
        stage("failing", lambda: _fail(sf, job_id, attempt, reason, progress))
    finally:
        done.set()
        beat.join()
        clock.close()
    _count_ended(sf, job_id, attempt, job.kind)


class _TimedStage(list[str]):
    """The job's current stage (``[name]``, which the heartbeat shows), each change timed by ``clock``."""

    def __init__(self, clock: StageClock, first: str) -> None:
        super().__init__([first])
        self.clock = clock
        clock.enter(first)

    def __setitem__(self, index: Any, value: Any) -> None:
        super().__setitem__(index, value)
        self.clock.enter(str(value))


def _count_ended(sf: sessionmaker[Session], job_id: str, attempt: int, kind: str) -> None:
    """Count the job in werkplaats_plan_jobs_total when this worker ended it (done or failed; a cancellation is
    counted by cancel_job)."""
    try:
        with sf() as session:
            status = session.execute(sa.select(orm.PlanJob.status).where(
                orm.PlanJob.id == job_id, orm.PlanJob.attempts == attempt)).scalar_one_or_none()
    except Exception:  # noqa: BLE001 - the count is not worth failing the worker over
        log.warning("plan job end not counted", extra={"job_id": job_id})
        return
    if status in ("done", "failed", "rejected"):
        PLAN_JOBS.labels(kind=kind, status=status).inc()


def _finish(session: Session, job_id: str, attempt: int, progress: Progress, result: dict[str, Any],
            problems: Sequence[str]) -> bool:
    """Mark the job done with its result and the validator's verdict, in the transaction that applied the
    plan. False (and the caller rolls back) when the job is no longer this worker's."""
    done = session.execute(sa.update(orm.PlanJob).where(_mine(job_id, attempt)).values(
        status="done", stage="done", lease_until=None, finished_at=utcnow(), result=result,
        progress={**progress.as_dict(), "time_limit_reached": progress.time_limit_reached},
        verdict={"valid": not problems, "violations": list(problems)[:50]}))
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def _reject(session: Session, job_id: str, attempt: int, progress: Progress, what: str,
            problems: Sequence[str], details: Sequence[dict[str, Any]] = ()) -> bool:
    """End the job ``rejected``: the validator found the plan breaks ``problems`` (stored as the verdict), so
    nothing of it is applied; in the transaction that would have applied it, which the caller commits with
    nothing else in it. False when the job is no longer this worker's."""
    log.warning("plan job rejected by the validator", extra={"job_id": job_id, "violations": len(problems)})
    rejected = session.execute(sa.update(orm.PlanJob).where(_mine(job_id, attempt)).values(
        status="rejected", stage="done", lease_until=None, finished_at=utcnow(), result=None,
        error=(f"the plan breaks {len(problems)} rule(s) of the {what} as it is now; nothing was changed, "
               "plan again")[:500],
        progress={**progress.as_dict(), "time_limit_reached": progress.time_limit_reached},
        verdict={"valid": False, "violations": list(problems)[:50],
                 **({"details": list(details)[:50]} if details else {})}))
    return bool(rejected.rowcount == 1)  # type: ignore[attr-defined]


class _Discarded(Exception):
    """The job was cancelled or taken over while this worker solved it: nothing is applied."""


def _owned(session: Session, job_id: str, attempt: int) -> None:
    """Lock the job row and check it is still this worker's (before applying anything)."""
    status = session.execute(sa.select(orm.PlanJob.status).where(_mine(job_id, attempt))
                             .with_for_update()).scalar_one_or_none()
    if status is None:
        raise _Discarded(job_id)


@dataclass
class _KickoffJob:
    sf: sessionmaker[Session]
    job: orm.PlanJob
    attempt: int
    progress: Progress
    current: list[str]

    def read(self, session: Session) -> tuple[list[orm.Kickoff], list[Kickoff], list[Booking], Calendars, Rules]:
        rows = _open_kickoffs(session, self.job.coordinator_id, self.job.subject_id)
        rules = kickoff_services.coordinator_rules(session, self.job.coordinator_id)
        requests = [kickoff_services.as_request(r, int(self.job.params["weeks"])) for r in rows]
        return (rows, requests, kickoff_services.fixed_bookings(session, requests),
                kickoff_services.load_calendars(session, requests), rules)

    def solve(self, requests: Sequence[Kickoff], fixed: Sequence[Booking], cal: Calendars, rules: Rules
              ) -> tuple[dict[str, datetime], rules_.Plan]:
        """Kickoffs whose slot still keeps every rule stay; the rest are planned around them."""
        kept = keep_valid(requests, fixed, cal, rules)
        stays = [Booking(k.match_id, k.firm_id, k.team_id, k.coordinator_id, kept[k.match_id])
                 for k in requests if k.match_id in kept]
        rest = [k for k in requests if k.match_id not in kept]
        with solver_watch.watching(self.progress):
            plan = kickoff_optimiser.plan(rest, [*fixed, *stays], cal, rules, time_limit=self.job.time_limit)
        self.progress.best = float(len(kept) + len(plan.placed))  # kickoffs placed
        self.progress.gap = 0.0 if plan.status == "optimal" else None
        self.progress.time_limit_reached |= plan.status == "feasible"
        return {**kept, **plan.placed}, plan

    def run(self, stage: Callable[[str, Callable[[], Any]], Any]) -> None:
        def read() -> tuple[list[str], list[Kickoff], list[Booking], Calendars, Rules]:
            with self.sf() as session:
                rows, requests, fixed, cal, rules = self.read(session)
                return [r.match_id for r in rows], requests, fixed, cal, rules

        ids, requests, fixed, cal, rules = stage("reading", read)
        self.current[0] = "solving"
        placed, plan = self.solve(requests, fixed, cal, rules)
        self.current[0] = "applying"
        if self.progress.stop.is_set():
            return
        try:
            stage("applying", lambda: self.apply(ids, requests, fixed, placed, plan))
        except _Discarded:
            log.info("plan job result discarded", extra={"job_id": self.job.id})

    def apply(self, ids: list[str], requests: list[Kickoff], fixed: list[Booking], placed: dict[str, datetime],
              plan: rules_.Plan) -> None:
        with self.sf.begin() as session:
            # the locks in the order a request takes them (planning lock, then the job), so neither waits on the other
            lock_for_planning(session, coordinators=[self.job.coordinator_id])
            _owned(session, self.job.id, self.attempt)
            rows = _open_kickoffs(session, self.job.coordinator_id, self.job.subject_id)
            lock_for_planning(session, firms=[r.firm_id for r in rows], teams=[r.team_id for r in rows])
            rows, now_requests, now_fixed, cal, rules = self.read(session)
            problems = rules_.violations(now_requests, placed, now_fixed, cal, rules)
            replanned = [r.match_id for r in rows] != ids or now_requests != requests or bool(problems)
            if replanned:  # the kickoffs or their neighbours changed while solving: plan again, in the lock
                placed, plan = self.solve(now_requests, now_fixed, cal, rules)
                problems = rules_.violations(now_requests, placed, now_fixed, cal, rules)
            if problems:  # never applied: the job ends rejected, nothing of the batch changes
                if not _reject(session, self.job.id, self.attempt, self.progress, "batch", problems):
                    raise _Discarded(self.job.id)
                return
            changed = 0
            for row in rows:
                reason = plan.unplaced.get(row.match_id, rules_.DAILY_CAP)
                changed += kickoff_services.set_slot(session, row, placed.get(row.match_id), reason,
                                                     cal.firm(row.firm_id).venue)
            warnings = rules_.unknown_school_holidays(now_requests, placed, cal)
            result = {"batch_id": self.job.subject_id, "placed": len(placed), "unplaced": len(rows) - len(placed),
                      "changed": changed, "kept": sum(1 for k in now_requests
                                                      if k.current is not None and placed.get(k.match_id) == k.current),
                      "solver": plan.solver, "seconds": round(plan.seconds, 3), "daily_cap": rules.daily_cap,
                      "replanned_in_lock": replanned,
                      "warnings": [kickoff_services.warning_view(x) for x in warnings],
                      "match_ids": [r.match_id for r in rows]}
            if not _finish(session, self.job.id, self.attempt, self.progress, result, problems):
                raise _Discarded(self.job.id)
            log.info("kickoffs planned", extra={"job_id": self.job.id, "placed": len(placed), "changed": changed})


def keep_valid(requests: Sequence[Kickoff], fixed: Sequence[Booking], cal: Calendars, rules: Rules
               ) -> dict[str, datetime]:
    """The proposed kickoffs whose current slot keeps every rule, taken in order with those kept before
    them (and the fixed bookings) as neighbours."""
    kept: dict[str, datetime] = {}
    around = list(fixed)
    for k in requests:
        if k.current is None:
            continue
        start = k.current.astimezone(TZ)
        if not rules_.violations([k], {k.match_id: start}, around, cal, rules):
            kept[k.match_id] = start
            around.append(Booking(k.match_id, k.firm_id, k.team_id, k.coordinator_id, start))
    return kept


def _open_kickoffs(session: Session, coordinator_id: str, batch_id: str) -> list[orm.Kickoff]:
    return list(session.execute(kickoff_services.visible(coordinator_id).where(
        orm.Kickoff.batch_id == batch_id, orm.Kickoff.status.in_(kickoff_services.OPEN))
        .order_by(orm.Kickoff.match_id)).scalars())


@dataclass
class _WorkshopJob:
    sf: sessionmaker[Session]
    job: orm.PlanJob
    attempt: int
    progress: Progress
    current: list[str]
    gap: float = WORKSHOP_PLAN_GAP  # the relative gap the solver works to

    def read(self, session: Session) -> tuple[ws.Problem, ws.Plan | None] | None:
        programme = session.get(w.WorkshopProgramme, self.job.subject_id)
        if programme is None or programme.coordinator_id != self.job.coordinator_id:
            return None
        keep = workshop_services.current_plan(session, programme.id) if programme.status == "planned" else None
        return workshop_services.problem_of(session, programme), keep

    def optimise(self, problem: ws.Problem, keep: ws.Plan | None) -> workshop_services.Outcome:
        self.progress.target_gap = self.gap
        with solver_watch.watching(self.progress):
            outcome = workshop_services.optimise(problem, keep=keep, time_limit=self.job.time_limit, gap=self.gap)
        if outcome.status in ("optimal", "feasible"):
            self.progress.best, self.progress.gap = outcome.objective, outcome.gap
        # "feasible": the time limit ended the search before the plan was proven within the gap
        self.progress.time_limit_reached |= outcome.status in ("feasible", "not_solved")
        return outcome

    def run(self, stage: Callable[[str, Callable[[], Any]], Any]) -> None:
        def read() -> tuple[ws.Problem, ws.Plan | None] | None:
            with self.sf() as session:
                return self.read(session)

        found = stage("reading", read)
        if found is None:
            raise workshop_services.Refused("programme_id", "the programme is gone")
        problem, keep = found
        self.current[0] = "solving"
        outcome = self.optimise(problem, keep)
        self.current[0] = "applying"
        if self.progress.stop.is_set():
            return
        try:
            stage("applying", lambda: self.apply(problem, keep, outcome))
        except _Discarded:
            log.info("plan job result discarded", extra={"job_id": self.job.id})

    def apply(self, problem: ws.Problem, keep: ws.Plan | None, outcome: workshop_services.Outcome) -> None:
        with self.sf.begin() as session:
            # the locks in the order a request takes them (the programme, then the job)
            programme = session.get(w.WorkshopProgramme, self.job.subject_id, with_for_update=True)
            _owned(session, self.job.id, self.attempt)
            found = self.read(session)
            if programme is None or found is None:
                raise workshop_services.Refused("programme_id", "the programme is gone")
            # rooms, facilitators, interest or seats may have changed while solving: the plan is checked
            # against the programme as it is now, by the independent validator, before anything is stored
            changed = found != (problem, keep)
            now, _ = found
            solved = outcome.status in ("optimal", "feasible")
            broken = plan_checks.workshop_plan_violations(now, outcome.plan, earlier=problem.interests) if solved \
                else []
            problems = [v.text for v in broken]
            if problems:
                if not _reject(session, self.job.id, self.attempt, self.progress, "programme", problems,
                               [v.as_dict() for v in broken]):
                    raise _Discarded(self.job.id)
                return
            report = workshop_services.apply_plan(session, programme, outcome=outcome)
            result = {**report, "changed_while_solving": changed, "gap": outcome.gap, "bound": outcome.bound,
                      "target_gap": self.gap}
            if not _finish(session, self.job.id, self.attempt, self.progress, result, problems):
                raise _Discarded(self.job.id)
