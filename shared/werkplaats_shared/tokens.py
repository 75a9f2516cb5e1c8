"""Short-lived signed tokens (JWT) for accounts (people of any organisation), accepted by every service beside
API keys.

One fixed algorithm, HS256, keyed with a key derived from WERKPLAATS_SECRET_KEY (so the secret that signs
scheduling's links never signs a token directly). Every token must carry exp, iat, nbf, iss, aud, sub and
jti, plus the organisation and role it acts for; the audience names the one service it is meant for
(``werkplaats:<service>``), and a token may live at most MAX_LIFETIME. A verified token becomes the same
Principal an API key of the account's organisation does, with key id ``acct_<account id>``.

A token issued for a sign-in session carries its id in the claim ``sid``: once the session is revoked
(``session.revoked``), every service refuses the token (auth.py). A token without ``sid`` (``POST
/tokens/<audience>``) cannot be revoked before it expires: that is why tokens live minutes, not days.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from .auth import ACCOUNT_KEY_PREFIX, CredentialRefused, Principal
from .config import Settings

ALGORITHM = "HS256"
ISSUER = "werkplaats:intake"
TOKEN_ROLES = frozenset({"coordinator", "institution", "entrepreneur"})
DEFAULT_LIFETIME = timedelta(minutes=15)
MAX_LIFETIME = timedelta(hours=1)
LEEWAY = timedelta(seconds=30)
MIN_SECRET_LENGTH = 32
MAX_SUBJECT_LENGTH = 27  # "acct_" + subject fits the 32-character key-id columns of the audit trails
MAX_SESSION_ID_LENGTH = 32
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "org", "role")


class TokenRefused(CredentialRefused):
    """A token that is not accepted; ``reason`` says why without revealing anything about keys or accounts."""


def audience_of(service: str) -> str:
    return f"werkplaats:{service}"


def _signing_key(secret_key: str) -> bytes:
    if len(secret_key) < MIN_SECRET_LENGTH:
        raise ValueError(f"WERKPLAATS_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters to sign tokens")
    return hmac.new(secret_key.encode("utf-8"), b"werkplaats access tokens v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    audience: str


def issue_token(secret_key: str, *, account_id: str, organisation_id: str, role: str, service: str,
                lifetime: timedelta = DEFAULT_LIFETIME, now: datetime | None = None,
                session_id: str | None = None) -> IssuedToken:
    if role not in TOKEN_ROLES:
        raise ValueError(f"tokens are issued to {', '.join(sorted(TOKEN_ROLES))} accounts only")
    if not account_id or len(account_id) > MAX_SUBJECT_LENGTH:
        raise ValueError(f"account id must be 1..{MAX_SUBJECT_LENGTH} characters")
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise ValueError(f"lifetime must be positive and at most {MAX_LIFETIME}")
    if session_id is not None and not 0 < len(session_id) <= MAX_SESSION_ID_LENGTH:
        raise ValueError(f"session id must be 1..{MAX_SESSION_ID_LENGTH} characters")
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = issued + lifetime
    claims = {"iss": ISSUER, "aud": audience_of(service), "sub": account_id, "org": organisation_id,
              "role": role, "iat": issued, "nbf": issued, "exp": expires, "jti": secrets.token_hex(16)}
    if session_id is not None:
        claims["sid"] = session_id
    token = jwt.encode(claims, _signing_key(secret_key), algorithm=ALGORITHM, headers={"typ": "JWT"})
    return IssuedToken(token=token, expires_at=expires, audience=audience_of(service))


class TokenVerifier:
    """Verifies tokens meant for one service."""

    def __init__(self, secret_key: str, service: str) -> None:
        self._key = _signing_key(secret_key)
        self.audience = audience_of(service)

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRefused("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise TokenRefused(f"token algorithm not accepted (only {ALGORITHM})")
        if any(name in header for name in ("jku", "jwk", "x5u", "x5c", "crit")):
            raise TokenRefused("token header not accepted")
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], audience=self.audience, issuer=ISSUER,
                                leeway=LEEWAY, options={"require": [c for c in REQUIRED_CLAIMS
                                                                    if c not in ("org", "role")]})
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("token not valid yet") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused(f"token not meant for this service (audience must be {self.audience})") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("token issuer not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(f"token lacks the required claim '{exc.claim}'") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("token signature invalid") from None
        except jwt.InvalidTokenError:
            raise TokenRefused("malformed token") from None
        return _principal(claims)


def _principal(claims: dict[str, Any]) -> Principal:
    for name in ("org", "role"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise TokenRefused(f"token lacks the required claim '{name}'")
    if not isinstance(claims["exp"], int | float) or not isinstance(claims["iat"], int | float):
        raise TokenRefused("malformed token")
    if claims["exp"] - claims["iat"] > MAX_LIFETIME.total_seconds():
        raise TokenRefused(f"token lives longer than {int(MAX_LIFETIME.total_seconds() // 60)} minutes")
    if claims["role"] not in TOKEN_ROLES:
        raise TokenRefused("token role not accepted")
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
        raise TokenRefused("token subject invalid")
    session_id = claims.get("sid")
    if session_id is not None and (not isinstance(session_id, str)
                                   or not 0 < len(session_id) <= MAX_SESSION_ID_LENGTH):
        raise TokenRefused("token session invalid")
    return Principal(organisation_id=claims["org"], role=claims["role"], key_id=ACCOUNT_KEY_PREFIX + subject,
                     session_id=session_id)


def verifier_for(settings: Settings) -> TokenVerifier | None:
    """The service's token verifier, or None (API keys only) while WERKPLAATS_SECRET_KEY is not set."""
    return TokenVerifier(settings.secret_key, settings.service) if settings.secret_key else None
