"""Intake's tables (SQLAlchemy 2). Intake alone reads and writes this database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    municipalities: Mapped[list[Any]] = mapped_column(sa.JSON)
    periods: Mapped[list[Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


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


class BatchMatch(Base):
    __tablename__ = "batch_matches"
    match_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    batch_id: Mapped[str] = mapped_column(sa.ForeignKey("batches.id"), index=True)
    run_id: Mapped[str] = mapped_column(sa.String(36))
    assignment_id: Mapped[str] = mapped_column(sa.ForeignKey("assignments.id"))
    team_id: Mapped[str] = mapped_column(sa.ForeignKey("teams.id"))
    score: Mapped[float] = mapped_column(sa.Float)
