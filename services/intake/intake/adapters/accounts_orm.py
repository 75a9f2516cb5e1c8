"""Coordinator accounts and the scopes of API keys (intake's tables; the keys themselves are api_keys)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .orm import Base


class CoordinatorAccount(Base):
    """A person of a coordinating organisation who logs in with e-mail and password to get tokens.

    The e-mail address is personal data: it is stored here only, lower-cased, and never logged or sent
    in a message."""

    __tablename__ = "coordinator_accounts"
    id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)

    __table_args__ = (sa.UniqueConstraint("email", name="uq_coordinator_accounts_email"),)


class ApiKeyScope(Base):
    """The label of an API key issued through the API, and the key it replaced. Its scopes are stored with the
    key itself (``api_keys.scopes``, replicated to every service)."""

    __tablename__ = "api_key_scopes"
    key_id: Mapped[str] = mapped_column(sa.ForeignKey("api_keys.key_id"), primary_key=True)
    label: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    rotated_from: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
