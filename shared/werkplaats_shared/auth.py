"""API keys: bound to one organisation and one role, shown once, stored as a SHA-256 hash.

A key reads ``wpk_<key_id>_<secret>``; the key id finds the row, the secret is compared in
constant time against its stored hash. Keys are 256-bit random secrets, so an unsalted hash is safe.
Where a service passes a token verifier (tokens.py), ``Authorization: Bearer <jwt>`` of an account (a
person of any organisation) is accepted too and becomes the same kind of Principal, unless its account is in
the replica of disabled accounts or its sign-in session (claim ``sid``) in the replica of revoked sessions.

Scopes, checked here for every service: GET, HEAD and OPTIONS need ``read``; every other method needs
``write``; the routes a service declares as key management (``declare_key_management``) need ``keys``.
An API key holds the scopes stored with it; an account token holds all of them.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable, NoReturn, Protocol, TypeVar, cast

import sqlalchemy as sa
from flask import Flask, g, request
from flask_smorest import abort
from sqlalchemy.engine import Engine

from .contracts import SCOPES
from .db import READ_ONLY
from .http import DOCS_PATHS, INDEX_PATH, request_language

PREFIX = "wpk"
PUBLIC_PATHS = frozenset({INDEX_PATH, "/health", "/ready", "/openapi.json"}) | DOCS_PATHS
ALL_SCOPES = frozenset(SCOPES)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DISABLED_ACCOUNTS = "disabled_accounts"
REVOKED_SESSIONS = "revoked_sessions"
ACCOUNT_KEY_PREFIX = "acct_"  # the key id of a token's Principal: acct_<account id>
DISABLED_ACCOUNT = "the account of this token is disabled"
REVOKED_SESSION = "the sign-in session of this token has ended"
LACKS_SCOPE = {scope: f"this API key lacks the scope {scope}" for scope in SCOPES}
_KEY_MANAGEMENT = "werkplaats.key_management"
MISSING_KEY = "missing API key: send 'Authorization: Bearer <key>'"
INVALID_KEY = "invalid or revoked API key"
# Every reason a 401 gives (this module's and tokens.py's), in Dutch: every service answers a refused
# credential in the caller's language (Dutch unless English is asked for), the same words in all three.
# A pattern matches the whole English text; its named groups carry values into the Dutch text.
UNAUTHORIZED_NL: tuple[tuple[str, str], ...] = (
    (re.escape(MISSING_KEY), "De API-sleutel ontbreekt: stuur 'Authorization: Bearer <sleutel>'."),
    (re.escape(INVALID_KEY), "Ongeldige of ingetrokken API-sleutel."),
    (re.escape(DISABLED_ACCOUNT), "Het account van dit token is uitgeschakeld."),
    (re.escape(REVOKED_SESSION), "De aanmeldsessie van dit token is beëindigd."),
    (r"token session invalid", "De sessie (sid) van het token is ongeldig."),
    (r"malformed token", "Ongeldig token."),
    (r"token algorithm not accepted \(only (?P<a>\w+)\)",
     "Het algoritme van het token wordt niet aanvaard (alleen {a})."),
    (r"token header not accepted", "De header van het token wordt niet aanvaard."),
    (r"token expired", "Het token is verlopen."),
    (r"token not valid yet", "Het token is nog niet geldig."),
    (r"token not meant for this service \(audience must be (?P<a>\S+)\)",
     "Het token is niet voor deze dienst bedoeld (de audience moet {a} zijn)."),
    (r"token issuer not accepted", "De uitgever van het token wordt niet aanvaard."),
    (r"token lacks the required claim '(?P<a>\w+)'", "Het token mist de verplichte claim '{a}'."),
    (r"token signature invalid", "De handtekening van het token is ongeldig."),
    (r"token lives longer than (?P<a>\d+) minutes", "Het token leeft langer dan {a} minuten."),
    (r"token role not accepted", "De rol van het token wordt niet aanvaard."),
    (r"token subject invalid", "Het onderwerp (sub) van het token is ongeldig."),
)


# Every reason a 403 gives (this module's, the authorization matrix's, a workspace that is not the caller's), in
# Dutch, the same way: a role named in a reason is written as the glossary (docs/glossary.md) names it.
ROLES_NL = {"coordinator": "coördinator", "institution": "onderwijsinstelling", "entrepreneur": "ondernemer"}
FORBIDDEN_NL: tuple[tuple[str, str], ...] = (
    (r"this API key lacks the scope (?P<a>\w+)", "Deze API-sleutel heeft het recht '{a}' niet."),
    (r"this action needs the role (?P<roles>\w+(?: or \w+)*)", "Deze actie vraagt de rol {roles}."),
    (r"no role may use this route", "Geen enkele rol mag deze route gebruiken."),
    (r"not one of your workspaces", "Dit is niet een van uw werkplaatsen."),
    (r"the signature of this snapshot request is not valid or has expired",
     "De handtekening van dit verzoek om een momentopname is ongeldig of verlopen."),
)


def _dutch(table: tuple[tuple[str, str], ...], reason: str) -> str | None:
    for pattern, dutch in table:
        found = re.fullmatch(pattern, reason)
        if found:
            values = found.groupdict()
            if "roles" in values:
                values["roles"] = " of ".join(ROLES_NL.get(r, r) for r in values["roles"].split(" or "))
            return dutch.format(**values)
    return None


def unauthorized_text(reason: str, language: str) -> str:
    """A 401's reason in ``language`` (nl or en); an unknown reason stays as written."""
    return (_dutch(UNAUTHORIZED_NL, reason) or reason) if language == "nl" else reason


