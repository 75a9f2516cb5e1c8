"""Matching's side of erasure: matching holds ids, levels and skills only, so an erasure leaves the
runs and matches as they are. The one free text that may name a team or a firm's staff is the reason a
coordinator gave for a pin or forbid, or for releasing a pair a firm accepted in a re-run (kept in the
run's ``controls``): on the erased subject's controls and releases it is replaced. The erasure is
recorded in the access log either way."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared import audit
from werkplaats_shared.contracts import Envelope

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


def on_personal_data_erased(session: Session, envelope: Envelope) -> None:
    p = envelope.payload
    if p["subject_kind"] == "team":
        which = orm.Control.team_id == p["subject_id"]
    else:
        which = orm.Control.assignment_id.in_(_firm_assignment_ids(session, p["subject_id"]))
    session.execute(sa.update(orm.Control).where(which).values(reason=ERASED_REASON))
    _erase_release_reasons(session, p["subject_kind"], p["subject_id"])
    audit.record(session, access_log, action="erase", subject_type=p["subject_kind"], subject_id=p["subject_id"],
                 message_id=envelope.message_id)
