"""Scheduling's use cases: notices from published matches, contacts, webhooks, sending notices by
e-mail and webhook, and entrepreneurs' answers to matches."""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import Any, Callable, Protocol

import sqlalchemy as sa
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from werkplaats_shared.auth import Principal
from werkplaats_shared.consumer import NotYetKnown, PermanentError
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import READ_ONLY, utcnow
from werkplaats_shared.mail import message_id_header
from werkplaats_shared.metrics import notice_attempt
from werkplaats_shared.outbox import add_to_outbox
from werkplaats_shared.tracing import current_traceparent, span_from

from ..adapters import orm, wording
from ..adapters.ics import FeedEvent, feed, kickoff_invitation
from ..adapters.mailer import Attachment, html_body, render, render_text
from ..domain import webhooks as wh
from ..domain.calendar import TZ
from ..domain.kickoffs import REASONS
from ..domain.responses import DEFAULT_ANSWER_DAYS, AlreadyAnswered, LinkTarget, responded_payload
from ..domain.workshops import THEMES
from . import kickoffs, workshops

log = logging.getLogger(__name__)
MAX_SEND_ATTEMPTS = 5
KICKOFF_KINDS = ("kickoff_notice", "kickoff_update", "kickoff_confirmation", "kickoff_cancellation")
Clock = Callable[[], datetime]


class Mailer(Protocol):
    sender: str

    def send(self, *, to: str, subject: str, body: str, message_id: str, language: str,
             attachments: Sequence[Attachment] = (), html: str | None = None) -> None: ...


class Links(Protocol):
    """Issues and reads the signed accept/decline links (adapters.links.ResponseLinks)."""

    def issue(self, notice_id: str, match_id: str) -> str: ...

    def url(self, token: str) -> str: ...

    def expires_at(self) -> datetime: ...

    def read(self, token: str) -> LinkTarget: ...


class WebhookSender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Any: ...


class NotFound(Exception):
    pass


# ---- notices --------------------------------------------------------------------------------


# ---- what scheduling can check of the messages it acts on (issue 19, item 5) ------------------------------
# Intake announces each workspace (workspace.registered) before its first batch or referral and each batch
# (batch.announced) on the queue from intake; matching's runs come on the queue from matching. A run is acted on
# only when it fits a batch intake announced: same workspace and coordinators' organisation, every match pairing
# an assignment of that batch (of the firm named) with a team of that batch (of the institution named), a re-run
# superseding a run of the same batch scheduling acted on. A reference not known yet is retried (it may still be
# on its way on the other queue), then dead-lettered with the reason; a contradiction is dead-lettered at once.


def on_workspace_registered(session: Session, envelope: Envelope) -> None:
    p = envelope.payload
    known = session.get(orm.KnownWorkspace, p["workspace_id"], with_for_update=True)
    if known is None:
        session.add(orm.KnownWorkspace(workspace_id=p["workspace_id"], coordinator_id=p["coordinator_id"],
                                       registered_at=utcnow()))
    elif known.coordinator_id != p["coordinator_id"]:
        raise PermanentError(f"workspace {p['workspace_id']} was announced for another coordinators' organisation")


def _check_workspace(session: Session, what: str, workspace_id: str, coordinator_id: str) -> None:
    known = session.get(orm.KnownWorkspace, workspace_id)
    if known is None:
        raise NotYetKnown(f"{what}: workspace {workspace_id} was never announced by intake")
    if known.coordinator_id != coordinator_id:
        raise PermanentError(f"{what}: coordinator {coordinator_id} does not run workspace {workspace_id}")


def on_batch_announced(session: Session, envelope: Envelope) -> None:
    """Keep what a batch holds (every submission of it together), to check the runs published for it."""
    p = envelope.payload
    _check_workspace(session, f"batch {p['batch_id']}", p["workspace_id"], p["coordinator_id"])
    assignments = {a["assignment_id"]: a["firm_id"] for a in p["assignments"]}
    teams = {t["team_id"]: t["institution_id"] for t in p["teams"]}
    facts = _batch_facts(p) if envelope.version >= 2 else None
    known = session.get(orm.KnownBatch, p["batch_id"], with_for_update=True)
    if known is None:
        session.add(orm.KnownBatch(batch_id=p["batch_id"], workspace_id=p["workspace_id"],
                                   coordinator_id=p["coordinator_id"], assignments=assignments, teams=teams,
                                   facts=facts, announced_at=utcnow()))
        return
    if known.workspace_id not in (None, p["workspace_id"]) or known.coordinator_id != p["coordinator_id"]:
        raise PermanentError(f"batch {p['batch_id']} belongs to another workspace")
    if known.assignments is not None and known.teams is not None:
        assignments, teams = {**known.assignments, **assignments}, {**known.teams, **teams}
    if facts is not None and known.facts is not None:  # every submission together, the newest names winning
        facts = {**facts, "assignments": {**known.facts.get("assignments", {}), **facts["assignments"]},
                 "teams": {**known.facts.get("teams", {}), **facts["teams"]}}
    known.workspace_id, known.assignments, known.teams = p["workspace_id"], assignments, teams
    if facts is not None:
        known.facts = facts


def _batch_facts(p: dict[str, Any]) -> dict[str, Any]:
    """What notices name things by, from a ``batch.announced`` v2 (see orm.KnownBatch.facts)."""
    return {
        "workspace_name": p["workspace_name"], "coordinator_name": p["coordinator_name"], "period": p["period"],
        "assignments": {a["assignment_id"]: {"title": a["title"], "firm_name": a["firm_name"]}
                        for a in p["assignments"]},
        "teams": {t["team_id"]: {"code": t["code"], "institution_name": t["institution_name"], "level": t["level"],
                                 "skills": list(t["skills"])} for t in p["teams"]},
    }


def check_run_source(session: Session, envelope: Envelope) -> None:
    """Refuse a ``matches.published`` that does not fit what intake announced (see above)."""
    p = envelope.payload
    what = f"run {p['run_id']}"
    batch = session.get(orm.KnownBatch, p["batch_id"])
    if batch is None:
        raise NotYetKnown(f"{what}: batch {p['batch_id']} was never announced by intake")
    _check_workspace(session, what, p["workspace_id"], p["coordinator_id"])
    if batch.workspace_id not in (None, p["workspace_id"]) or batch.coordinator_id != p["coordinator_id"]:
        raise PermanentError(f"{what}: batch {p['batch_id']} belongs to another workspace")
    if batch.assignments is not None and batch.teams is not None:
        for m in p["matches"]:
            if batch.assignments.get(m["assignment_id"]) != m["firm_id"]:
                raise PermanentError(f"{what}: match {m['match_id']} names an assignment (or firm) batch "
                                     f"{p['batch_id']} does not hold")
            if batch.teams.get(m["team_id"]) != m["institution_id"]:
                raise PermanentError(f"{what}: match {m['match_id']} names a team (or institution) batch "
                                     f"{p['batch_id']} does not hold")
        strangers = [a for a in p["unmatched_assignment_ids"] if a not in batch.assignments]
        if strangers:
            raise PermanentError(f"{what}: unmatched assignment {strangers[0]} is not in batch {p['batch_id']}")
    run = session.get(orm.KnownRun, p["run_id"])
    if run is not None and run.batch_id != p["batch_id"]:
        raise PermanentError(f"{what} was published for batch {run.batch_id}")
    superseded = p.get("supersedes_run_id") if envelope.version >= 2 else None
    if superseded is not None:
        previous = session.get(orm.KnownRun, superseded)
        if previous is None or previous.batch_id != p["batch_id"]:
            raise PermanentError(f"{what} supersedes run {superseded}, which scheduling holds for no such batch")


