"""Signing people in: sign-up of a firm, password sign-in with a per-address lockout, single-use e-mail links,
invitations, and the sign-in sessions that hold a person's short-lived service tokens.

A session answer carries one token per service (each with the claim ``sid``, the session id) and a refresh
token that renews them; the refresh token, the link tokens and the invitation tokens are stored only as
SHA-256 hashes (256-bit random secrets, so an unsalted hash is safe). Revoking a session announces
``session.revoked`` (its id only) so that every service refuses its tokens.

Each use case runs in the caller's transaction and takes ``now`` from the caller's clock, so the expiry of
links, invitations, sessions and locks can be tested without waiting. Tokens are always issued on the real
clock: the services that verify them use it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkplaats_shared.auth import REVOKED_SESSIONS, Principal, hash_secret
from werkplaats_shared.contracts import make_envelope
from werkplaats_shared.tokens import IssuedToken

from ..adapters import orm
from ..adapters.accounts_orm import Account, AccountSession, Invitation, SignInLink, SignInThrottle
from . import services
from .accounts import (
    TOKEN_SERVICES,
    AccountError,
    account_principal,
    account_role,
    authenticate_account,
    email_taken,
    issue_account_token,
    new_account,
    normalise_email,
)
from .services import Emit

Clock = Callable[[], datetime]

SESSION_IDLE_LIMIT = timedelta(hours=12)  # a session not refreshed for this long has ended
SESSION_MAX_AGE = timedelta(days=7)  # and none lives longer: then the person signs in again
LINK_LIFETIME = timedelta(minutes=15)
LINKS_PER_ACCOUNT = 3  # sign-in links mailed per account within LINK_LIFETIME; beyond it none is sent
INVITATION_LIFETIME = timedelta(days=7)
FAILURE_LIMIT = 5  # failed password sign-ins per address within FAILURE_WINDOW lock it for LOCK_TIME
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_TIME = timedelta(minutes=15)
PURGE_AFTER = timedelta(days=1)  # ended sessions, spent links and closed invitations go this long after ending

SIGN_IN_FAILED = "wrong e-mail address or password"
SIGN_IN_LOCKED = "too many failed sign-ins for this address: try again later or ask for a sign-in link"
SESSION_ENDED = "this session has ended: sign in again"
LINK_UNKNOWN = "this sign-in link is not known"
LINK_USED = "this sign-in link has been used already: ask for a new one"
LINK_EXPIRED = "this sign-in link has expired: ask for a new one"
INVITATION_UNKNOWN = "this invitation is not known"
INVITATION_ACCEPTED = "this invitation has been accepted already: sign in instead"
INVITATION_EXPIRED = "this invitation has expired: ask the organisation for a new one"


class Gone(Exception):
    """A link or invitation that cannot be used: 410 when it was used, accepted or expired, 404 when it is
    not known."""

    def __init__(self, field: str, reason: str, status: int = 410) -> None:
        super().__init__(reason)
        self.field, self.reason, self.status = field, reason, status


@dataclass(frozen=True)
class Refusal:
    """A sign-in refused after its transaction committed (a failure must be counted even so)."""

    status: int
    reason: str
    retry_after: int | None = None


@dataclass(frozen=True)
class SessionAnswer:
    session_id: str
    refresh_token: str
    refresh_expires_at: datetime
    account: Account
    role: str
    organisation_name: str
    tokens: dict[str, IssuedToken]


def aware(moment: datetime) -> datetime:
    """A stored moment with its UTC offset (SQLite hands timestamps back without one)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _secret_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hash_secret(token)


def _account_by_address(session: Session, email: str) -> Account | None:
    found: Account | None = session.execute(
        sa.select(Account).where(Account.email == normalise_email(email))).scalar()
    return found


# ---- sessions -------------------------------------------------------------------------------


def _answer(session: Session, secret_key: str, account: Account, row: AccountSession, refresh_token: str
            ) -> SessionAnswer:
    org = session.get(orm.Organisation, account.organisation_id)
    if org is None:
        raise services.NotFound(account.organisation_id)
    tokens = {service: issue_account_token(secret_key, account, service, org.role, row.id)
              for service in TOKEN_SERVICES}
    expires = min(aware(row.refreshed_at) + SESSION_IDLE_LIMIT, aware(row.created_at) + SESSION_MAX_AGE)
    return SessionAnswer(session_id=row.id, refresh_token=refresh_token, refresh_expires_at=expires,
                         account=account, role=org.role, organisation_name=org.name, tokens=tokens)


