"""Accounts of people, their sign-in sessions, e-mail links and invitations, and the scopes of API keys
(intake's tables; the keys themselves are api_keys)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .orm import Base


class Account(Base):
    """A person of an organisation (any role: the organisation's) who signs in with e-mail and password, or
    with a link mailed to that address, to get tokens.

    The e-mail address is personal data: it is stored here only, lower-cased, and never logged or sent
    in a message. The table keeps its first name (coordinators had accounts first)."""

    __tablename__ = "coordinator_accounts"
    id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    language: Mapped[str] = mapped_column(sa.String(2), default="nl", server_default="nl")

    __table_args__ = (sa.UniqueConstraint("email", name="uq_coordinator_accounts_email"),)


CoordinatorAccount = Account  # the name it had while only coordinators had accounts


class AccountSession(Base):
    """A sign-in session: its id is the claim ``sid`` of the tokens issued for it; the refresh token that
    renews them is stored as a SHA-256 hash only."""

    __tablename__ = "account_sessions"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("coordinator_accounts.id"), index=True)
    refresh_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    method: Mapped[str] = mapped_column(sa.String(20))  # password, link, signup, invitation
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    refreshed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class SignInLink(Base):
    """A single-use, expiring sign-in link mailed to an account's address; its token stored hashed."""

    __tablename__ = "sign_in_links"
    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("coordinator_accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class Invitation(Base):
    """An invitation, mailed by an organisation, for a person to make an account in it; its token stored
    hashed. The address is personal data, kept here only until the invitation is accepted or expires."""

    __tablename__ = "invitations"
    id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    language: Mapped[str] = mapped_column(sa.String(2))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    account_id: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)


class SignInThrottle(Base):
    """Failed password sign-ins per address (a SHA-256 of the normalised address, so an unknown address is
    counted like a known one and the lock reveals nothing): too many in a window lock password sign-in."""

    __tablename__ = "sign_in_throttle"
    subject: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(sa.Integer)
    window_started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class ApiKeyScope(Base):
    """The label of an API key issued through the API, and the key it replaced. Its scopes are stored with the
    key itself (``api_keys.scopes``, replicated to every service)."""

    __tablename__ = "api_key_scopes"
    key_id: Mapped[str] = mapped_column(sa.ForeignKey("api_keys.key_id"), primary_key=True)
    label: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    rotated_from: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
