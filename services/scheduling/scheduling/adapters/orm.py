"""Scheduling's tables: notification contacts and webhooks (kept here only), notices, their delivery
log, and entrepreneurs' answers to matches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkplaats_shared.db import messaging_tables
from werkplaats_shared.idempotency import idempotency_table
from werkplaats_shared.tracing import current_trace_id, current_traceparent


class Base(DeclarativeBase):
    pass


metadata = Base.metadata
outbox, inbox, api_keys = messaging_tables(metadata)
idempotency = idempotency_table(metadata)


class KnownWorkspace(Base):
    """A workspace intake announced (workspace.registered) and its coordinators' organisation."""

    __tablename__ = "known_workspaces"
    workspace_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    coordinator_id: Mapped[str] = mapped_column(sa.String(36))
    registered_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class KnownBatch(Base):
    """A batch intake announced (batch.submitted): which assignments (of which firm) and teams (of which
    institution) it holds, every submission of it together. A run matching publishes must fit it. A batch known
    only from notices made before this table existed has no workspace and no lists: those are not checked."""

    __tablename__ = "known_batches"
    batch_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    coordinator_id: Mapped[str] = mapped_column(sa.String(36))
    assignments: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)  # assignment id: firm id
    teams: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)  # team id: institution id
    # what notices name things by (batch.announced v2): {"workspace_name", "coordinator_name", "period":
    # {"code", "starts_on", "ends_on"}, "assignments": {id: {"title", "firm_name"}}, "teams": {id: {"code",
    # "institution_name", "level", "skills"}}}; None for a batch announced by v1
    facts: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    announced_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class KnownRun(Base):
    """A published run scheduling acted on, and its batch: a re-run may supersede only one of these."""

    __tablename__ = "known_runs"
    run_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    batch_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Contact(Base):
    __tablename__ = "contacts"
    organisation_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    language: Mapped[str] = mapped_column(sa.String(2))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Notice(Base):
    __tablename__ = "notices"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    firm_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    coordinator_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    run_id: Mapped[str] = mapped_column(sa.String(36))
    batch_id: Mapped[str] = mapped_column(sa.String(36))
    period: Mapped[str] = mapped_column(sa.String(40))
    matches: Mapped[list[Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    language: Mapped[str | None] = mapped_column(sa.String(2), nullable=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # the webhook channel: None when the firm had no webhook when the notice was made
    webhook_status: Mapped[str | None] = mapped_column(sa.String(20), nullable=True, index=True)
    webhook_attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    webhook_next_attempt_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)

    # what a notice is about beyond its run: "" for a match notice, the match id for a kickoff notice,
    # the referral id for a referral notice
    subject_id: Mapped[str] = mapped_column(sa.String(36), default="", server_default="")
    # facts a notice shows that are not matches (a referral's support schemes)
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    # a kickoff's invitation sequence: an update or cancellation is a new notice with a higher one
    sequence: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # match notices: when an unanswered match counts as declined (set when the notice is sent)
    answer_deadline: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True,
                                                             index=True)
    # the trace id (tracing.py) of the message whose handler made the notice: its e-mail and webhook
    # deliveries (``deliveries.notice_id``) belong to that trace; None when made outside a trace
    trace_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True, default=current_trace_id)
    # that message's handler's W3C trace context: each delivery attempt is a span, child of it
    traceparent: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, default=current_traceparent)

    __table_args__ = (sa.UniqueConstraint("run_id", "firm_id", "kind", "subject_id", "sequence",
                                          name="uq_notice_run_firm_kind_subject_sequence"),
                      # GET /notices pages through a firm's, a coordinator's notices in this order
                      sa.Index("ix_notices_firm_id_created_at_id", "firm_id", "created_at", "id"),
                      sa.Index("ix_notices_coordinator_id_created_at_id", "coordinator_id", "created_at", "id"))