def start_session(session: Session, secret_key: str, account: Account, method: str, now: datetime
                  ) -> SessionAnswer:
    if not secret_key:
        raise AccountError("_body", "tokens are not available: the service has no secret key", 503)
    refresh_token, refresh_hash = _secret_token()
    row = AccountSession(id=secrets.token_hex(16), account_id=account.id, refresh_hash=refresh_hash,
                         method=method, created_at=now, refreshed_at=now)
    session.add(row)
    session.flush()
    services.audit(session, account_principal(account, account_role(session, account)), "session.started",
                   "account_session", row.id, {"account_id": account.id, "method": method})
    return _answer(session, secret_key, account, row, refresh_token)


def _live_session(session: Session, refresh_token: str, now: datetime) -> tuple[AccountSession, Account] | None:
    row: AccountSession | None = session.execute(
        sa.select(AccountSession).where(AccountSession.refresh_hash == hash_secret(refresh_token))
        .with_for_update()).scalar()
    if row is None or row.revoked_at is not None:
        return None
    if aware(row.refreshed_at) + SESSION_IDLE_LIMIT <= now or aware(row.created_at) + SESSION_MAX_AGE <= now:
        return None
    account = session.get(Account, row.account_id)
    if account is None or account.disabled_at is not None:
        return None
    return row, account


def refresh_session(session: Session, secret_key: str, refresh_token: str, now: datetime
                    ) -> SessionAnswer | Refusal:
    """Fresh tokens for the same session, and a new refresh token: the one presented stops working."""
    live = _live_session(session, refresh_token, now)
    if live is None:
        return Refusal(401, SESSION_ENDED)
    row, account = live
    new_token, new_hash = _secret_token()
    row.refresh_hash = new_hash
    row.refreshed_at = now
    return _answer(session, secret_key, account, row, new_token)


def revoke_session(session: Session, emit: Emit, refresh_token: str, now: datetime) -> str | None:
    """End the session of this refresh token (sign-out); its id, or None when there was nothing to end."""
    row: AccountSession | None = session.execute(
        sa.select(AccountSession).where(AccountSession.refresh_hash == hash_secret(refresh_token))
        .with_for_update()).scalar()
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = now
    session.execute(orm.metadata.tables[REVOKED_SESSIONS].insert().values(session_id=row.id, revoked_at=now))
    emit(make_envelope("session.revoked", 1, {"session_id": row.id, "revoked_at": now.isoformat()}))
    account = session.get(Account, row.account_id)
    if account is not None:
        services.audit(session, account_principal(account, account_role(session, account)), "session.revoked",
                       "account_session", row.id, {"account_id": account.id})
    return row.id


# ---- password sign-in with a lockout per address ----------------------------------------------


def _throttle_subject(address: str) -> str:
    return hashlib.sha256(f"sign-in:{normalise_email(address)}".encode()).hexdigest()


def _throttle(session: Session, address: str) -> SignInThrottle | None:
    found: SignInThrottle | None = session.execute(
        sa.select(SignInThrottle).where(SignInThrottle.subject == _throttle_subject(address))
        .with_for_update()).scalar()
    return found


def _locked_for(row: SignInThrottle | None, now: datetime) -> int | None:
    if row is None or row.locked_until is None or aware(row.locked_until) <= now:
        return None
    return max(1, int((aware(row.locked_until) - now).total_seconds() + 0.999))


def _count_failure(session: Session, address: str, now: datetime) -> None:
    session.execute(sa.delete(SignInThrottle).where(  # counts nobody needs any more
        SignInThrottle.window_started_at < now - FAILURE_WINDOW - LOCK_TIME,
        sa.or_(SignInThrottle.locked_until.is_(None), SignInThrottle.locked_until < now)))
    row = _throttle(session, address)
    if row is None:
        try:
            with session.begin_nested():
                session.add(SignInThrottle(subject=_throttle_subject(address), failures=1, window_started_at=now))
            return
        except IntegrityError:  # another failure for the same address at the same moment
            row = _throttle(session, address)
            if row is None:
                return
    if aware(row.window_started_at) + FAILURE_WINDOW <= now:
        row.failures, row.window_started_at, row.locked_until = 1, now, None
        return
    row.failures += 1
    if row.failures >= FAILURE_LIMIT:
        row.locked_until = now + LOCK_TIME


