"""Matching's use cases: record run requests, claim and solve runs, publish, and the coordinator's
control over a batch (pins, forbids, re-runs, comparison), each in one transaction."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import threading
import uuid
from collections import Counter, OrderedDict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from types import SimpleNamespace
from typing import Any, Callable, Collection, Mapping, Sequence, cast

import msgspec
import sqlalchemy as sa
from marshmallow import ValidationError
from opentelemetry.trace import SpanKind
from sqlalchemy.orm import Session, defer, sessionmaker
from werkplaats_shared import claimcheck
from werkplaats_shared.auth import Principal
from werkplaats_shared.config import Settings
from werkplaats_shared.consumer import NotYetKnown, PermanentError
from werkplaats_shared.contracts import BatchSubmittedV3, Envelope, make_envelope, validated
from werkplaats_shared.db import utcnow
from werkplaats_shared.metrics import MATCHING_RUN_STAGE, MATCHING_RUNS, StageClock
from werkplaats_shared.tracing import current_traceparent, span_from
from werkplaats_shared.transient import database_answers, retry_transient

from ..adapters import orm
from ..domain.explain import EligibleByTeam, explain, precheck
from ..domain.model import Pair, Problem, SnapshotError, ineligibility, pair_key
from ..memory import cycles_paused
from ..solver import (
    Progress,
    Solution,
    SolverFactory,
    eligibility,
    export_model,
    library_versions,
    precheck_supply,
    solve,
)
from . import privacy

log = logging.getLogger(__name__)

LEASE_SECONDS = 15
HEARTBEAT_SECONDS = LEASE_SECONDS / 3
MAX_RUN_ATTEMPTS = 3
Emit = Callable[[Session, Envelope], None]

# A run is queued, then running (stages building, solving, extracting), then solved (waiting for
# publication), published, superseded (a newer run of its batch was published), infeasible (with a
# diagnosis), failed, or cancelled.
OPEN_STATUSES = ("queued", "running", "solved")
DONE = {"pin": "pinned", "forbid": "forbidden"}


class NotFound(Exception):
    pass


class ServiceError(Exception):
    def __init__(self, status: int, field: str, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason, self.retry_after = status, field, reason, retry_after


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def elapsed_seconds(run: orm.Run) -> float | None:
    started = _aware(run.started_at)
    if started is None:
        return None
    end = _aware(run.finished_at or run.cancelled_at) or utcnow()
    return round(max((end - started).total_seconds(), 0.0), 3)


def input_hash(snapshot_text: str, controls: dict[str, Any], policy: str) -> str:
    """What a run was solved from: its controls and policy (canonical JSON) and its snapshot as stored (the
    JSON text the database holds, hashed as read: at national scale re-serialising it costs a tenth of a
    second, and the stored text is what a reproduction reads)."""
    digest = hashlib.sha256(json.dumps({"controls": controls, "policy": policy}, sort_keys=True,
                                       separators=(",", ":")).encode())
    digest.update(b"\n")
    digest.update(snapshot_text.encode())
    return digest.hexdigest()


def _pairs(items: Any) -> list[Pair]:
    return [Pair(i["team_id"], i["assignment_id"]) for i in items or []]


def new_ids(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as text, as ``str(uuid.uuid4())`` gives them, from one read of the system's
    random source (a third of the time for the thousands of matches of a round)."""
    digits = os.urandom(16 * n).hex()
    return [f"{digits[i:i + 8]}-{digits[i + 8:i + 12]}-4{digits[i + 13:i + 16]}-"
            f"{'89ab'[int(digits[i + 16], 16) & 3]}{digits[i + 17:i + 20]}-{digits[i + 20:i + 32]}"
            for i in range(0, 32 * n, 32)]


def _by_pair(item: tuple[Pair, Any]) -> tuple[str, str]:
    return pair_key(item[0])


def _pair_dicts(pairs: Any) -> list[dict[str, str]]:
    return [{"team_id": p.team_id, "assignment_id": p.assignment_id} for p in sorted(pairs, key=pair_key)]


def problem_of(run: orm.Run, snapshot: dict[str, Any] | None = None) -> Problem:
    """The run's input: its snapshot (``snapshot``: the run's, already read), pins (and pairs firms accepted,
    held like pins), forbids, reference; without the teams another batch of the round holds (see held_teams)."""
    controls = run.controls or {}
    return Problem.from_snapshot(without_held(run.snapshot if snapshot is None else snapshot,
                                              controls.get("held") or []),
                                 pinned=_pairs(controls.get("pins")) + _pairs(controls.get("accepted")),
                                 forbidden=_pairs(controls.get("forbids")),
                                 reference=_pairs(controls.get("reference")))


def audit(session: Session, batch_id: str, action: str, details: dict[str, Any], *,
          actor: Principal | None = None, actor_organisation_id: str | None = None,
          run_id: str | None = None) -> None:
    session.add(orm.AuditEntry(
        id=str(uuid.uuid4()), batch_id=batch_id, run_id=run_id, action=action,
        actor_organisation_id=actor.organisation_id if actor else actor_organisation_id,
        actor_key_id=actor.key_id if actor else None, details=details, occurred_at=utcnow()))


# ---- rounds: every batch of one workspace and period --------------------------------------------
#
# Runs of one round are serialised: a worker claims a run only while no other run of its workspace and
# period is running, under the round's lock row. At the claim the run notes the teams the round's other
# batches hold (a match in their published run that the firm has not declined); it is solved without
# them, and the institutions' capacity and supervision they use is taken off. Publishing checks again,
# under the same lock, that no matched team is held elsewhere (a run published by hand meanwhile).
#
# A batch over several workspaces (a multi-region or national round) belongs to the round of each of them: it
# takes every one's lock row (in a fixed order, so two such batches never wait on each other crosswise), waits
# for a running run of any of them, and holds off the teams any batch sharing a workspace and the period holds.


def round_of(item: orm.Run | orm.Batch) -> list[str]:
    """The workspaces of a run's or batch's round, its workspace_id first."""
    return list(item.workspace_ids) if item.workspace_ids else [item.workspace_id]


def lock_round(session: Session, workspace_ids: str | list[str], period: str) -> None:
    """Take the round's lock rows (one per workspace, created on first use) for the rest of the transaction."""
    dialect = session.get_bind().dialect.name
    for workspace_id in sorted({workspace_ids} if isinstance(workspace_ids, str) else set(workspace_ids)):
        values = {"workspace_id": workspace_id, "period": period}
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            session.execute(pg_insert(orm.RoundLock).values(**values).on_conflict_do_nothing())
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            session.execute(sqlite_insert(orm.RoundLock).values(**values).on_conflict_do_nothing())
        session.execute(sa.select(orm.RoundLock.workspace_id).where(
            orm.RoundLock.workspace_id == workspace_id, orm.RoundLock.period == period).with_for_update())


def _sharing_runs(session: Session, workspace_ids: list[str], period: str, condition: sa.ColumnElement[bool]
                  ) -> list[str]:
    """The ids of the period's runs meeting ``condition`` whose round shares a workspace with ``workspace_ids``."""
    mine = set(workspace_ids)
    rows = session.execute(sa.select(orm.Run.id, orm.Run.workspace_id, orm.Run.workspace_ids).where(
        orm.Run.period == period, condition).order_by(orm.Run.id)).all()
    return [run_id for run_id, first, every in rows if mine & set(every or [first])]


def held_teams(session: Session, workspace_ids: str | list[str], period: str, batch_id: str) -> list[dict[str, Any]]:
    """The teams other batches of the round hold (the batches of the period that share a workspace with it):
    matched in their published run, not declined. Each with its institution and level and the supervision hours
    its assignment takes (from that run's input)."""
    wanted = [workspace_ids] if isinstance(workspace_ids, str) else list(workspace_ids)
    runs = _sharing_runs(session, wanted, period, sa.and_(orm.Run.batch_id != batch_id,
                                                           orm.Run.status == "published"))
    if not runs:
        return []
    rows = session.execute(
        sa.select(orm.Match.team_id, orm.Match.assignment_id, orm.Match.institution_id, orm.Run.id,
                  orm.Run.batch_id)
        .join(orm.Run).where(orm.Run.id.in_(runs),
                             sa.or_(orm.Match.response.is_(None), orm.Match.response != "declined"))
        .order_by(orm.Match.team_id, orm.Run.id)).all()
    snapshots: dict[str, dict[str, Any]] = {}
    held = []
    for team_id, assignment_id, institution_id, run_id, other_batch_id in rows:
        if run_id not in snapshots:
            snapshot = session.execute(sa.select(orm.RunSnapshot.snapshot)
                                       .where(orm.RunSnapshot.run_id == run_id)).scalar_one()
            snapshots[run_id] = {
                "teams": {t["team_id"]: t.get("level") for t in snapshot["teams"]},
                "hours": {a["assignment_id"]: a.get("supervision_hours", 0) for a in snapshot["assignments"]}}
        known = snapshots[run_id]
        held.append({"team_id": team_id, "batch_id": other_batch_id, "run_id": run_id,
                     "institution_id": institution_id, "level": known["teams"].get(team_id),
                     "supervision_hours": known["hours"].get(assignment_id, 0)})
    return held