def on_verified_matches_published(session: Session, envelope: Envelope) -> None:
    """``matches.published`` from the broker: checked (check_run_source), recorded, then acted on."""
    check_run_source(session, envelope)
    p = envelope.payload
    if session.get(orm.KnownRun, p["run_id"]) is None:
        session.add(orm.KnownRun(run_id=p["run_id"], batch_id=p["batch_id"], received_at=utcnow()))
    on_matches_published(session, envelope)


def on_verified_firm_referred(session: Session, envelope: Envelope) -> None:
    """``firm.referred`` from the broker: only for a workspace intake announced, by its coordinators."""
    p = envelope.payload
    _check_workspace(session, f"referral {p['referral_id']}", p["from_workspace_id"], p["coordinator_id"])
    on_firm_referred(session, envelope)


def on_matches_published(session: Session, envelope: Envelope) -> None:
    """One match notice per firm with at least one match in the run. A re-run (v2, naming the run it
    supersedes) notifies only what changed: pairs it kept carry over their answer, deadline and kickoff
    (see carry_over); firms whose pair it dropped hear that the team is no longer available."""
    p = envelope.payload
    carried = carry_over(session, p) if envelope.version >= 2 and p["supersedes_run_id"] is not None else set()
    by_firm: dict[str, list[dict[str, Any]]] = {}
    institutions: dict[str, dict[str, str]] = {}
    for m in p["matches"]:
        if m["match_id"] in carried:
            continue
        by_firm.setdefault(m["firm_id"], []).append(
            {"match_id": m["match_id"], "assignment_id": m["assignment_id"], "team_id": m["team_id"]})
        # kept beside the matches (which the firm sees): the kickoff rules need the team's institution
        institutions.setdefault(m["firm_id"], {})[m["match_id"]] = m["institution_id"]
    # the firms with a webhook in one query: a look-up per firm flushed the notices made so far each time
    hooked = _with_webhook(session, by_firm)
    for firm_id, matches in sorted(by_firm.items()):
        _add_notice(session, "match_notice", firm_id, p, matches, {"institutions": institutions[firm_id]},
                    has_webhook=firm_id in hooked)


def _with_webhook(session: Session, firm_ids: Iterable[str]) -> set[str]:
    wanted, found = list(firm_ids), set[str]()
    for start in range(0, len(wanted), 5_000):  # within every database's limit of bound parameters
        found.update(session.execute(sa.select(orm.Webhook.organisation_id).where(
            orm.Webhook.organisation_id.in_(wanted[start:start + 5_000]))).scalars())
    return found


def _add_notice(session: Session, kind: str, firm_id: str, p: dict[str, Any], matches: list[dict[str, Any]],
                details: dict[str, Any], has_webhook: bool | None = None) -> None:
    if has_webhook is None:
        has_webhook = session.get(orm.Webhook, firm_id) is not None
    session.add(orm.Notice(
        id=str(uuid.uuid4()), kind=kind, firm_id=firm_id, coordinator_id=p["coordinator_id"],
        run_id=p["run_id"], batch_id=p["batch_id"], period=p["period"], matches=matches, details=details,
        status="pending", attempts=0, created_at=utcnow(),
        webhook_status="pending" if has_webhook else None, webhook_attempts=0,
    ))


def carry_over(session: Session, p: dict[str, Any]) -> set[str]:
    """Move the superseded run's matches that scheduling notified over to the re-run; returns the ids of
    the re-run's matches that need no notice.

    A kept pair (``previous_match_id``) takes over the old match's place in its notice (so the answer
    deadline runs on), its answer and its kickoff (same invitation UID); the notice remembers the old id,
    so a link sent for it opens the current match. A dropped pair leaves its notice (its link then finds
    no match, and the deadline no longer declines it); unless the firm declined it or the assignment left
    the batch, the firm is told the team is no longer available and a planned kickoff is cancelled."""
    old_run = p["supersedes_run_id"]
    by_previous = {m["previous_match_id"]: m for m in p["matches"] if m["previous_match_id"] is not None}
    still_in_batch = {m["assignment_id"] for m in p["matches"]} | set(p["unmatched_assignment_ids"])
    carried: set[str] = set()
    dropped: dict[str, list[dict[str, Any]]] = {}
    notices = session.execute(sa.select(orm.Notice).where(
        orm.Notice.kind == "match_notice", orm.Notice.batch_id == p["batch_id"])
        .order_by(orm.Notice.created_at, orm.Notice.id).with_for_update()).scalars().all()
    for notice in notices:
        entries, details = [], dict(notice.details or {})
        superseded = dict(details.get("superseded", {}))
        institutions = dict(details.get("institutions", {}))
        for entry in notice.matches:
            if entry.get("run_id", notice.run_id) != old_run:
                entries.append(entry)
                continue
            new = by_previous.get(entry["match_id"])
            successor: str | None = new["match_id"] if new is not None else None
            superseded = {old: (successor if now == entry["match_id"] else now) for old, now in superseded.items()}
            superseded[entry["match_id"]] = successor
            if new is not None and successor is not None:
                entries.append({"match_id": successor, "assignment_id": new["assignment_id"],
                                "team_id": new["team_id"], "run_id": p["run_id"]})
                institutions[successor] = new["institution_id"]
                _rekey(session, entry["match_id"], successor, p["run_id"])
                carried.add(successor)
                continue
            answer = session.get(orm.MatchResponse, entry["match_id"])
            if (answer is None or answer.decision != "declined") and entry["assignment_id"] in still_in_batch:
                dropped.setdefault(notice.firm_id, []).append(
                    {k: entry[k] for k in ("match_id", "assignment_id", "team_id")})
                _cancel_kickoff(session, entry["match_id"])
        notice.matches = entries
        notice.details = {**details, "superseded": superseded, "institutions": institutions}
        if not entries:
            notice.answer_deadline = None
    for firm_id, matches in sorted(dropped.items()):
        _add_notice(session, "match_cancelled", firm_id, p, matches, {})
    if dropped or carried:
        log.info("re-run carried over", extra={"run_id": p["run_id"], "kept": len(carried),
                                               "dropped": sum(len(m) for m in dropped.values())})
    return carried


def _rekey(session: Session, old: str, new: str, run_id: str) -> None:
    """The answer and kickoff of a kept pair now belong to its match in the re-run."""
    session.execute(sa.update(orm.MatchResponse).where(orm.MatchResponse.match_id == old)
                    .values(match_id=new, run_id=run_id))
    session.execute(sa.update(orm.Kickoff).where(orm.Kickoff.match_id == old).values(match_id=new, run_id=run_id))
    for notice in session.execute(sa.select(orm.Notice).where(
            orm.Notice.kind.in_(KICKOFF_KINDS), orm.Notice.subject_id == old)).scalars():
        notice.subject_id = new
        notice.matches = [{**m, "match_id": new} if m["match_id"] == old else m for m in notice.matches]


def _cancel_kickoff(session: Session, match_id: str) -> None:
    kickoff = session.get(orm.Kickoff, match_id)
    if kickoff is not None:
        kickoffs.cancel_kickoff(session, kickoff.coordinator_id, match_id)


