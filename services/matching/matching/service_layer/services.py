"""Matching's use cases: record a run request, claim and solve runs, publish their matches."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from datetime import timedelta
from typing import Any

import pulp
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from werkplaats_shared.auth import Principal
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import utcnow

from ..adapters import orm
from ..domain.model import Problem
from ..optimiser import solve

log = logging.getLogger(__name__)

LEASE_SECONDS = 15
MAX_RUN_ATTEMPTS = 3


class NotFound(Exception):
    pass


def input_hash(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def on_batch_submitted(session: Session, envelope: Envelope) -> None:
    """The request is acknowledged once the run row exists; a worker solves it later."""
    p = envelope.payload
    session.add(orm.Run(
        id=str(uuid.uuid4()), batch_id=p["batch_id"], workspace_id=p["workspace_id"],
        coordinator_id=p["coordinator_id"], period=p["period"], policy=p["policy"], status="queued",
        snapshot=p, input_hash=input_hash(p), attempts=0, created_at=utcnow(),
    ))


def claim_next_run(sf: sessionmaker[Session]) -> str | None:
    now = utcnow()
    claimable = sa.or_(orm.Run.status == "queued",
                       sa.and_(orm.Run.status == "running", orm.Run.lease_until < now))
    with sf.begin() as session:
        run_id = session.execute(
            sa.select(orm.Run.id).where(claimable).order_by(orm.Run.created_at).limit(1)
        ).scalar_one_or_none()
        if run_id is None:
            return None
        claimed = session.execute(
            sa.update(orm.Run).where(orm.Run.id == run_id, claimable).values(
                status="running", lease_until=now + timedelta(seconds=LEASE_SECONDS),
                started_at=now, attempts=orm.Run.attempts + 1)
        )
        return run_id if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


def _renew_lease(sf: sessionmaker[Session], run_id: str, done: threading.Event) -> None:
    while not done.wait(LEASE_SECONDS / 3):
        with sf.begin() as session:
            session.execute(sa.update(orm.Run).where(orm.Run.id == run_id, orm.Run.status == "running")
                            .values(lease_until=utcnow() + timedelta(seconds=LEASE_SECONDS)))


def execute_run(sf: sessionmaker[Session], emit_into: Any, run_id: str, solver: str, time_limit: float) -> None:
    with sf() as session:
        run = session.get(orm.Run, run_id)
        if run is None:
            raise NotFound(run_id)
        snapshot, attempts = run.snapshot, run.attempts
    if attempts > MAX_RUN_ATTEMPTS:
        with sf.begin() as session:
            session.execute(sa.update(orm.Run).where(orm.Run.id == run_id).values(
                status="failed", error=f"gave up after {MAX_RUN_ATTEMPTS} attempts", finished_at=utcnow()))
        return
    done = threading.Event()
    renewer = threading.Thread(target=_renew_lease, args=(sf, run_id, done), daemon=True)
    renewer.start()
    try:
        solution = solve(Problem.from_snapshot(snapshot), solver, time_limit)
    except Exception as exc:
        log.exception("run failed", extra={"run_id": run_id})
        with sf.begin() as session:
            session.execute(sa.update(orm.Run).where(orm.Run.id == run_id).values(
                status="failed", error=type(exc).__name__, finished_at=utcnow()))
        return
    finally:
        done.set()
        renewer.join()
    with sf.begin() as session:
        run = session.get(orm.Run, run_id)
        if run is None or run.status != "running":
            return
        run.solver, run.solver_version = solution.solver, solution.solver_version
        run.library_versions = {"pulp": pulp.__version__}
        run.model_hash, run.solver_status = solution.model_hash, solution.status
        run.objective, run.finished_at = solution.objective, utcnow()
        run.lease_until = None
        if solution.status not in ("optimal",):
            run.status = "failed"
            run.error = f"solver status {solution.status}"
            return
        teams = {t["team_id"]: t for t in snapshot["teams"]}
        firms = {a["assignment_id"]: a["firm_id"] for a in snapshot["assignments"]}
        published = []
        for pair, score in sorted(solution.matches.items(), key=lambda kv: (kv[0].assignment_id, kv[0].team_id)):
            match = orm.Match(id=str(uuid.uuid4()), run_id=run_id, assignment_id=pair.assignment_id,
                              team_id=pair.team_id, firm_id=firms[pair.assignment_id],
                              institution_id=teams[pair.team_id]["institution_id"], score=score)
            session.add(match)
            published.append({"match_id": match.id, "assignment_id": match.assignment_id,
                              "team_id": match.team_id, "firm_id": match.firm_id,
                              "institution_id": match.institution_id, "score": score})
        matched = {m["assignment_id"] for m in published}
        run.status, run.published_at = "published", utcnow()
        emit_into(session, make_envelope("matches.published", 1, {
            "run_id": run.id, "batch_id": run.batch_id, "workspace_id": run.workspace_id,
            "coordinator_id": run.coordinator_id, "period": run.period, "matches": published,
            "unmatched_assignment_ids": sorted(a["assignment_id"] for a in snapshot["assignments"]
                                               if a["assignment_id"] not in matched),
        }))
    log.info("run published", extra={"run_id": run_id, "matches": len(published),
                                     "solve_seconds": round(solution.solve_seconds, 3)})


def visible_runs(principal: Principal) -> sa.Select[Any]:
    query = sa.select(orm.Run).order_by(orm.Run.created_at, orm.Run.id)
    if principal.role == "coordinator":
        return query.where(orm.Run.coordinator_id == principal.organisation_id)
    return query.where(sa.false())


def visible_matches(principal: Principal) -> sa.Select[Any]:
    query = sa.select(orm.Match).join(orm.Run).order_by(orm.Match.run_id, orm.Match.assignment_id, orm.Match.id)
    if principal.role == "coordinator":
        return query.where(orm.Run.coordinator_id == principal.organisation_id)
    published = orm.Run.status == "published"
    if principal.role == "institution":
        return query.where(published, orm.Match.institution_id == principal.organisation_id)
    return query.where(published, orm.Match.firm_id == principal.organisation_id)