def without_held(snapshot: dict[str, Any], held: list[dict[str, Any]]) -> dict[str, Any]:
    """The snapshot without the held teams, its capacities reduced by what they use."""
    if not held:
        return snapshot
    gone = {h["team_id"] for h in held}
    used: dict[tuple[str, str | None], tuple[int, int]] = {}
    for h in held:
        teams, hours = used.get((h["institution_id"], h["level"]), (0, 0))
        used[(h["institution_id"], h["level"])] = (teams + 1, hours + int(h["supervision_hours"] or 0))
    capacities = []
    for c in snapshot.get("capacities", ()):
        teams, hours = used.get((c["institution_id"], c["level"]), (0, 0))
        if c["period"] != snapshot["period"]:
            teams, hours = 0, 0
        capacities.append({**c, "teams": max(c["teams"] - teams, 0),
                           "supervision_hours": max(c["supervision_hours"] - hours, 0)})
    reduced = {**snapshot, "teams": [t for t in snapshot["teams"] if t["team_id"] not in gone]}
    if "capacities" in snapshot:
        reduced["capacities"] = capacities
    return reduced


def check_round(session: Session, run: orm.Run) -> None:
    """Refuse to publish a run that gives a team another batch of the round holds."""
    lock_round(session, round_of(run), run.period)
    held = {h["team_id"]: h for h in held_teams(session, round_of(run), run.period, run.batch_id)}
    if not held:  # (no run's matches to read)
        return
    for m in run_matches(session, run.id):
        if m.team_id in held:
            raise ServiceError(409, "team_id", f"team {m.team_id} is already placed by the published matching "
                                               f"of batch {held[m.team_id]['batch_id']} in this workspace and "
                                               "period; run this batch again")


def run_ended(session: Session, emit_into: Emit, run: orm.Run, *, left_open: bool = True) -> None:
    """Tell intake how the run ended (run.ended): its status, and for an infeasible run the diagnosis.
    ``left_open``: the run just left queued or running (counted in werkplaats_matching_runs_total); False when a
    solved run is published by hand."""
    diagnosis = None
    if run.status == "infeasible" and run.diagnosis:
        diagnosis = {"groups": [str(g["group"]) for g in run.diagnosis.get("groups", [])][:20],
                     "message": str(run.diagnosis.get("message", ""))[:2000],
                     "message_nl": str(run.diagnosis.get("message_nl", ""))[:2000]}
    if left_open:
        MATCHING_RUNS.labels(policy=run.policy, status=run.status).inc()
    moment = {"published": run.published_at, "cancelled": run.cancelled_at}.get(run.status, run.finished_at)
    ended = _aware(moment) or utcnow()
    emit_into(session, make_envelope("run.ended", 1, {
        "run_id": run.id, "batch_id": run.batch_id, "trigger": run.trigger, "status": run.status,
        "ended_at": ended.isoformat(), "error": run.error if run.status == "failed" else None,
        "diagnosis": diagnosis}))


def cancel_open_runs(session: Session, batch_id: str, reason: str) -> list[str]:
    """Cancel the batch's queued, running and solved runs (a running one stops at its next heartbeat).
    Intake caused this (it re-submitted or closed the batch), so no run.ended tells it."""
    cancelled = []
    for run in session.execute(sa.select(orm.Run).where(orm.Run.batch_id == batch_id,
                                                        orm.Run.status.in_(OPEN_STATUSES))
                               .order_by(orm.Run.created_at).with_for_update()).scalars():
        run.status, run.cancelled_at, run.lease_until = "cancelled", utcnow(), None
        audit(session, batch_id, "run.cancelled", {"reason": reason}, run_id=run.id,
              actor_organisation_id=run.coordinator_id)
        cancelled.append(run.id)
    return cancelled


# ---- runs as jobs ---------------------------------------------------------------------------


def active_controls(session: Session, batch_id: str, kind: str | None = None) -> list[orm.Control]:
    query = sa.select(orm.Control).where(orm.Control.batch_id == batch_id, orm.Control.removed_at.is_(None))
    if kind is not None:
        query = query.where(orm.Control.kind == kind)
    return list(session.execute(query.order_by(orm.Control.created_at, orm.Control.id)).scalars())


def new_run(session: Session, batch: orm.Batch, *, trigger: str, policy: str, auto_publish: bool,
            reference: list[Pair] | None = None, accepted: list[Pair] | None = None,
            parent_run_id: str | None = None, actor: Principal | None = None, seed: int = 0) -> orm.Run:
    """A queued run of the batch's stored snapshot with the batch's current pins and forbids."""
    controls_rows = active_controls(session, batch.batch_id)
    controls = {
        "pins": _pair_dicts({Pair(c.team_id, c.assignment_id) for c in controls_rows if c.kind == "pin"}),
        "forbids": _pair_dicts({Pair(c.team_id, c.assignment_id) for c in controls_rows if c.kind == "forbid"}),
        "reference": _pair_dicts(reference or []),
        "accepted": _pair_dicts(accepted or []),
    }
    run = orm.Run(
        id=str(uuid.uuid4()), batch_id=batch.batch_id, workspace_id=batch.workspace_id,
        workspace_ids=batch.workspace_ids,
        coordinator_id=batch.coordinator_id, period=batch.period, policy=policy, status="queued",
        stage="queued", snapshot=batch.snapshot, controls=controls, seed=seed,
        input_hash=input_hash(json.dumps(batch.snapshot), controls, policy),  # the text the column stores
        attempts=0, created_at=utcnow(), auto_publish=auto_publish, trigger=trigger,
        parent_run_id=parent_run_id, requested_by_key_id=actor.key_id if actor else None,
        time_limit_reached=False, traceparent=current_traceparent(),
    )
    session.add(run)
    session.flush()
    return run


def on_workspace_registered(session: Session, envelope: Envelope) -> None:
    """Intake announced a workspace (again, with the reconciliation: the same facts change nothing). A workspace
    keeps the coordinators' organisation it was first announced with."""
    p = envelope.payload
    known = session.get(orm.KnownWorkspace, p["workspace_id"], with_for_update=True)
    if known is None:
        session.add(orm.KnownWorkspace(workspace_id=p["workspace_id"], coordinator_id=p["coordinator_id"],
                                       registered_at=utcnow()))
    elif known.coordinator_id != p["coordinator_id"]:
        raise PermanentError(f"workspace {p['workspace_id']} was announced for another coordinators' organisation")


def check_batch_source(session: Session, envelope: Envelope) -> None:
    """What matching can check of a ``batch.submitted`` before acting on it (issue 19, item 5):

    - its broker sender is intake (the consumer checks the RabbitMQ-validated user id, see consumer.py);
    - each workspace of its round is one intake announced (``workspace.registered``, sent before the workspace's
      first batch), and the batch names that workspace's coordinators' organisation;
    - a batch matching already holds keeps its workspaces and coordinators' organisation.

    An unannounced workspace is retried (its announcement may be on its way), then dead-lettered with the
    reason; a mismatch is dead-lettered at once. Nothing of the batch is stored either way."""
    p = envelope.payload
    for workspace_id in p.get("workspace_ids") or [p["workspace_id"]]:
        known = session.get(orm.KnownWorkspace, workspace_id)
        if known is None:
            raise NotYetKnown(f"batch {p['batch_id']}: workspace {workspace_id} was never announced by intake")
        if known.coordinator_id != p["coordinator_id"]:
            raise PermanentError(f"batch {p['batch_id']}: coordinator {p['coordinator_id']} does not run workspace "
                                 f"{workspace_id}")
    held = session.get(orm.Batch, p["batch_id"])
    if held is not None and (round_of(held), held.coordinator_id) != (
            list(p.get("workspace_ids") or [p["workspace_id"]]), p["coordinator_id"]):
        raise PermanentError(f"batch {p['batch_id']} belongs to another workspace")


SnapshotFetch = Callable[[dict[str, Any]], dict[str, Any]]


def no_snapshot_fetch(reference: dict[str, Any]) -> dict[str, Any]:
    raise claimcheck.SnapshotRefused("this consumer was started without a way to fetch batch snapshots from intake")


def snapshot_fetch(settings: Settings) -> SnapshotFetch:
    """Fetch a snapshot sent by reference from intake (WERKPLAATS_INTAKE_URL), signed with WERKPLAATS_SECRET_KEY."""
    return lambda reference: claimcheck.fetch(settings.intake_url, settings.secret_key, reference)


def with_snapshot(envelope: Envelope, fetch: SnapshotFetch) -> Envelope:
    """The batch.submitted as if sent inline: a v3 message with ``snapshot_ref`` gets the snapshot it names,
    fetched, its hash checked (claimcheck.fetch) and validated as the inline form of the same batch."""
    reference = envelope.payload.get("snapshot_ref")
    if envelope.version < 3 or reference is None:
        return envelope
    fetched = fetch(reference)
    try:
        payload = validated(BatchSubmittedV3, fetched)  # what loading then dumping it gives, in one pass
    except ValidationError as exc:
        raise PermanentError(f"batch {envelope.payload['batch_id']}: its fetched snapshot is not valid: "
                             f"{exc.messages}") from None
    header = {k: v for k, v in envelope.payload.items() if k != "snapshot_ref"}
    if payload.get("snapshot_ref") is not None or {k: payload.get(k) for k in header} != header:
        raise PermanentError(f"batch {envelope.payload['batch_id']}: the fetched snapshot is of another batch")
    return replace(envelope, payload=payload)


def on_verified_batch_submitted(session: Session, envelope: Envelope,
                                fetch: SnapshotFetch = no_snapshot_fetch) -> None:
    """``batch.submitted`` from the broker: checked (check_batch_source), its snapshot fetched when it came by
    reference (a fetch that fails for the infrastructure's reasons is transient: the message waits), then acted
    on exactly as an inline one."""
    check_batch_source(session, envelope)
    on_batch_submitted(session, with_snapshot(envelope, fetch))