def on_firm_referred(session: Session, envelope: Envelope) -> None:
    """Tell a firm no workspace serves its area and which support schemes can help instead."""
    p = envelope.payload
    has_webhook = session.get(orm.Webhook, p["firm_id"]) is not None
    session.add(orm.Notice(
        id=str(uuid.uuid4()), kind="referral_notice", firm_id=p["firm_id"], coordinator_id=p["coordinator_id"],
        run_id="", batch_id="", period="", matches=[], subject_id=p["referral_id"],
        details={"assignment_id": p["assignment_id"], "schemes": p["schemes"]},
        status="pending", attempts=0, created_at=utcnow(),
        webhook_status="pending" if has_webhook else None, webhook_attempts=0,
    ))


def _with_links(notice: orm.Notice, links: Links) -> list[dict[str, Any]]:
    return [{**m, "response_url": links.url(links.issue(notice.id, m["match_id"]))} for m in notice.matches]


# ---- the names texts use (what intake announced with the batch, batch.announced v2) ----------------------


class _DecodedFacts:
    """Each batch's names, decoded once for the process (every thread: send passes, webhooks, pages) and used
    again while the stored text is the same. A national batch names every assignment and team of its round
    (megabytes of JSON at 50,000 teams): decoding it on every send pass took a fifth of the sender's time.

    The text is read on every use (one column of one row, not decoded) and compared with the text decoded, so any
    change of the row - an erasure of a firm's or a team's names, a later submission of the batch - by this
    process or any other, through the ORM or not, is decoded afresh at its first use after its commit: an erased
    name is never served from here once the erasure is committed. At most ``size`` batches are kept (the least
    recently used goes first); callers must not change what they get."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[str, dict[str, Any] | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.decoded = 0  # texts decoded (not served from memory), for tests and benchmarks

    def get(self, session: Session, batch_id: str) -> dict[str, Any] | None:
        text: str | None = session.execute(sa.select(sa.cast(orm.KnownBatch.facts, sa.Text))
                                           .where(orm.KnownBatch.batch_id == batch_id)).scalar_one_or_none()
        with self._lock:
            kept = self._entries.get(batch_id)
            if text is None:
                self._entries.pop(batch_id, None)
                return None
            if kept is not None and kept[0] == text:
                self._entries.move_to_end(batch_id)
                return kept[1]
        facts: dict[str, Any] | None = json.loads(text)
        with self._lock:
            self.decoded += 1
            self._entries[batch_id] = (text, facts)
            self._entries.move_to_end(batch_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return facts

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __contains__(self, batch_id: object) -> bool:
        with self._lock:
            return batch_id in self._entries


DECODED_FACTS = _DecodedFacts()


def batch_facts(session: Session, batch_id: str | None,
                cache: dict[str, dict[str, Any] | None] | None = None) -> dict[str, Any] | None:
    """The names a batch's texts use, decoded once while the row stays the same (see _DecodedFacts); ``cache``
    keeps them for one send pass, so that the row is read once a pass, not once a mail."""
    if not batch_id:
        return None
    if cache is not None and batch_id in cache:
        return cache[batch_id]
    facts = DECODED_FACTS.get(session, batch_id)
    if cache is not None:
        cache[batch_id] = facts
    return facts


def coordinator_of(session: Session, coordinator_id: str, facts: dict[str, Any] | None, language: str,
                   contacts: Mapping[str, orm.Contact | None] | None = None) -> dict[str, Any]:
    """Who a firm asks: the coordinating organisation and the contact address it registered here, if any
    (``contacts``: the contacts a send pass read, None for those it found none of)."""
    if contacts is not None and coordinator_id in contacts:
        contact = contacts[coordinator_id]
    else:
        contact = session.get(orm.Contact, coordinator_id) if coordinator_id else None
    return wording.coordinator(facts, contact.email if contact is not None else None, language)


def period_of(facts: dict[str, Any] | None, code: str, language: str) -> str:
    announced = (facts or {}).get("period")
    return wording.period_label(announced if announced and announced.get("code") == code else code, language)


def named_matches(facts: dict[str, Any] | None, matches: list[dict[str, Any]], language: str) -> list[dict[str, Any]]:
    return [{**m, **wording.describe_match(facts, m["assignment_id"], m["team_id"], language)} for m in matches]


def kickoff_names(session: Session, kickoff: orm.Kickoff, language: str,
                  facts_cache: dict[str, dict[str, Any] | None] | None = None,
                  contacts: Mapping[str, orm.Contact | None] | None = None) -> dict[str, Any]:
    facts = batch_facts(session, kickoff.batch_id, facts_cache)
    return {**wording.describe_match(facts, kickoff.assignment_id, kickoff.team_id, language),
            "coordinator": coordinator_of(session, kickoff.coordinator_id, facts, language, contacts)}


def page_names(session: Session, notice: orm.Notice, match: dict[str, Any], language: str) -> dict[str, Any]:
    """What the accept/decline page names: the assignment, team, period, deadline and whom to ask."""
    facts = batch_facts(session, notice.batch_id)
    return {**wording.describe_match(facts, match["assignment_id"], match["team_id"], language),
            "period": period_of(facts, notice.period, language),
            "answer_by": _aware(notice.answer_deadline).astimezone(TZ) if notice.answer_deadline else None,
            "coordinator": coordinator_of(session, notice.coordinator_id, facts, language)}


@dataclass
class _Mail:
    """One notice's e-mail of a send pass: made and its attempt recorded in the claim transaction."""

    notice_id: str
    to: str
    subject: str
    body: str
    language: str
    attachments: list[Attachment]
    delivery_id: int
    error: str | None = None
    duration_ms: int = 0
    traceparent: str | None = None  # the notice's: the hand-off to SMTP is a span of that trace


_NOTICE_LOCKS = 20_0005  # the advisory-lock class of notices being sent (PostgreSQL)
_TRY_LOCKS = sa.text("SELECT x.id, pg_try_advisory_lock(CAST(:class AS integer), hashtext(x.id)) "
                     "FROM unnest(CAST(:ids AS text[])) AS x(id)")
_UNLOCKS = sa.text("SELECT pg_advisory_unlock(CAST(:class AS integer), hashtext(x.id)) "
                   "FROM unnest(CAST(:ids AS text[])) AS x(id)")
PASS_WINDOW = 8  # how many passes' worth of due notices one pass looks at for ones no other pass holds


class _Claim:
    """The notices one send pass may take. On PostgreSQL each is held by a session-level advisory lock on a
    connection kept for the pass, so two passes - in one process or several - never take the same notice.
    Row locks (FOR UPDATE SKIP LOCKED) would not do: they end with the transaction, and a pass commits each
    attempt before its hand-off to SMTP. The advisory locks outlive the pass's commits, and go with the
    connection if the process dies, so a crash still leaves the notice to the next pass at once (with the same
    Message-ID). A pass looks past the notices other passes hold (PASS_WINDOW) and skips them. SQLite has one
    writer: nothing to lock."""

    def __init__(self, sf: sessionmaker[Session]) -> None:
        self.engine = sf.kw["bind"]
        self.conn: sa.Connection | None = None

    def take(self, limit: int) -> list[str]:
        due = sa.or_(orm.Notice.next_attempt_at.is_(None), orm.Notice.next_attempt_at <= utcnow())
        query = (sa.select(orm.Notice.id).where(orm.Notice.status == "pending", due)
                 .order_by(orm.Notice.created_at).limit(limit))
        if self.engine.dialect.name != "postgresql":
            # a read: it takes no write lock (the attempts' transaction checks each notice again)
            with self.engine.connect().execution_options(**READ_ONLY) as conn:
                return list(conn.execute(query).scalars())
        # a window beyond ``limit``: the first notices may be held by other passes (up to PASS_WINDOW - 1 of them)
        self.conn = self.engine.connect()
        with self.conn.begin():
            ids = list(self.conn.execute(query.limit(limit * PASS_WINDOW)).scalars())
            if not ids:
                return []
            got = {row[0]: row[1] for row in self.conn.execute(_TRY_LOCKS, {"ids": ids, "class": _NOTICE_LOCKS})}
            taken = [i for i in ids if got.get(i)]
            if taken[limit:]:
                self.conn.execute(_UNLOCKS, {"ids": taken[limit:], "class": _NOTICE_LOCKS})
        return taken[:limit]

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            conn.commit()
        except DBAPIError:
            conn.invalidate()  # a connection that cannot say it is done takes its locks with it
        finally:
            conn.close()


