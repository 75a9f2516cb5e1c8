"""Erasure of a team's or a firm contact's personal data (AVG/GDPR art. 17) and the retention job.

Intake replaces the personal data with pseudonymous placeholders, keeps every id (matches, batches and
audit entries stay consistent), drops the cached answers that copied the data, records the erasure in
the access log and emits ``personal_data.erased`` in the same transaction, so matching and scheduling
erase their copies. Intake's own copies go too: the outbox, the batch snapshots stored for matching to fetch,
a run's diagnosis and the audit details."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared import audit, claimcheck
from werkplaats_shared.auth import Principal
from werkplaats_shared.contracts import make_envelope, parse_envelope
from werkplaats_shared.db import checkpoint_after_commit, utcnow
from werkplaats_shared.erasure import (
    drop_free_skills,
    free_skills,
    scrub_json_text,
    scrub_texts,
    stored_forms,
    vocabulary_skills,
)
from werkplaats_shared.retention import RetentionPeriods, retention_loop
from werkplaats_shared.runner import Loop
from werkplaats_shared.service import Infrastructure

from ..adapters import orm
from ..adapters.privacy_orm import access_log
from . import sign_in
from .services import Emit, NotFound, visible_teams

ERASED_TEXT = "[erased]"


@dataclass(frozen=True)
class Erasure:
    subject_kind: str
    subject_id: str
    erased_at: datetime
    placeholder: str


def placeholder_for(subject_id: str) -> str:
    return f"erased-{subject_id[:8]}"


def find_team(session: Session, principal: Principal, team_id: str) -> orm.Team:
    """The team, if the caller may erase it: its institution, or the coordinator of its workspace."""
    team: orm.Team | None = session.execute(
        visible_teams(principal).where(orm.Team.id == team_id)).scalar_one_or_none()
    if team is None:
        raise NotFound(team_id)
    return team


def find_firm(session: Session, principal: Principal, firm_id: str) -> orm.Organisation:
    """The firm, if the caller may erase its contact data: the firm itself, or a coordinator of a
    workspace that serves it or holds one of its assignments."""
    firm = session.get(orm.Organisation, firm_id)
    if firm is None or firm.role != "entrepreneur":
        raise NotFound(firm_id)
    if principal.role == "entrepreneur" and principal.organisation_id == firm.id:
        return firm
    if principal.role == "coordinator":
        own = sa.select(orm.Workspace.id).where(orm.Workspace.organisation_id == principal.organisation_id)
        served = firm.workspace_id is not None and session.execute(
            own.where(orm.Workspace.id == firm.workspace_id)).first() is not None
        holds = session.execute(sa.select(orm.Assignment.id).where(
            orm.Assignment.firm_id == firm.id, orm.Assignment.workspace_id.in_(own)).limit(1)).first() is not None
        if served or holds:
            return firm
    raise NotFound(firm_id)


def erase(session: Session, emit: Emit, principal: Principal | None, subject_kind: str, subject_id: str,
          now: datetime | None = None) -> Erasure:
    """Erase one subject; ``principal`` None means the retention job. Raises NotFound when the caller
    may not see the subject (another organisation's subject answers exactly like a missing one)."""
    now = now or utcnow()
    if subject_kind == "team":
        team = find_team(session, principal, subject_id) if principal else session.get(orm.Team, subject_id)
        if team is None:
            raise NotFound(subject_id)
        old = [team.code, *free_skills(team.skills)]
        team.code = placeholder_for(team.id)
        team.skills = vocabulary_skills(team.skills)
        placeholder = team.code
    elif subject_kind == "firm_contact":
        firm = find_firm(session, principal, subject_id) if principal else session.get(orm.Organisation, subject_id)
        if firm is None:
            raise NotFound(subject_id)
        old = [firm.name, firm.kvk_number or ""]
        firm.name, firm.kvk_number = placeholder_for(firm.id), None
        placeholder = firm.name
        for assignment in session.execute(
                sa.select(orm.Assignment).where(orm.Assignment.firm_id == firm.id)).scalars():
            old += [assignment.title, assignment.description,
                    *free_skills(assignment.required_skills), *free_skills(assignment.nice_to_have_skills)]
            assignment.title, assignment.description = ERASED_TEXT, ""
            assignment.required_skills = vocabulary_skills(assignment.required_skills)
            assignment.nice_to_have_skills = vocabulary_skills(assignment.nice_to_have_skills)
    else:
        raise ValueError(f"unknown subject kind {subject_kind!r}")
    _drop_cached_answers(session, [subject_id, *old])
    _scrub_copies(session, subject_kind, subject_id, old)
    audit.record(session, access_log, action="erase" if principal else "retention", subject_type=subject_kind,
                 subject_id=subject_id, actor=principal, at=now)
    emit(make_envelope("personal_data.erased", 1, {
        "subject_kind": subject_kind, "subject_id": subject_id, "erased_at": now.isoformat()}))
    session.flush()
    checkpoint_after_commit(session)
    return Erasure(subject_kind, subject_id, now, placeholder)


def _scrub_copies(session: Session, subject_kind: str, subject_id: str, old: list[str]) -> None:
    """The copies of the erased values beyond the subject's own rows: the outbox (sent or not; an unsent
    batch snapshot then leaves without them), a run's diagnosis shown on its batch and the audit details."""
    texts = [v for v in old if v and v != ERASED_TEXT]
    teams = [subject_id] if subject_kind == "team" else []
    firms = [subject_id] if subject_kind == "firm_contact" else []
    table = orm.outbox
    # a message holds the subject's skills only beside its id (team_id or firm_id)
    for message_id, body in session.execute(sa.select(table.c.message_id, table.c.body)
                                            .where(table.c.body.contains(subject_id, autoescape=True))).all():
        scrubbed = scrub_json_text(body, texts, teams, firms)
        if scrubbed != body:
            session.execute(table.update().where(table.c.message_id == message_id).values(body=scrubbed))
    _scrub_stored_snapshots(session, subject_id, teams, firms)
    if not texts:
        return

    def holds(column: Any) -> Any:  # JSON is text in both databases: read only the rows that hold a value
        return sa.or_(*(sa.cast(column, sa.Text).contains(form, autoescape=True) for form in stored_forms(texts)))

    for batch in session.execute(sa.select(orm.Batch).where(orm.Batch.last_run_diagnosis.is_not(None),
                                                            holds(orm.Batch.last_run_diagnosis))).scalars():
        diagnosis = scrub_texts(drop_free_skills(batch.last_run_diagnosis, teams, firms)[0], texts)
        if diagnosis != batch.last_run_diagnosis:
            batch.last_run_diagnosis = diagnosis
    for entry in session.execute(sa.select(orm.AuditEntry).where(holds(orm.AuditEntry.details))).scalars():
        details = scrub_texts(drop_free_skills(entry.details, teams, firms)[0], texts)
        if details != entry.details:
            entry.details = details


def _scrub_stored_snapshots(session: Session, subject_id: str, teams: list[str], firms: list[str]) -> None:
    """The stored batch snapshots (claim-check) that name the subject, without its free-text skills: each is
    rewritten, keeps the digest it had (claimcheck: a message sent before still fetches it) and the outbox row of
    its batch.submitted names the new digest and size (sent again, it names the snapshot as it is now)."""
    # a snapshot holds the subject's skills only beside its id; read the bodies of those rows only, one at a time
    # (a byte string in a blob: SQLite's LIKE does not look into blobs, its instr does; PostgreSQL's LIKE does)
    needle, column = subject_id.encode(), orm.BatchSnapshot.body
    holds = (sa.func.instr(column, needle) > 0 if session.get_bind().dialect.name == "sqlite"
             else column.contains(needle))
    held = session.execute(sa.select(orm.BatchSnapshot.id).where(holds)).scalars().all()
    for snapshot_id in held:
        stored = session.get(orm.BatchSnapshot, snapshot_id)
        assert stored is not None
        scrubbed, removed = drop_free_skills(json.loads(stored.body), teams, firms)
        if not removed:
            continue
        body = claimcheck.encode(scrubbed)
        stored.replaces_sha256 = [*(stored.replaces_sha256 or []), stored.sha256]
        stored.body, stored.sha256, stored.size_bytes = body, claimcheck.digest(body), len(body)
        outbox = orm.outbox
        sent = session.execute(sa.select(outbox.c.body).where(outbox.c.message_id == snapshot_id)).scalar_one_or_none()
        if sent is not None:
            envelope = parse_envelope(json.loads(sent))
            reference = {**envelope.payload["snapshot_ref"], "sha256": stored.sha256, "size_bytes": stored.size_bytes}
            session.execute(outbox.update().where(outbox.c.message_id == snapshot_id).values(
                body=replace(envelope, payload={**envelope.payload, "snapshot_ref": reference}).to_json()))
        session.flush()
        session.expire(stored)  # its megabytes leave the session


def _drop_cached_answers(session: Session, values: list[str]) -> None:
    """Idempotency answers replay what a POST answered (a team's code, an assignment's text): the ones
    that hold the erased values go."""
    wanted = [v for v in values if v and len(v) >= 3 and v != ERASED_TEXT]
    table = orm.idempotency
    rows = session.execute(sa.select(table.c.organisation_id, table.c.key, table.c.body)
                           .where(table.c.body.is_not(None))).all()
    for org, key, body in rows:
        if any(v in body for v in wanted):
            session.execute(table.delete().where(table.c.organisation_id == org, table.c.key == key))


# ---- retention ------------------------------------------------------------------------------


def _period_end(periods: list[Any], code: str) -> date | None:
    for p in periods:
        if p.get("code") == code:
            return date.fromisoformat(p["ends_on"])
    return None


def due_for_erasure(session: Session, periods: RetentionPeriods, now: datetime) -> list[tuple[str, str]]:
    """(kind, id) of what the retention periods say must go now: teams whose period ended longer ago
    than the team period, and firms without a new assignment for longer than the firm period."""
    due: list[tuple[str, str]] = []
    team_cutoff = (now - periods.team_after_period).date()
    rows = session.execute(sa.select(orm.Team.id, orm.Team.code, orm.Team.period, orm.Workspace.periods)
                           .join(orm.Workspace, orm.Workspace.id == orm.Team.workspace_id)
                           .order_by(orm.Team.id)).all()
    for team_id, code, period, ws_periods in rows:
        ends = _period_end(ws_periods, period)
        if ends is not None and ends < team_cutoff and code != placeholder_for(team_id):
            due.append(("team", team_id))
    firm_cutoff = now - periods.inactive_firm
    last_assignment = (sa.select(orm.Assignment.firm_id, sa.func.max(orm.Assignment.created_at).label("last"))
                       .group_by(orm.Assignment.firm_id).subquery())
    firms = session.execute(
        sa.select(orm.Organisation.id, orm.Organisation.name, orm.Organisation.created_at, last_assignment.c.last)
        .outerjoin(last_assignment, last_assignment.c.firm_id == orm.Organisation.id)
        .where(orm.Organisation.role == "entrepreneur").order_by(orm.Organisation.id)).all()
    for firm_id, name, created_at, last in firms:
        active = max(as_utc(created_at), as_utc(last)) if last is not None else as_utc(created_at)
        if active < firm_cutoff and name != placeholder_for(firm_id):
            due.append(("firm_contact", firm_id))
    return due


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def apply_retention(session: Session, emit: Emit, periods: RetentionPeriods, now: datetime | None = None) -> int:
    """Erase what is due (one transaction); returns how many subjects were erased. Ended sign-in sessions,
    spent links and closed invitations are deleted on the way (``sign_in.purge_ended``)."""
    now = now or utcnow()
    sign_in.purge_ended(session, now)
    due = due_for_erasure(session, periods, now)
    for kind, subject_id in due:
        erase(session, emit, None, kind, subject_id, now)
    return len(due)


def retention_worker(infra: Infrastructure, periods: RetentionPeriods | None = None) -> Loop:
    """The retention job as a worker loop (periods from the environment unless given)."""
    chosen = periods or RetentionPeriods.from_env()

    def once() -> int:
        with infra.session_factory.begin() as session:
            return apply_retention(session, lambda env: infra.emit(session, env), chosen)

    return retention_loop(once, chosen.interval_seconds)