def on_batch_submitted(session: Session, envelope: Envelope) -> None:
    """The request is acknowledged once the run row exists; a worker solves it later. The same batch sent
    again (its settings changed in intake) replaces the stored copy: its open runs are cancelled and a run
    with the new settings is queued; a closed batch or one with a published matching is not replaced."""
    p = privacy.scrub_arrival(session, envelope.payload)
    try:
        Problem.from_snapshot(p)
    except SnapshotError as exc:
        raise PermanentError(f"batch {p['batch_id']} cannot be matched: {exc}") from None
    batch = session.get(orm.Batch, p["batch_id"], with_for_update=True)
    now = utcnow()
    if batch is None:
        batch = orm.Batch(batch_id=p["batch_id"], created_at=now)
        session.add(batch)
    else:
        if batch.closed_at is not None:
            raise PermanentError(f"batch {batch.batch_id} is closed")
        published = session.execute(sa.select(orm.Run.id).where(
            orm.Run.batch_id == batch.batch_id, orm.Run.status == "published")).first()
        if published is not None:
            raise PermanentError(f"batch {batch.batch_id} has a published matching; a re-submission cannot "
                                 "replace it")
        cancel_open_runs(session, batch.batch_id, "re-submitted with new settings")
    batch.workspace_id, batch.coordinator_id, batch.period = p["workspace_id"], p["coordinator_id"], p["period"]
    batch.workspace_ids = list(p["workspace_ids"]) if len(p.get("workspace_ids") or ()) > 1 else None
    batch.policy, batch.auto_publish, batch.snapshot, batch.updated_at = p["policy"], p["auto_publish"], p, now
    session.flush()
    run = new_run(session, batch, trigger="batch.submitted", policy=p["policy"], auto_publish=p["auto_publish"])
    audit(session, batch.batch_id, "run.requested", {"trigger": "batch.submitted", "policy": p["policy"]},
          actor_organisation_id=p["coordinator_id"], run_id=run.id)


CLAIM_CANDIDATES = 20

# The snapshot of the run this process claimed last, as the claim read it, with the erasures done before
# that read (privacy.erasures): the worker reads the run right after claiming it, and a national round's
# snapshot is megabytes of JSON. It stands for the stored one only while no erasure came in since (an
# erasure is the only change to a run's snapshot); the read takes it out either way.
_claimed: dict[str, tuple[int, dict[str, Any]]] = {}
_claimed_lock = threading.Lock()


def _claimed_snapshot(run_id: str, erasures: int) -> dict[str, Any] | None:
    with _claimed_lock:
        kept = _claimed.pop(run_id, None)
    return kept[1] if kept is not None and kept[0] == erasures else None


def claim_next_run(sf: sessionmaker[Session]) -> str | None:
    """Claim the oldest queued run (or one whose worker's lease ran out) whose round has no other run
    running; note the teams the round's other batches hold (see held_teams). The cyclic garbage collector
    rests meanwhile, as it does while the run is solved (``execute_run``): parsing a national round's
    snapshot makes hundreds of thousands of objects and no cycles."""
    with cycles_paused():
        return _claim_next_run(sf)


def _claim_next_run(sf: sessionmaker[Session]) -> str | None:
    with sf() as session:
        candidates = session.execute(
            sa.select(orm.Run.id, orm.Run.workspace_id, orm.Run.workspace_ids, orm.Run.period)
            .where(_claimable(utcnow())).order_by(orm.Run.created_at, orm.Run.id).limit(CLAIM_CANDIDATES)).all()
    busy: set[tuple[str, str]] = set()
    for run_id, workspace_id, every, period in candidates:
        workspace_ids = list(every or [workspace_id])
        if any((w, period) in busy for w in workspace_ids):
            continue
        with sf.begin() as session:
            lock_round(session, workspace_ids, period)
            erasures = privacy.erasures(session)  # before the snapshot is read (see _claimed)
            now = utcnow()
            running = _sharing_runs(session, workspace_ids, period, sa.and_(
                orm.Run.id != run_id, orm.Run.status == "running", orm.Run.lease_until >= now))
            if running:
                busy.update((w, period) for w in workspace_ids)
                continue
            run = session.get(orm.Run, run_id, with_for_update=True)  # its controls as the claim leaves them
            if run is None:
                continue
            # the snapshot's stored text, parsed once here and hashed as read (input_hash)
            snapshot_text = session.execute(sa.select(sa.cast(orm.RunSnapshot.snapshot, sa.Text))
                                            .where(orm.RunSnapshot.run_id == run_id)).scalar_one()
            snapshot = msgspec.json.decode(snapshot_text)  # the json module's dicts and lists, in half the time
            controls = {**(run.controls or {}),
                        "held": held_teams(session, workspace_ids, period, run.batch_id)}
            # its snapshot is read only when the batch has a published run (accepted_pairs)
            batch = session.get(orm.Batch, run.batch_id, options=[defer(orm.Batch.snapshot)])
            if batch is not None:  # a firm may have accepted a pair since the run was requested
                released = {Pair(r["team_id"], r["assignment_id"]) for r in controls.get("released") or []}
                now_accepted = set(accepted_pairs(session, batch, as_of=run, assignments=[
                    a["assignment_id"] for a in snapshot["assignments"]])[1]) - released
                controls["accepted"] = _pair_dicts(set(_pairs(controls.get("accepted"))) | now_accepted)
            # one UPDATE claims the run and notes its controls (a row holds the snapshot: SQLite rewrites it whole)
            claimed = session.execute(
                sa.update(orm.Run).where(orm.Run.id == run_id, _claimable(now)).values(
                    status="running", stage="building", lease_until=now + timedelta(seconds=LEASE_SECONDS),
                    started_at=now, attempts=orm.Run.attempts + 1, controls=controls,
                    input_hash=input_hash(snapshot_text, controls, run.policy))
                .execution_options(synchronize_session=False))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
        with _claimed_lock:  # claimed (committed)
            _claimed.clear()
            _claimed[run_id] = (erasures, snapshot)
        return str(run_id)
    return None


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(orm.Run.status == "queued", sa.and_(orm.Run.status == "running", orm.Run.lease_until < now))


def _heartbeat(sf: sessionmaker[Session], run_id: str, done: threading.Event, progress: Progress) -> None:
    """While the solver works: renew the lease, show its progress, and stop it when the run was cancelled.
    A beat the database misses is skipped (the next one renews the lease); it never stops the run."""
    while not done.wait(HEARTBEAT_SECONDS):
        try:
            with sf.begin() as session:
                status = session.execute(sa.select(orm.Run.status).where(orm.Run.id == run_id)).scalar_one_or_none()
                if status != "running":
                    progress.stop.set()
                    return
                session.execute(sa.update(orm.Run).where(orm.Run.id == run_id, orm.Run.status == "running").values(
                    lease_until=utcnow() + timedelta(seconds=LEASE_SECONDS), progress=progress.as_dict()))
        except Exception as exc:  # noqa: BLE001 - logged; the run goes on and the next beat tries again
            log.warning("run heartbeat missed", extra={"run_id": run_id, "error": type(exc).__name__})


def _probe(sf: sessionmaker[Session]) -> Callable[[], bool]:
    engine = sf.kw["bind"]
    return lambda: database_answers(engine)


def _set_stage(sf: sessionmaker[Session], run_id: str, stage: str) -> None:
    with sf.begin() as session:
        session.execute(sa.update(orm.Run).where(orm.Run.id == run_id, orm.Run.status == "running")
                        .values(stage=stage))


def _record_precheck(sf: sessionmaker[Session], run_id: str, check: dict[str, Any]) -> None:
    """Supply against demand, stored before solving; a shortage does not stop the run."""
    with sf.begin() as session:
        session.execute(sa.update(orm.Run).where(orm.Run.id == run_id, orm.Run.status == "running")
                        .values(precheck=check))


def _fail(sf: sessionmaker[Session], emit_into: Emit, run_id: str, error: str) -> None:
    with sf.begin() as session:
        run = session.get(orm.Run, run_id, with_for_update=True)
        if run is None or run.status != "running":
            return
        run.status, run.stage, run.error = "failed", "done", error[:500]
        run.finished_at, run.lease_until = utcnow(), None
        run_ended(session, emit_into, run)


def execute_run(sf: sessionmaker[Session], emit_into: Emit, run_id: str, solver: str, time_limit: float,
                make: SolverFactory | None = None, stop: threading.Event | None = None) -> None:
    """Read the run's round, solve it and record the result, the cyclic garbage collector resting from
    reading to recording (one pause: see matching.memory)."""
    clock = StageClock(MATCHING_RUN_STAGE)  # each stage's duration (metrics)
    try:
        traceparent = retry_transient(lambda: _traceparent(sf, run_id), _probe(sf), "run trace context", stop=stop)
        # the run goes on in the trace it was asked in: its log lines, the messages it publishes (and the
        # notices scheduling makes of them) carry that trace id
        with span_from("matching", "matching run", SpanKind.INTERNAL, {"traceparent": traceparent}) as span:
            span.set_attribute("werkplaats.run_id", run_id)
            with cycles_paused():
                _execute_run(sf, emit_into, run_id, solver, time_limit, make, stop, clock)
    finally:
        clock.close()


def _traceparent(sf: sessionmaker[Session], run_id: str) -> str | None:
    """The trace context the run was asked in (None for a run asked outside a trace, or one not found)."""
    with sf() as session:
        return session.execute(sa.select(orm.Run.traceparent).where(orm.Run.id == run_id)).scalar_one_or_none()