class Webhook(Base):
    """An entrepreneur's webhook. The secret signs deliveries, so it is kept (shown once, never listed)."""

    __tablename__ = "webhooks"
    organisation_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2048))
    secret: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Delivery(Base):
    """One attempt to deliver a notice over one channel (email or webhook): outcome only, no content."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    channel: Mapped[str] = mapped_column(sa.String(10))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    status_code: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    attempted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    # An e-mail attempt is recorded (and committed) as ``sending`` before the mail is handed to SMTP, then
    # ``done``; one still ``sending`` when the next attempt starts was cut off between hand-off and record
    # (``interrupted``): the mail may have gone out, so the next attempt is a ``possible_duplicate``.
    state: Mapped[str] = mapped_column(sa.String(12), default="done", server_default="done")
    message_id: Mapped[str | None] = mapped_column(sa.String(120), nullable=True)
    possible_duplicate: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # the trace the notice belongs to (``notices.trace_id``): the request or message whose trace made it
    trace_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)


class MatchResponse(Base):
    """An entrepreneur's answer to one match; the primary key makes it once only."""

    __tablename__ = "match_responses"
    match_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    notice_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    firm_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    run_id: Mapped[str] = mapped_column(sa.String(36))
    batch_id: Mapped[str] = mapped_column(sa.String(36))
    assignment_id: Mapped[str] = mapped_column(sa.String(36))
    team_id: Mapped[str] = mapped_column(sa.String(36))
    decision: Mapped[str] = mapped_column(sa.String(10))
    # "link" (the entrepreneur answered) or "deadline" (no answer in time: declined by the worker)
    via: Mapped[str] = mapped_column(sa.String(10), default="link", server_default="link")
    responded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Kickoff(Base):
    """The kickoff meeting proposed for an accepted match (or why none could be placed)."""

    __tablename__ = "kickoffs"
    match_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    notice_id: Mapped[str] = mapped_column(sa.String(36))
    firm_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    coordinator_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    run_id: Mapped[str] = mapped_column(sa.String(36))
    assignment_id: Mapped[str] = mapped_column(sa.String(36))
    team_id: Mapped[str] = mapped_column(sa.String(36))
    institution_id: Mapped[str] = mapped_column(sa.String(36), default="", server_default="", index=True)
    batch_id: Mapped[str] = mapped_column(sa.String(36), default="", server_default="", index=True)
    period: Mapped[str] = mapped_column(sa.String(40), default="", server_default="")
    status: Mapped[str] = mapped_column(sa.String(20))  # proposed, unplaced or cancelled
    venue: Mapped[str | None] = mapped_column(sa.String(10), nullable=True)  # on_site or online
    starts_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    reason: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    uid: Mapped[str] = mapped_column(sa.String(100), unique=True)
    sequence: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # when the firm and the team's institution agreed to the proposed time; both: confirmed; a move clears both
    firm_agreed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    institution_agreed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)

    @property
    def confirmed(self) -> bool:
        return (self.status == "proposed" and self.firm_agreed_at is not None
                and self.institution_agreed_at is not None)


class InstitutionCalendar(Base):
    """An institution's school-holiday region and its own non-teaching periods (inclusive date ranges)."""

    __tablename__ = "institution_calendars"
    institution_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    region: Mapped[str | None] = mapped_column(sa.String(6), nullable=True)  # noord, midden or zuid
    non_teaching: Mapped[list[Any]] = mapped_column(sa.JSON)  # [{"start": iso date, "end": iso date}]
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class FirmAvailability(Base):
    """When and where a firm can hold kickoffs: weekly time windows, blocked dates, on site or online."""

    __tablename__ = "firm_availabilities"
    firm_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    windows: Mapped[list[Any]] = mapped_column(sa.JSON)  # [{"weekday": 0-6, "start": "HH:MM", "end": "HH:MM"}]
    blocked_dates: Mapped[list[Any]] = mapped_column(sa.JSON)  # [iso date]
    venue: Mapped[str] = mapped_column(sa.String(10))  # on_site or online
    address: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)  # the premises, for on_site
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class CoordinatorSettings(Base):
    """A coordinator's kickoff settings: the daily cap chosen when planning, which acceptances use too."""

    __tablename__ = "coordinator_settings"
    coordinator_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    kickoff_daily_cap: Mapped[int] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class PlanJob(Base):
    """A coordinator's request to plan (a batch's kickoffs, or a workshop programme), done by a worker: claimed
    under a lease it renews while it solves; a job whose lease ran out (its worker died) is claimed again.
    The result is applied and the job marked done in one transaction, so it takes effect once."""

    __tablename__ = "plan_jobs"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # kickoffs or workshops
    coordinator_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    subject_id: Mapped[str] = mapped_column(sa.String(36), index=True)  # the batch or the programme
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(20), index=True)  # queued, running, done, failed, cancelled
    stage: Mapped[str] = mapped_column(sa.String(20))  # queued, reading, solving, applying, done
    time_limit: Mapped[float] = mapped_column(sa.Float)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)  # elapsed, best, gap
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)  # the validator's
    error: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # the W3C trace context the job was asked in: the worker does it in a child span of it
    traceparent: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, default=current_traceparent)


from . import workshop_orm  # noqa: E402,F401 - the workshop tables, on this metadata
from .privacy_orm import access_log  # noqa: E402,F401 - the personal-data access log, on this metadata
