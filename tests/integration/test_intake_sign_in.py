"""Signing people in at intake's HTTP edge, the back end of the web portal.

A firm signs up and is signed in at once; people of any organisation sign in with e-mail and password or
with a single-use e-mail link, and are invited by their organisation; a session holds one short-lived
token per service (claim ``sid``) and a refresh token, and its sign-out is announced with
``session.revoked`` so that every service refuses its tokens. Mails are received by a real SMTP server
(aiosmtpd); expiry is tested with a clock the test sets. Password sign-in is locked per address after
repeated failures without locking anyone else, and rate-limited per client address. Bad input gets a field
error and stores nothing; no e-mail address reaches a log, a message or the audit trail.
"""

from __future__ import annotations

import email
import email.policy
import functools
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient
from intake import bootstrap as intake_bootstrap
from intake.adapters import orm
from intake.adapters.accounts_orm import Account, AccountSession, Invitation, SignInLink, SignInThrottle
from intake.entrypoints import accounts_api, sign_in_api
from intake.entrypoints.api import create_intake_app
from intake.service_layer import services, sign_in
from werkplaats_shared import tokens
from werkplaats_shared.auth import REVOKED_SESSION, hash_secret
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import parse_envelope
from werkplaats_shared.db import upgrade_database
from werkplaats_shared.service import Infrastructure
from werkzeug.test import TestResponse

from ..conftest import free_port
from .harness import wait_until

SECRET = "sign-in-test-only-secret-key-0123456789abcdef"
PORTAL = "https://portal.werkplaats.example.nl"
EMAIL = "Sanne.Bakker@bakkerij-bakker.example.nl"
PASSWORD = "a long enough password 42"
SERVICES = ("intake", "matching", "scheduling")


class Clock:
    """The time intake's sign-in rules see; starts at the real time, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


class Mails:
    """aiosmtpd handler keeping every received message, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def wait_for(self, count: int) -> list[EmailMessage]:
        wait_until(lambda: len(self.messages) >= count, 10, f"{count} mails")
        return self.messages


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link_token(message: EmailMessage, kind: str) -> str:
    found = re.findall(rf"{re.escape(PORTAL)}/{kind}/([A-Za-z0-9_-]+)", body_of(message))
    assert len(found) == 1, body_of(message)
    return str(found[0])