def password_session(session: Session, secret_key: str, email: str, password: str, now: datetime
                     ) -> SessionAnswer | Refusal:
    """A session for the right address and password. Unknown address, wrong password and disabled account
    answer alike (and take the same time); FAILURE_LIMIT failures for one address lock its password sign-in
    for LOCK_TIME, known address or not, so the lock says nothing about whether an account exists. Other
    addresses, behind the same client address or not, are not affected."""
    if not secret_key:
        raise AccountError("_body", "tokens are not available: the service has no secret key", 503)
    checked = check_password(session, email, password, now)
    if isinstance(checked, Refusal):
        return checked
    return start_session(session, secret_key, checked, "password", now)


def check_password(session: Session, email: str, password: str, now: datetime) -> Account | Refusal:
    """The account for the right address and password, under the lockout per address that POST /sessions
    and POST /tokens/{audience} share: a failure is counted (the caller commits before refusing), a
    success clears the count."""
    locked = _locked_for(_throttle(session, email), now)
    if locked is not None:
        return Refusal(429, SIGN_IN_LOCKED, locked)
    account = authenticate_account(session, email, password)
    if account is None:
        _count_failure(session, email, now)
        return Refusal(401, SIGN_IN_FAILED)
    row = _throttle(session, email)
    if row is not None:
        session.delete(row)
    return account


# ---- sign-up ----------------------------------------------------------------------------------


def sign_up(session: Session, emit: Emit, secret_key: str, organisation_name: str, email: str, password: str,
            language: str, now: datetime) -> SessionAnswer:
    """A new firm (an entrepreneur organisation, as ``python -m intake admin create-organisation`` makes one,
    with its first API key) and its first account, signed in."""
    if not secret_key:
        raise AccountError("_body", "tokens are not available: the service has no secret key", 503)
    if email_taken(session, email):
        raise AccountError("email", "an account with this e-mail address exists already", 409)
    org, _ = services.create_organisation(session, emit, name=organisation_name, role="entrepreneur")
    account = new_account(session, org.id, email, password, language, now)
    services.audit(session, account_principal(account, org.role), "account.created", "account", account.id,
                   {"role": org.role, "via": "signup"})
    return start_session(session, secret_key, account, "signup", now)


# ---- sign-in links ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkToSend:
    account_id: str
    email: str
    language: str
    token: str
    expires_at: datetime


def request_link(session: Session, email: str, now: datetime) -> LinkToSend | None:
    """A new single-use link for the active account with this address, or None (no such account, or
    LINKS_PER_ACCOUNT links mailed already within LINK_LIFETIME): the caller answers the same either way."""
    account = _account_by_address(session, email)
    if account is None or account.disabled_at is not None:
        return None
    recent = session.execute(sa.select(sa.func.count()).select_from(SignInLink).where(
        SignInLink.account_id == account.id, SignInLink.created_at > now - LINK_LIFETIME)).scalar_one()
    if recent >= LINKS_PER_ACCOUNT:
        return None
    token, token_hash = _secret_token()
    expires = now + LINK_LIFETIME
    session.add(SignInLink(token_hash=token_hash, account_id=account.id, created_at=now, expires_at=expires))
    services.audit(session, account_principal(account, account_role(session, account)), "sign_in_link.issued",
                   "account", account.id, {})
    return LinkToSend(account.id, account.email, account.language, token, expires)


def link_session(session: Session, secret_key: str, token: str, now: datetime) -> SessionAnswer:
    if not secret_key:
        raise AccountError("_body", "tokens are not available: the service has no secret key", 503)
    token_hash = hash_secret(token)
    link: SignInLink | None = session.execute(
        sa.select(SignInLink).where(SignInLink.token_hash == token_hash).with_for_update()).scalar()
    if link is None:
        raise Gone("token", LINK_UNKNOWN, 404)
    if link.used_at is not None:
        raise Gone("token", LINK_USED)
    if aware(link.expires_at) <= now:
        raise Gone("token", LINK_EXPIRED)
    # used once: the update only takes a link nobody used meanwhile
    used = session.execute(sa.update(SignInLink).where(SignInLink.token_hash == token_hash,
                                                       SignInLink.used_at.is_(None)).values(used_at=now))
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise Gone("token", LINK_USED)
    account = session.get(Account, link.account_id)
    if account is None or account.disabled_at is not None:
        raise Gone("token", LINK_EXPIRED)
    return start_session(session, secret_key, account, "link", now)