def send_pending(sf: sessionmaker[Session], mailer: Mailer, links: Links, limit: int = 200,
                 answer_days: int = DEFAULT_ANSWER_DAYS, now: Clock = utcnow, concurrency: int = 1) -> int:
    """Send pending notices: one pass takes up to ``limit`` due notices, records an attempt for each in one
    transaction, sends them over ``concurrency`` SMTP connections in parallel (kept open across mails when the
    mailer offers ``connection()``) and records the outcomes in batched commits while the mails go out.

    A notice is marked sent in a transaction that follows its SMTP hand-off; an attempt is committed
    before it (``sending``), so a crash in between re-sends it with the same Message-ID and the retry counts
    itself a possible duplicate (at least once). A match notice's answer deadline starts when it is sent
    (or found to have no contact). Failed attempts are retried with exponential backoff, at most
    MAX_SEND_ATTEMPTS times."""
    claim = _Claim(sf)
    try:
        ids = claim.take(limit)
        if not ids:
            return 0
        mails, answer_by = _record_attempts(sf, ids, mailer, links, answer_days, now)
        return _send(sf, mailer, mails, answer_by, max(1, concurrency))
    finally:
        claim.release()


def _record_attempts(sf: sessionmaker[Session], ids: list[str], mailer: Mailer, links: Links, answer_days: int,
                     now: Clock) -> tuple[list[_Mail], dict[str, datetime]]:
    """Make the mails of the claimed notices still pending and due, and record (commit) an attempt for each
    BEFORE any is handed to SMTP; a notice without contact gets its outcome at once. Returns the mails and each
    notice's answer deadline (fixed by the first attempt that reaches the firm or finds no contact)."""
    made: list[tuple[orm.Delivery, orm.Notice, str, str, str, str, list[Attachment]]] = []
    answer_by: dict[str, datetime] = {}
    facts: dict[str, dict[str, Any] | None] = {}  # each batch's names, read once for the pass
    with sf.begin() as session, session.no_autoflush:  # one flush at the end, not one per read
        notices = session.execute(sa.select(orm.Notice).where(orm.Notice.id.in_(ids)).with_for_update()).scalars()
        by_id = {n.id: n for n in notices}
        moment = utcnow()
        sending = set(session.execute(sa.select(orm.Delivery.notice_id).where(
            orm.Delivery.notice_id.in_(ids), orm.Delivery.channel == "email",
            orm.Delivery.state == "sending")).scalars())
        if sending:  # attempts cut off between the hand-off and their record: the mail may have gone out
            session.execute(sa.update(orm.Delivery).where(
                orm.Delivery.notice_id.in_(sending), orm.Delivery.channel == "email",
                orm.Delivery.state == "sending").values(state="interrupted"))
        # the firms' contacts and their coordinators' (which the texts name), read once for the pass (None: no
        # contact); looked up mail by mail, each went to the database again (the identity map keeps no clean row)
        wanted = {n.firm_id for n in by_id.values()} | {n.coordinator_id for n in by_id.values()}
        contacts: dict[str, orm.Contact | None] = dict.fromkeys(wanted)
        contacts.update((c.organisation_id, c) for c in session.execute(sa.select(orm.Contact).where(
            orm.Contact.organisation_id.in_(wanted))).scalars())
        for notice_id in ids:
            notice = by_id.get(notice_id)
            if notice is None or notice.status != "pending" or (
                    notice.next_attempt_at is not None and _aware(notice.next_attempt_at) > moment):
                continue
            contact = contacts.get(notice.firm_id)
            language = contact.language if contact else "nl"
            notice.language = language
            deadline = _aware(notice.answer_deadline) if notice.answer_deadline else now() + timedelta(days=answer_days)
            answer_by[notice_id] = deadline
            if contact is None or not contact.email:
                notice.attempts += 1
                session.add(orm.Delivery(notice_id=notice_id, channel="email", attempt=notice.attempts,
                                         status_code=None, error="no contact registered", attempted_at=moment,
                                         duration_ms=0, trace_id=notice.trace_id))
                notice.status, notice.last_error = "no_contact", None
                if notice.kind == "match_notice" and notice.answer_deadline is None:
                    notice.answer_deadline = deadline
                continue
            subject, body, attachments = _compose(session, notice, language, contact.email, deadline, mailer, links,
                                                  facts, contacts)
            possible_duplicate = notice_id in sending
            if possible_duplicate:
                log.warning("notice sent again after an interrupted attempt: possible duplicate e-mail",
                            extra={"notice_id": notice_id, "attempt": notice.attempts + 1})
            notice.attempts += 1
            delivery = orm.Delivery(notice_id=notice_id, channel="email", attempt=notice.attempts, status_code=None,
                                    error=None, attempted_at=moment, duration_ms=None, state="sending",
                                    message_id=message_id_header(notice_id), possible_duplicate=possible_duplicate,
                                    trace_id=notice.trace_id)
            session.add(delivery)
            made.append((delivery, notice, contact.email, subject, body, language, attachments))
        session.flush()  # the deliveries' ids
        mails = [_Mail(notice.id, to, subject, body, language, attachments, int(delivery.id),
                       traceparent=notice.traceparent)
                 for delivery, notice, to, subject, body, language, attachments in made]
    return mails, answer_by


def _compose(session: Session, notice: orm.Notice, language: str, email: str, answer_by: datetime,
             mailer: Mailer, links: Links, facts_cache: dict[str, dict[str, Any] | None] | None = None,
             contacts: Mapping[str, orm.Contact | None] | None = None) -> tuple[str, str, list[Attachment]]:
    """A notice's subject, text and attachments in ``language`` (``facts_cache``: see batch_facts; ``contacts``:
    see coordinator_of)."""
    attachments: list[Attachment] = []
    if notice.kind in KICKOFF_KINDS:
        context = _invitation_context(session, notice)
        kickoff = session.get(orm.Kickoff, notice.subject_id)
        assert kickoff is not None
        context.update(kickoff_names(session, kickoff, language, facts_cache, contacts),
                       location=_location(context, language))
        subject, body = render(notice.kind, language, context)
        summary = render_text("kickoff_invitation", language, context).strip()
        attachments.append(Attachment("kickoff.ics", "text", "calendar", kickoff_invitation(
            uid=context["uid"], sequence=context["sequence"], starts_at=context["starts_at"],
            ends_at=context["ends_at"], summary=summary,
            description=render_text("kickoff_description", language, context), organizer=mailer.sender,
            attendee=email, stamp=utcnow(), method=context["method"],
            location=_location(context, language), status=context["status"],
        ), {"method": context["method"]}))
    elif notice.kind == "referral_notice":
        subject, body = render(notice.kind, language, {"schemes": (notice.details or {}).get("schemes", [])})
    elif notice.kind in workshops.NOTICE_KINDS:
        subject, body = workshops.render_notice(notice, language)
        invite = workshops.invitation(notice, language, mailer.sender, email, body, utcnow())
        if invite is not None:
            attachments.append(invite)
    elif notice.kind == "match_cancelled":
        facts = batch_facts(session, notice.batch_id, facts_cache)
        subject, body = render(notice.kind, language, {
            "count": len(notice.matches), "period": period_of(facts, notice.period, language),
            "matches": named_matches(facts, notice.matches, language),
            "coordinator": coordinator_of(session, notice.coordinator_id, facts, language, contacts)})
    else:
        facts = batch_facts(session, notice.batch_id, facts_cache)
        subject, body = render(notice.kind, language, {
            "count": len(notice.matches), "period": period_of(facts, notice.period, language),
            "matches": named_matches(facts, _with_links(notice, links), language),
            "answer_by": answer_by.astimezone(TZ),
            "coordinator": coordinator_of(session, notice.coordinator_id, facts, language, contacts)})
    return subject, body, attachments