def _execute_run(sf: sessionmaker[Session], emit_into: Emit, run_id: str, solver: str, time_limit: float,
                 make: SolverFactory | None, stop: threading.Event | None, clock: StageClock) -> None:
    """Each stage that touches the database (reading the run, the pre-check, the stage markers, recording
    the result, recording a failure) is one transaction; when it hits the infrastructure failing (a
    dropped connection, the database unreachable, a serialization failure) it runs again once the
    database answers. A run fails only for a reason of its own, never for an outage."""
    probe = _probe(sf)

    def stage(what: str, work: Callable[[], Any]) -> Any:
        clock.enter(what)
        return retry_transient(work, probe, f"run {what}", stop=stop)

    def read() -> tuple[int, str, int | None, Problem, dict[str, Any], int] | str | None:
        with sf() as session:
            erasures = privacy.erasures(session)  # before the snapshot: one committed in between is counted later
            claimed = _claimed_snapshot(run_id, erasures)  # as the claim read it, unless an erasure came in
            run = session.get(orm.Run, run_id)  # its snapshot is read (run.snapshot) only when not claimed here
            if run is None:
                raise NotFound(run_id)
            if run.status != "running":
                return None
            snapshot = run.snapshot if claimed is None else claimed
            try:
                return run.attempts, run.policy, run.seed, problem_of(run, snapshot), snapshot, erasures
            except SnapshotError as exc:
                return f"the batch cannot be matched: {exc}"

    read_out = stage("reading", read)
    if read_out is None:
        return
    if isinstance(read_out, str):
        stage("failing", lambda: _fail(sf, emit_into, run_id, read_out))
        return
    attempts, policy, seed, problem, solved_snapshot, erasures = read_out
    if attempts > MAX_RUN_ATTEMPTS:
        stage("failing", lambda: _fail(sf, emit_into, run_id, f"gave up after {MAX_RUN_ATTEMPTS} attempts"))
        return
    done, progress = threading.Event(), Progress()
    heartbeat = threading.Thread(target=contextvars.copy_context().run,  # its log lines in the run's trace
                                 args=(_heartbeat, sf, run_id, done, progress), daemon=True)
    heartbeat.start()
    try:
        clock.enter("pre-check")
        eligible = eligibility(problem)  # once per run: pre-check, solve and explanations share it
        by_team = eligible.by_team()  # the pre-check and explanations read the pairs per team, not as Pairs
        check = precheck(problem, by_team, supply_counts=precheck_supply(problem, eligible))
        stage("pre-check", lambda: _record_precheck(sf, run_id, check))
        clock.enter("building")  # the model, until the solver's first stage marker ("solving")
        solution = solve(problem, solver, time_limit, policy=policy, seed=seed, make=make,
                         on_stage=lambda name: stage(name, lambda: _set_stage(sf, run_id, name)),
                         progress=progress, eligible=eligible)
        stage("extracting", lambda: _set_stage(sf, run_id, "extracting"))
        stage("recording", lambda: record_solution(sf, emit_into, run_id, problem, solution, progress,
                                                   by_team, solved_snapshot=solved_snapshot,
                                                   erasures_seen=erasures))
    except Exception as exc:
        if stop is not None and stop.is_set():
            raise  # stopping (during an outage, say): the run's lease runs out and another worker takes it
        log.exception("run failed", extra={"run_id": run_id})
        reason = type(exc).__name__
        stage("failing", lambda: _fail(sf, emit_into, run_id, reason))
    finally:
        done.set()
        heartbeat.join()


def record_solution(sf: sessionmaker[Session], emit_into: Emit, run_id: str, problem: Problem,
                    solution: Solution, progress: Progress | None = None,
                    eligible: Mapping[Pair, float] | EligibleByTeam | None = None, *,
                    solved_snapshot: dict[str, Any] | None = None, erasures_seen: int | None = None) -> None:
    """``solved_snapshot``: the snapshot the run was solved from; what an erasure took out of the stored
    one meanwhile is taken out of the result too. ``erasures_seen``: the erasures done when that snapshot
    was read (``privacy.erasures``); while there are no more, the stored snapshot is the one solved and is
    not read again (at national scale, megabytes), the matches are written in one statement."""
    with sf.begin() as session:
        # (its pre-check, stored before solving, is not read: hundreds of kilobytes of JSON at national scale)
        run = session.get(orm.Run, run_id, with_for_update=True, options=[defer(orm.Run.precheck)])
        if run is None or run.status != "running":
            log.info("run result discarded", extra={"run_id": run_id, "status": run.status if run else None})
            return
        if not solved_snapshot or (erasures_seen is not None and privacy.erasures(session) == erasures_seen):
            erased: set[str] = set()
        else:
            erased = privacy.skills_erased_since(solved_snapshot, run.snapshot)
        run.solver, run.solver_version = solution.solver, solution.solver_version
        run.library_versions = library_versions()
        run.model_hash, run.solver_status = solution.model_hash, solution.status
        run.build_seconds, run.solve_seconds = solution.build_seconds, solution.solve_seconds
        run.objective_values, run.gap = solution.objective_values, solution.gap
        run.time_limit_reached, run.seed = solution.time_limit_reached, solution.seed
        run.finished_at, run.lease_until, run.stage = utcnow(), None, "done"
        run.progress = progress.as_dict() if progress is not None else None
        if solution.status == "infeasible":
            run.status, run.diagnosis = "infeasible", solution.diagnosis
            privacy.scrub_run(run, erased)
            run.error = run.diagnosis["message"][:500] if run.diagnosis else "infeasible"
            run_ended(session, emit_into, run)
            return
        if solution.status not in ("optimal", "feasible"):
            run.status, run.error = "failed", f"no solution found (solver status {solution.status})"
            run_ended(session, emit_into, run)
            return
        run.objective = solution.objective
        snapshot = solved_snapshot or run.snapshot  # an erasure takes skills out, never a team's institution or
        institutions = {t["team_id"]: t["institution_id"] for t in snapshot["teams"]}  # an assignment's firm
        firms = {a["assignment_id"]: a["firm_id"] for a in snapshot["assignments"]}
        rows = [{"id": match_id, "run_id": run_id, "assignment_id": pair.assignment_id,
                 "team_id": pair.team_id, "firm_id": firms[pair.assignment_id],
                 "institution_id": institutions[pair.team_id], "score": score, "response": None,
                 "responded_at": None} for match_id, (pair, score) in zip(
                     new_ids(len(solution.matches)), sorted(solution.matches.items(), key=_by_pair), strict=True)]
        explanations = explain(problem, solution.matches, eligible)
        explanations["held_by_round"] = [{
            "team_id": h["team_id"], "batch_id": h["batch_id"],
            "en": "placed by the published matching of another batch of this workspace and period",
            "nl": "geplaatst door de gepubliceerde koppeling van een andere batch van deze werkplaats en periode",
        } for h in (run.controls or {}).get("held") or []]
        run.explanations, run.figures = explanations, explanations.get("figures")
        privacy.scrub_run(run, erased)
        run.status = "solved"
        session.flush()
        written = False
        if run.auto_publish:
            try:  # publishing writes the matches, with the answers carried over from the published run
                publish(session, emit_into, run, snapshot=snapshot, recorded=rows, unwritten=True)
                written = True
            except ServiceError as exc:  # a newer run of the batch, or another batch of the round, is out
                log.info("run not published automatically", extra={"run_id": run_id, "reason": exc.reason})
        if rows and not written:
            _write_matches(session, rows)
        run_ended(session, emit_into, run)
    log.info("run solved", extra={"run_id": run_id, "matches": len(solution.matches),
                                  "solve_seconds": round(solution.solve_seconds, 3)})


def _write_matches(session: Session, rows: list[dict[str, Any]]) -> None:
    """A run's matches (dicts of Match's columns) in one executemany (batched INSERT ... VALUES on PostgreSQL),
    not a unit of work per match."""
    session.execute(sa.insert(cast(sa.Table, orm.Match.__table__)), rows)


def run_matches(session: Session, run_id: str) -> list[orm.Match]:
    return list(session.execute(sa.select(orm.Match).where(orm.Match.run_id == run_id)
                                .order_by(orm.Match.assignment_id, orm.Match.team_id)).scalars())


