"""Scheduling's use cases: notices from published matches, contacts, and sending."""

from __future__ import annotations

import logging
import smtplib
import uuid
from datetime import timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from werkplaats_shared.auth import Principal
from werkplaats_shared.contracts import Envelope
from werkplaats_shared.db import utcnow

from ..adapters import orm
from ..adapters.mailer import render

log = logging.getLogger(__name__)
MAX_SEND_ATTEMPTS = 5


class Mailer(Protocol):
    def send(self, *, to: str, subject: str, body: str, message_id: str, language: str) -> None: ...


def on_matches_published(session: Session, envelope: Envelope) -> None:
    """One match notice per firm with at least one match in the run."""
    p = envelope.payload
    by_firm: dict[str, list[dict[str, Any]]] = {}
    for m in p["matches"]:
        by_firm.setdefault(m["firm_id"], []).append(
            {"match_id": m["match_id"], "assignment_id": m["assignment_id"], "team_id": m["team_id"]})
    for firm_id, matches in sorted(by_firm.items()):
        session.add(orm.Notice(
            id=str(uuid.uuid4()), kind="match_notice", firm_id=firm_id, coordinator_id=p["coordinator_id"],
            run_id=p["run_id"], batch_id=p["batch_id"], period=p["period"], matches=matches,
            status="pending", attempts=0, created_at=utcnow(),
        ))


def set_contact(session: Session, principal: Principal, data: dict[str, Any]) -> orm.Contact:
    contact = session.get(orm.Contact, principal.organisation_id)
    if contact is None:
        contact = orm.Contact(organisation_id=principal.organisation_id)
        session.add(contact)
    contact.email, contact.language, contact.updated_at = data["email"], data["language"], utcnow()
    return contact


def send_pending(sf: sessionmaker[Session], mailer: Mailer, limit: int = 20) -> int:
    """Send pending notices. A notice is marked sent in the transaction that follows the SMTP
    hand-off; a crash in between re-sends it with the same Message-ID (at least once)."""
    with sf() as session:
        due = sa.or_(orm.Notice.next_attempt_at.is_(None), orm.Notice.next_attempt_at <= utcnow())
        ids = session.execute(sa.select(orm.Notice.id).where(orm.Notice.status == "pending", due)
                              .order_by(orm.Notice.created_at).limit(limit)).scalars().all()
    sent = 0
    for notice_id in ids:
        with sf() as session:
            notice = session.get(orm.Notice, notice_id)
            if notice is None or notice.status != "pending":
                continue
            contact = session.get(orm.Contact, notice.firm_id)
            language = contact.language if contact else "nl"
            subject, body = render(notice.kind, language, {
                "count": len(notice.matches), "period": notice.period, "matches": notice.matches})
            email = contact.email if contact else None
        status, error = "sent", None
        if email is None:
            status = "no_contact"
        else:
            try:
                mailer.send(to=email, subject=subject, body=body, message_id=notice_id, language=language)
            except (OSError, smtplib.SMTPException) as exc:
                status, error = "pending", type(exc).__name__
                log.warning("notice not sent", extra={"notice_id": notice_id, "error": error})
        with sf.begin() as session:
            notice = session.get(orm.Notice, notice_id)
            assert notice is not None
            notice.attempts += 1
            notice.language = language
            if status == "pending" and notice.attempts >= MAX_SEND_ATTEMPTS:
                status = "failed"
            elif status == "pending":  # bounded retries with exponential backoff
                notice.next_attempt_at = utcnow() + timedelta(seconds=2 ** notice.attempts)
            notice.status, notice.last_error = status, error
            if status == "sent":
                notice.sent_at = utcnow()
                sent += 1
    return sent


def visible_notices(principal: Principal) -> sa.Select[Any]:
    query = sa.select(orm.Notice).order_by(orm.Notice.created_at, orm.Notice.id)
    if principal.role == "entrepreneur":
        return query.where(orm.Notice.firm_id == principal.organisation_id)
    if principal.role == "coordinator":
        return query.where(orm.Notice.coordinator_id == principal.organisation_id)
    return query.where(sa.false())
