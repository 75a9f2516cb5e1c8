"""Matching's tables. Runs are jobs: a row per run, claimed by a worker under a lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkplaats_shared.db import messaging_tables


class Base(DeclarativeBase):
    pass


metadata = Base.metadata
outbox, inbox, api_keys = messaging_tables(metadata)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    batch_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(36))
    coordinator_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    period: Mapped[str] = mapped_column(sa.String(40))
    policy: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
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


class Match(Base):
    __tablename__ = "matches"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("runs.id"), index=True)
    assignment_id: Mapped[str] = mapped_column(sa.String(36))
    team_id: Mapped[str] = mapped_column(sa.String(36))
    firm_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    institution_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    score: Mapped[float] = mapped_column(sa.Float)
