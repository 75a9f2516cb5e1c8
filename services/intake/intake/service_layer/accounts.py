"""Accounts of people (of any organisation), their tokens, and scoped, rotatable API keys. Each use case runs
in one transaction.

Scopes of an API key (the whole list; a key holds one or more):

- ``read``:  GET requests on the organisation's data;
- ``write``: POST, PUT, PATCH and DELETE requests on the organisation's data;
- ``keys``:  managing the organisation's API keys, accounts and invitations (reading them too).

A key issued without scopes (by ``python -m intake admin``, or before scopes existed) holds all three, as
does an account's token (an account acts with its organisation's role). A key can only give a new key scopes
it holds itself. The scopes are stored with the key and sent with ``apikey.issued`` v2, and every service
checks them in one place (werkplaats_shared.auth). Disabling an account puts it in every service's
``disabled_accounts``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkplaats_shared.auth import ACCOUNT_KEY_PREFIX, DISABLED_ACCOUNTS, Principal, generate_key, stored_scopes
from werkplaats_shared.contracts import SCOPES, make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.tokens import IssuedToken, issue_token

from ..adapters import orm
from ..adapters.accounts_orm import Account, ApiKeyScope
from . import services
from .services import Emit

ALL_SCOPES = frozenset(SCOPES)
TOKEN_SERVICES = ("intake", "matching", "scheduling")
TOKEN_LIFETIME = timedelta(minutes=15)
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 128
EMAIL_MAX_LENGTH = 254
LANGUAGES = ("nl", "en")


class AccountError(Exception):
    """A refused request about accounts or keys; ``field`` names the input at fault."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.status = status


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, RFC 9106 low-memory profile


@cache
def _dummy_hash() -> str:
    """A hash to verify against when no account matches, so that an unknown address costs the same time."""
    return _hasher().hash(secrets.token_urlsafe(16))


def normalise_email(email: str) -> str:
    return email.strip().lower()


# ---- scopes ---------------------------------------------------------------------------------


def _check_scopes(principal: Principal, wanted: list[str]) -> list[str]:
    unknown = [s for s in wanted if s not in ALL_SCOPES]
    if unknown:
        raise AccountError("scopes", f"unknown scope; the scopes are: {', '.join(SCOPES)}")
    if not set(wanted) <= principal.scopes:
        raise AccountError("scopes", "a key cannot give scopes it does not hold itself", 403)
    return [s for s in SCOPES if s in wanted]


# ---- accounts -------------------------------------------------------------------------------


def email_taken(session: Session, address: str) -> bool:
    return session.execute(sa.select(Account.id).where(Account.email == normalise_email(address))).first() is not None


def new_account(session: Session, organisation_id: str, email: str, password: str, language: str = "nl",
                now: Any = None) -> Account:
    """Store an account: 409 on the address when it has one already (whatever its case)."""
    address = normalise_email(email)
    if email_taken(session, address):
        raise AccountError("email", "an account with this e-mail address exists already", 409)
    account = Account(id=secrets.token_hex(8), organisation_id=organisation_id, email=address,
                      password_hash=_hasher().hash(password), created_at=now or utcnow(),
                      language=language if language in LANGUAGES else "nl")
    session.add(account)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # the same address, created at the same moment by another request
        raise AccountError("email", "an account with this e-mail address exists already", 409) from None
    return account


def create_account(session: Session, principal: Principal, email: str, password: str,
                   language: str = "nl") -> Account:
    org = services.caller_organisation(session, principal)
    account = new_account(session, org.id, email, password, language)
    services.audit(session, principal, "account.created", "account", account.id, {"role": org.role})
    return account


def visible_accounts(principal: Principal) -> sa.Select[Any]:
    return (sa.select(Account).where(Account.organisation_id == principal.organisation_id)
            .order_by(Account.created_at, Account.id))


def get_account(session: Session, principal: Principal, account_id: str) -> Account:
    account: Account | None = session.execute(visible_accounts(principal).where(Account.id == account_id)).scalar()
    if account is None:
        raise services.NotFound(account_id)
    return account


def disable_account(session: Session, emit: Emit, principal: Principal, account_id: str) -> Account:
    account = get_account(session, principal, account_id)
    if account.disabled_at is None:
        disable(session, emit, account)
        services.audit(session, principal, "account.disabled", "account", account.id, {})
    return account


def disable(session: Session, emit: Emit, account: Account) -> None:
    """Disable an active account: its tokens stop working in every service (``account.disabled``)."""
    account.disabled_at = utcnow()
    session.execute(orm.metadata.tables[DISABLED_ACCOUNTS].insert().values(
        account_id=account.id, organisation_id=account.organisation_id, disabled_at=account.disabled_at))
    emit(make_envelope("account.disabled", 1, {"account_id": account.id,
                                               "organisation_id": account.organisation_id,
                                               "disabled_at": account.disabled_at.isoformat()}))