def publish(session: Session, emit_into: Emit, run: orm.Run, actor: Principal | None = None, *,
            snapshot: dict[str, Any] | None = None, recorded: list[dict[str, Any]] | None = None,
            unwritten: bool = False) -> orm.Run:
    """Publish a solved run: one id per match; the batch's previously published run is superseded. A pair
    that run had too keeps its answer and is published with that match as its ``previous_match_id`` (a pair
    the firm declined never carries over: if it comes back, it is asked again). ``snapshot``: the run's
    snapshot when the caller has it (the worker that just solved it), so it is not read again. ``recorded``: the
    run's matches as the caller wrote them in this transaction (the worker recording its result, each a dict of
    Match's columns, none answered yet), so they are not read back; with ``unwritten``, the caller has not
    written them yet and publishing does, each with the answer it carries over, in one statement (nothing is
    written when publishing is refused). Otherwise the matches are read as rows. The answers carried over are
    written in one statement (thousands in a national round)."""
    if run.status != "solved":
        raise ServiceError(409, "status", f"only a solved run can be published; this run is {run.status}")
    batch = session.get(orm.Batch, run.batch_id, options=[defer(orm.Batch.snapshot)])
    if batch is not None and batch.closed_at is not None:
        raise ServiceError(409, "batch_id", "the batch is closed")
    check_round(session, run)
    current = session.execute(sa.select(orm.Run).where(
        orm.Run.batch_id == run.batch_id, orm.Run.status == "published", orm.Run.id != run.id)
        .options(defer(orm.Run.precheck), defer(orm.Run.figures)).with_for_update()).scalars().all()
    for older in current:
        if _aware(older.created_at) > _aware(run.created_at):  # type: ignore[operator]
            raise ServiceError(409, "status", f"a newer run of this batch ({older.id}) is already published")
    now = utcnow()
    superseded = max(current, key=lambda older: _aware(older.published_at) or now, default=None)
    match = orm.Match
    # the pairs as (team_id, assignment_id) tuples: thousands of them, hashed and compared in C
    before = {} if superseded is None else {(m.team_id, m.assignment_id): m for m in session.execute(
        sa.select(match.id, match.team_id, match.assignment_id, match.response, match.responded_at)
        .where(match.run_id == superseded.id)) if m.response != "declined"}
    # (id, team_id, assignment_id, firm_id, institution_id, score, response) by assignment and team
    matches: Sequence[Any]
    if recorded is None:
        matches = session.execute(
            sa.select(match.id, match.team_id, match.assignment_id, match.firm_id, match.institution_id, match.score,
                      match.response).where(match.run_id == run.id)
            .order_by(match.assignment_id, match.team_id)).all()
    else:
        recorded = sorted(recorded, key=itemgetter("assignment_id", "team_id"))
        matches = list(map(itemgetter("id", "team_id", "assignment_id", "firm_id", "institution_id", "score",
                                      "response"), recorded))
    snapshot = run.snapshot if snapshot is None else snapshot
    _keeps_accepted(run, before, [(team_id, assignment_id) for _, team_id, assignment_id, *_ in matches], snapshot)
    # every check passed: nothing is changed before this point (the worker publishing on its own goes on
    # with the run solved when one refuses, in the same transaction)
    for older in current:
        older.status, older.superseded_at = "superseded", now
        audit(session, run.batch_id, "run.superseded", {"by_run_id": run.id}, run_id=older.id,
              actor=actor, actor_organisation_id=run.coordinator_id)
    run.status, run.published_at = "published", now
    published, carried = [], []
    for i, (match_id, team_id, assignment_id, firm_id, institution_id, score, response) in enumerate(matches):
        previous = before.get((team_id, assignment_id))
        if previous is not None and response is None and previous.response is not None:
            if unwritten and recorded is not None:  # (the row is written below, with its answer)
                recorded[i]["response"], recorded[i]["responded_at"] = previous.response, previous.responded_at
            else:
                carried.append({"b_id": match_id, "b_response": previous.response,
                                "b_responded_at": previous.responded_at})
        published.append({"match_id": match_id, "assignment_id": assignment_id, "team_id": team_id,
                          "firm_id": firm_id, "institution_id": institution_id, "score": score,
                          "previous_match_id": previous.id if previous is not None else None})
    if carried:
        table = cast(sa.Table, match.__table__)
        session.execute(sa.update(table).where(table.c.id == sa.bindparam("b_id")).values(
            response=sa.bindparam("b_response"), responded_at=sa.bindparam("b_responded_at")), carried)
        for obj in list(session.identity_map.values()):  # matches of this run loaded before: read them again
            if isinstance(obj, orm.Match) and obj.run_id == run.id:
                session.expire(obj)
    if unwritten and recorded:
        _write_matches(session, recorded)
    matched = {assignment_id for _, _, assignment_id, *_ in matches}
    emit_into(session, make_envelope("matches.published", 2, {
        "run_id": run.id, "batch_id": run.batch_id, "workspace_id": run.workspace_id,
        "coordinator_id": run.coordinator_id, "period": run.period, "matches": published,
        "supersedes_run_id": superseded.id if superseded is not None else None,
        "unmatched_assignment_ids": sorted(a["assignment_id"] for a in snapshot["assignments"]
                                           if a["assignment_id"] not in matched),
    }))
    audit(session, run.batch_id, "run.published", {"matches": len(published),
                                                   "superseded": [o.id for o in current]},
          run_id=run.id, actor=actor, actor_organisation_id=run.coordinator_id)
    return run


# ---- the coordinator's control --------------------------------------------------------------


def _keeps_accepted(run: orm.Run, before: Mapping[tuple[str, str], Any], matches: list[tuple[str, str]],
                    snapshot: dict[str, Any]) -> None:
    """Refuse to publish a run that drops a pair a firm accepted in the published matching, unless the
    run's coordinator released that pair or its team or assignment left the batch (``snapshot``: the run's).
    ``before``: the published matching's matches (rows with ``response``) by pair; the pairs as
    (team_id, assignment_id)."""
    released = {(r["team_id"], r["assignment_id"]) for r in (run.controls or {}).get("released") or []}
    kept = set(matches)
    lost = [pair for pair, m in before.items()
            if m.response == "accepted" and pair not in kept and pair not in released]
    if not lost:  # (the snapshot's teams and assignments are looked at only for a pair the run leaves out)
        return
    present_teams = {t["team_id"] for t in snapshot["teams"]}
    present_assignments = {a["assignment_id"] for a in snapshot["assignments"]}
    dropped = sorted(pair for pair in lost if pair[0] in present_teams and pair[1] in present_assignments)
    if dropped:
        raise ServiceError(409, "status", f"this run drops {len(dropped)} pair(s) a firm accepted (team "
                                          f"{dropped[0][0]}, assignment {dropped[0][1]}); "
                                          "request a re-run, releasing such a pair explicitly if it must go")


def visible_runs(principal: Principal) -> sa.Select[Any]:
    query = sa.select(orm.Run).order_by(orm.Run.created_at, orm.Run.id)
    if principal.role == "coordinator":
        return query.where(orm.Run.coordinator_id == principal.organisation_id)
    return query.where(sa.false())


def listed_runs(principal: Principal) -> sa.Select[Any]:
    """The caller's runs as a list shows them: without the stored snapshot and explanations (a big round's are
    megabytes per run; each in a table of its own, not read here), with the figures (kept apart); runs for
    ``run_listed``."""
    return visible_runs(principal)


def run_listed(_session: Session, run: orm.Run) -> SimpleNamespace:
    """A run of ``listed_runs`` as RunOut dumps it: its columns (the snapshot and the explanations are kept in
    tables of their own, the explanations' figures in a column)."""
    return SimpleNamespace(**{c.key: getattr(run, c.key) for c in orm.Run.__table__.columns})


def batch_runs(session: Session, principal: Principal, batch_id: str) -> list[SimpleNamespace]:
    """The batch's runs as a list shows them (``listed_runs``)."""
    runs = session.execute(listed_runs(principal).where(orm.Run.batch_id == batch_id)).scalars()
    return [run_listed(session, run) for run in runs]


def visible_run(session: Session, principal: Principal, run_id: str, *, lock: bool = False) -> orm.Run:
    query = visible_runs(principal).where(orm.Run.id == run_id)
    run: orm.Run | None = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if run is None:
        raise NotFound(run_id)
    return run


def explained_run(session: Session, principal: Principal, run_id: str) -> tuple[orm.Run, dict[str, Any] | None]:
    """The run and its explanations (None while it has none), read in the session."""
    run = visible_run(session, principal, run_id)
    return run, run.explanations


def visible_batch(session: Session, principal: Principal, batch_id: str) -> orm.Batch:
    batch = session.get(orm.Batch, batch_id)
    if batch is None or principal.role != "coordinator" or batch.coordinator_id != principal.organisation_id:
        raise NotFound(batch_id)
    return batch


def visible_matches(principal: Principal) -> sa.Select[Any]:
    """A coordinator's matches (of every run), an institution's or a firm's published ones; the run checked
    by EXISTS (not a join), so the list walks its index in order (SQLite sorts every row of a join)."""
    query = sa.select(orm.Match).order_by(orm.Match.run_id, orm.Match.assignment_id, orm.Match.id)
    of_run = sa.exists().where(orm.Run.id == orm.Match.run_id)
    if principal.role == "coordinator":
        return query.where(of_run.where(orm.Run.coordinator_id == principal.organisation_id))
    published = of_run.where(orm.Run.status == "published")
    if principal.role == "institution":
        return query.where(published, orm.Match.institution_id == principal.organisation_id)
    return query.where(published, orm.Match.firm_id == principal.organisation_id)


def cancel_run(session: Session, emit_into: Emit, principal: Principal, run_id: str) -> orm.Run:
    run = visible_run(session, principal, run_id, lock=True)
    if run.status not in OPEN_STATUSES:
        raise ServiceError(409, "status", f"a {run.status} run cannot be cancelled")
    run.status, run.cancelled_at, run.lease_until = "cancelled", utcnow(), None
    audit(session, run.batch_id, "run.cancelled", {}, run_id=run.id, actor=principal)
    run_ended(session, emit_into, run)
    return run


def publish_run(session: Session, emit_into: Emit, principal: Principal, run_id: str) -> orm.Run:
    """Publish a solved run by hand; intake hears that it ended published (it heard "solved" before)."""
    run = publish(session, emit_into, visible_run(session, principal, run_id, lock=True), principal)
    run_ended(session, emit_into, run, left_open=False)
    return run


# a coordinator waiting on this many runs is told to come back after about this many seconds
RETRY_AFTER_SECONDS = 30


def request_run(session: Session, principal: Principal, batch_id: str, data: dict[str, Any],
                max_open_runs: int = 5) -> orm.Run:
    batch = visible_batch(session, principal, batch_id)
    if batch.closed_at is not None:
        raise ServiceError(409, "batch_id", "the batch is closed: its assignments were released in intake")
    open_runs = session.execute(sa.select(sa.func.count()).select_from(orm.Run).where(
        orm.Run.coordinator_id == principal.organisation_id, orm.Run.status.in_(("queued", "running")))).scalar_one()
    if open_runs >= max_open_runs:
        raise ServiceError(429, "batch_id", f"at most {max_open_runs} runs may be queued or running at once; wait "
                                            "for one to finish or cancel one", retry_after=RETRY_AFTER_SECONDS)
    policy = data.get("policy", batch.policy)
    auto_publish = data.get("auto_publish", batch.auto_publish)
    _, accepted = accepted_pairs(session, batch)
    held, released = _released(session, batch, accepted, data.get("release") or [])
    run = new_run(session, batch, trigger="coordinator", policy=policy, auto_publish=auto_publish,
                  accepted=held, actor=principal, seed=data.get("seed", 0))
    if released:
        run.controls = {**(run.controls or {}), "released": released}
    audit(session, batch_id, "run.requested", {"trigger": "coordinator", "policy": policy, "seed": run.seed,
                                               "auto_publish": auto_publish, "controls": run.controls},
          run_id=run.id, actor=principal)
    for item in released:
        audit(session, batch_id, "match.released", item, run_id=run.id, actor=principal)
    return run


