"""Intake's tables (SQLAlchemy 2). Intake alone reads and writes this database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates
from werkplaats_shared.db import messaging_tables
from werkplaats_shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


metadata = Base.metadata
outbox, inbox, api_keys = messaging_tables(metadata)
idempotency = idempotency_table(metadata)


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    levels: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # the name as duplicates are found: spaces collapsed, case folded (set with the name)
    name_key: Mapped[str | None] = mapped_column(sa.String(200), nullable=True, index=True)
    # deactivated by the operator: its keys revoked, its accounts disabled, its data kept
    deactivated_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # firm profile (role entrepreneur)
    kvk_number: Mapped[str | None] = mapped_column(sa.String(8), nullable=True)
    sector: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    size_class: Mapped[str | None] = mapped_column(sa.String(10), nullable=True)
    municipality: Mapped[str | None] = mapped_column(sa.String(6), nullable=True)
    language: Mapped[str | None] = mapped_column(sa.String(2), nullable=True)
    # the workspace serving the firm; no foreign key, as workspaces already reference organisations
    workspace_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True, index=True)
    # the most teams the firm can host at once, over all its assignments; None: no cap
    max_concurrent_teams: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)

    # institution profile (role institution)
    programmes: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")
    campuses: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")
    blocks: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")

    __table_args__ = (sa.UniqueConstraint("kvk_number", name="uq_organisations_kvk_number"),)

    @validates("name")
    def _keep_name_key(self, _key: str, value: str) -> str:
        self.name_key = organisation_name_key(value)
        return value


def organisation_name_key(name: str) -> str:
    """How two organisations' names are compared: spaces collapsed, case folded."""
    return " ".join(name.split()).casefold()[:200]


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    municipalities: Mapped[list[Any]] = mapped_column(sa.JSON)
    periods: Mapped[list[Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # when workspace.registered went to the outbox (before the first batch or referral, or by the reconciliation)
    announced_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    institution_id: Mapped[str] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(40))
    level: Mapped[str] = mapped_column(sa.String(3))
    size: Mapped[int] = mapped_column(sa.Integer)
    skills: Mapped[list[Any]] = mapped_column(sa.JSON)
    period: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    campus: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    travel_limit_km: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    remote_allowed: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())
    preferences: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")
    # read-only: the institution's name, loaded with the team (one query per page of teams)
    institution: Mapped[Organisation] = relationship(foreign_keys=[institution_id], lazy="selectin", viewonly=True)

    # lists page through the teams in this order (GET /teams: an institution's own, everyone's for a coordinator)
    __table_args__ = (sa.Index("ix_teams_institution_id_created_at_id", "institution_id", "created_at", "id"),
                      sa.Index("ix_teams_created_at_id", "created_at", "id"))

    @property
    def institution_name(self) -> str:
        return self.institution.name if self.institution is not None else ""


class Capacity(Base):
    """An institution's offer for a workspace period: how many teams of a level, and supervision."""

    __tablename__ = "capacities"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    institution_id: Mapped[str] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id"), index=True)
    programme: Mapped[str] = mapped_column(sa.String(100))
    period: Mapped[str] = mapped_column(sa.String(40))
    level: Mapped[str] = mapped_column(sa.String(3))
    teams: Mapped[int] = mapped_column(sa.Integer)
    team_size_min: Mapped[int] = mapped_column(sa.Integer)
    team_size_max: Mapped[int] = mapped_column(sa.Integer)
    skills: Mapped[list[Any]] = mapped_column(sa.JSON)
    supervision_hours: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Assignment(Base):
    __tablename__ = "assignments"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    firm_id: Mapped[str] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id"), index=True)
    batch_id: Mapped[str | None] = mapped_column(sa.ForeignKey("batches.id"), index=True, nullable=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    period: Mapped[str] = mapped_column(sa.String(40))
    accepted_levels: Mapped[list[Any]] = mapped_column(sa.JSON)
    required_skills: Mapped[list[Any]] = mapped_column(sa.JSON)
    nice_to_have_skills: Mapped[list[Any]] = mapped_column(sa.JSON)
    min_teams: Mapped[int] = mapped_column(sa.Integer)
    max_teams: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    theme: Mapped[str | None] = mapped_column(sa.String(30), nullable=True)
    kind: Mapped[str] = mapped_column(sa.String(20), server_default="project")
    mode: Mapped[str] = mapped_column(sa.String(10), server_default="on_site")
    routed_from_workspace_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    preferred_institutions: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")
    preferred_levels: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")
    # read-only: the firm's name, loaded with the assignment (one query per page of assignments)
    firm: Mapped[Organisation] = relationship(foreign_keys=[firm_id], lazy="selectin", viewonly=True)

    # lists page through the assignments in this order (GET /assignments: a firm's own, a coordinator's)
    __table_args__ = (sa.Index("ix_assignments_firm_id_created_at_id", "firm_id", "created_at", "id"),
                      sa.Index("ix_assignments_created_at_id", "created_at", "id"))

    @property
    def firm_name(self) -> str:
        return self.firm.name if self.firm is not None else ""


class Batch(Base):
    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id"), index=True)
    period: Mapped[str] = mapped_column(sa.String(40))
    policy: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20))
    run_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    fairness_floors: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")
    auto_publish: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # the assignments closing the batch released (their batch_id is cleared)
    released_assignment_ids: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")
    # how the batch's last run ended (run.ended from matching)
    last_run_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    last_run_status: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    last_run_trigger: Mapped[str | None] = mapped_column(sa.String(30), nullable=True)
    last_run_ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    last_run_error: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    last_run_diagnosis: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    # the message id of the batch's last batch.submitted (the reconciliation sends that message again)
    announced_message_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    reannounced_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    reannouncements: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # every workspace of the round, workspace_id first (null for a batch made before rounds could span several)
    workspace_ids: Mapped[list[Any] | None] = mapped_column(sa.JSON, nullable=True)

    @property
    def round_workspace_ids(self) -> list[str]:
        return list(self.workspace_ids) if self.workspace_ids else [self.workspace_id]