def authenticate_account(session: Session, email: str, password: str) -> Account | None:
    """The active account with this address and password, or None. Unknown address, wrong password and a
    disabled account take the same time and give the same answer."""
    account = session.execute(sa.select(Account).where(Account.email == normalise_email(email))).scalar()
    try:
        _hasher().verify(account.password_hash if account is not None else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if account is None or account.disabled_at is not None:
        return None
    if _hasher().check_needs_rehash(account.password_hash):
        account.password_hash = _hasher().hash(password)
    return account


def account_role(session: Session, account: Account) -> str:
    org = session.get(orm.Organisation, account.organisation_id)
    if org is None:
        raise services.NotFound(account.organisation_id)
    return org.role


def issue_account_token(secret_key: str, account: Account, service: str, role: str,
                        session_id: str | None = None) -> IssuedToken:
    """A token acting as the account's organisation, with that organisation's role (``account_role``)."""
    if service not in TOKEN_SERVICES:
        raise AccountError("audience", f"the audience is one of: {', '.join(TOKEN_SERVICES)}", 404)
    if not secret_key:
        raise AccountError("_body", "tokens are not available: the service has no secret key", 503)
    return issue_token(secret_key, account_id=account.id, organisation_id=account.organisation_id,
                       role=role, service=service, lifetime=TOKEN_LIFETIME, session_id=session_id)


def account_principal(account: Account, role: str) -> Principal:
    """The account acting for itself (the actor of the audit entries of its own sign-in actions)."""
    return Principal(organisation_id=account.organisation_id, role=role, key_id=ACCOUNT_KEY_PREFIX + account.id)


def set_language(session: Session, principal: Principal, language: str) -> Account:
    if principal.account_id is None:
        raise AccountError("Authorization", "only a person's account has a language: sign in with an account token",
                           403)
    account = session.get(Account, principal.account_id)
    if account is None or account.organisation_id != principal.organisation_id:
        raise services.NotFound(principal.account_id)
    if account.language != language:
        account.language = language
        services.audit(session, principal, "account.language_changed", "account", account.id,
                       {"language": language})
    return account


# ---- API keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyView:
    key_id: str
    role: str
    scopes: list[str]
    label: str | None
    rotated_from: str | None
    created_at: Any
    revoked_at: Any
    api_key: str | None = None  # the plaintext, only in the answer that creates the key


def _key_view(session: Session, row: Any, api_key: str | None = None) -> KeyView:
    extra = session.get(ApiKeyScope, row.key_id)
    held = stored_scopes(row.scopes)
    return KeyView(key_id=row.key_id, role=row.role, scopes=[s for s in SCOPES if s in held],
                   label=extra.label if extra else None, rotated_from=extra.rotated_from if extra else None,
                   created_at=row.created_at, revoked_at=row.revoked_at, api_key=api_key)


def list_keys(session: Session, principal: Principal) -> list[KeyView]:
    rows = session.execute(sa.select(orm.api_keys).where(orm.api_keys.c.organisation_id == principal.organisation_id)
                           .order_by(orm.api_keys.c.created_at, orm.api_keys.c.key_id)).all()
    return [_key_view(session, row) for row in rows]


def _own_key(session: Session, principal: Principal, key_id: str) -> Any:
    row = session.execute(sa.select(orm.api_keys).where(orm.api_keys.c.key_id == key_id,
                                                        orm.api_keys.c.organisation_id == principal.organisation_id)
                          ).first()
    if row is None:
        raise services.NotFound(key_id)
    return row


def get_key(session: Session, principal: Principal, key_id: str) -> KeyView:
    return _key_view(session, _own_key(session, principal, key_id))


def _issue(session: Session, emit: Emit, principal: Principal, scopes: list[str], label: str | None,
           rotated_from: str | None) -> KeyView:
    org = services.caller_organisation(session, principal)
    key = generate_key()
    now = utcnow()
    session.execute(orm.api_keys.insert().values(key_id=key.key_id, organisation_id=org.id, role=org.role,
                                                 secret_hash=key.secret_hash, created_at=now, scopes=scopes))
    session.add(ApiKeyScope(key_id=key.key_id, label=label, rotated_from=rotated_from))
    session.flush()
    emit(make_envelope("apikey.issued", 2, {
        "key_id": key.key_id, "organisation_id": org.id, "role": org.role, "secret_hash": key.secret_hash,
        "issued_at": now.isoformat(), "scopes": scopes,
    }))
    return _key_view(session, _own_key(session, principal, key.key_id), api_key=key.plaintext)


def create_key(session: Session, emit: Emit, principal: Principal, scopes: list[str],
               label: str | None) -> KeyView:
    granted = _check_scopes(principal, scopes)
    key = _issue(session, emit, principal, granted, label, None)
    services.audit(session, principal, "apikey.issued", "api_key", key.key_id, {"scopes": granted})
    return key


def rotate_key(session: Session, emit: Emit, principal: Principal, key_id: str) -> KeyView:
    """A new key with the old one's scopes and label; the old one is revoked in the same transaction."""
    old = get_key(session, principal, key_id)
    if old.revoked_at is not None:
        raise AccountError("key_id", "a revoked key cannot be rotated", 409)
    granted = _check_scopes(principal, old.scopes)
    key = _issue(session, emit, principal, granted, old.label, key_id)
    services.revoke_key(session, emit, key_id)
    services.audit(session, principal, "apikey.rotated", "api_key", key.key_id, {"rotated_from": key_id})
    return key


def revoke_key(session: Session, emit: Emit, principal: Principal, key_id: str) -> KeyView:
    old = get_key(session, principal, key_id)
    if old.revoked_at is None:
        services.revoke_key(session, emit, key_id)
        services.audit(session, principal, "apikey.revoked", "api_key", key_id, {})
    return get_key(session, principal, key_id)