@dataclass
class World:
    infra: Infrastructure
    client: FlaskClient
    clock: Clock
    mails: Mails
    keys: dict[str, str] = field(default_factory=dict)
    org: dict[str, str] = field(default_factory=dict)

    def call(self, who: str | None, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:
        h = dict(headers or {})
        if who is not None:
            h["Authorization"] = f"Bearer {self.keys.get(who, who)}"
        if body is not None:
            kwargs["json"] = body
        return self.client.open(path, method=method, headers=h, **kwargs)

    def post(self, who: str | None, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.call(who, "POST", path, body, **kwargs)

    def ok(self, who: str | None, method: str, path: str, body: Any = None, status: int = 200,
           **kwargs: Any) -> Any:
        resp = self.call(who, method, path, body, **kwargs)
        assert resp.status_code == status, resp.get_data(as_text=True)
        return resp.get_json()

    def sign_in(self, email_address: str = EMAIL, password: str = PASSWORD, **kwargs: Any) -> TestResponse:
        return self.post(None, "/sessions", {"email": email_address, "password": password}, **kwargs)

    def sign_up(self, email_address: str = EMAIL, language: str = "nl", name: str = "Bakkerij Bakker") -> Any:
        return self.ok(None, "POST", "/signups", {"organisation_name": name, "email": email_address,
                                                  "password": PASSWORD, "language": language}, status=201)

    def outbox(self) -> list[Any]:
        with self.infra.engine.connect() as conn:
            rows = conn.execute(sa.select(self.infra.outbox).order_by(self.infra.outbox.c.created_at)).all()
        return [parse_envelope(json.loads(r.body)) for r in rows]

    def snapshot(self) -> dict[str, Any]:
        tables: list[Any] = [orm.api_keys, orm.outbox, orm.Organisation.__table__, Account.__table__,
                             AccountSession.__table__, SignInLink.__table__, Invitation.__table__,
                             orm.AuditEntry.__table__, orm.metadata.tables["revoked_sessions"]]
        with self.infra.engine.connect() as conn:
            return {str(t.name): sorted(tuple(map(str, r)) for r in conn.execute(sa.select(t)).all())
                    for t in tables}


def _settings(tmp_path: Path, smtp_port: int, **extra: str) -> Settings:
    return Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/intake.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET, "WERKPLAATS_RATE_LIMIT": "100000 per minute",
        "WERKPLAATS_SMTP_PORT": str(smtp_port), "WERKPLAATS_MAIL_FROM": "werkplaats@werkplaats.test",
        "WERKPLAATS_PORTAL_URL": PORTAL + "/", **extra})


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mails]]:
    mails = Mails()
    port = free_port()
    controller = Controller(mails, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mails
    finally:
        controller.stop()


@pytest.fixture
def world(tmp_path: Path, smtp: tuple[int, Mails]) -> Iterator[World]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    infra = intake_bootstrap.bootstrap(_settings(tmp_path, smtp[0]))
    clock = Clock()
    w = World(infra, create_intake_app(infra, clock=clock).test_client(), clock, smtp[1])
    with infra.session_factory.begin() as session:
        for who, role in (("coord", "coordinator"), ("inst", "institution"), ("firm", "entrepreneur")):
            org, key = services.create_organisation(session, lambda env: infra.emit(session, env),
                                                    name=f"Organisatie {who}", role=role)
            w.org[who], w.keys[who] = org.id, key
    try:
        yield w
    finally:
        infra.engine.dispose()
        root.handlers[:], root.level = handlers, level


def fields_of(resp: TestResponse) -> list[str]:
    return sorted({e["field"] for e in resp.get_json()["errors"]})


def assert_session_answer(body: dict[str, Any], *, role: str, organisation_id: str, language: str = "nl") -> None:
    assert set(body) == {"session_id", "refresh_token", "refresh_expires_at", "account", "tokens"}
    assert set(body["account"]) == {"id", "email", "language", "role", "organisation_id", "organisation_name"}
    assert (body["account"]["role"], body["account"]["organisation_id"], body["account"]["language"]) == (
        role, organisation_id, language)
    assert set(body["tokens"]) == set(SERVICES)
    refresh_expires = datetime.fromisoformat(body["refresh_expires_at"])
    assert timedelta(hours=11) < refresh_expires - datetime.now(UTC) <= timedelta(hours=12, minutes=1)
    for service in SERVICES:
        issued = body["tokens"][service]
        expires = datetime.fromisoformat(issued["expires_at"])
        assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
        principal = tokens.TokenVerifier(SECRET, service).verify(issued["token"])
        assert (principal.organisation_id, principal.role, principal.session_id) == (
            organisation_id, role, body["session_id"])
        assert principal.key_id == f"acct_{body['account']['id']}"


# ---- sign-up --------------------------------------------------------------------------------


def test_a_firm_signs_up_and_is_signed_in_at_once(world: World) -> None:
    resp = world.post(None, "/signups", {"organisation_name": "  Bakkerij Bakker ", "email": EMAIL,
                                         "password": PASSWORD, "language": "en"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    organisation_id = body["account"]["organisation_id"]
    assert_session_answer(body, role="entrepreneur", organisation_id=organisation_id, language="en")
    assert body["account"]["email"] == EMAIL.lower() and body["account"]["organisation_name"] == "Bakkerij Bakker"
    with world.infra.engine.connect() as conn:
        org = conn.execute(sa.select(orm.Organisation).where(orm.Organisation.id == organisation_id)).one()
        stored = conn.execute(sa.select(AccountSession)).one()
    assert (org.name, org.role) == ("Bakkerij Bakker", "entrepreneur")
    assert stored.refresh_hash == hash_secret(body["refresh_token"]) and body["refresh_token"] not in str(stored)
    # like `python -m intake admin create-organisation --role entrepreneur`: its first API key, announced
    assert [e.payload["organisation_id"] for e in world.outbox() if e.type == "apikey.issued"][-1] == organisation_id

    me = world.ok(body["tokens"]["intake"]["token"], "GET", "/me")
    assert (me["id"], me["role"], me["organisation_name"]) == (organisation_id, "entrepreneur", "Bakkerij Bakker")
    assert me["account"] == {"id": body["account"]["id"], "email": EMAIL.lower(), "language": "en"}
    # the firm goes on at once with its token: its profile
    firm = {"kvk_number": "12345678", "sector": "bakkerij", "size_class": "micro", "municipality": "GM0363",
            "language": "en"}
    assert world.post(body["tokens"]["intake"]["token"], "/firm", firm).status_code == 201
    assert world.sign_in().status_code == 201


def test_an_address_signs_up_once(world: World) -> None:
    world.sign_up()
    before = world.snapshot()
    resp = world.post(None, "/signups", {"organisation_name": "Tweede", "email": EMAIL.upper(), "password": PASSWORD},
                      headers={"Accept-Language": "en"})
    assert resp.status_code == 409
    assert resp.get_json()["errors"] == [{"field": "email",
                                          "reason": "an account with this e-mail address exists already"}]
    assert world.snapshot() == before


@pytest.mark.parametrize(("body", "expected"), [
    ({}, ["email", "organisation_name", "password"]),
    ({"organisation_name": "", "email": EMAIL, "password": PASSWORD}, ["organisation_name"]),
    ({"organisation_name": "   ", "email": EMAIL, "password": PASSWORD}, ["organisation_name"]),
    ({"organisation_name": "x" * 201, "email": EMAIL, "password": PASSWORD}, ["organisation_name"]),
    ({"organisation_name": "Bakkerij", "email": "geen-adres", "password": PASSWORD}, ["email"]),
    ({"organisation_name": "Bakkerij", "email": EMAIL, "password": "kort"}, ["password"]),
    ({"organisation_name": "Bakkerij", "email": EMAIL, "password": "x" * 129}, ["password"]),
    ({"organisation_name": "Bakkerij", "email": EMAIL, "password": PASSWORD, "language": "de"}, ["language"]),
    ({"organisation_name": "Bakkerij", "email": EMAIL, "password": PASSWORD, "role": "coordinator"}, ["role"]),
    ({"organisation_name": "Bakkerij", "email": EMAIL, "password": PASSWORD, "organisation_id": "x"},
     ["organisation_id"]),
])
def test_bad_sign_up_input_gets_field_errors_and_stores_nothing(world: World, body: dict[str, Any],
                                                               expected: list[str]) -> None:
    before = world.snapshot()
    resp = world.post(None, "/signups", body)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert fields_of(resp) == expected
    assert world.snapshot() == before


# ---- password sign-in -----------------------------------------------------------------------


def test_every_role_signs_in_and_acts_as_its_organisation(world: World) -> None:
    for who, role in (("coord", "coordinator"), ("inst", "institution"), ("firm", "entrepreneur")):
        address = f"{who}@werkplaats.example.nl"
        invited = world.ok(who, "POST", "/invitations", {"email": address, "language": "nl"}, status=201)
        assert invited["email"] == address
        token = link_token(world.mails.wait_for(1)[-1], "invitations")
        world.ok(None, "POST", f"/invitations/{token}/accept", {"password": PASSWORD}, status=201)
        resp = world.sign_in(address.upper())
        assert resp.status_code == 201, resp.get_data(as_text=True)
        body = resp.get_json()
        assert_session_answer(body, role=role, organisation_id=world.org[who])
        me = world.ok(body["tokens"]["intake"]["token"], "GET", "/me")
        assert (me["id"], me["role"], me["account"]["email"]) == (world.org[who], role, address)
        # the single-token login acts with the organisation's role too
        single = world.ok(None, "POST", "/tokens/matching", {"email": address, "password": PASSWORD}, status=201)
        assert tokens.TokenVerifier(SECRET, "matching").verify(single["token"]).role == role
        # an account's token may list its organisation's accounts (it holds the scope keys)
        listed = world.ok(body["tokens"]["intake"]["token"], "GET", "/accounts")
        assert [a["id"] for a in listed] == [body["account"]["id"]]
    assert world.ok("firm", "GET", "/me")["account"] is None  # an API key is no person


def test_unknown_address_wrong_password_and_disabled_account_get_the_same_401(world: World) -> None:
    world.sign_up()
    other = world.sign_up("tweede@bakkerij-bakker.example.nl", name="Tweede")
    with world.infra.session_factory.begin() as session:
        session.get(Account, other["account"]["id"]).disabled_at = datetime.now(UTC)  # type: ignore[union-attr]
    answers = [world.sign_in("niemand@example.nl"), world.sign_in(password=PASSWORD + "!"),
               world.sign_in("tweede@bakkerij-bakker.example.nl")]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.get_data() for a in answers}) == 1
    assert answers[0].get_json()["message"] == "Onjuist e-mailadres of wachtwoord."
    english = world.sign_in(password="fout", headers={"Accept-Language": "en"})
    assert english.get_json()["errors"] == [{"field": "_body", "reason": "wrong e-mail address or password"}]


def test_failures_lock_one_addresss_password_sign_in_and_nobody_elses(world: World) -> None:
    world.sign_up()
    world.sign_up("collega@bakkerij-bakker.example.nl", name="Collega")
    here = {"REMOTE_ADDR": "198.51.100.20"}  # everybody behind one address
    failures = [world.sign_in(password=f"fout {i}", environ_base=here).status_code
                for i in range(sign_in.FAILURE_LIMIT)]
    assert failures == [401] * sign_in.FAILURE_LIMIT
    locked = world.sign_in(environ_base=here, headers={"Accept-Language": "en"})  # even the right password
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= sign_in.LOCK_TIME.total_seconds()
    assert locked.get_json()["message"] == sign_in.SIGN_IN_LOCKED and "tokens" not in locked.get_json()
    assert world.sign_in(environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 429  # the address is locked
    # another account behind the same client address signs in
    assert world.sign_in("collega@bakkerij-bakker.example.nl", environ_base=here).status_code == 201
    # an unknown address locks alike: the lock tells nothing about whether an account exists
    for i in range(sign_in.FAILURE_LIMIT):
        world.sign_in("niemand@example.nl", f"fout {i}", environ_base=here)
    assert world.sign_in("niemand@example.nl", environ_base=here).status_code == 429
    # the lock is brief
    world.clock.advance(seconds=sign_in.LOCK_TIME.total_seconds() + 1)
    assert world.sign_in(environ_base=here).status_code == 201
    with world.infra.engine.connect() as conn:
        subjects = conn.execute(sa.select(SignInThrottle.subject)).scalars().all()
    assert not [s for s in subjects if "@" in s]  # counted by a hash, not by the address


def test_sign_in_is_rate_limited_per_client_address(world: World) -> None:
    limit = int(sign_in_api.SESSION_RATE_LIMIT.split()[0])
    here = {"REMOTE_ADDR": "198.51.100.30"}
    answers = [world.sign_in(f"persoon{i}@example.nl", environ_base=here).status_code for i in range(limit)]
    assert set(answers) == {401}
    refused = world.sign_in("nog-een@example.nl", environ_base=here)
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    # X-Forwarded-For is not trusted unless a trusted proxy is configured
    spoofed = world.sign_in("nog-een@example.nl", environ_base=here, headers={"X-Forwarded-For": "192.0.2.1"})
    assert spoofed.status_code == 429
    assert world.sign_in("nog-een@example.nl", environ_base={"REMOTE_ADDR": "198.51.100.31"}).status_code == 401


def test_behind_a_trusted_proxy_the_forwarded_address_counts(tmp_path: Path, smtp: tuple[int, Mails]) -> None:
    infra = intake_bootstrap.bootstrap(_settings(tmp_path, smtp[0], WERKPLAATS_TRUSTED_PROXIES="1"))
    client = create_intake_app(infra).test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    limit = int(sign_in_api.SESSION_RATE_LIMIT.split()[0])

    def sign_in_from(address: str, who: str) -> int:
        return client.post("/sessions", json={"email": f"{who}@example.nl", "password": "fout"},
                           environ_base=proxy, headers={"X-Forwarded-For": address}).status_code

    assert {sign_in_from("192.0.2.10", f"p{i}") for i in range(limit)} == {401}
    assert sign_in_from("192.0.2.10", "nog-een") == 429
    assert sign_in_from("192.0.2.11", "nog-een") == 401  # another client behind the same proxy
    infra.engine.dispose()


@pytest.mark.parametrize(("body", "expected"), [
    ({}, ["email", "password"]), ({"email": "", "password": ""}, ["email", "password"]),
    ({"email": EMAIL, "password": "x" * 129}, ["password"]),
    ({"email": EMAIL, "password": PASSWORD, "remember": True}, ["remember"]),
    ({"email": [EMAIL], "password": {"p": 1}}, ["email", "password"]),
])
def test_bad_sign_in_input_gets_field_errors(world: World, body: dict[str, Any], expected: list[str]) -> None:
    before = world.snapshot()
    resp = world.post(None, "/sessions", body)
    assert resp.status_code == 422, body
    assert fields_of(resp) == expected
    assert world.snapshot() == before


# ---- refresh and sign-out -------------------------------------------------------------------


def test_a_refresh_renews_the_tokens_and_rotates_the_refresh_token(world: World) -> None:
    first = world.sign_up()
    world.clock.advance(hours=11)  # within the idle limit
    resp = world.post(None, "/sessions/refresh", {"refresh_token": first["refresh_token"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    second = resp.get_json()
    assert second["session_id"] == first["session_id"] and second["refresh_token"] != first["refresh_token"]
    assert second["tokens"]["intake"]["token"] != first["tokens"]["intake"]["token"]
    assert world.ok(second["tokens"]["intake"]["token"], "GET", "/me")["account"]["id"] == first["account"]["id"]
    # the old refresh token is spent
    spent = world.post(None, "/sessions/refresh", {"refresh_token": first["refresh_token"]},
                       headers={"Accept-Language": "en"})
    assert spent.status_code == 401 and spent.get_json()["message"] == sign_in.SESSION_ENDED
    # 12 hours without a refresh end the session
    world.clock.advance(hours=12, seconds=1)
    idle = world.post(None, "/sessions/refresh", {"refresh_token": second["refresh_token"]})
    assert idle.status_code == 401 and idle.get_json()["message"] == "Deze sessie is beëindigd: meld u opnieuw aan."
    assert world.post(None, "/sessions/refresh", {"refresh_token": "onzin"}).status_code == 401
    assert fields_of(world.post(None, "/sessions/refresh", {})) == ["refresh_token"]


def test_sign_out_revokes_the_session_and_intake_refuses_its_tokens_at_once(world: World) -> None:
    signed_in = world.sign_up()
    other = world.ok(None, "POST", "/sessions", {"email": EMAIL, "password": PASSWORD}, status=201)
    token = signed_in["tokens"]["intake"]["token"]
    assert world.call(token, "GET", "/me").status_code == 200
    before = len(world.outbox())
    resp = world.post(None, "/sessions/revoke", {"refresh_token": signed_in["refresh_token"]})
    assert resp.status_code == 204 and resp.get_data() == b""
    refused = world.call(token, "GET", "/me", headers={"Accept-Language": "en"})
    assert refused.status_code == 401 and refused.get_json()["message"] == REVOKED_SESSION
    assert world.call(token, "GET", "/me").get_json()["message"] == "De aanmeldsessie van dit token is beëindigd."
    assert world.post(None, "/sessions/refresh", {"refresh_token": signed_in["refresh_token"]}).status_code == 401
    # the same person's other session goes on
    assert world.call(other["tokens"]["intake"]["token"], "GET", "/me").status_code == 200
    announced = world.outbox()[before:]
    assert [(e.type, e.version) for e in announced] == [("session.revoked", 1)]
    assert set(announced[0].payload) == {"session_id", "revoked_at"}
    assert announced[0].payload["session_id"] == signed_in["session_id"]
    # signing out twice, or with an unknown token, is no error and announces nothing more
    assert world.post(None, "/sessions/revoke", {"refresh_token": signed_in["refresh_token"]}).status_code == 204
    assert world.post(None, "/sessions/revoke", {"refresh_token": "onzin"}).status_code == 204
    assert len(world.outbox()) == before + 1


# ---- sign-in links --------------------------------------------------------------------------


def test_a_sign_in_link_is_mailed_in_the_accounts_language_and_works_once(world: World) -> None:
    signed_up = world.sign_up(language="en")
    resp = world.post(None, "/sign-in-links", {"email": EMAIL.upper(), "language": "nl"})
    assert resp.status_code == 202
    assert resp.get_json() == {"message": sign_in_api.LINK_REQUESTED["nl"]}
    message = world.mails.wait_for(1)[0]
    assert message["To"] == EMAIL.lower() and message["From"] == "werkplaats@werkplaats.test"
    assert message["Subject"] == "Your sign-in link for Werkplaats" and message["Content-Language"] == "en"
    assert "works once" in body_of(message)
    token = link_token(message, "sign-in/link")
    with world.infra.engine.connect() as conn:
        stored = conn.execute(sa.select(SignInLink)).one()
    assert stored.token_hash == hash_secret(token) and token not in str(tuple(stored))

    used = world.post(None, f"/sign-in-links/{token}/session")
    assert used.status_code == 201, used.get_data(as_text=True)
    assert used.headers["Cache-Control"] == "no-store"
    assert_session_answer(used.get_json(), role="entrepreneur", organisation_id=signed_up["account"]["organisation_id"],
                          language="en")
    before = world.snapshot()
    again = world.post(None, f"/sign-in-links/{token}/session", headers={"Accept-Language": "en"})
    assert again.status_code == 410
    assert again.get_json()["errors"] == [{"field": "token", "reason": sign_in.LINK_USED}]
    assert "tokens" not in again.get_json()
    assert world.snapshot() == before
    assert world.post(None, "/sign-in-links/onbekend/session").status_code == 404


def test_a_sign_in_link_expires_after_15_minutes(world: World) -> None:
    world.sign_up()
    world.ok(None, "POST", "/sign-in-links", {"email": EMAIL, "language": "nl"}, status=202)
    message = world.mails.wait_for(1)[0]
    assert message["Subject"] == "Uw aanmeldlink voor Werkplaats" and "werkt één keer" in body_of(message)
    token = link_token(message, "sign-in/link")
    world.clock.advance(minutes=15, seconds=1)
    resp = world.post(None, f"/sign-in-links/{token}/session")
    assert resp.status_code == 410
    assert resp.get_json()["message"] == "Deze aanmeldlink is verlopen: vraag een nieuwe aan."


def test_asking_for_a_link_reveals_nothing_and_is_limited(world: World) -> None:
    world.sign_up()
    disabled = world.sign_up("weg@bakkerij-bakker.example.nl", name="Weg")
    with world.infra.session_factory.begin() as session:
        session.get(Account, disabled["account"]["id"]).disabled_at = datetime.now(UTC)  # type: ignore[union-attr]
    answers = [world.post(None, "/sign-in-links", {"email": address, "language": "en"})
               for address in ("niemand@example.nl", "weg@bakkerij-bakker.example.nl", EMAIL)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.get_data() for a in answers}) == 1
    assert [m["To"] for m in world.mails.wait_for(1)] == [EMAIL.lower()]  # the known, active address only
    # per account: LINKS_PER_ACCOUNT links within 15 minutes, then none is mailed (still 202)
    for _ in range(sign_in.LINKS_PER_ACCOUNT):
        assert world.post(None, "/sign-in-links", {"email": EMAIL}).status_code == 202
    world.mails.wait_for(sign_in.LINKS_PER_ACCOUNT)
    with world.infra.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SignInLink)).scalar_one() == \
            sign_in.LINKS_PER_ACCOUNT
    # per client address
    limit = int(sign_in_api.LINK_RATE_LIMIT.split()[0])
    here = {"REMOTE_ADDR": "198.51.100.40"}
    statuses = [world.post(None, "/sign-in-links", {"email": f"p{i}@example.nl"}, environ_base=here).status_code
                for i in range(limit + 1)]
    assert statuses == [202] * limit + [429]
    assert fields_of(world.post(None, "/sign-in-links", {"email": "geen-adres"})) == ["email"]


# ---- invitations ----------------------------------------------------------------------------


def test_an_organisation_invites_a_person_who_accepts_and_is_signed_in(world: World) -> None:
    address = "docent@hogeschool.example.nl"
    resp = world.post("inst", "/invitations", {"email": address, "language": "en"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    invitation = resp.get_json()
    assert set(invitation) == {"id", "email", "expires_at"} and invitation["email"] == address
    expires = datetime.fromisoformat(invitation["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    message = world.mails.wait_for(1)[0]
    assert message["To"] == address and message["Content-Language"] == "en"
    assert message["Subject"] == "Invitation from Organisatie inst to Werkplaats"
    assert "Organisatie inst invites you" in body_of(message)
    token = link_token(message, "invitations")
    assert [i["id"] for i in world.ok("inst", "GET", "/invitations")] == [invitation["id"]]
    assert world.ok("firm", "GET", "/invitations") == []

    shown = world.ok(None, "GET", f"/invitations/{token}")
    assert shown == {"organisation_name": "Organisatie inst", "email": address,
                     "expires_at": invitation["expires_at"], "language": "en"}
    accepted = world.post(None, f"/invitations/{token}/accept", {"password": PASSWORD})
    assert accepted.status_code == 201, accepted.get_data(as_text=True)
    body = accepted.get_json()
    assert_session_answer(body, role="institution", organisation_id=world.org["inst"], language="en")
    assert world.ok(body["tokens"]["intake"]["token"], "GET", "/institution")["id"] == world.org["inst"]
    assert world.ok("inst", "GET", "/invitations") == []
    assert [a["email"] for a in world.ok("inst", "GET", "/accounts")] == [address]

    before = world.snapshot()
    again = world.post(None, f"/invitations/{token}/accept", {"password": PASSWORD}, headers={"Accept-Language": "en"})
    assert again.status_code == 410 and again.get_json()["message"] == sign_in.INVITATION_ACCEPTED
    assert world.call(None, "GET", f"/invitations/{token}").status_code == 410
    assert world.call(None, "GET", "/invitations/onbekend").status_code == 404
    assert world.snapshot() == before
    # the address has an account now: no second invitation
    refused = world.post("coord", "/invitations", {"email": address.upper()})
    assert refused.status_code == 409 and fields_of(refused) == ["email"]


def test_an_organisation_disables_its_own_persons_account(world: World) -> None:
    world.ok("inst", "POST", "/invitations", {"email": "vertrokken@hogeschool.example.nl"}, status=201)
    token = link_token(world.mails.wait_for(1)[0], "invitations")
    session = world.ok(None, "POST", f"/invitations/{token}/accept", {"password": PASSWORD}, status=201)
    account_id = session["account"]["id"]
    assert world.post("firm", f"/accounts/{account_id}/disable").status_code == 404  # not the firm's person
    disabled = world.ok("inst", "POST", f"/accounts/{account_id}/disable")
    assert disabled["disabled_at"] is not None
    assert world.call(session["tokens"]["intake"]["token"], "GET", "/me").status_code == 401
    assert world.post(None, "/sessions/refresh", {"refresh_token": session["refresh_token"]}).status_code == 401
    assert world.sign_in("vertrokken@hogeschool.example.nl").status_code == 401
    world.ok(None, "POST", "/sign-in-links", {"email": "vertrokken@hogeschool.example.nl"}, status=202)
    with world.infra.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SignInLink)).scalar_one() == 0


def test_an_invitation_expires_after_7_days(world: World) -> None:
    world.ok("firm", "POST", "/invitations", {"email": "compagnon@bakkerij.example.nl"}, status=201)
    message = world.mails.wait_for(1)[0]
    assert message["Subject"] == "Uitnodiging van Organisatie firm voor Werkplaats"
    token = link_token(message, "invitations")
    world.clock.advance(days=7, seconds=1)
    assert world.call(None, "GET", f"/invitations/{token}").status_code == 410
    resp = world.post(None, f"/invitations/{token}/accept", {"password": PASSWORD})
    assert resp.status_code == 410
    assert resp.get_json()["message"] == "Deze uitnodiging is verlopen: vraag de organisatie om een nieuwe."
    assert world.ok("firm", "GET", "/invitations") == []


def test_inviting_needs_the_scope_keys_and_a_mail_server(world: World, tmp_path: Path) -> None:
    read_only = world.ok("inst", "POST", "/api-keys", {"scopes": ["read", "write"]}, status=201)["api_key"]
    before = world.snapshot()
    assert world.post(read_only, "/invitations", {"email": "x@example.nl"}).status_code == 403
    assert world.call(read_only, "GET", "/invitations").status_code == 403
    assert world.post(None, "/invitations", {"email": "x@example.nl"}).status_code == 401
    for body, expected in (({}, ["email"]), ({"email": "geen-adres"}, ["email"]),
                           ({"email": "x@example.nl", "language": "fr"}, ["language"]),
                           ({"email": "x@example.nl", "organisation_id": world.org["coord"]}, ["organisation_id"])):
        resp = world.post("inst", "/invitations", body)
        assert resp.status_code == 422 and fields_of(resp) == expected, body
    assert world.snapshot() == before
    # no mail server: the invitation is not stored, and the inviter is told
    infra = intake_bootstrap.bootstrap(_settings(tmp_path, free_port()))
    client = create_intake_app(infra).test_client()
    resp = client.post("/invitations", json={"email": "x@example.nl"},
                       headers={"Authorization": f"Bearer {world.keys['inst']}", "Accept-Language": "en"})
    assert resp.status_code == 503
    assert resp.get_json()["errors"] == [{"field": "email", "reason": sign_in_api.MAIL_FAILED}]
    assert world.snapshot() == before
    infra.engine.dispose()


def test_accepting_needs_a_good_password(world: World) -> None:
    world.ok("coord", "POST", "/invitations", {"email": "planner@werkplaats.example.nl"}, status=201)
    token = link_token(world.mails.wait_for(1)[0], "invitations")
    before = world.snapshot()
    for body, expected in (({}, ["password"]), ({"password": "kort"}, ["password"]),
                           ({"password": PASSWORD, "email": "ander@example.nl"}, ["email"])):
        resp = world.post(None, f"/invitations/{token}/accept", body)
        assert resp.status_code == 422 and fields_of(resp) == expected, body
    assert world.snapshot() == before
    assert world.post(None, f"/invitations/{token}/accept", {"password": PASSWORD}).status_code == 201


# ---- the person's language ------------------------------------------------------------------


def test_a_person_sets_their_language(world: World) -> None:
    signed_up = world.sign_up()
    token = signed_up["tokens"]["intake"]["token"]
    changed = world.ok(token, "PUT", "/me/language", {"language": "en"})
    assert changed == {"id": signed_up["account"]["id"], "email": EMAIL.lower(), "language": "en"}
    assert world.ok(token, "GET", "/me")["account"]["language"] == "en"
    assert world.sign_in().get_json()["account"]["language"] == "en"
    world.ok(None, "POST", "/sign-in-links", {"email": EMAIL}, status=202)
    assert world.mails.wait_for(1)[0]["Content-Language"] == "en"  # mails follow the person's language
    before = world.snapshot()
    bad = world.call(token, "PUT", "/me/language", {"language": "fr"})
    assert bad.status_code == 422 and fields_of(bad) == ["language"]
    key = world.call("firm", "PUT", "/me/language", {"language": "en"}, headers={"Accept-Language": "en"})
    assert key.status_code == 403 and key.get_json()["errors"] == [
        {"field": "Authorization", "reason": sign_in_api.NO_ACCOUNT}]
    assert world.snapshot() == before


# ---- what is never said ---------------------------------------------------------------------


def test_no_e_mail_address_in_logs_messages_or_audit(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    signed_up = world.sign_up()
    world.sign_in(password="fout")
    world.sign_in()
    world.post(None, "/sign-in-links", {"email": EMAIL})
    token = link_token(world.mails.wait_for(1)[0], "sign-in/link")
    world.post(None, f"/sign-in-links/{token}/session")
    world.post(None, "/sessions/revoke", {"refresh_token": signed_up["refresh_token"]})
    world.ok("inst", "POST", "/invitations", {"email": "docent@hogeschool-bakker.example.nl"}, status=201)
    invitation = link_token(world.mails.wait_for(2)[1], "invitations")
    world.post(None, f"/invitations/{invitation}/accept", {"password": PASSWORD})
    texts = [r.getMessage() + json.dumps(getattr(r, "__dict__", {}), default=str) for r in caplog.records
             if not r.name.startswith("mail.log")]  # the test's SMTP server, which plays the mail's receiver
    texts += [json.dumps(e.payload) for e in world.outbox()]
    with world.infra.engine.connect() as conn:
        texts += [str(tuple(r)) for r in conn.execute(sa.select(orm.AuditEntry)).all()]
        actions = {r.action for r in conn.execute(sa.select(orm.AuditEntry)).all()}
    assert {"account.created", "session.started", "session.revoked", "sign_in_link.issued",
            "invitation.created"} <= actions
    for address in (EMAIL, "bakkerij-bakker", "hogeschool-bakker"):
        assert not [t for t in texts if address.lower() in t.lower()], address


def test_every_new_text_has_a_dutch_version() -> None:
    texts = [sign_in.SIGN_IN_FAILED, sign_in.SIGN_IN_LOCKED, sign_in.SESSION_ENDED, sign_in.LINK_UNKNOWN,
             sign_in.LINK_USED, sign_in.LINK_EXPIRED, sign_in.INVITATION_UNKNOWN, sign_in.INVITATION_ACCEPTED,
             sign_in.INVITATION_EXPIRED, sign_in_api.MAIL_FAILED, sign_in_api.NO_ACCOUNT, REVOKED_SESSION,
             "token session invalid", "must not be blank"]
    missing = [t for t in texts if accounts_api.to_dutch(t) is None]
    assert not missing, missing


def test_the_openapi_document_declares_the_sign_in_routes_public_and_strict(world: World) -> None:
    doc = world.call(None, "GET", "/openapi.json").get_json()
    for path in ("/signups", "/sessions", "/sessions/refresh", "/sessions/revoke", "/sign-in-links",
                 "/sign-in-links/{token}/session", "/invitations/{token}/accept"):
        assert doc["paths"][path]["post"]["security"] == [], path
    assert doc["paths"]["/invitations/{token}"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/invitations"]["post"]
    for name in ("SignupIn", "SessionIn", "RefreshIn", "LinkIn", "InvitationIn", "AcceptIn", "LanguageIn"):
        assert doc["components"]["schemas"][name]["additionalProperties"] is False, name


# ---- service layer --------------------------------------------------------------------------


def test_a_link_is_used_once_even_by_two_requests_at_once(world: World) -> None:
    world.sign_up()
    with world.infra.session_factory.begin() as session:
        link = sign_in.request_link(session, EMAIL, datetime.now(UTC))
    assert link is not None
    results: list[str] = []

    def use() -> None:
        try:
            with world.infra.session_factory.begin() as session:
                sign_in.link_session(session, SECRET, link.token, datetime.now(UTC))
            results.append("session")
        except sign_in.Gone as exc:
            results.append(str(exc.status))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == ["410", "410", "410", "session"]


def test_the_lock_counts_failures_within_its_window_only(world: World) -> None:
    world.sign_up()
    start = datetime.now(UTC)
    with world.infra.session_factory.begin() as session:
        for i in range(sign_in.FAILURE_LIMIT - 1):
            outcome = sign_in.password_session(session, SECRET, EMAIL, "fout", start + timedelta(minutes=i))
            assert isinstance(outcome, sign_in.Refusal) and outcome.status == 401
    later = start + sign_in.FAILURE_WINDOW + timedelta(minutes=1)  # a new window: the count starts again
    with world.infra.session_factory.begin() as session:
        outcome = sign_in.password_session(session, SECRET, EMAIL, "fout", later)
        assert isinstance(outcome, sign_in.Refusal) and outcome.status == 401
        outcome = sign_in.password_session(session, SECRET, EMAIL, PASSWORD, later)
        assert isinstance(outcome, sign_in.SessionAnswer)
    with world.infra.engine.connect() as conn:  # a success clears the count
        assert conn.execute(sa.select(sa.func.count()).select_from(SignInThrottle)).scalar_one() == 0


def test_sessions_links_and_invitations_end_on_the_clock_given(world: World) -> None:
    start = datetime.now(UTC)
    emit = world.infra.emit
    with world.infra.session_factory.begin() as session:
        answer = sign_in.sign_up(session, lambda env: emit(session, env), SECRET, "Bakkerij", EMAIL, PASSWORD,
                                 "nl", start)
        link = sign_in.request_link(session, EMAIL, start)
        invited = sign_in.invite(session, answer_principal(answer), "compagnon@example.nl", "en", start)
    assert link is not None
    with world.infra.session_factory.begin() as session:
        idle = start + sign_in.SESSION_IDLE_LIMIT
        assert sign_in.refresh_session(session, SECRET, answer.refresh_token, idle) == sign_in.Refusal(
            401, sign_in.SESSION_ENDED)
        renewed = sign_in.refresh_session(session, SECRET, answer.refresh_token, idle - timedelta(seconds=1))
        assert isinstance(renewed, sign_in.SessionAnswer) and renewed.session_id == answer.session_id
        with pytest.raises(sign_in.Gone, match="expired"):
            sign_in.link_session(session, SECRET, link.token, start + sign_in.LINK_LIFETIME)
        with pytest.raises(sign_in.Gone, match="expired"):
            sign_in.show_invitation(session, invited.token, start + sign_in.INVITATION_LIFETIME)
        shown = sign_in.show_invitation(session, invited.token, start + sign_in.INVITATION_LIFETIME
                                        - timedelta(seconds=1))
        assert (shown.email, shown.organisation_name) == ("compagnon@example.nl", "Bakkerij")
        # a session lives SESSION_MAX_AGE at most, however often it is refreshed
        moment, current = idle - timedelta(seconds=1), renewed
        while True:
            moment += timedelta(hours=11)
            outcome = sign_in.refresh_session(session, SECRET, current.refresh_token, moment)
            if not isinstance(outcome, sign_in.SessionAnswer):
                break
            current = outcome
        assert start + sign_in.SESSION_MAX_AGE <= moment < start + sign_in.SESSION_MAX_AGE + timedelta(hours=11)
        renewed = current
    with world.infra.session_factory.begin() as session:
        ended = sign_in.revoke_session(session, lambda env: emit(session, env), renewed.refresh_token, start)
        assert ended == answer.session_id
        assert sign_in.revoke_session(session, lambda env: emit(session, env), renewed.refresh_token, start) is None


def test_the_retention_job_deletes_what_ended_a_day_ago(world: World) -> None:
    from intake.service_layer import privacy
    from werkplaats_shared.retention import RetentionPeriods

    def counts() -> dict[str, int]:
        with world.infra.engine.connect() as conn:
            tables: list[Any] = [SignInLink.__table__, Invitation.__table__, AccountSession.__table__,
                                 orm.metadata.tables["revoked_sessions"]]
            return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables}

    signed_up = world.sign_up()
    world.ok(None, "POST", "/sign-in-links", {"email": EMAIL}, status=202)
    world.ok("inst", "POST", "/invitations", {"email": "docent@hogeschool.example.nl"}, status=201)
    world.post(None, "/sessions/revoke", {"refresh_token": signed_up["refresh_token"]})
    open_session = world.sign_in().get_json()
    assert counts() == {"sign_in_links": 1, "invitations": 1, "account_sessions": 2, "revoked_sessions": 1}

    def retention(at: datetime) -> None:
        with world.infra.session_factory.begin() as session:
            privacy.apply_retention(session, lambda env: world.infra.emit(session, env),
                                    RetentionPeriods.from_env({}), at)

    now = datetime.now(UTC)
    retention(now + timedelta(hours=23))  # nothing ended a day ago yet
    assert counts() == {"sign_in_links": 1, "invitations": 1, "account_sessions": 2, "revoked_sessions": 1}
    retention(now + timedelta(days=1, minutes=20))  # link and revoked session ended over a day ago
    assert counts() == {"sign_in_links": 0, "invitations": 1, "account_sessions": 1, "revoked_sessions": 0}
    retention(now + sign_in.INVITATION_LIFETIME + timedelta(days=1, minutes=1))
    assert counts() == {"sign_in_links": 0, "invitations": 0, "account_sessions": 0, "revoked_sessions": 0}
    assert world.post(None, "/sessions/refresh", {"refresh_token": open_session["refresh_token"]}).status_code == 401


def answer_principal(answer: sign_in.SessionAnswer) -> Any:
    from werkplaats_shared.auth import Principal

    return Principal(organisation_id=answer.account.organisation_id, role=answer.role,
                     key_id=f"acct_{answer.account.id}")


def test_accounts_kept_their_data_through_the_migration(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from werkplaats_shared.db import make_engine

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        cfg = Config()
        cfg.set_main_option("script_location", intake_bootstrap.MIGRATIONS)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0010")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO organisations (id, name, role, levels, created_at) "
                             "VALUES ('org-1', 'Werkplaats Alfa', 'coordinator', '[]', '2026-01-01')"))
        conn.execute(sa.text("INSERT INTO coordinator_accounts (id, organisation_id, email, password_hash, created_at) "
                             "VALUES ('acc1', 'org-1', 'planner@alfa.example.nl', '$argon2id$x', '2026-01-01')"))
    upgrade_database(url, intake_bootstrap.MIGRATIONS)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT id, email, password_hash, language FROM coordinator_accounts")).one()
    assert tuple(row) == ("acc1", "planner@alfa.example.nl", "$argon2id$x", "nl")
    engine.dispose()


# ---- every service, over a real broker --------------------------------------------------------


@pytest.mark.rabbitmq
def test_a_revoked_sessions_tokens_are_refused_by_every_service_once_the_message_is_consumed(
        rabbitmq_url: str, namespace: str, tmp_path: Path, smtp: tuple[int, Mails]) -> None:
    import importlib

    from werkplaats_shared import broker
    from werkplaats_shared.service import consumer_loop

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    infra: dict[str, Infrastructure] = {}
    clients: dict[str, FlaskClient] = {}
    loops = []
    stop = threading.Event()
    try:
        for name in SERVICES:
            settings = Settings.from_env(name, {
                "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/{name}.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
                "WERKPLAATS_BROKER_URL": rabbitmq_url, "WERKPLAATS_NAMESPACE": namespace,
                "WERKPLAATS_SECRET_KEY": SECRET, "WERKPLAATS_RATE_LIMIT": "100000 per minute",
                "WERKPLAATS_SMTP_PORT": str(smtp[0]), "WERKPLAATS_PUBLIC_URL": "http://scheduling.test"})
            infra[name] = importlib.import_module(f"{name}.bootstrap").bootstrap(settings)
            factory = getattr(importlib.import_module(f"{name}.entrypoints.api"), f"create_{name}_app")
            clients[name] = factory(infra[name]).test_client()
        broker.declare_topology(infra["intake"].settings)
        for name in ("matching", "scheduling"):
            loop = consumer_loop(infra[name], importlib.import_module(f"{name}.entrypoints.handlers").HANDLERS)
            thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
            thread.start()
            loops.append((loop, thread))

        def relay() -> None:
            with infra["intake"].connection() as conn:
                infra["intake"].relay(conn).relay_once()

        signed_up = clients["intake"].post("/signups", json={
            "organisation_name": "Bakkerij Bakker", "email": EMAIL, "password": PASSWORD}).get_json()
        kept = clients["intake"].post("/sessions", json={"email": EMAIL, "password": PASSWORD}).get_json()
        reads = {"intake": "/me", "matching": "/matches", "scheduling": "/notices"}

        def status(session: dict[str, Any], service: str) -> int:
            token = session["tokens"][service]["token"]
            return int(clients[service].get(reads[service], headers={"Authorization": f"Bearer {token}"}).status_code)

        assert [status(signed_up, s) for s in SERVICES] == [200, 200, 200]
        revoked = clients["intake"].post("/sessions/revoke", json={"refresh_token": signed_up["refresh_token"]})
        assert revoked.status_code == 204
        assert status(signed_up, "intake") == 401  # at once in intake
        relay()  # session.revoked over the broker to matching and scheduling
        def refused_by(service: str) -> bool:
            return status(signed_up, service) == 401

        for service in ("matching", "scheduling"):
            wait_until(functools.partial(refused_by, service), 20, f"{service} to refuse")
            token = signed_up["tokens"][service]["token"]
            resp = clients[service].get(reads[service], headers={"Authorization": f"Bearer {token}",
                                                                 "Accept-Language": "en"})
            assert resp.get_json()["message"] == REVOKED_SESSION
        # the same person's other session is not affected anywhere
        assert [status(kept, s) for s in SERVICES] == [200, 200, 200]
    finally:
        stop.set()
        for loop, thread in loops:
            assert loop.stop is not None
            loop.stop()
            thread.join(10)
        for i in infra.values():
            i.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.postgres
def test_the_sign_in_flows_hold_on_postgresql(make_postgres_db: Any, tmp_path: Path,
                                               smtp: tuple[int, Mails]) -> None:
    infra = intake_bootstrap.bootstrap(_settings(tmp_path, smtp[0],
                                                 WERKPLAATS_DATABASE_URL=make_postgres_db("intake")))
    clock = Clock()
    w = World(infra, create_intake_app(infra, clock=clock).test_client(), clock, smtp[1])
    try:
        with infra.session_factory.begin() as session:
            org, w.keys["inst"] = services.create_organisation(session, lambda env: infra.emit(session, env),
                                                               name="Hogeschool", role="institution")
        signed_up = w.sign_up()
        assert w.post(None, "/signups", {"organisation_name": "Twee", "email": EMAIL.upper(),
                                         "password": PASSWORD}).status_code == 409
        here = {"REMOTE_ADDR": "198.51.100.50"}
        assert [w.sign_in(password="fout", environ_base=here).status_code
                for _ in range(sign_in.FAILURE_LIMIT)] == [401] * sign_in.FAILURE_LIMIT
        assert w.sign_in(environ_base=here).status_code == 429
        clock.advance(seconds=sign_in.LOCK_TIME.total_seconds() + 1)
        kept = w.sign_in(environ_base=here)
        assert kept.status_code == 201
        w.ok(None, "POST", "/sign-in-links", {"email": EMAIL}, status=202)
        token = link_token(w.mails.wait_for(1)[0], "sign-in/link")
        assert w.post(None, f"/sign-in-links/{token}/session").status_code == 201
        assert w.post(None, f"/sign-in-links/{token}/session").status_code == 410
        refreshed = w.ok(None, "POST", "/sessions/refresh", {"refresh_token": signed_up["refresh_token"]})
        assert w.post(None, "/sessions/revoke", {"refresh_token": refreshed["refresh_token"]}).status_code == 204
        assert w.call(refreshed["tokens"]["intake"]["token"], "GET", "/me").status_code == 401
        assert w.call(kept.get_json()["tokens"]["intake"]["token"], "GET", "/me").status_code == 200
        w.ok("inst", "POST", "/invitations", {"email": "docent@hogeschool.example.nl", "language": "en"}, status=201)
        invitation = link_token(w.mails.wait_for(2)[1], "invitations")
        assert w.ok(None, "GET", f"/invitations/{invitation}")["organisation_name"] == "Hogeschool"
        accepted = w.ok(None, "POST", f"/invitations/{invitation}/accept", {"password": PASSWORD}, status=201)
        assert (accepted["account"]["role"], accepted["account"]["organisation_id"]) == ("institution", org.id)
        clock.advance(days=8)
        assert w.call(None, "GET", f"/invitations/{invitation}").status_code == 410
    finally:
        infra.engine.dispose()
