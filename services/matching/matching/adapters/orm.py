"""Matching's tables. Runs are jobs: a row per run, claimed by a worker under a lease. A batch keeps
the snapshot it was submitted with, so coordinators can re-run it with their pins and forbids; every
coordinator action and every firm's response is written to an append-only audit table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from werkplaats_shared.db import messaging_tables
from werkplaats_shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    pass


metadata = Base.metadata
outbox, inbox, api_keys = messaging_tables(metadata)
idempotency = idempotency_table(metadata)


class KnownWorkspace(Base):
    """A workspace intake announced (workspace.registered): matching acts on a batch only for a known workspace
    and its coordinators' organisation."""

    __tablename__ = "known_workspaces"
    workspace_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    coordinator_id: Mapped[str] = mapped_column(sa.String(36))
    registered_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Batch(Base):
    __tablename__ = "batches"
    batch_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(36))
    coordinator_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    period: Mapped[str] = mapped_column(sa.String(40))
    policy: Mapped[str] = mapped_column(sa.String(40))
    auto_publish: Mapped[bool] = mapped_column(sa.Boolean)
    snapshot: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # intake closed the batch (batch.closed): no further runs, nothing published
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # every workspace of the batch's round, workspace_id first (null: that one only, a batch.submitted v1 or v2)
    workspace_ids: Mapped[list[Any] | None] = mapped_column(sa.JSON, nullable=True)


class RoundLock(Base):
    """One row per workspace and period: the runs of one round (every batch of a workspace and period)
    take it in turn, so two batches never solve or publish at the same time with the same teams."""

    __tablename__ = "round_locks"
    workspace_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(40), primary_key=True)


class RunSnapshot(Base):
    """The batch's snapshot as a run was asked with (an erasure takes free-text skills out of it)."""

    __tablename__ = "run_snapshots"
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("runs.id"), primary_key=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class JSONText(sa.types.TypeDecorator[Any]):
    """JSON kept as text, written and read with msgspec: the same data back, at a fraction of the json module's
    time for the megabytes of a national round's explanations (5.8 MB at 10,000 teams: 0.02 s to write against
    0.13 s)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else msgspec.json.encode(value).decode()

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        return None if value is None else msgspec.json.decode(value)


class RunExplanations(Base):
    """A run's explanations (megabytes at national scale), written once when its result is recorded: writing the
    run's row afterwards (published, superseded, its lease) never rewrites them (SQLite rewrites a row whole)."""

    __tablename__ = "run_explanations"
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("runs.id"), primary_key=True)
    explanations: Mapped[dict[str, Any]] = mapped_column(JSONText)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    batch_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(36))
    # every workspace of the run's round, workspace_id first (null: that one only)
    workspace_ids: Mapped[list[Any] | None] = mapped_column(sa.JSON, nullable=True)
    coordinator_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    period: Mapped[str] = mapped_column(sa.String(40))
    policy: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    # the snapshot (megabytes at national scale) in its own row: writing the run's stage, lease, progress or
    # result never rewrites it (SQLite rewrites a row whole); read only where used (``run.snapshot``)
    stored_snapshot: Mapped[RunSnapshot] = relationship(lazy="select", cascade="all, delete-orphan")
    input_hash: Mapped[str] = mapped_column(sa.String(64))
    model_hash: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    solver: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    solver_version: Mapped[str | None] = mapped_column(sa.String(60), nullable=True)
    library_versions: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    solver_status: Mapped[str | None] = mapped_column(sa.String(30), nullable=True)
    objective: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    error: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # progress and reproducibility
    stage: Mapped[str] = mapped_column(sa.String(20), server_default="queued")
    seed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    gap: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    time_limit_reached: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    objective_values: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    build_seconds: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    solve_seconds: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    # what the run was asked with, and why
    auto_publish: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    trigger: Mapped[str] = mapped_column(sa.String(30), server_default="batch.submitted")
    controls: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    parent_run_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    requested_by_key_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    # what came out
    precheck: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    diagnosis: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    # the explanations in their own row, read only where used (``run.explanations``: None until recorded)
    stored_explanations: Mapped[RunExplanations | None] = relationship(lazy="select", cascade="all, delete-orphan")
    # the explanations' figures, kept apart too: lists show them without reading the explanations (megabytes)
    figures: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    superseded_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # the W3C trace context the run was asked in (the ``batch.submitted`` message's, or the request's): the
    # worker solves the run in a child span of it, so what the run publishes goes on in that trace
    traceparent: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)

    @property
    def snapshot(self) -> dict[str, Any]:
        """The run's snapshot (read from run_snapshots on first use)."""
        return self.stored_snapshot.snapshot

    @snapshot.setter
    def snapshot(self, value: dict[str, Any]) -> None:
        if self.stored_snapshot is None:  # a new run  # type: ignore[comparison-overlap]
            self.stored_snapshot = RunSnapshot(snapshot=value)
        else:
            self.stored_snapshot.snapshot = value

    @property
    def explanations(self) -> dict[str, Any] | None:
        """The run's explanations (read from run_explanations on first use; None while it has none)."""
        stored = self.stored_explanations
        return None if stored is None else stored.explanations

    @explanations.setter
    def explanations(self, value: dict[str, Any] | None) -> None:
        if value is None:
            self.stored_explanations = None
        elif self.stored_explanations is None:
            self.stored_explanations = RunExplanations(explanations=value)
        else:
            self.stored_explanations.explanations = value

    __table_args__ = (sa.Index("ix_runs_workspace_id_period", "workspace_id", "period"),
                      # GET /runs pages through a coordinator's runs in this order
                      sa.Index("ix_runs_coordinator_id_created_at_id", "coordinator_id", "created_at", "id"))


class Match(Base):
    __tablename__ = "matches"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    # run_id, firm_id and institution_id are each looked up by the index that starts with it (below): a round's
    # thousands of matches are written into four indexes, not seven
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("runs.id"))
    assignment_id: Mapped[str] = mapped_column(sa.String(36))
    team_id: Mapped[str] = mapped_column(sa.String(36))
    firm_id: Mapped[str] = mapped_column(sa.String(36))
    institution_id: Mapped[str] = mapped_column(sa.String(36))
    score: Mapped[float] = mapped_column(sa.Float)
    response: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    responded_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)

    # GET /matches pages through the matches in this order (a coordinator's: by run; a firm's, an institution's)
    __table_args__ = (sa.Index("ix_matches_run_id_assignment_id_id", "run_id", "assignment_id", "id"),
                      sa.Index("ix_matches_firm_id_run_id_assignment_id_id", "firm_id", "run_id", "assignment_id",
                               "id"),
                      sa.Index("ix_matches_institution_id_run_id_assignment_id_id", "institution_id", "run_id",
                               "assignment_id", "id"))


class Control(Base):
    """A coordinator's pin (the pair must be matched) or forbid (never matched) on a batch."""

    __tablename__ = "controls"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    batch_id: Mapped[str] = mapped_column(sa.ForeignKey("batches.batch_id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(10))
    team_id: Mapped[str] = mapped_column(sa.String(36))
    assignment_id: Mapped[str] = mapped_column(sa.String(36))
    reason: Mapped[str] = mapped_column(sa.String(500))
    author_organisation_id: Mapped[str] = mapped_column(sa.String(36))
    author_key_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    removed_by_key_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)


class AuditEntry(Base):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "audit_log"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    batch_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    run_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    action: Mapped[str] = mapped_column(sa.String(40))
    actor_organisation_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    actor_key_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


from .privacy_orm import access_log  # noqa: E402,F401 - the personal-data access log, on this metadata