class _Sender(Protocol):
    def send(self, *, to: str, subject: str, body: str, message_id: str, language: str,
             attachments: Sequence[Attachment] = (), html: str | None = None) -> None: ...


_DONE = object()
# Outcomes are recorded in one commit per OUTCOME_BATCH mails or OUTCOME_WAIT seconds, whichever comes first: a
# crash re-sends (with the same Message-ID, counted a possible duplicate) at most what went out in that time.
OUTCOME_BATCH = 100
OUTCOME_WAIT = 0.25


def _send(sf: sessionmaker[Session], mailer: Mailer, mails: list[_Mail], answer_by: dict[str, datetime],
          concurrency: int) -> int:
    """Hand ``mails`` to SMTP over ``concurrency`` threads, each with a connection of its own, and record the
    outcomes in batched commits: whatever came back while the previous commit ran."""
    jobs: queue.Queue[_Mail] = queue.Queue()
    for mail in mails:
        jobs.put(mail)
    results: queue.Queue[object] = queue.Queue()
    unexpected: list[BaseException] = []

    def work() -> None:
        connection = mailer.connection() if hasattr(mailer, "connection") else None
        sender: _Sender = connection if connection is not None else mailer
        try:
            while not unexpected:
                try:
                    mail = jobs.get_nowait()
                except queue.Empty:
                    return
                started = time.monotonic()
                with span_from("scheduling", "send notice e-mail", SpanKind.CLIENT,
                               {"traceparent": mail.traceparent}) as span:
                    span.set_attribute("werkplaats.notice_id", mail.notice_id)
                    try:
                        sender.send(to=mail.to, subject=mail.subject, body=mail.body, message_id=mail.notice_id,
                                    language=mail.language, attachments=mail.attachments,
                                    html=html_body(mail.body, mail.subject, mail.language))
                    except OSError as exc:  # smtplib's errors are OSErrors
                        mail.error = type(exc).__name__
                        span.set_status(StatusCode.ERROR, mail.error)
                        log.warning("notice not sent", extra={"notice_id": mail.notice_id, "error": mail.error})
                    except BaseException as exc:  # noqa: BLE001 - a bug, not a refusal: stop the pass, keep what was sent
                        unexpected.append(exc)
                        return
                mail.duration_ms = int((time.monotonic() - started) * 1000)
                notice_attempt("email", mail.error is None)
                results.put(mail)
        finally:
            if connection is not None:
                connection.close()
            results.put(_DONE)

    threads = [threading.Thread(target=work, name=f"notice-sender-{i}", daemon=True)
               for i in range(min(concurrency, len(mails)))]
    for thread in threads:
        thread.start()
    sent, running, done = 0, len(threads), []
    while running:
        # what came back within OUTCOME_WAIT of the first outcome not yet recorded, up to OUTCOME_BATCH
        item = results.get()
        until = time.monotonic() + OUTCOME_WAIT
        while True:
            if item is _DONE:
                running -= 1
            else:
                done.append(item)
            if not running or len(done) >= OUTCOME_BATCH:
                break
            try:
                item = results.get(timeout=max(0.0, until - time.monotonic()))
            except queue.Empty:
                break
        if done:
            sent += _record_outcomes(sf, done, answer_by)  # type: ignore[arg-type]
            done = []
    for thread in threads:
        thread.join()
    if unexpected:
        raise unexpected[0]
    return sent


def _record_outcomes(sf: sessionmaker[Session], mails: list[_Mail], answer_by: dict[str, datetime]) -> int:
    """Record the outcome of each mail handed to SMTP (or refused) in one transaction; returns how many went."""
    sent = 0
    with sf.begin() as session:
        ids = [m.notice_id for m in mails]
        notices = {n.id: n for n in session.execute(sa.select(orm.Notice).where(orm.Notice.id.in_(ids))).scalars()}
        deliveries = {d.id: d for d in session.execute(sa.select(orm.Delivery).where(
            orm.Delivery.id.in_([m.delivery_id for m in mails]))).scalars()}
        moment = utcnow()
        for mail in mails:
            notice, delivery = notices[mail.notice_id], deliveries[mail.delivery_id]
            delivery.state, delivery.error, delivery.duration_ms = "done", mail.error, mail.duration_ms
            status = "sent" if mail.error is None else "pending"
            if status == "pending" and notice.attempts >= MAX_SEND_ATTEMPTS:
                status = "failed"
            elif status == "pending":  # bounded retries with exponential backoff
                notice.next_attempt_at = moment + timedelta(seconds=2 ** notice.attempts)
            notice.status, notice.last_error = status, mail.error
            if status == "sent":
                notice.sent_at = moment
                sent += 1
                if notice.kind == "match_notice" and notice.answer_deadline is None:
                    notice.answer_deadline = answer_by[mail.notice_id]
    return sent


def visible_notices(principal: Principal) -> sa.Select[Any]:
    query = sa.select(orm.Notice).order_by(orm.Notice.created_at, orm.Notice.id)
    if principal.role == "entrepreneur":
        return query.where(orm.Notice.firm_id == principal.organisation_id)
    if principal.role == "coordinator":
        return query.where(orm.Notice.coordinator_id == principal.organisation_id)
    return query.where(sa.false())


def deliveries_of(session: Session, principal: Principal, notice_id: str) -> list[orm.Delivery]:
    notice = session.execute(visible_notices(principal).where(orm.Notice.id == notice_id)).scalar_one_or_none()
    if notice is None:
        raise NotFound(notice_id)
    return list(session.execute(sa.select(orm.Delivery).where(orm.Delivery.notice_id == notice_id)
                                .order_by(orm.Delivery.attempted_at, orm.Delivery.id)).scalars())


def visible_kickoffs(principal: Principal) -> sa.Select[Any]:
    """A firm's kickoffs, an institution's teams' kickoffs, a coordinator's kickoffs."""
    query = sa.select(orm.Kickoff).order_by(orm.Kickoff.created_at, orm.Kickoff.match_id)
    if principal.role == "entrepreneur":
        return query.where(orm.Kickoff.firm_id == principal.organisation_id)
    if principal.role == "coordinator":
        return query.where(orm.Kickoff.coordinator_id == principal.organisation_id)
    if principal.role == "institution":
        return query.where(orm.Kickoff.institution_id == principal.organisation_id)
    return query.where(sa.false())