# ---- invitations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str
    organisation_name: str


def invite(session: Session, principal: Principal, email: str, language: str, now: datetime
           ) -> NewInvitation:
    org = services.caller_organisation(session, principal)
    if email_taken(session, email):
        raise AccountError("email", "an account with this e-mail address exists already", 409)
    token, token_hash = _secret_token()
    invitation = Invitation(id=secrets.token_hex(8), organisation_id=org.id, email=normalise_email(email),
                            language=language, token_hash=token_hash, created_at=now,
                            expires_at=now + INVITATION_LIFETIME)
    session.add(invitation)
    session.flush()
    services.audit(session, principal, "invitation.created", "invitation", invitation.id, {"language": language})
    return NewInvitation(invitation, token, org.name)


def open_invitations(session: Session, principal: Principal, now: datetime) -> list[Invitation]:
    rows = session.execute(sa.select(Invitation).where(
        Invitation.organisation_id == principal.organisation_id, Invitation.accepted_at.is_(None),
        Invitation.expires_at > now).order_by(Invitation.created_at, Invitation.id)).scalars().all()
    return list(rows)


def _usable_invitation(session: Session, token: str, now: datetime) -> Invitation:
    invitation: Invitation | None = session.execute(
        sa.select(Invitation).where(Invitation.token_hash == hash_secret(token)).with_for_update()).scalar()
    if invitation is None:
        raise Gone("token", INVITATION_UNKNOWN, 404)
    if invitation.accepted_at is not None:
        raise Gone("token", INVITATION_ACCEPTED)
    if aware(invitation.expires_at) <= now:
        raise Gone("token", INVITATION_EXPIRED)
    return invitation


@dataclass(frozen=True)
class InvitationView:
    organisation_name: str
    email: str
    expires_at: datetime
    language: str


def show_invitation(session: Session, token: str, now: datetime) -> InvitationView:
    invitation = _usable_invitation(session, token, now)
    org = session.get(orm.Organisation, invitation.organisation_id)
    return InvitationView(org.name if org else "", invitation.email, aware(invitation.expires_at),
                          invitation.language)


def accept_invitation(session: Session, secret_key: str, token: str, password: str, now: datetime
                      ) -> SessionAnswer:
    if not secret_key:
        raise AccountError("_body", "tokens are not available: the service has no secret key", 503)
    invitation = _usable_invitation(session, token, now)
    account = new_account(session, invitation.organisation_id, invitation.email, password, invitation.language,
                          now)
    invitation.accepted_at, invitation.account_id = now, account.id
    role = account_role(session, account)
    services.audit(session, account_principal(account, role), "account.created", "account", account.id,
                   {"role": role, "via": "invitation", "invitation_id": invitation.id})
    return start_session(session, secret_key, account, "invitation", now)


# ---- retention --------------------------------------------------------------------------------


def purge_ended(session: Session, now: datetime) -> int:
    """Delete what can no longer be used, PURGE_AFTER after it ended: links (used or expired), invitations
    (accepted or expired: their address goes with them), sessions (revoked, idle or too old) and intake's
    record of revoked sessions (a session's tokens live an hour at most after its end). Returns the rows
    deleted. Run by the retention job."""
    cutoff = now - PURGE_AFTER
    revoked = orm.metadata.tables[REVOKED_SESSIONS]
    statements = [
        sa.delete(SignInLink).where(SignInLink.expires_at < cutoff),
        sa.delete(Invitation).where(sa.or_(Invitation.accepted_at < cutoff, Invitation.expires_at < cutoff)),
        sa.delete(AccountSession).where(sa.or_(
            AccountSession.revoked_at < cutoff, AccountSession.refreshed_at < cutoff - SESSION_IDLE_LIMIT,
            AccountSession.created_at < cutoff - SESSION_MAX_AGE)),
        sa.delete(revoked).where(revoked.c.revoked_at < cutoff),
    ]
    deleted = 0
    for statement in statements:
        result: Any = session.execute(statement)
        deleted += int(result.rowcount)
    return deleted
