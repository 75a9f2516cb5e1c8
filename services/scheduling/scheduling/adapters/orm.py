"""Scheduling's tables: notification contacts (personal data, kept here only) and notices."""

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

    __table_args__ = (sa.UniqueConstraint("run_id", "firm_id", "kind", name="uq_notice_run_firm_kind"),)