def filtered_kickoffs(query: sa.Select[Any], from_: date | None = None, until: date | None = None,
                      status: str | None = None, batch_id: str | None = None) -> sa.Select[Any]:
    """Kickoffs starting from one day to another (inclusive, Europe/Amsterdam; in order of starting time), of
    a status, of a batch."""
    if status is not None:
        query = query.where(orm.Kickoff.status == status)
    if batch_id is not None:
        query = query.where(orm.Kickoff.batch_id == batch_id)
    if from_ is not None or until is not None:
        query = query.where(orm.Kickoff.starts_at.is_not(None)).order_by(None).order_by(
            orm.Kickoff.starts_at, orm.Kickoff.match_id)
    if from_ is not None:
        query = query.where(orm.Kickoff.starts_at >= datetime.combine(from_, day_time(0), TZ).astimezone(UTC))
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), day_time(0), TZ).astimezone(UTC)
        query = query.where(orm.Kickoff.starts_at < end)
    return query


def kickoff_weeks(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The ISO weeks in which the principal's proposed kickoffs start, with how many, in order."""
    starts = session.execute(visible_kickoffs(principal).with_only_columns(orm.Kickoff.starts_at).where(
        orm.Kickoff.status == "proposed", orm.Kickoff.starts_at.is_not(None))).scalars()
    weeks = Counter(day - timedelta(days=day.weekday()) for day in
                    (_aware(s).astimezone(TZ).date() for s in starts if s is not None))
    return [{"week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}", "monday": monday,
             "kickoffs": n} for monday, n in sorted(weeks.items())]


def kickoff_view(kickoff: orm.Kickoff) -> dict[str, Any]:
    code, _, _ = (kickoff.reason or "").partition(": ")
    view: dict[str, Any] = {"match_id": kickoff.match_id, "assignment_id": kickoff.assignment_id,
                            "team_id": kickoff.team_id, "batch_id": kickoff.batch_id, "status": kickoff.status,
                            "reason": kickoff.reason,
                            "reason_code": code if code in REASONS and kickoff.status == "unplaced" else None,
                            "venue": kickoff.venue, "sequence": kickoff.sequence,
                            "firm_agreed": kickoff.firm_agreed_at is not None and kickoff.status == "proposed",
                            "institution_agreed": (kickoff.institution_agreed_at is not None
                                                   and kickoff.status == "proposed"),
                            "confirmed": kickoff.confirmed,
                            "starts_at": None, "ends_at": None, "timezone": str(TZ)}
    if kickoff.starts_at is not None:
        context = _kickoff_context(kickoff)
        view.update(starts_at=context["starts_at"], ends_at=context["ends_at"])
    return view


# ---- contacts and webhooks ------------------------------------------------------------------


def set_contact(session: Session, principal: Principal, data: dict[str, Any]) -> orm.Contact:
    contact = session.get(orm.Contact, principal.organisation_id)
    if contact is None:
        contact = orm.Contact(organisation_id=principal.organisation_id)
        session.add(contact)
    contact.email, contact.language, contact.updated_at = data["email"], data["language"], utcnow()
    return contact


class ContactsRejected(Exception):
    def __init__(self, problems: list[tuple[int, str, str]]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems  # (row, field, reason)


def set_contacts(session: Session, items: list[tuple[int, dict[str, Any]]]) -> int:
    """Each item's organisation's contact (created or replaced), or none: ContactsRejected names every item
    whose organisation scheduling does not know (no API key of an entrepreneur or coordinator) or that an
    earlier item names already. One query for the organisations, one for the contacts there are."""
    ids = sorted({d["organisation_id"] for _, d in items})
    known: set[str] = set()
    existing: dict[str, orm.Contact] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        known |= set(session.execute(sa.select(orm.api_keys.c.organisation_id).where(
            orm.api_keys.c.organisation_id.in_(chunk),
            orm.api_keys.c.role.in_(("entrepreneur", "coordinator")))).scalars())
        existing.update((c.organisation_id, c) for c in session.execute(
            sa.select(orm.Contact).where(orm.Contact.organisation_id.in_(chunk))).scalars())
    problems: list[tuple[int, str, str]] = []
    first: dict[str, int] = {}
    for row, data in items:
        org = data["organisation_id"]
        if org not in known:
            problems.append((row, "organisation_id", "no firm or coordinator with this id"))
        elif org in first:
            problems.append((row, "organisation_id", f"row {first[org]} names this organisation already"))
        else:
            first[org] = row
    if problems:
        raise ContactsRejected(problems)
    now = utcnow()
    new = []
    for _, data in items:
        found = existing.get(data["organisation_id"])
        if found is None:
            new.append({"organisation_id": data["organisation_id"], "email": data["email"],
                        "language": data["language"], "updated_at": now})
        else:
            found.email, found.language, found.updated_at = data["email"], data["language"], now
    if new:
        session.execute(sa.insert(orm.Contact), new)
    session.flush()
    return len(items)


@dataclass(frozen=True)
class WebhookView:
    url: str
    created_at: datetime
    updated_at: datetime
    secret: str | None = None  # only when just generated


def set_webhook(session: Session, principal: Principal, data: dict[str, Any], resolve: wh.Resolver,
                allow_loopback: bool) -> WebhookView:
    """Register or replace the caller's webhook. Raises TargetRefused for a URL that may not be used.
    A new secret is generated on creation or when asked to rotate it, and returned this once."""
    wh.vet_target(data["url"], resolve, allow_loopback)
    hook = session.get(orm.Webhook, principal.organisation_id)
    now = utcnow()
    secret = None
    if hook is None:
        secret = "whsec_" + secrets.token_urlsafe(32)
        hook = orm.Webhook(organisation_id=principal.organisation_id, secret=secret, created_at=now)
        session.add(hook)
    elif data.get("rotate_secret"):
        secret = hook.secret = "whsec_" + secrets.token_urlsafe(32)
    hook.url, hook.updated_at = data["url"], now
    return WebhookView(hook.url, hook.created_at, hook.updated_at, secret)


def get_webhook(session: Session, principal: Principal) -> WebhookView:
    hook = session.get(orm.Webhook, principal.organisation_id)
    if hook is None:
        raise NotFound("webhook")
    return WebhookView(hook.url, hook.created_at, hook.updated_at)


def delete_webhook(session: Session, principal: Principal) -> None:
    hook = session.get(orm.Webhook, principal.organisation_id)
    if hook is None:
        raise NotFound("webhook")
    session.delete(hook)


WEBHOOK_VERSION = 2  # 2: the names a person reads (title, firm, team code, institution, period) beside the ids


def machine_names(facts: dict[str, Any] | None, assignment_id: str, team_id: str) -> dict[str, Any]:
    """A match's names as intake announced them, for a machine: null where intake never named it."""
    assignment = ((facts or {}).get("assignments") or {}).get(assignment_id) or {}
    team = ((facts or {}).get("teams") or {}).get(team_id) or {}
    return {"title": assignment.get("title"), "firm_name": assignment.get("firm_name"),
            "team_code": team.get("code"), "institution_name": team.get("institution_name"),
            "level": team.get("level")}


def webhook_body(session: Session, notice: orm.Notice, links: Links) -> bytes:
    """What a webhook receives (version 2): the notice with its accept/decline links (match notices) or the
    kickoff (kickoff notices), each match with the names its mail uses beside the ids, the period as the mail
    says it (in the firm's language) and whom to ask; no personal data."""
    contact = session.get(orm.Contact, notice.firm_id)
    language = contact.language if contact is not None else "nl"
    facts = batch_facts(session, notice.batch_id)
    coordinator = coordinator_of(session, notice.coordinator_id, facts, language)
    body: dict[str, Any] = {
        "version": WEBHOOK_VERSION, "id": notice.id, "kind": notice.kind, "run_id": notice.run_id,
        "batch_id": notice.batch_id, "period": notice.period, "created_at": _aware(notice.created_at).isoformat(),
        "language": language, "period_label": period_of(facts, notice.period, language) if notice.period else None,
        "coordinator": {"name": coordinator["name"], "email": coordinator["email"] or None}}

    def named(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**m, **machine_names(facts, m["assignment_id"], m["team_id"])} for m in matches]

    if notice.kind in KICKOFF_KINDS:
        context = _invitation_context(session, notice)
        body.update(matches=named(notice.matches), kickoff={
            "uid": context["uid"], "sequence": context["sequence"], "method": context["method"],
            "status": "CANCELLED" if context["method"] == "CANCEL" else context["status"],
            "starts_at": context["starts_at"].isoformat(), "ends_at": context["ends_at"].isoformat(),
            "timezone": str(TZ), "venue": context["venue"]})
    elif notice.kind == "referral_notice":
        body.update(referral_id=notice.subject_id, **(notice.details or {}))
    elif notice.kind in workshops.NOTICE_KINDS:
        details = dict(notice.details or {})
        theme = THEMES.get(str(details.get("theme")))
        body.update(workshop={**details, "theme_label": theme[language] if theme else None})
    elif notice.kind == "match_cancelled":
        body.update(matches=named(notice.matches))
    else:
        body.update(matches=named(_with_links(notice, links)),
                    response_links_expire_at=links.expires_at().isoformat())
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


def deliver_webhooks(sf: sessionmaker[Session], sender: WebhookSender, links: Links, limit: int = 20,
                     now: Clock = utcnow, wall_clock: Callable[[], float] = time.time) -> int:
    """POST due notices to their firm's webhook, signed, with the notice id as idempotency key.
    Each attempt is logged; failures are retried with exponential backoff up to wh.MAX_ATTEMPTS.
    Like e-mail, a crash between the POST and the commit repeats the POST (same Idempotency-Key)."""
    with sf() as session:
        session.connection(execution_options=READ_ONLY)  # a read: no write lock (each notice is checked again)
        due = sa.or_(orm.Notice.webhook_next_attempt_at.is_(None), orm.Notice.webhook_next_attempt_at <= now())
        ids = session.execute(sa.select(orm.Notice.id).where(orm.Notice.webhook_status == "pending", due)
                              .order_by(orm.Notice.created_at).limit(limit)).scalars().all()
    delivered = 0
    for notice_id in ids:
        with sf() as session:
            notice = session.get(orm.Notice, notice_id)
            if notice is None or notice.webhook_status != "pending":
                continue
            hook = session.get(orm.Webhook, notice.firm_id)
            if hook is not None:
                url, secret, body = hook.url, hook.secret, webhook_body(session, notice, links)
            trace_id, traceparent = notice.trace_id, notice.traceparent
        if hook is None:  # removed since the notice was made
            with sf.begin() as session:
                notice = session.get(orm.Notice, notice_id)
                assert notice is not None
                notice.webhook_status, notice.webhook_next_attempt_at = "cancelled", None
            continue
        timestamp = str(int(wall_clock()))
        headers = {
            "X-Werkplaats-Timestamp": timestamp,
            "X-Werkplaats-Signature": wh.sign(secret, timestamp, body),
            "X-Werkplaats-Event": notice.kind,
            "Idempotency-Key": notice_id,
        }
        # the POST is a span of the notice's trace; its traceparent header lets the firm's side go on in it
        with span_from("scheduling", "deliver notice webhook", SpanKind.CLIENT, {"traceparent": traceparent}) as span:
            span.set_attribute("werkplaats.notice_id", notice_id)
            outgoing = current_traceparent()
            result = sender.post(url, body, {**headers, "traceparent": outgoing} if outgoing else headers)
            if not result.ok:
                span.set_status(StatusCode.ERROR, result.error or str(result.status_code))
            notice_attempt("webhook", result.ok)
            with sf.begin() as session:
                notice = session.get(orm.Notice, notice_id)
                assert notice is not None
                notice.webhook_attempts += 1
                session.add(orm.Delivery(notice_id=notice_id, channel="webhook", attempt=notice.webhook_attempts,
                                         status_code=result.status_code, error=result.error, attempted_at=now(),
                                         duration_ms=result.duration_ms, trace_id=trace_id))
                if result.ok:
                    notice.webhook_status, notice.webhook_next_attempt_at = "delivered", None
                    delivered += 1
                elif notice.webhook_attempts >= wh.MAX_ATTEMPTS:
                    notice.webhook_status, notice.webhook_next_attempt_at = "failed", None
                else:
                    notice.webhook_next_attempt_at = now() + wh.next_delay(notice.webhook_attempts)
                if not result.ok:
                    log.warning("webhook delivery failed", extra={
                        "notice_id": notice_id, "attempt": notice.webhook_attempts, "error": result.error,
                        "status_code": result.status_code})
    return delivered


# ---- answers to matches ---------------------------------------------------------------------


class Superseded(NotFound):
    """The link's match was in its notice once, and a re-published matching dropped it."""


@dataclass(frozen=True)
class LinkedMatch:
    notice: orm.Notice
    match: dict[str, Any]
    language: str
    response: orm.MatchResponse | None


def linked_match(session: Session, target: LinkTarget) -> LinkedMatch:
    """The notice and match a (verified) link points at, the firm's language and any answer so far."""
    notice = session.get(orm.Notice, target.notice_id)
    if notice is None:
        raise NotFound(target.match_id)
    # a link to a match a re-run kept opens its current match; one to a dropped match (None) finds none
    superseded = (notice.details or {}).get("superseded", {})
    if target.match_id in superseded and superseded[target.match_id] is None:
        raise Superseded(target.match_id)
    match_id = superseded.get(target.match_id, target.match_id)
    match = next((m for m in notice.matches if m["match_id"] == match_id), None)
    if match is None:
        raise NotFound(target.match_id)
    contact = session.get(orm.Contact, notice.firm_id)
    language = contact.language if contact else (notice.language or "nl")
    return LinkedMatch(notice, match, language, session.get(orm.MatchResponse, match_id))


def record_response(session: Session, target: LinkTarget, decision: str, now: Clock = utcnow,
                    via: str = "link") -> LinkedMatch:
    """Record an answer once and emit ``match.responded`` in the same transaction.
    Raises AlreadyAnswered when the match was answered before (the first answer stands)."""
    found = linked_match(session, target)
    if found.response is not None:
        raise AlreadyAnswered(found.response.decision, found.response.responded_at)
    at = now()
    payload = {**responded_payload(found.notice, found.match, decision, at),
               "run_id": found.match.get("run_id", found.notice.run_id)}
    response = orm.MatchResponse(
        match_id=payload["match_id"], notice_id=found.notice.id, firm_id=payload["firm_id"],
        run_id=payload["run_id"], batch_id=payload["batch_id"], assignment_id=payload["assignment_id"],
        team_id=payload["team_id"], decision=decision, via=via, responded_at=at)
    session.add(response)
    try:
        session.flush()  # a concurrent answer to the same match loses here, on the primary key
    except IntegrityError:
        raise AlreadyAnswered(decision, at) from None
    add_to_outbox(session, orm.outbox, make_envelope("match.responded", 1, payload))
    log.info("match answered", extra={"match_id": payload["match_id"], "decision": decision, "via": via})
    if decision == "accepted":
        plan_kickoff(session, found.notice, found.match, at)
    return LinkedMatch(found.notice, found.match, found.language, response)


def expire_unanswered(sf: sessionmaker[Session], now: Clock = utcnow, limit: int = 50) -> int:
    """Decline every match whose notice's answer deadline has passed without an answer: the same
    ``match.responded`` decline a link sends, so matching re-runs with minimum change. One transaction
    per notice; an answer that arrives at the same moment wins on the primary key and is kept."""
    with sf() as session:
        session.connection(execution_options=READ_ONLY)  # a read: no write lock (each notice is checked again)
        ids = session.execute(sa.select(orm.Notice.id).where(
            orm.Notice.kind == "match_notice", orm.Notice.answer_deadline.is_not(None),
            orm.Notice.answer_deadline <= now()).order_by(orm.Notice.answer_deadline).limit(limit)).scalars().all()
    declined = 0
    for notice_id in ids:
        with sf.begin() as session:
            notice = session.get(orm.Notice, notice_id)
            if notice is None or notice.answer_deadline is None:
                continue
            for match in notice.matches:
                if session.get(orm.MatchResponse, match["match_id"]) is not None:
                    continue
                try:
                    with session.begin_nested():
                        record_response(session, LinkTarget(notice_id, match["match_id"]), "declined", now,
                                        via="deadline")
                    declined += 1
                except AlreadyAnswered:
                    pass
            notice.answer_deadline = None
    if declined:
        log.info("unanswered matches declined at their deadline", extra={"count": declined})
    return declined


# ---- kickoffs -------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their (UTC) offset."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _kickoff_context(kickoff: orm.Kickoff) -> dict[str, Any]:
    assert kickoff.starts_at is not None and kickoff.ends_at is not None
    return {"match_id": kickoff.match_id, "assignment_id": kickoff.assignment_id, "team_id": kickoff.team_id,
            "starts_at": _aware(kickoff.starts_at).astimezone(TZ), "ends_at": _aware(kickoff.ends_at).astimezone(TZ)}


def _invitation_context(session: Session, notice: orm.Notice) -> dict[str, Any]:
    """What a kickoff notice says: the snapshot taken when it was queued (older notices: the kickoff)."""
    kickoff = session.get(orm.Kickoff, notice.subject_id)
    assert kickoff is not None
    frozen = (notice.details or {}).get("kickoff")
    if frozen is None:
        return {**_kickoff_context(kickoff), "uid": kickoff.uid, "sequence": kickoff.sequence, "method": "REQUEST",
                "venue": kickoff.venue, "address": None, "status": "TENTATIVE"}
    firm = session.get(orm.FirmAvailability, notice.firm_id)
    return {"match_id": kickoff.match_id, "assignment_id": kickoff.assignment_id, "team_id": kickoff.team_id,
            "uid": frozen["uid"], "sequence": frozen["sequence"], "method": frozen["method"],
            "starts_at": datetime.fromisoformat(frozen["starts_at"]).astimezone(TZ),
            "ends_at": datetime.fromisoformat(frozen["ends_at"]).astimezone(TZ), "venue": frozen["venue"],
            "address": firm.address if firm is not None and frozen["venue"] == "on_site" else None,
            "status": frozen.get("status", "TENTATIVE")}  # TENTATIVE while proposed, CONFIRMED once both agreed


def _location(context: dict[str, Any], language: str) -> str | None:
    if context["venue"] == "on_site":
        return str(context["address"]) if context.get("address") else None
    if context["venue"] == "online":
        return "Online"
    return None


def kickoff_feed(session: Session, principal: Principal, language: str | None) -> bytes:
    """The caller's organisation's kickoffs as one iCalendar feed (Dutch unless asked or chosen otherwise)."""
    if language is None:
        contact = session.get(orm.Contact, principal.organisation_id)
        language = contact.language if contact else "nl"
    rows = session.execute(visible_kickoffs(principal).where(
        orm.Kickoff.status.in_(("proposed", "cancelled")), orm.Kickoff.starts_at.is_not(None))).scalars().all()
    events = []
    for k in rows:
        context = {**_kickoff_context(k), "venue": k.venue, "address": None}
        if k.venue == "on_site":
            firm = session.get(orm.FirmAvailability, k.firm_id)
            context["address"] = firm.address if firm else None
        context.update(kickoff_names(session, k, language), location=_location(context, language))
        events.append(FeedEvent(
            uid=k.uid, sequence=k.sequence, starts_at=context["starts_at"], ends_at=context["ends_at"],
            summary=render_text("kickoff_invitation", language, context).strip(),
            description=render_text("kickoff_description", language, context), cancelled=k.status == "cancelled",
            location=_location(context, language), tentative=k.status == "proposed" and not k.confirmed))
    return feed("Werkplaats", events, utcnow())


def plan_kickoff(session: Session, notice: orm.Notice, match: dict[str, Any], accepted_at: datetime) -> orm.Kickoff:
    """Place the kickoff of an accepted match by the kickoff rules (firm availability, holidays, school
    holidays and non-teaching weeks, no double booking, the coordinator's daily cap) around the
    kickoffs that exist, and queue its invitation, in the caller's transaction."""
    return kickoffs.place_accepted(session, notice, match, accepted_at)


# ---- answers given in the portal ------------------------------------------------------------


@dataclass(frozen=True)
class OpenMatch:
    """A match of the firm's newest notice that holds it, with the answer so far and the deadline."""

    match_id: str
    notice_id: str
    run_id: str
    batch_id: str
    assignment_id: str
    team_id: str
    period: str
    answer_deadline: Any
    decision: str | None
    responded_at: Any


def firm_matches(session: Session, principal: Principal) -> list[OpenMatch]:
    """The matches in the firm's match notices, newest notice first; each match once (from the newest notice
    holding it), without matches a re-published matching dropped."""
    if principal.role != "entrepreneur":
        return []
    notices = session.execute(
        sa.select(orm.Notice).where(orm.Notice.firm_id == principal.organisation_id,
                                    orm.Notice.kind == "match_notice")
        .order_by(orm.Notice.created_at.desc(), orm.Notice.id)).scalars().all()
    seen: set[str] = set()
    found: list[OpenMatch] = []
    for notice in notices:
        dropped = {old for old, new in (notice.details or {}).get("superseded", {}).items() if new is None}
        for match in notice.matches:
            match_id = match["match_id"]
            if match_id in seen or match_id in dropped:
                continue
            seen.add(match_id)
            answer = session.get(orm.MatchResponse, match_id)
            found.append(OpenMatch(
                match_id=match_id, notice_id=notice.id, run_id=match.get("run_id", notice.run_id),
                batch_id=notice.batch_id, assignment_id=match["assignment_id"], team_id=match["team_id"],
                period=notice.period, answer_deadline=notice.answer_deadline,
                decision=answer.decision if answer else None, responded_at=answer.responded_at if answer else None))
    return found


def answer_in_portal(session: Session, principal: Principal, match_id: str, decision: str) -> LinkedMatch:
    """The firm's signed-in answer to one of its matches: the same record and event as the e-mailed link."""
    target = next((m for m in firm_matches(session, principal) if m.match_id == match_id), None)
    if target is None:
        raise NotFound(match_id)
    return record_response(session, LinkTarget(target.notice_id, match_id), decision, via="portal")