def accepted_pairs(session: Session, batch: orm.Batch, *, as_of: orm.Run | None = None,
                   assignments: Collection[str] | None = None) -> tuple[orm.Run | None, dict[Pair, str]]:
    """The batch's published run and the pairs of it a firm accepted (the answer may have been given to
    the same pair's match in an earlier run), each with its match id in the published run; only pairs
    whose assignment is still in the batch. ``assignments``: the assignment ids of ``as_of``'s snapshot
    (the claim has it parsed), which are the batch's while the batch is unchanged since that run was made
    (every change to the batch's snapshot sets ``updated_at``); otherwise the batch's snapshot is read."""
    published = session.execute(sa.select(orm.Run).where(orm.Run.batch_id == batch.batch_id,
                                                          orm.Run.status == "published")
                                .options(defer(orm.Run.precheck), defer(orm.Run.figures))).scalars().first()
    if published is None:
        return None, {}
    # (as (team_id, assignment_id) tuples: hashed and compared in C; a Pair is made only for the pairs kept)
    answered = {(team_id, assignment_id) for team_id, assignment_id in session.execute(
        sa.select(orm.Match.team_id, orm.Match.assignment_id).join(orm.Run)
        .where(orm.Run.batch_id == batch.batch_id, orm.Match.response == "accepted"))}
    if not answered:
        return published, {}
    unchanged = (as_of is not None and assignments is not None
                 and _aware(batch.updated_at) < _aware(as_of.created_at))  # type: ignore[operator]
    present = set(assignments) if unchanged and assignments is not None else {
        a["assignment_id"] for a in batch.snapshot["assignments"]}
    rows = session.execute(sa.select(orm.Match.id, orm.Match.team_id, orm.Match.assignment_id)
                           .where(orm.Match.run_id == published.id)
                           .order_by(orm.Match.assignment_id, orm.Match.team_id))
    return published, {Pair(team_id, assignment_id): match_id for match_id, team_id, assignment_id in rows
                       if (team_id, assignment_id) in answered and assignment_id in present}


def _released(session: Session, batch: orm.Batch, accepted: dict[Pair, str],
              release: list[dict[str, str]]) -> tuple[list[Pair], list[dict[str, str]]]:
    """Split the accepted pairs into those the re-run holds (like pins) and those the coordinator
    releases (each with a reason). A pair released must be an accepted pair of the published matching,
    named once; an accepted pair that is forbidden must be released (or the forbid removed)."""
    released: list[dict[str, str]] = []
    seen: set[Pair] = set()
    for item in release:
        pair = Pair(item["team_id"], item["assignment_id"])
        if pair not in accepted:
            raise ServiceError(422, "release", f"team {pair.team_id} and assignment {pair.assignment_id} are "
                                               "not a pair a firm accepted in the published matching")
        if pair in seen:
            raise ServiceError(422, "release", f"team {pair.team_id} and assignment {pair.assignment_id} are "
                                               "named twice")
        seen.add(pair)
        released.append({"match_id": accepted[pair], "team_id": pair.team_id,
                         "assignment_id": pair.assignment_id, "reason": item["reason"]})
    held = sorted(set(accepted) - seen)
    for control in active_controls(session, batch.batch_id, "forbid"):
        pair = Pair(control.team_id, control.assignment_id)
        if pair in held:
            raise ServiceError(409, "release", f"team {pair.team_id} and assignment {pair.assignment_id} are "
                                               "forbidden, but the firm accepted them: release the pair in "
                                               "this request (with a reason) or remove the forbid")
    return held, released


def list_controls(session: Session, principal: Principal, batch_id: str, kind: str) -> list[dict[str, Any]]:
    visible_batch(session, principal, batch_id)
    return described_controls(session, batch_id, active_controls(session, batch_id, kind))


def add_control(session: Session, principal: Principal, batch_id: str, kind: str,
                data: dict[str, Any]) -> dict[str, Any]:
    batch = visible_batch(session, principal, batch_id)
    team_ids = {t["team_id"] for t in batch.snapshot["teams"]}
    assignment_ids = {a["assignment_id"] for a in batch.snapshot["assignments"]}
    if data["team_id"] not in team_ids:
        raise ServiceError(422, "team_id", "no such team in this batch")
    if data["assignment_id"] not in assignment_ids:
        raise ServiceError(422, "assignment_id", "no such assignment in this batch")
    for other in active_controls(session, batch_id):
        if (other.team_id, other.assignment_id) == (data["team_id"], data["assignment_id"]):
            if other.kind == kind:
                raise ServiceError(409, "team_id", f"this pair is already {DONE[kind]}")
            raise ServiceError(409, "team_id", f"this pair is {DONE[other.kind]}; remove that {other.kind} first")
    control = orm.Control(
        id=str(uuid.uuid4()), batch_id=batch_id, kind=kind, team_id=data["team_id"],
        assignment_id=data["assignment_id"], reason=data["reason"], author_organisation_id=principal.organisation_id,
        author_key_id=principal.key_id, created_at=utcnow())
    session.add(control)
    audit(session, batch_id, f"{kind}.added", {"control_id": control.id, "team_id": control.team_id,
                                               "assignment_id": control.assignment_id, "reason": control.reason},
          actor=principal)
    return described_controls(session, batch_id, [control])[0]


def described_controls(session: Session, batch_id: str, controls: list[orm.Control]) -> list[dict[str, Any]]:
    """The controls as shown: a pin on a pair that can never be matched is stored, with a warning
    (runs with it are infeasible and say why)."""
    batch = session.get(orm.Batch, batch_id)
    problem = Problem.from_snapshot(batch.snapshot) if batch is not None else None
    shown = []
    for control in controls:
        row = {c.key: getattr(control, c.key) for c in orm.Control.__table__.columns}
        row["warning"] = (ineligibility(problem, Pair(control.team_id, control.assignment_id))
                          if control.kind == "pin" and problem is not None else None)
        shown.append(row)
    return shown


def remove_control(session: Session, principal: Principal, batch_id: str, kind: str, control_id: str) -> None:
    visible_batch(session, principal, batch_id)
    control = session.get(orm.Control, control_id)
    if control is None or control.batch_id != batch_id or control.kind != kind or control.removed_at is not None:
        raise NotFound(control_id)
    control.removed_at, control.removed_by_key_id = utcnow(), principal.key_id
    audit(session, batch_id, f"{kind}.removed", {"control_id": control.id, "team_id": control.team_id,
                                                 "assignment_id": control.assignment_id}, actor=principal)


def audit_query(session: Session, principal: Principal, batch_id: str) -> sa.Select[Any]:
    """The batch's audit trail, oldest first (NotFound: no batch the caller may see)."""
    visible_batch(session, principal, batch_id)
    return (sa.select(orm.AuditEntry).where(orm.AuditEntry.batch_id == batch_id)
            .order_by(orm.AuditEntry.occurred_at, orm.AuditEntry.id))


def audit_trail(session: Session, principal: Principal, batch_id: str) -> list[orm.AuditEntry]:
    return list(session.execute(audit_query(session, principal, batch_id)).scalars())


def _summary(session: Session, run: orm.Run) -> dict[str, Any]:
    return {"id": run.id, "batch_id": run.batch_id, "policy": run.policy, "status": run.status, "trigger": run.trigger,
            "objective": run.objective, "objective_values": run.objective_values,
            "figures": run.figures}  # the explanations' figures, kept apart (not the megabytes of explanations)


def compare_runs(session: Session, principal: Principal, a_id: str, b_id: str) -> dict[str, Any]:
    a, b = visible_run(session, principal, a_id), visible_run(session, principal, b_id)
    pairs_a = {Pair(m.team_id, m.assignment_id): m.score for m in run_matches(session, a.id)}
    pairs_b = {Pair(m.team_id, m.assignment_id): m.score for m in run_matches(session, b.id)}

    def listed(pairs: set[Pair], scores: dict[Pair, float], why: Callable[[Pair], dict[str, Any]] | None = None
               ) -> list[dict[str, Any]]:
        return [{"team_id": p.team_id, "assignment_id": p.assignment_id, "score": scores[p],
                 **({"why": why(p)} if why is not None else {})} for p in sorted(pairs)]

    reasons = _control_reasons(session, b.batch_id)
    controls_b = b.controls or {}
    forbidden_b = {Pair(x["team_id"], x["assignment_id"]) for x in controls_b.get("forbids") or []}
    pinned_a = {Pair(x["team_id"], x["assignment_id"]) for x in (a.controls or {}).get("pins") or []}
    pinned_b = {Pair(x["team_id"], x["assignment_id"]) for x in controls_b.get("pins") or []}
    released_b = {Pair(x["team_id"], x["assignment_id"]): x.get("reason") for x in controls_b.get("released") or []}
    assignments_b = {x["assignment_id"] for x in b.snapshot["assignments"]}
    teams_b = {x["team_id"] for x in b.snapshot["teams"]}

    def policy_changed() -> dict[str, Any] | None:
        return _why("policy", {"a": a.policy, "b": b.policy}) if a.policy != b.policy else None

    def why_removed(pair: Pair) -> dict[str, Any]:
        if pair in released_b:
            return _why("released", reason=released_b[pair])
        if pair in forbidden_b:
            reason = reasons.get(("forbid", pair))
            return _why("declined") if reason == "declined by the firm" else _why("forbidden", reason=reason)
        if pair.assignment_id not in assignments_b:
            return _why("assignment_left")
        if pair.team_id not in teams_b:
            return _why("team_left")
        return policy_changed() or _why("moved")

    def why_added(pair: Pair) -> dict[str, Any]:
        if pair in pinned_b and pair not in pinned_a:
            return _why("pinned", reason=reasons.get(("pin", pair)))
        return policy_changed() or _why("freed")

    return {"a": _summary(session, a), "b": _summary(session, b), "same_batch": a.batch_id == b.batch_id,
            "added": listed(set(pairs_b) - set(pairs_a), pairs_b, why_added),
            "removed": listed(set(pairs_a) - set(pairs_b), pairs_a, why_removed),
            "kept": listed(set(pairs_a) & set(pairs_b), pairs_b)}


