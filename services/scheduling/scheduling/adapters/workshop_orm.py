"""Workshop tables, on scheduling's one metadata: programmes with their candidate slots, rooms,
facilitators (pseudonymous labels), entrepreneurs' interest, the planned sessions and the seats and
waitlist places in them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .orm import Base


class WorkshopProgramme(Base):
    """A coordinator's round of workshops: candidate slots, planning settings and the last plan's report."""

    __tablename__ = "workshop_programmes"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    coordinator_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    slots: Mapped[list[Any]] = mapped_column(sa.JSON)  # [{"date": iso date, "day_part": ...}]
    sessions_wanted: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # {theme: number of sessions}
    max_sessions_per_location_day: Mapped[int] = mapped_column(sa.Integer)
    online_capacity: Mapped[int] = mapped_column(sa.Integer)
    min_participants: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(20))  # open or planned
    plan_report: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    planned_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class WorkshopRoom(Base):
    __tablename__ = "workshop_rooms"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    programme_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    name: Mapped[str] = mapped_column(sa.String(200))
    capacity: Mapped[int] = mapped_column(sa.Integer)
    availability: Mapped[list[Any]] = mapped_column(sa.JSON)  # [{"date", "day_part"}]
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class WorkshopFacilitator(Base):
    __tablename__ = "workshop_facilitators"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    programme_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    label: Mapped[str] = mapped_column(sa.String(60))
    themes: Mapped[list[Any]] = mapped_column(sa.JSON)
    availability: Mapped[list[Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class WorkshopInterest(Base):
    """An entrepreneur's interest in one theme of a programme; registration order ranks the waitlist."""

    __tablename__ = "workshop_interests"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    programme_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    firm_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    theme: Mapped[str] = mapped_column(sa.String(40))
    locations: Mapped[list[Any]] = mapped_column(sa.JSON)  # ranked CBS municipality codes
    online_ok: Mapped[bool] = mapped_column(sa.Boolean)
    available_days: Mapped[list[Any]] = mapped_column(sa.JSON)  # [iso date]
    registered_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.UniqueConstraint("programme_id", "firm_id", "theme", name="uq_workshop_interest_theme"),)


class WorkshopSession(Base):
    """A session the plan runs: a theme in a room (or online) in a slot, with its facilitator."""

    __tablename__ = "workshop_sessions"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    programme_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    theme: Mapped[str] = mapped_column(sa.String(40))
    room_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)  # None: online
    municipality_code: Mapped[str | None] = mapped_column(sa.String(6), nullable=True)
    slot_date: Mapped[date] = mapped_column(sa.Date)
    day_part: Mapped[str] = mapped_column(sa.String(10))
    facilitator_id: Mapped[str] = mapped_column(sa.String(36))
    capacity: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # running, or dropped (a later plan no longer runs it; its seats were cancelled with a notice)
    status: Mapped[str] = mapped_column(sa.String(20), default="running", server_default="running")


class WorkshopRegistration(Base):
    """An interest's place in a session: seated, waitlisted (ranked by registration), cancelled (by the firm
    or coordinator), released (seated elsewhere in the theme) or dropped (a later plan took the seat away)."""

    __tablename__ = "workshop_registrations"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    programme_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    session_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    interest_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    firm_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.UniqueConstraint("session_id", "interest_id", name="uq_workshop_registration"),)
