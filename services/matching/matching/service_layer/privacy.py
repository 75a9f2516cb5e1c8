"""Matching's side of erasure: matching holds ids, levels and skills, so an erasure leaves the runs and
matches as they are, but not the free text copied into them:

- the reason a coordinator gave for a pin or forbid, or for releasing a pair a firm accepted in a re-run
  (kept in the run's ``controls``): on the erased subject's controls and releases it is replaced;
- the subject's skills that are not words of the vocabulary (``werkplaats_shared.erasure``): removed from
  the batch's snapshot (so a re-run cannot copy them back) and every run's snapshot, and replaced wherever
  a run copied them (pre-check, diagnosis, explanations), in the outbox (sent messages too) and in cached
  idempotent answers. A ``batch.submitted`` that arrives after the erasure (it waited in a queue, or an
  operator replayed it from the dead letters) is scrubbed on arrival (``scrub_arrival``), and a run that was
  solving during the erasure is scrubbed when its result is recorded (``skills_erased_since``).

The erasure is recorded in the access log either way; the database's WAL is checkpointed after the commit."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared import audit
from werkplaats_shared.contracts import Envelope
from werkplaats_shared.db import checkpoint_after_commit
from werkplaats_shared.erasure import drop_free_skills, scrub_json_text, scrub_texts, stored_forms

from ..adapters import orm
from ..adapters.privacy_orm import access_log

ERASED_REASON = "[erased]"


def _firm_assignment_ids(session: Session, firm_id: str) -> set[str]:
    ids = set(session.execute(sa.select(orm.Match.assignment_id).where(orm.Match.firm_id == firm_id)).scalars())
    for snapshot in session.execute(sa.select(orm.Batch.snapshot)).scalars():
        assignments: list[dict[str, Any]] = snapshot.get("assignments", [])
        ids.update(a["assignment_id"] for a in assignments if a.get("firm_id") == firm_id)
    return ids


def _erase_release_reasons(session: Session, subject_kind: str, subject_id: str) -> None:
    """The reasons of released pairs (``runs.controls.released``) that name the subject's team or one of
    the firm's assignments."""
    assignment_ids = _firm_assignment_ids(session, subject_id) if subject_kind != "team" else set()
    for run_id, controls in session.execute(sa.select(orm.Run.id, orm.Run.controls)).all():
        released = (controls or {}).get("released") or []
        hit = [r["team_id"] == subject_id if subject_kind == "team" else r["assignment_id"] in assignment_ids
               for r in released]
        if any(hit):
            scrubbed = [{**r, "reason": ERASED_REASON} if h else r for r, h in zip(released, hit, strict=True)]
            session.execute(sa.update(orm.Run).where(orm.Run.id == run_id)
                            .values(controls={**controls, "released": scrubbed}))


def _subjects(kind: str, subject_id: str) -> tuple[list[str], list[str]]:
    return ([subject_id], []) if kind == "team" else ([], [subject_id])


def _scrub_skills(session: Session, subject_kind: str, subject_id: str) -> None:
    """Remove the subject's free-text skills from the snapshots, then replace them in every other copy."""
    teams, firms = _subjects(subject_kind, subject_id)
    removed: set[str] = set()
    # only the snapshots that name the subject can hold its skills (JSON is text in both databases)
    batches = session.execute(sa.select(orm.Batch).where(
        sa.cast(orm.Batch.snapshot, sa.Text).contains(subject_id, autoescape=True))).scalars().all()
    for batch in batches:
        snapshot, texts = drop_free_skills(batch.snapshot, teams, firms)
        if texts:
            batch.snapshot, removed = snapshot, removed | texts
    runs = session.execute(sa.select(orm.Run).where(sa.or_(
        orm.Run.batch_id.in_([b.batch_id for b in batches]),
        orm.Run.id.in_(sa.select(orm.RunSnapshot.run_id).where(
            sa.cast(orm.RunSnapshot.snapshot, sa.Text).contains(subject_id, autoescape=True)))))).scalars().all()
    for run in runs:
        snapshot, texts = drop_free_skills(run.snapshot, teams, firms)
        if texts:
            run.snapshot, removed = snapshot, removed | texts
    if not removed:
        return
    for run in runs:
        scrub_run(run, removed)
    for table, key in ((orm.outbox, ("message_id",)), (orm.idempotency, ("organisation_id", "key"))):
        holds = sa.or_(*(table.c.body.contains(form, autoescape=True) for form in stored_forms(removed)))
        for row in session.execute(sa.select(*(table.c[k] for k in key), table.c.body).where(holds)).all():
            body = scrub_json_text(row.body, removed)
            if body != row.body:
                session.execute(table.update().where(*(table.c[k] == getattr(row, k) for k in key))
                                .values(body=body))


