"""Scheduling's side of erasure and retention.

A firm contact's erasure deletes what scheduling holds about the person behind the firm: the e-mail
address, the webhook (its URL may name a person's domain), the kickoff availability (a sole trader's
premises may be a home), the error texts of delivery attempts (an SMTP or HTTP error may quote the
address) and the names intake announced with its batches (the firm's name and its assignments' titles: a
sole trader's firm may bear the person's name); its notices then say "uw opdracht". Notices, kickoffs and
answers stay: they hold ids only. A team's erasure removes the team's code, level and skills that intake
announced (its institution may have typed a name into them); its notices then say "een studententeam".
After the commit the database's WAL is checkpointed, so the deleted rows stay in no file
(``secure_delete`` zeroes them in the database), and the names this process keeps decoded for its notices
(``services.DECODED_FACTS``) are dropped; another process never serves its copy again (the stored text no longer
matches it) and drops it at its next use."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkplaats_shared import audit
from werkplaats_shared.contracts import Envelope
from werkplaats_shared.db import checkpoint_after_commit, utcnow
from werkplaats_shared.retention import RetentionPeriods, retention_loop
from werkplaats_shared.runner import Loop
from werkplaats_shared.service import Infrastructure

from ..adapters import orm
from ..adapters.privacy_orm import access_log
from . import plan_jobs, services

# Scheduling's routes that answer or take personal data, and the kind of data each serves.
PERSONAL_ROUTES = {
    "/contact": "contact",
    "/contacts": "contact",
    "/webhook": "webhook",
    "/availability": "firm_availability",
    "/notices": "notice",
    "/notices/<notice_id>": "notice",
    "/notices/<notice_id>/deliveries": "delivery",
}


def install_audit(app: Flask, infra: Infrastructure) -> None:
    """Log every access to the routes above and every refused request (see werkplaats_shared.audit)."""
    audit.install_access_audit(app, infra.engine, access_log, PERSONAL_ROUTES)


def erase_firm_contact(session: Session, firm_id: str) -> None:
    for model in (orm.Contact, orm.Webhook):
        session.execute(sa.delete(model).where(model.organisation_id == firm_id))
    session.execute(sa.delete(orm.FirmAvailability).where(orm.FirmAvailability.firm_id == firm_id))
    notice_ids = sa.select(orm.Notice.id).where(orm.Notice.firm_id == firm_id)
    session.execute(sa.update(orm.Delivery).where(orm.Delivery.notice_id.in_(notice_ids),
                                                 orm.Delivery.error.is_not(None)).values(error="erased"))
    session.execute(sa.update(orm.Notice).where(orm.Notice.firm_id == firm_id, orm.Notice.last_error.is_not(None))
                    .values(last_error="erased"))
    for batch in _named_batches(session):
        named = dict((batch.facts or {}).get("assignments", {}))
        theirs = {a for a, firm in (batch.assignments or {}).items() if firm == firm_id and a in named}
        if theirs:
            batch.facts = {**(batch.facts or {}),
                           "assignments": {a: n for a, n in named.items() if a not in theirs}}


def erase_team(session: Session, team_id: str) -> None:
    for batch in _named_batches(session):
        named = dict((batch.facts or {}).get("teams", {}))
        if team_id in named:
            del named[team_id]
            batch.facts = {**(batch.facts or {}), "teams": named}


def _named_batches(session: Session) -> list[orm.KnownBatch]:
    """The batches holding names intake announced (batch.announced v2), locked for the erasure."""
    return list(session.execute(sa.select(orm.KnownBatch).where(orm.KnownBatch.facts.is_not(None))
                                .with_for_update()).scalars())


def on_personal_data_erased(session: Session, envelope: Envelope) -> None:
    p = envelope.payload
    if p["subject_kind"] == "firm_contact":
        erase_firm_contact(session, p["subject_id"])
    elif p["subject_kind"] == "team":
        erase_team(session, p["subject_id"])
    audit.record(session, access_log, action="erase", subject_type=p["subject_kind"], subject_id=p["subject_id"],
                 actor_organisation_id=None, message_id=envelope.message_id)
    checkpoint_after_commit(session)
    _forget_decoded_names_after_commit(session)


def _forget_decoded_names_after_commit(session: Session) -> None:
    fired = False

    def after_commit(done: Session) -> None:
        nonlocal fired
        if fired or done.in_nested_transaction():  # a released savepoint (the batched consumer): not yet
            return
        fired = True
        services.DECODED_FACTS.clear()

    event.listen(session, "after_commit", after_commit)


def apply_retention(session: Session, periods: RetentionPeriods, now: datetime | None = None) -> int:
    """Delete delivery attempts older than the delivery period, and the plan jobs that ended longer ago than
    the plan job period; returns how many rows went."""
    at = now or utcnow()
    result = session.execute(sa.delete(orm.Delivery).where(orm.Delivery.attempted_at < at - periods.deliveries))
    deleted = getattr(result, "rowcount", 0)  # a DML result has one; the Result type does not say so
    if deleted:
        audit.record(session, access_log, action="retention", subject_type="deliveries", subject_id=None,
                     at=now)
    return int(deleted or 0) + plan_jobs.delete_ended_jobs(session, at - periods.plan_jobs)


def retention_worker(infra: Infrastructure, periods: RetentionPeriods | None = None) -> Loop:
    """The retention job as a worker loop (periods from the environment unless given)."""
    chosen = periods or RetentionPeriods.from_env()

    def once() -> int:
        with infra.session_factory.begin() as session:
            return apply_retention(session, chosen)

    return retention_loop(once, chosen.interval_seconds)
