"""The signed-in person: their account and short-lived service tokens, kept in the server-side session.

A session answer from intake (sign-up, password, e-mail link or invitation) becomes the session's ``auth``
entry; a token about to expire is refreshed with the session's refresh token; signing out revokes the
session at intake, which tells every service to refuse its tokens."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..adapters.clients import ApiError, IntakeClient

SERVICES = ("intake", "matching", "scheduling")
REFRESH_MARGIN = timedelta(seconds=60)
KEY = "auth"


class NotSignedIn(Exception):
    """No session, or one intake no longer accepts (expired, revoked, account disabled)."""


@dataclass(frozen=True)
class Person:
    account_id: str
    email: str
    role: str
    organisation_id: str
    organisation_name: str
    language: str


def _parse(moment: str) -> datetime:
    found = datetime.fromisoformat(moment)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def begin(store: MutableMapping[str, Any], answer: dict[str, Any]) -> Person:
    """Keep a session answer; the caller regenerates the session id first (no fixation)."""
    store[KEY] = {
        "session_id": answer["session_id"],
        "refresh_token": answer["refresh_token"],
        "account": answer["account"],
        "tokens": {s: answer["tokens"][s] for s in SERVICES},
    }
    store["language"] = answer["account"].get("language") or "nl"
    return person(store)


def person(store: MutableMapping[str, Any]) -> Person:
    auth = store.get(KEY)
    if not auth:
        raise NotSignedIn()
    a = auth["account"]
    return Person(account_id=a["id"], email=a["email"], role=a["role"], organisation_id=a["organisation_id"],
                  organisation_name=a.get("organisation_name") or "", language=a.get("language") or "nl")


def signed_in(store: MutableMapping[str, Any]) -> bool:
    return bool(store.get(KEY))


def token(store: MutableMapping[str, Any], intake: IntakeClient, service: str,
          now: datetime | None = None, client_address: str | None = None) -> str:
    """The person's token for one service, refreshed first when it is about to expire."""
    auth = store.get(KEY)
    if not auth:
        raise NotSignedIn()
    moment = now or datetime.now(UTC)
    held = auth["tokens"][service]
    if _parse(held["expires_at"]) - REFRESH_MARGIN <= moment:
        try:
            answer = intake.refresh_session(auth["refresh_token"], client_address)
        except ApiError as exc:
            if exc.status in (400, 401, 403, 404, 410, 422):
                store.pop(KEY, None)
                raise NotSignedIn() from exc
            raise
        auth = {**auth, "refresh_token": answer["refresh_token"], "account": answer["account"],
                "tokens": {s: answer["tokens"][s] for s in SERVICES}}
        store[KEY] = auth
        held = auth["tokens"][service]
    return str(held["token"])


def end(store: MutableMapping[str, Any], intake: IntakeClient, client_address: str | None = None) -> None:
    """Sign out: revoke the session at intake (its tokens are refused everywhere) and forget it here."""
    auth = store.pop(KEY, None)
    if auth:
        try:
            intake.revoke_session(auth["refresh_token"], client_address)
        except ApiError as exc:
            if exc.status not in (400, 401, 404, 410):
                raise