def scrub_run(run: orm.Run, texts: set[str]) -> None:
    """Replace the texts in what a run derived from its snapshot (nothing to replace: its columns are not read)."""
    if not texts:
        return
    for column in ("precheck", "diagnosis", "explanations", "figures", "error"):
        value = getattr(run, column)
        if value is not None:
            scrubbed = scrub_texts(value, texts)
            if scrubbed != value:
                setattr(run, column, scrubbed)


def erased_subjects(session: Session) -> tuple[set[str], set[str]]:
    """The ids of the teams and the firms whose personal data were erased (from the access log)."""
    rows = session.execute(sa.select(access_log.c.subject_type, access_log.c.subject_id)
                           .where(access_log.c.action == "erase")).all()
    return ({i for kind, i in rows if kind == "team"}, {i for kind, i in rows if kind == "firm_contact"})


def scrub_arrival(session: Session, snapshot: dict[str, Any]) -> dict[str, Any]:
    """A batch snapshot that arrives after one of its teams or firms was erased, without their free-text
    skills."""
    teams, firms = erased_subjects(session)
    if not teams and not firms:
        return snapshot
    scrubbed, removed = drop_free_skills(snapshot, teams, firms)
    return scrubbed if removed else snapshot


def erasures(session: Session) -> int:
    """How many erasures were done (the access log is append-only, so the count only grows, whatever the order
    in which their transactions committed): a worker notes it before reading a run's snapshot, and reads the
    stored snapshot again when recording only if it grew (``skills_erased_since``)."""
    return int(session.execute(sa.select(sa.func.count()).select_from(access_log)
                               .where(access_log.c.action == "erase")).scalar_one())


def skills_erased_since(solved: dict[str, Any], stored: dict[str, Any]) -> set[str]:
    """The skills the snapshot a worker solved has and the stored one no longer has: an erasure came in
    while the run was solving."""
    def skills(snapshot: dict[str, Any]) -> dict[str, set[str]]:
        out = {t["team_id"]: set(t.get("skills", [])) for t in snapshot.get("teams", [])}
        out.update({a["assignment_id"]: set(a.get("required_skills", [])) | set(a.get("nice_to_have_skills", []))
                    for a in snapshot.get("assignments", [])})
        return out

    now = skills(stored)
    return {s for key, held in skills(solved).items() for s in held - now.get(key, held)}


def on_personal_data_erased(session: Session, envelope: Envelope) -> None:
    p = envelope.payload
    _scrub_skills(session, p["subject_kind"], p["subject_id"])
    if p["subject_kind"] == "team":
        which = orm.Control.team_id == p["subject_id"]
    else:
        which = orm.Control.assignment_id.in_(_firm_assignment_ids(session, p["subject_id"]))
    session.execute(sa.update(orm.Control).where(which).values(reason=ERASED_REASON))
    _erase_release_reasons(session, p["subject_kind"], p["subject_id"])
    audit.record(session, access_log, action="erase", subject_type=p["subject_kind"], subject_id=p["subject_id"],
                 message_id=envelope.message_id)
    checkpoint_after_commit(session)