CHANGE_REASONS: dict[str, dict[str, str]] = {
    "released": {"en": "the coordinator released the accepted pair", "nl": "de coördinator gaf het geaccepteerde "
                                                                           "paar vrij"},
    "forbidden": {"en": "the coordinator forbade the pair", "nl": "de coördinator sloot het paar uit"},
    "declined": {"en": "the firm declined the team; a minimum-change re-run followed",
                 "nl": "het bedrijf wees het team af; een herberekening met zo min mogelijk wijzigingen volgde"},
    "assignment_left": {"en": "the assignment left the round (withdrawn or handed over)",
                        "nl": "de opdracht verliet de ronde (ingetrokken of overgedragen)"},
    "team_left": {"en": "the team left the round", "nl": "het team verliet de ronde"},
    "policy": {"en": "the later run used another policy ({a} before, {b} now)",
               "nl": "de latere uitvoering gebruikte een ander beleid (eerst {a}, nu {b})"},
    "moved": {"en": "the optimiser placed the team or the assignment elsewhere, to make room for the other changes",
              "nl": "de optimalisatie plaatste het team of de opdracht elders, om ruimte te maken voor de andere "
                    "wijzigingen"},
    "pinned": {"en": "the coordinator pinned the pair", "nl": "de coördinator legde het paar vast"},
    "freed": {"en": "the team or the assignment became free through the other changes",
              "nl": "het team of de opdracht kwam vrij door de andere wijzigingen"},
}


def _why(code: str, values: dict[str, str] | None = None, reason: str | None = None) -> dict[str, Any]:
    text = CHANGE_REASONS[code]
    return {"code": code, "en": text["en"].format(**(values or {})), "nl": text["nl"].format(**(values or {})),
            "reason": reason}


def _control_reasons(session: Session, batch_id: str) -> dict[tuple[str, Pair], str]:
    """The latest reason given for each pin and forbid of the batch (removed ones too)."""
    return {(c.kind, Pair(c.team_id, c.assignment_id)): c.reason for c in session.execute(
        sa.select(orm.Control).where(orm.Control.batch_id == batch_id)
        .order_by(orm.Control.created_at, orm.Control.id)).scalars()}


RESULT_SORTS = ("fit_desc", "fit_asc", "level", "answer")


def _iso(moment: datetime | None) -> str | None:
    aware = _aware(moment)
    return aware.isoformat() if aware is not None else None


# A run's input (snapshot) and result (explanations) change after it is solved only when an erasure scrubs
# them: the last few runs read are kept, parsed, with the last erasure they have seen, so paging through a
# big round reads its megabytes once, not on every page, and no page shows what an erasure removed (another
# process may have done the erasure: the access log, not this process's memory, says whether one happened).
RESULTS_KEPT = 4
_results: OrderedDict[str, tuple[int, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]] = OrderedDict()
_results_lock = threading.Lock()


def _last_erasure(session: Session) -> int:
    from ..adapters.privacy_orm import access_log

    found = session.execute(sa.select(sa.func.max(access_log.c.id)).where(access_log.c.action == "erase"))
    return int(found.scalar_one() or 0)