def forbidden_text(reason: str, language: str) -> str:
    """A 403's reason in ``language`` (nl or en); an unknown reason stays as written."""
    return (_dutch(FORBIDDEN_NL, reason) or reason) if language == "nl" else reason


def refuse(status: int, reason: str, field: str | None = None) -> NoReturn:
    """Answer 403 (or 401) with ``reason`` in the caller's language (Accept-Language, ``?lang``), as the
    message and, with ``field``, as that field's reason."""
    language = request_language()
    text = (forbidden_text if status == 403 else unauthorized_text)(reason, language)
    abort(status, message=text, errors=[{"field": field, "reason": text}] if field else [],
          headers={"Content-Language": language, "Vary": "Accept-Language"})
    raise AssertionError("abort raises")  # pragma: no cover - flask_smorest's abort is not typed NoReturn


def _refuse_credential(reason: str) -> None:
    refuse(401, reason)


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    organisation_id: str
    role: str
    key_id: str
    scopes: frozenset[str] = ALL_SCOPES
    session_id: str | None = None  # the sign-in session of an account token, if it has one

    @property
    def account_id(self) -> str | None:
        """The account of a token's Principal; None for an API key."""
        if self.key_id.startswith(ACCOUNT_KEY_PREFIX):
            return self.key_id.removeprefix(ACCOUNT_KEY_PREFIX)
        return None


class CredentialRefused(Exception):
    """A presented credential that is not accepted, with a reason safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenCheck(Protocol):
    def verify(self, token: str) -> Principal:
        """The token's Principal; raises CredentialRefused."""


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret_hash: str
    plaintext: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def generate_key() -> NewKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id=key_id, secret_hash=hash_secret(secret), plaintext=f"{PREFIX}_{key_id}_{secret}")


def authenticate(engine: Engine, api_keys: sa.Table, presented: str) -> Principal | None:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    _, key_id, secret = parts
    # a read: it takes no write lock (SQLite's writers begin IMMEDIATE) and waits for no writer
    with engine.connect().execution_options(**READ_ONLY) as conn:
        row = conn.execute(_key_query(api_keys), {"key_id": key_id}).first()
    candidate = hash_secret(secret)
    if row is None:
        hmac.compare_digest(candidate, candidate)  # same work whether or not the id exists
        return None
    if not hmac.compare_digest(candidate, row.secret_hash) or row.revoked_at is not None:
        return None
    return Principal(organisation_id=row.organisation_id, role=row.role, key_id=key_id,
                     scopes=stored_scopes(row.scopes))


@functools.cache
def _key_query(api_keys: sa.Table) -> sa.Select[Any]:
    """The key's row by its id, built once per table: every request asks it."""
    return sa.select(api_keys.c.organisation_id, api_keys.c.role, api_keys.c.secret_hash, api_keys.c.revoked_at,
                     api_keys.c.scopes).where(api_keys.c.key_id == sa.bindparam("key_id"))