class BatchSnapshot(Base):
    """A batch.submitted snapshot too large for the message (claim-check): matching fetches it by id with a
    signed request (werkplaats_shared.claimcheck). Written in the transaction of the outbox row that names it."""

    __tablename__ = "batch_snapshots"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # the batch.submitted message's id
    batch_id: Mapped[str] = mapped_column(sa.ForeignKey("batches.id"), index=True)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size_bytes: Mapped[int] = mapped_column(sa.Integer)
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # the SHA-256 digests the body had before erasures rewrote it (oldest first): a batch.submitted sent before
    # an erasure names one of them, and matching takes the rewritten body for it (claimcheck.fetch)
    replaces_sha256: Mapped[list[Any] | None] = mapped_column(sa.JSON, nullable=True)


class BatchMatch(Base):
    __tablename__ = "batch_matches"
    match_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    batch_id: Mapped[str] = mapped_column(sa.ForeignKey("batches.id"), index=True)
    run_id: Mapped[str] = mapped_column(sa.String(36))
    assignment_id: Mapped[str] = mapped_column(sa.ForeignKey("assignments.id"))
    team_id: Mapped[str] = mapped_column(sa.ForeignKey("teams.id"))
    score: Mapped[float] = mapped_column(sa.Float)


NATIONAL = "national"  # the scope of the shared, read-only national list


class ReferralScheme(Base):
    """A support scheme that out-of-area firms are referred to. Its scope is a workspace (its id: the
    workspace's coordinator keeps it) or ``national`` (the operator keeps it, with ``python -m intake
    admin put-national-scheme``); a referral offers the referring workspace's schemes and the national ones."""

    __tablename__ = "referral_schemes"
    scope: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name_nl: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    url: Mapped[str] = mapped_column(sa.String(300))
    themes: Mapped[list[Any]] = mapped_column(sa.JSON)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    @property
    def national(self) -> bool:
        return self.scope == NATIONAL

    @property
    def workspace_id(self) -> str | None:
        return None if self.scope == NATIONAL else self.scope


class Referral(Base):
    __tablename__ = "referrals"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    firm_id: Mapped[str] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    assignment_id: Mapped[str | None] = mapped_column(sa.ForeignKey("assignments.id"), nullable=True)
    from_workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id"), index=True)
    scheme_codes: Mapped[list[Any]] = mapped_column(sa.JSON)
    reason: Mapped[str] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Handover(Base):
    __tablename__ = "handovers"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    from_workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id"), index=True)
    to_workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id"), index=True)
    firm_ids: Mapped[list[Any]] = mapped_column(sa.JSON)
    assignment_ids: Mapped[list[Any]] = mapped_column(sa.JSON)
    # open assignments left in the source workspace: declined, they wait for their batch's re-run
    rerun_pending_assignment_ids: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")
    reason: Mapped[str] = mapped_column(sa.String(500))
    actor_organisation_id: Mapped[str] = mapped_column(sa.String(36))
    actor_key_id: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class AuditEntry(Base):
    """Append-only record of who did what; ids and facts only, no personal data."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    actor_organisation_id: Mapped[str] = mapped_column(sa.String(36))
    actor_key_id: Mapped[str] = mapped_column(sa.String(32))
    action: Mapped[str] = mapped_column(sa.String(60))
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[str] = mapped_column(sa.String(36))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


from . import accounts_orm  # noqa: E402,F401  (registers the account and key-scope tables on Base)
from .privacy_orm import access_log  # noqa: E402,F401 - the personal-data access log, on this metadata