def _result_of(session: Session, principal: Principal, run_id: str
               ) -> tuple[orm.Run, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The run (without its big columns), its explanations, and its teams and assignments by id."""
    run: orm.Run | None = session.execute(visible_runs(principal).where(orm.Run.id == run_id)).scalar_one_or_none()
    if run is None:
        raise NotFound(run_id)
    erasure = _last_erasure(session)
    with _results_lock:
        kept = _results.get(run_id)
        if kept is not None and kept[0] == erasure:
            _results.move_to_end(run_id)
            return run, *kept[1]
    explanations, snapshot = session.execute(
        sa.select(orm.RunExplanations.explanations, orm.RunSnapshot.snapshot).select_from(orm.RunSnapshot)
        .outerjoin(orm.RunExplanations, orm.RunExplanations.run_id == orm.RunSnapshot.run_id)
        .where(orm.RunSnapshot.run_id == run_id)).one()
    if explanations is None:
        raise ServiceError(409, "status", f"a {run.status} run has no result (yet)")
    parsed = (explanations, {t["team_id"]: t for t in snapshot["teams"]},
              {a["assignment_id"]: a for a in snapshot["assignments"]})
    with _results_lock:
        _results[run_id] = (erasure, parsed)
        while len(_results) > RESULTS_KEPT:
            _results.popitem(last=False)
    return run, *parsed


def run_results(session: Session, principal: Principal, run_id: str, args: dict[str, Any]) -> dict[str, Any]:
    """One page of a run's result, filtered and sorted here so a caller never loads a whole big round: its
    matches (each with the fit taken apart and the firm's answer), or its unmatched assignments or teams (each
    with the reason in words). Filters: team level (for an unmatched assignment: a level it accepts),
    institution, firm, assignments by id, fit range, firm's answer. Counts of all three lists and the levels
    and institutions present come along for the caller's filter choices."""
    run, explanations, teams, assignments = _result_of(session, principal, run_id)
    answers = {(row.team_id, row.assignment_id): (row.response, _iso(row.responded_at)) for row in session.execute(
        sa.select(orm.Match.team_id, orm.Match.assignment_id, orm.Match.response, orm.Match.responded_at)
        .where(orm.Match.run_id == run.id, orm.Match.response.is_not(None)))}
    show = args.get("show", "matches")
    level, institution, firm = args.get("level"), args.get("institution_id"), args.get("firm_id")
    wanted = set(args["assignment_id"]) if args.get("assignment_id") is not None else None
    low, high, answer = args.get("min_fit"), args.get("max_fit"), args.get("answer")
    items: list[dict[str, Any]] = []
    if show == "matches":
        for m in explanations.get("matches", []):
            team, assignment = teams.get(m["team_id"], {}), assignments.get(m["assignment_id"], {})
            response, responded_at = answers.get((m["team_id"], m["assignment_id"]), (None, None))
            total = float(m["score"]["total"])
            if ((level and team.get("level") != level) or (institution and team.get("institution_id") != institution)
                    or (firm and assignment.get("firm_id") != firm)
                    or (wanted is not None and m["assignment_id"] not in wanted)
                    or (low is not None and total < low) or (high is not None and total > high)
                    or (answer and (response or "pending") != answer)):
                continue
            items.append({"team_id": m["team_id"], "assignment_id": m["assignment_id"],
                          "firm_id": assignment.get("firm_id"), "institution_id": team.get("institution_id"),
                          "level": team.get("level"), "fit": total, "score": m["score"],
                          "answer": response or "pending", "responded_at": responded_at})
    elif show == "unmatched_assignments":
        for u in explanations.get("unmatched_assignments", []):
            assignment = assignments.get(u["assignment_id"], {})
            if ((level and level not in (assignment.get("accepted_levels") or []))
                    or (firm and assignment.get("firm_id") != firm)
                    or (wanted is not None and u["assignment_id"] not in wanted)):
                continue
            items.append({"assignment_id": u["assignment_id"], "firm_id": assignment.get("firm_id"),
                          "accepted_levels": assignment.get("accepted_levels") or [],
                          "reason": u["reason"], "en": u["en"], "nl": u["nl"], "counts": u.get("counts", {}),
                          "binding": u.get("binding", [])})
    else:
        for u in explanations.get("unmatched_teams", []):
            team = teams.get(u["team_id"], {})
            if (level and team.get("level") != level) or (institution and team.get("institution_id") != institution):
                continue
            items.append({"team_id": u["team_id"], "institution_id": team.get("institution_id"),
                          "level": team.get("level"), "reason": u["reason"], "en": u["en"], "nl": u["nl"],
                          "counts": u.get("counts", {}), "binding": u.get("binding", [])})
    sort = args.get("sort", "fit_desc")
    if show == "matches" and sort in ("fit_desc", "fit_asc"):
        items.sort(key=lambda i: (-i["fit"] if sort == "fit_desc" else i["fit"], i["assignment_id"], i["team_id"]))
    elif sort == "level":
        items.sort(key=lambda i: (str(i.get("level") or min(i.get("accepted_levels") or [""])),
                                  i.get("assignment_id", ""), i.get("team_id", "")))
    elif show == "matches" and sort == "answer":
        items.sort(key=lambda i: (i["answer"], -i["fit"], i["assignment_id"], i["team_id"]))
    page, size = args.get("page", 1), args.get("page_size", 50)
    sample: dict[str, str] = {}
    for t in teams.values():
        if t.get("institution_id"):
            sample.setdefault(t["institution_id"], t["team_id"])
    return {"run_id": run.id, "status": run.status, "show": show, "total": len(items), "page": page,
            "page_size": size, "items": items[(page - 1) * size:page * size],
            "counts": {"matches": len(explanations.get("matches", [])),
                       "unmatched_assignments": len(explanations.get("unmatched_assignments", [])),
                       "unmatched_teams": len(explanations.get("unmatched_teams", []))},
            "levels": sorted({t["level"] for t in teams.values() if t.get("level")}),
            "institutions": [{"institution_id": i, "team_id": t} for i, t in sorted(sample.items())],
            "answers": {"accepted": 0, "declined": 0, **Counter(r for r, _at in answers.values()),
                        "pending": len(explanations.get("matches", [])) - len(answers)}}


def run_model(session: Session, principal: Principal, run_id: str, fmt: str) -> bytes:
    """The run's model, rebuilt from its stored input; for a solved lexicographic policy, the last
    stage (earlier objectives held at the levels the run reached)."""
    run = visible_run(session, principal, run_id)
    levels = run.objective_values if run.status in ("solved", "published", "superseded") else None
    return export_model(problem_of(run), run.policy, levels, fmt)


# ---- responses from firms -------------------------------------------------------------------


def on_match_responded(session: Session, envelope: Envelope) -> None:
    """Record the response on the match; a decline forbids the pair and asks for a minimum-change
    re-run of the batch's published run, published automatically when the batch says so. An answer to a
    match of a superseded run also holds for the same pair's match in the published run (the re-run
    carried it over, so the firm is not asked again)."""
    p = envelope.payload
    match = session.get(orm.Match, p["match_id"])
    if match is None or match.run_id != p["run_id"]:
        raise PermanentError(f"unknown match {p['match_id']} of run {p['run_id']}")
    run = session.get(orm.Run, match.run_id)
    if (run is None or run.batch_id != p["batch_id"] or match.assignment_id != p["assignment_id"]
            or match.team_id != p["team_id"] or match.firm_id != p["firm_id"]):
        raise PermanentError(f"response does not fit match {p['match_id']}")
    if match.response == p["response"]:
        return
    try:
        responded_at = datetime.fromisoformat(p["responded_at"])
    except ValueError:
        raise PermanentError(f"responded_at is not an ISO 8601 time: {p['responded_at']!r}") from None
    match.response, match.responded_at = p["response"], responded_at
    audit(session, run.batch_id, f"match.{p['response']}", {"match_id": match.id, "team_id": match.team_id,
                                                             "assignment_id": match.assignment_id},
          actor_organisation_id=match.firm_id, run_id=run.id)
    if run.status == "superseded":
        carried = session.execute(sa.select(orm.Match).join(orm.Run).where(
            orm.Run.batch_id == run.batch_id, orm.Run.status == "published",
            orm.Match.team_id == match.team_id, orm.Match.assignment_id == match.assignment_id,
            orm.Match.response.is_(None))).scalars().first()
        if carried is not None:
            carried.response, carried.responded_at = p["response"], responded_at
    if p["response"] != "declined":
        return
    batch = session.get(orm.Batch, run.batch_id)
    if batch is None:
        raise PermanentError(f"unknown batch {run.batch_id}")
    declined = Pair(match.team_id, match.assignment_id)
    for control in active_controls(session, batch.batch_id):
        if Pair(control.team_id, control.assignment_id) == declined:
            if control.kind == "forbid":
                break
            control.removed_at = utcnow()
            audit(session, batch.batch_id, "pin.removed", {"control_id": control.id, "reason": "declined"},
                  actor_organisation_id=match.firm_id)
    else:
        control = orm.Control(id=str(uuid.uuid4()), batch_id=batch.batch_id, kind="forbid",
                              team_id=match.team_id, assignment_id=match.assignment_id,
                              reason="declined by the firm", author_organisation_id=match.firm_id,
                              created_at=utcnow())
        session.add(control)
        audit(session, batch.batch_id, "forbid.added", {"control_id": control.id, "team_id": control.team_id,
                                                        "assignment_id": control.assignment_id,
                                                        "reason": control.reason},
              actor_organisation_id=match.firm_id)
    session.flush()
    published = session.execute(sa.select(orm.Run).where(orm.Run.batch_id == batch.batch_id,
                                                          orm.Run.status == "published")
                                .options(defer(orm.Run.precheck), defer(orm.Run.figures))).scalars().first()
    if published is None:
        return
    reference = [Pair(m.team_id, m.assignment_id) for m in run_matches(session, published.id)]
    if declined not in reference:
        return
    # pairs a firm already accepted stay as they are; the rest are kept as far as possible
    accepted = {Pair(row.team_id, row.assignment_id) for row in session.execute(
        sa.select(orm.Match.team_id, orm.Match.assignment_id).join(orm.Run)
        .where(orm.Run.batch_id == batch.batch_id, orm.Match.response == "accepted"))}
    rerun = new_run(session, batch, trigger="declined", policy="min_change", auto_publish=batch.auto_publish,
                    reference=[pair for pair in reference if pair != declined],
                    accepted=[pair for pair in reference if pair in accepted],
                    parent_run_id=published.id)
    audit(session, batch.batch_id, "run.requested", {"trigger": "declined", "policy": "min_change",
                                                     "declined_match_id": match.id},
          actor_organisation_id=match.firm_id, run_id=rerun.id)


def on_batch_closed(session: Session, envelope: Envelope) -> None:
    """Intake closed a batch that had no published matching: its open runs are cancelled and it is run
    and published no more."""
    p = envelope.payload
    batch = session.get(orm.Batch, p["batch_id"], with_for_update=True)
    if batch is None or batch.closed_at is not None:
        return  # never received (its submission was refused) or closed already (a redelivery)
    batch.closed_at = batch.updated_at = utcnow()
    cancelled = cancel_open_runs(session, batch.batch_id, "batch closed")
    audit(session, batch.batch_id, "batch.closed", {"cancelled_runs": cancelled},
          actor_organisation_id=batch.coordinator_id)
    published = session.execute(sa.select(orm.Run.id).where(orm.Run.batch_id == batch.batch_id,
                                                            orm.Run.status == "published")).first()
    if published is not None:
        log.warning("closed batch has a published run", extra={"batch_id": batch.batch_id, "run_id": published[0]})


def on_assignment_withdrawn(session: Session, envelope: Envelope) -> None:
    """A withdrawn assignment leaves its batch (see drop_assignment)."""
    p = envelope.payload
    if p["batch_id"] is not None:
        drop_assignment(session, p["batch_id"], p["assignment_id"], p["firm_id"], trigger="withdrawn")


def on_assignment_left_batch(session: Session, envelope: Envelope) -> None:
    """An assignment moved to another workspace in a handover leaves its batch (see drop_assignment)."""
    p = envelope.payload
    drop_assignment(session, p["batch_id"], p["assignment_id"], p["firm_id"], trigger=p["reason"])


def drop_assignment(session: Session, batch_id: str, assignment_id: str, firm_id: str, *,
                    trigger: str) -> None:
    """The assignment leaves the batch: the stored snapshot loses it (and the teams' wishes for it), its
    pins and forbids end, and when a published matching gave it teams, a minimum-change re-run without it
    is requested (published automatically when the batch says so)."""
    batch = session.get(orm.Batch, batch_id, with_for_update=True)
    if batch is None:
        return  # a batch matching never received holds nothing to redo
    snapshot = batch.snapshot
    if not any(a["assignment_id"] == assignment_id for a in snapshot["assignments"]):
        return  # already left the batch (a redelivery)
    if any(a["assignment_id"] == assignment_id and a["firm_id"] != firm_id for a in snapshot["assignments"]):
        raise PermanentError(f"assignment {assignment_id} does not belong to firm {firm_id}")
    batch.snapshot = {
        **snapshot,
        "assignments": [a for a in snapshot["assignments"] if a["assignment_id"] != assignment_id],
        "teams": [{**t, "preferences": [x for x in t["preferences"] if x != assignment_id]} if "preferences" in t else t
                  for t in snapshot["teams"]],
    }
    batch.updated_at = utcnow()
    for control in active_controls(session, batch.batch_id):
        if control.assignment_id == assignment_id:
            control.removed_at = utcnow()
            audit(session, batch.batch_id, f"{control.kind}.removed",
                  {"control_id": control.id, "reason": f"assignment {trigger.replace('_', ' ')}"},
                  actor_organisation_id=firm_id)
    audit(session, batch.batch_id, f"assignment.{trigger}", {"assignment_id": assignment_id},
          actor_organisation_id=firm_id)
    session.flush()
    published = session.execute(sa.select(orm.Run).where(orm.Run.batch_id == batch.batch_id,
                                                          orm.Run.status == "published")
                                .options(defer(orm.Run.precheck), defer(orm.Run.figures))).scalars().first()
    if published is None:
        return
    reference = [Pair(m.team_id, m.assignment_id) for m in run_matches(session, published.id)]
    if not any(pair.assignment_id == assignment_id for pair in reference):
        return
    kept = [pair for pair in reference if pair.assignment_id != assignment_id]
    accepted = {Pair(row.team_id, row.assignment_id) for row in session.execute(
        sa.select(orm.Match.team_id, orm.Match.assignment_id).join(orm.Run)
        .where(orm.Run.batch_id == batch.batch_id, orm.Match.response == "accepted"))}
    rerun = new_run(session, batch, trigger=trigger, policy="min_change", auto_publish=batch.auto_publish,
                    reference=kept, accepted=[pair for pair in kept if pair in accepted],
                    parent_run_id=published.id)
    audit(session, batch.batch_id, "run.requested", {"trigger": trigger, "policy": "min_change",
                                                     "assignment_id": assignment_id},
          actor_organisation_id=firm_id, run_id=rerun.id)