def stored_scopes(value: Any) -> frozenset[str]:
    """The scopes of a stored key; anything unreadable holds none, so a damaged row never widens access."""
    if not isinstance(value, list):
        return frozenset()
    return frozenset(scope for scope in value if scope in ALL_SCOPES)


def required_scope(method: str, manages_keys: bool) -> str:
    if manages_keys:
        return "keys"
    return "read" if method in READ_METHODS else "write"


def declare_key_management(app: Flask, *blueprints: str) -> None:
    """Name the blueprints whose routes manage keys or accounts: every method on them needs the scope ``keys``."""
    app.extensions.setdefault(_KEY_MANAGEMENT, set()).update(blueprints)


def account_disabled(engine: Engine, api_keys: sa.Table, principal: Principal) -> bool:
    if not principal.key_id.startswith(ACCOUNT_KEY_PREFIX):
        return False
    disabled = api_keys.metadata.tables[DISABLED_ACCOUNTS]
    account_id = principal.key_id.removeprefix(ACCOUNT_KEY_PREFIX)
    with engine.connect().execution_options(**READ_ONLY) as conn:  # a read: no write lock on SQLite
        return conn.execute(sa.select(disabled.c.account_id)
                            .where(disabled.c.account_id == account_id)).first() is not None


def session_revoked(engine: Engine, api_keys: sa.Table, principal: Principal) -> bool:
    if principal.session_id is None:
        return False
    revoked = api_keys.metadata.tables[REVOKED_SESSIONS]
    with engine.connect().execution_options(**READ_ONLY) as conn:  # a read: no write lock on SQLite
        return conn.execute(sa.select(revoked.c.session_id)
                            .where(revoked.c.session_id == principal.session_id)).first() is not None


def _refuse_scope(scope: str) -> None:
    refuse(403, LACKS_SCOPE[scope], "Authorization")


def install_auth(app: Flask, engine: Engine, api_keys: sa.Table,
                 public_prefixes: tuple[str, ...] = (), tokens: TokenCheck | None = None,
                 public_paths: frozenset[str] = frozenset()) -> None:
    """Every request but health, readiness, the OpenAPI document and its browsable view needs a valid API key, or, with
    ``tokens``, a valid account token.

    ``public_prefixes`` names path prefixes (ending in ``/``) whose routes carry their own credential,
    such as a signed link; requests under them are passed on without an API key. ``public_paths`` names
    exact paths of the same kind (sign-in routes whose body is the credential).
    """
    if any(not prefix.startswith("/") or not prefix.endswith("/") for prefix in public_prefixes):
        raise ValueError("public path prefixes must start and end with '/'")

    @app.before_request
    def _authenticate() -> None:
        if request.path in PUBLIC_PATHS or request.path in public_paths or request.method == "OPTIONS":
            return None
        if public_prefixes and request.path.startswith(public_prefixes):
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            _refuse_credential(MISSING_KEY)
        presented = token.strip()
        if tokens is not None and presented.count(".") == 2 and not presented.startswith(f"{PREFIX}_"):
            try:
                principal = tokens.verify(presented)
            except CredentialRefused as exc:
                _refuse_credential(exc.reason)
            if account_disabled(engine, api_keys, principal):
                _refuse_credential(DISABLED_ACCOUNT)
            if session_revoked(engine, api_keys, principal):
                _refuse_credential(REVOKED_SESSION)
        else:
            found = authenticate(engine, api_keys, presented)
            if found is None:
                _refuse_credential(INVALID_KEY)
                return None
            principal = found
        g.principal = principal
        wanted = required_scope(request.method, request.blueprint in app.extensions.get(_KEY_MANAGEMENT, ()))
        if wanted not in principal.scopes:
            _refuse_scope(wanted)
        return None


def current_principal() -> Principal:
    return cast(Principal, g.principal)


def roles(*allowed: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_principal().role not in allowed:
                refuse(403, f"this action needs the role {' or '.join(allowed)}")
            return fn(*args, **kwargs)

        return cast(F, wrapper)

    return decorate
