"""Coordinator accounts, account tokens and scoped, rotatable API keys at intake's HTTP edge.

A coordinator creates, lists and disables its own organisation's accounts; an account logs in with e-mail
and password for a short-lived token; keys carry scopes (read, write, keys) that every service enforces on
every route, and a key can be rotated or revoked, which the other services follow through apikey.issued (v2,
with the scopes) and apikey.revoked; a disabled account's tokens stop working everywhere (account.disabled).
Bad input gets a field error and stores nothing; another organisation's objects answer 404;
the e-mail address appears in no log, message or audit entry.
"""

from __future__ import annotations

import ast
import base64
import json
import logging
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from intake import bootstrap as intake_bootstrap
from intake.adapters import orm
from intake.adapters.accounts_orm import ApiKeyScope, CoordinatorAccount
from intake.entrypoints import accounts_api
from intake.entrypoints.api import create_intake_app
from intake.service_layer import accounts, services, sign_in
from werkplaats_shared import auth, tokens
from werkplaats_shared.auth import authenticate
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import parse_envelope
from werkplaats_shared.db import make_engine, messaging_tables
from werkplaats_shared.service import Infrastructure, apikey_replica_handlers
from werkzeug.test import TestResponse

SECRET = "accounts-test-only-secret-key-0123456789abcdef"
EMAIL = "Jolien.de.Vries@werkplaats-alfa.example.nl"
PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class World:
    infra: Infrastructure
    client: FlaskClient
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

    def get(self, who: str | None, path: str, **kwargs: Any) -> TestResponse:
        return self.call(who, "GET", path, **kwargs)

    def ok(self, who: str | None, method: str, path: str, body: Any = None, status: int = 200,
           **kwargs: Any) -> Any:
        resp = self.call(who, method, path, body, **kwargs)
        assert resp.status_code == status, resp.get_data(as_text=True)
        return resp.get_json()

    def login(self, email: str = EMAIL, password: str = PASSWORD, audience: str = "intake",
              **kwargs: Any) -> TestResponse:
        return self.post(None, f"/tokens/{audience}", {"email": email, "password": password}, **kwargs)

    def outbox(self) -> list[Any]:
        with self.infra.engine.connect() as conn:
            rows = conn.execute(sa.select(self.infra.outbox).order_by(self.infra.outbox.c.created_at)).all()
        return [parse_envelope(json.loads(r.body)) for r in rows]

    def snapshot(self) -> dict[str, Any]:
        tables: list[Any] = [orm.api_keys, orm.outbox, ApiKeyScope.__table__, CoordinatorAccount.__table__,
                  orm.AuditEntry.__table__, orm.Workspace.__table__]
        with self.infra.engine.connect() as conn:
            return {str(t.name): sorted(tuple(map(str, r)) for r in conn.execute(sa.select(t)).all())
                    for t in tables}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/intake.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET, "WERKPLAATS_RATE_LIMIT": "100000 per minute"})
    infra = intake_bootstrap.bootstrap(settings)
    w = World(infra, create_intake_app(infra).test_client())
    with infra.session_factory.begin() as session:
        for who, role in (("coord_a", "coordinator"), ("coord_b", "coordinator"), ("inst", "institution"),
                          ("firm", "entrepreneur")):
            org, key = services.create_organisation(session, lambda env: infra.emit(session, env),
                                                    name=f"Organisatie {who}", role=role)
            w.org[who], w.keys[who] = org.id, key
    try:
        yield w
    finally:
        infra.engine.dispose()
        root.handlers[:], root.level = handlers, level


def workspace_body(name: str = "Werkplaats Alfa") -> dict[str, Any]:
    return {"name": name, "municipalities": ["GM0363"],
            "periods": [{"code": "2025-Q1", "starts_on": "2025-01-06", "ends_on": "2025-03-28"}]}


def fields_of(resp: TestResponse) -> list[str]:
    return sorted({e["field"] for e in resp.get_json()["errors"]})


def new_account(w: World, who: str = "coord_a", email: str = EMAIL) -> dict[str, Any]:
    return w.ok(who, "POST", "/accounts", {"email": email, "password": PASSWORD}, status=201)  # type: ignore[no-any-return]


def new_key(w: World, scopes: list[str], who: str = "coord_a", label: str | None = None) -> dict[str, Any]:
    return w.ok(who, "POST", "/api-keys", {"scopes": scopes, "label": label}, status=201)  # type: ignore[no-any-return]


def token_for(w: World, audience: str = "intake") -> str:
    resp = w.login(audience=audience)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return str(resp.get_json()["token"])


# ---- accounts -------------------------------------------------------------------------------


def test_a_coordinator_creates_lists_and_disables_its_own_accounts(world: World) -> None:
    resp = world.post("coord_a", "/accounts", {"email": EMAIL, "password": PASSWORD})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    account = resp.get_json()
    assert resp.headers["Location"].endswith(f"/accounts/{account['id']}")
    assert account["email"] == EMAIL.lower() and account["organisation_id"] == world.org["coord_a"]
    assert account["disabled_at"] is None
    assert "password" not in resp.get_data(as_text=True) and "argon2" not in resp.get_data(as_text=True)
    other = new_account(world, "coord_b", "planner@werkplaats-beta.example.nl")

    listed = world.ok("coord_a", "GET", "/accounts")
    assert [a["id"] for a in listed] == [account["id"]]
    assert "password" not in json.dumps(listed) and "argon2" not in json.dumps(listed)
    with world.infra.engine.connect() as conn:
        stored = conn.execute(sa.select(CoordinatorAccount.password_hash)
                              .where(CoordinatorAccount.id == account["id"])).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    # another organisation's account is not there for coord_a, and B cannot touch A's
    assert world.get("coord_a", f"/accounts/{other['id']}").status_code == 404
    before = world.snapshot()
    assert world.post("coord_b", f"/accounts/{account['id']}/disable").status_code == 404
    assert world.get("coord_b", f"/accounts/{account['id']}").status_code == 404
    assert world.snapshot() == before
    assert world.login().status_code == 201

    disabled = world.ok("coord_a", "POST", f"/accounts/{account['id']}/disable")
    assert disabled["disabled_at"] is not None
    again = world.ok("coord_a", "POST", f"/accounts/{account['id']}/disable")
    assert again["disabled_at"] == disabled["disabled_at"]
    assert world.ok("coord_a", "GET", f"/accounts/{account['id']}")["disabled_at"] == disabled["disabled_at"]
    assert world.login().status_code == 401


def test_only_coordinators_create_accounts_and_every_organisation_lists_its_own(world: World) -> None:
    account = new_account(world)
    before = world.snapshot()
    for who in ("inst", "firm"):
        assert world.post(who, "/accounts", {"email": "x@example.nl", "password": PASSWORD}).status_code == 403
        assert world.ok(who, "GET", "/accounts") == []  # its own (none), never the coordinator's
        assert world.get(who, f"/accounts/{account['id']}").status_code == 404
        assert world.post(who, f"/accounts/{account['id']}/disable").status_code == 404
    assert world.get(None, "/accounts").status_code == 401
    assert world.snapshot() == before


@pytest.mark.parametrize(("body", "expected"), [
    ({"email": "geen-adres", "password": PASSWORD}, ["email"]),
    ({"email": EMAIL, "password": "kort"}, ["password"]),
    ({"email": EMAIL, "password": "x" * 129}, ["password"]),
    ({"email": "a@" + "b" * 250 + ".nl", "password": PASSWORD}, ["email"]),
    ({}, ["email", "password"]),
    ({"email": None, "password": 12345678901234}, ["email", "password"]),
    ({"email": EMAIL, "password": PASSWORD, "organisation_id": "org-of-someone-else"}, ["organisation_id"]),
    ({"email": EMAIL, "password": PASSWORD, "role": "coordinator", "disabled_at": None, "id": "mine"},
     ["disabled_at", "id", "role"]),
    ({"email": EMAIL, "password": PASSWORD, "password_hash": "$argon2id$v=19$forged"}, ["password_hash"]),
])
def test_bad_account_input_gets_field_errors_and_stores_nothing(world: World, body: dict[str, Any],
                                                                expected: list[str]) -> None:
    before = world.snapshot()
    resp = world.post("coord_a", "/accounts", body, headers={"Accept-Language": "en"})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert fields_of(resp) == expected
    assert world.snapshot() == before


def test_an_address_has_one_account_whatever_its_case(world: World) -> None:
    new_account(world)
    before = world.snapshot()
    for who in ("coord_a", "coord_b"):
        resp = world.post(who, "/accounts", {"email": EMAIL.upper(), "password": PASSWORD},
                          headers={"Accept-Language": "en"})
        assert resp.status_code == 409
        assert resp.get_json()["errors"] == [
            {"field": "email", "reason": "an account with this e-mail address exists already"}]
        assert EMAIL.lower() not in resp.get_data(as_text=True).lower()
    assert world.snapshot() == before


# ---- tokens ---------------------------------------------------------------------------------


def test_an_account_logs_in_and_its_token_works_on_intake(world: World) -> None:
    new_account(world)
    resp = world.login(email="  " + EMAIL.upper() + " ")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert body["token_type"] == "Bearer" and body["audience"] == "werkplaats:intake"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    token = body["token"]
    me = world.ok(token, "GET", "/me")
    assert me["id"] == world.org["coord_a"] and me["role"] == "coordinator"
    created = world.ok(token, "POST", "/workspaces", workspace_body(), status=201)
    assert created["organisation_id"] == world.org["coord_a"]
    # the token acts for its own organisation only
    assert world.get(token, "/accounts").get_json()[0]["organisation_id"] == world.org["coord_a"]


def test_tokens_for_the_other_services_verify_there_and_not_at_intake(world: World) -> None:
    account = new_account(world)
    for service in ("matching", "scheduling"):
        token = token_for(world, service)
        principal = tokens.TokenVerifier(SECRET, service).verify(token)
        assert (principal.organisation_id, principal.role) == (world.org["coord_a"], "coordinator")
        assert principal.key_id == f"acct_{account['id']}"
        resp = world.get(token, "/me", headers={"Accept-Language": "en"})
        assert resp.status_code == 401
        assert resp.get_json()["message"] == "token not meant for this service (audience must be werkplaats:intake)"
    resp = world.login(audience="billing")
    assert resp.status_code == 404


def test_unknown_account_wrong_password_and_disabled_account_get_the_same_401(world: World) -> None:
    account = new_account(world)
    other = new_account(world, email="tweede@werkplaats-alfa.example.nl")
    world.ok("coord_a", "POST", f"/accounts/{other['id']}/disable")
    answers = [world.login(email="niemand@example.nl"), world.login(password=PASSWORD + "!"),
               world.login(email="tweede@werkplaats-alfa.example.nl")]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.get_data() for a in answers}) == 1
    assert answers[0].get_json()["message"] == "Onjuist e-mailadres of wachtwoord."
    english = world.login(password="fout", headers={"Accept-Language": "en"})
    assert english.get_json()["message"] == "wrong e-mail address or password"
    assert "token" not in answers[0].get_json()
    assert world.get(None, f"/accounts/{account['id']}").status_code == 401


def test_a_disabled_accounts_token_is_refused_at_once(world: World) -> None:
    account = new_account(world)
    token = token_for(world)
    assert world.get(token, "/me").status_code == 200
    world.ok("coord_a", "POST", f"/accounts/{account['id']}/disable")
    resp = world.get(token, "/me", headers={"Accept-Language": "en"})
    assert resp.status_code == 401
    assert resp.get_json()["message"] == "the account of this token is disabled"
    assert world.post(token, "/workspaces", workspace_body()).status_code == 401
    announced = [e for e in world.outbox() if e.type == "account.disabled"]
    assert [(e.version, e.payload["account_id"], e.payload["organisation_id"]) for e in announced] == [
        (1, account["id"], world.org["coord_a"])]
    assert EMAIL.lower() not in json.dumps(announced[0].payload)
    world.ok("coord_a", "POST", f"/accounts/{account['id']}/disable")
    assert len([e for e in world.outbox() if e.type == "account.disabled"]) == 1  # disabled once, announced once


def _forge(claims: dict[str, Any], key: bytes, alg: str = "HS256") -> str:
    import jwt

    return jwt.encode(claims, key, algorithm=alg)


def test_expired_forged_and_unsigned_tokens_are_refused(world: World) -> None:
    account = new_account(world)
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = tokens.issue_token(SECRET, account_id=account["id"], organisation_id=world.org["coord_a"],
                                 role="coordinator", service="intake", now=past).token
    other_secret = tokens.issue_token("another-secret-key-of-at-least-32-characters!",
                                      account_id=account["id"], organisation_id=world.org["coord_a"],
                                      role="coordinator", service="intake").token
    good = token_for(world)
    header, payload, _ = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["org"] = world.org["coord_b"]
    tampered = ".".join([header, base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode(),
                         good.split(".")[2]])
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    unsigned = f"{none_header}.{payload}."
    cases = {"expired": (expired, "token expired"), "other secret": (other_secret, "token signature invalid"),
             "tampered": (tampered, "token signature invalid"),
             "alg none": (unsigned, "token algorithm not accepted (only HS256)")}
    before = world.snapshot()
    for name, (token, reason) in cases.items():
        for method, path, body in (("GET", "/me", None), ("POST", "/workspaces", workspace_body())):
            resp = world.call(token, method, path, body, headers={"Accept-Language": "en"})
            assert resp.status_code == 401, name
            assert resp.get_json()["message"] == reason, name
    dutch = world.get(expired, "/me")
    assert dutch.get_json()["message"] == "Het token is verlopen."
    assert world.snapshot() == before
    assert world.get(good, "/me").status_code == 200


def test_token_logins_are_rate_limited_per_client(world: World) -> None:
    new_account(world)
    here = {"REMOTE_ADDR": "198.51.100.7"}
    # many addresses tried from one client: each fails, none is locked, until the client's own limit
    answers = [world.login(email=f"poging{i}@example.nl", password="fout", environ_base=here).status_code
               for i in range(accounts_api_limit())]
    assert set(answers) == {401}
    refused = world.login(environ_base=here)  # even the right password: no oracle once limited
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "token" not in refused.get_json()
    elsewhere = world.login(environ_base={"REMOTE_ADDR": "198.51.100.8"})
    assert elsewhere.status_code == 201


def test_token_logins_lock_the_account_address_not_the_colleagues_behind_one_client(world: World) -> None:
    """Issue 19, item 12: POST /tokens/{audience} has the lockout per account address that POST /sessions
    has, and a higher limit per client address, so one person's typos do not lock out the office."""
    new_account(world)
    colleague = "Sanne.Bakker@werkplaats-alfa.example.nl"
    new_account(world, email=colleague)
    office = {"REMOTE_ADDR": "198.51.100.9"}
    answers = [world.login(password=f"fout-{i}", environ_base=office).status_code
               for i in range(sign_in.FAILURE_LIMIT)]
    assert answers == [401] * sign_in.FAILURE_LIMIT
    locked = world.login(environ_base={"REMOTE_ADDR": "203.0.113.4"})  # the right password, from elsewhere
    assert locked.status_code == 429 and "token" not in locked.get_json()
    assert 0 < int(locked.headers["Retry-After"]) <= int(sign_in.LOCK_TIME.total_seconds())
    assert world.post(None, "/sessions", {"email": EMAIL, "password": PASSWORD}).status_code == 429  # one lock
    assert world.login(email=colleague, environ_base=office).status_code == 201
    assert accounts_api_limit() > sign_in.FAILURE_LIMIT * 2


def accounts_api_limit() -> int:
    return int(accounts_api.LOGIN_RATE_LIMIT.split()[0])


def test_unknown_addresses_cost_as_much_time_as_wrong_passwords(world: World) -> None:
    new_account(world)

    def timed(email: str, password: str) -> float:
        with world.infra.session_factory() as session:
            started = time.perf_counter()
            assert accounts.authenticate_account(session, email, password) is None
            return time.perf_counter() - started

    timed("niemand@example.nl", PASSWORD)  # the dummy hash is made once, on first use
    pairs = [(timed("niemand@example.nl", PASSWORD), timed(EMAIL, "fout wachtwoord")) for _ in range(5)]
    unknown, wrong = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    # without the dummy hash an unknown address would answer in a database round trip (~1% of a hash)
    assert 0.5 < unknown / wrong < 2, (unknown, wrong)


def test_bad_login_input_gets_field_errors(world: World) -> None:
    cases = [({}, ["email", "password"]), ({"email": "", "password": ""}, ["email", "password"]),
             ({"email": EMAIL, "password": "x" * 129}, ["password"]),
             ({"email": EMAIL, "password": PASSWORD, "audience": "intake"}, ["audience"]),
             ({"email": [EMAIL], "password": {"p": 1}}, ["email", "password"])]
    for body, expected in cases:
        resp = world.post(None, "/tokens/intake", body)
        assert resp.status_code == 422, body
        assert fields_of(resp) == expected, body


def test_no_e_mail_address_in_logs_messages_or_audit(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    account = new_account(world)
    world.login()
    world.login(password="fout")
    world.login(email=EMAIL + "x")
    world.post("coord_b", "/accounts", {"email": EMAIL, "password": PASSWORD})
    world.ok("coord_a", "POST", f"/accounts/{account['id']}/disable")
    texts = [r.getMessage() + json.dumps(getattr(r, "__dict__", {}), default=str) for r in caplog.records]
    texts += [json.dumps(e.payload) for e in world.outbox()]
    with world.infra.engine.connect() as conn:
        texts += [str(tuple(r)) for r in conn.execute(sa.select(orm.AuditEntry)).all()]
        actions = [r.action for r in conn.execute(sa.select(orm.AuditEntry)).all()]
    assert "account.created" in actions and "account.disabled" in actions
    for address in (EMAIL, EMAIL.lower(), "werkplaats-alfa"):
        assert not [t for t in texts if address.lower() in t.lower()], address


# ---- API keys: scopes, rotation, revocation ---------------------------------------------------


def test_a_new_key_is_shown_once_with_its_scopes(world: World) -> None:
    resp = world.post("coord_a", "/api-keys", {"scopes": ["read"], "label": "dashboard"})
    assert resp.status_code == 201 and resp.headers["Cache-Control"] == "no-store"
    created = resp.get_json()
    assert created["scopes"] == ["read"] and created["label"] == "dashboard" and created["role"] == "coordinator"
    assert created["api_key"].startswith(f"wpk_{created['key_id']}_")
    shown_later = world.ok("coord_a", "GET", f"/api-keys/{created['key_id']}")
    assert "api_key" not in shown_later and created["api_key"] not in json.dumps(shown_later)
    listed = world.ok("coord_a", "GET", "/api-keys")
    assert created["key_id"] in [k["key_id"] for k in listed]
    assert created["api_key"].split("_", 2)[2] not in json.dumps(listed)
    legacy = next(k for k in listed if k["key_id"] != created["key_id"])
    assert legacy["scopes"] == ["read", "write", "keys"]  # issued by the admin command: every scope
    # stored hashed, announced by hash
    issued = [e for e in world.outbox() if e.type == "apikey.issued" and e.payload["key_id"] == created["key_id"]]
    assert len(issued) == 1 and created["api_key"] not in json.dumps(issued[0].payload)
    assert world.ok(created["api_key"], "GET", "/me")["id"] == world.org["coord_a"]


def test_scopes_are_enforced_on_every_kind_of_route(world: World) -> None:
    read = new_key(world, ["read"])["api_key"]
    write = new_key(world, ["write"])["api_key"]
    keys = new_key(world, ["keys"])["api_key"]
    before = world.snapshot()
    for key, method, path, body in ((read, "POST", "/workspaces", workspace_body()),
                                    (read, "GET", "/api-keys", None), (read, "POST", "/api-keys", {"scopes": ["read"]}),
                                    (write, "GET", "/me", None), (write, "GET", "/workspaces", None),
                                    (write, "GET", "/accounts", None),
                                    (keys, "GET", "/me", None), (keys, "POST", "/workspaces", workspace_body())):
        resp = world.call(key, method, path, body, headers={"Accept-Language": "en"})
        assert resp.status_code == 403, (method, path, resp.get_data(as_text=True))
        assert resp.get_json()["message"].startswith("this API key lacks the scope ")
    assert world.snapshot() == before
    assert world.get(read, "/me").status_code == 200
    assert world.get(read, "/workspaces").status_code == 200
    assert world.post(write, "/workspaces", workspace_body()).status_code == 201
    assert world.get(keys, "/api-keys").status_code == 200
    assert world.get(write, "/me").get_json()["message"] == "Deze API-sleutel heeft het recht 'read' niet."


def test_a_key_cannot_give_more_than_it_holds(world: World) -> None:
    keys_only = new_key(world, ["keys"])["api_key"]
    before = world.snapshot()
    resp = world.post(keys_only, "/api-keys", {"scopes": ["read", "write"]}, headers={"Accept-Language": "en"})
    assert resp.status_code == 403
    assert resp.get_json()["errors"] == [{"field": "scopes",
                                          "reason": "a key cannot give scopes it does not hold itself"}]
    assert world.snapshot() == before
    assert world.ok(keys_only, "POST", "/api-keys", {"scopes": ["keys"]}, status=201)["scopes"] == ["keys"]


@pytest.mark.parametrize(("body", "expected"), [
    ({}, ["scopes"]), ({"scopes": []}, ["scopes"]), ({"scopes": ["admin"]}, ["scopes.0"]),
    ({"scopes": "read"}, ["scopes"]), ({"scopes": ["read"], "label": ""}, ["label"]),
    ({"scopes": ["read"], "label": "x" * 101}, ["label"]),
    ({"scopes": ["read"], "role": "coordinator"}, ["role"]),
    ({"scopes": ["read"], "organisation_id": "org-of-someone-else", "key_id": "abc", "secret_hash": "0" * 64},
     ["key_id", "organisation_id", "secret_hash"]),
    ({"scopes": ["read"], "revoked_at": None, "rotated_from": "abc"}, ["revoked_at", "rotated_from"]),
])
def test_bad_key_input_gets_field_errors_and_stores_nothing(world: World, body: dict[str, Any],
                                                            expected: list[str]) -> None:
    before = world.snapshot()
    resp = world.post("inst", "/api-keys", body)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert fields_of(resp) == expected
    assert world.snapshot() == before


def test_every_organisation_manages_its_own_keys_only(world: World) -> None:
    mine = new_key(world, ["read"], who="inst")
    assert mine["role"] == "institution"
    assert world.ok(mine["api_key"], "GET", "/me")["id"] == world.org["inst"]
    before = world.snapshot()
    for who in ("coord_a", "coord_b", "firm"):
        for method, path in (("GET", f"/api-keys/{mine['key_id']}"), ("POST", f"/api-keys/{mine['key_id']}/rotate"),
                             ("POST", f"/api-keys/{mine['key_id']}/revoke")):
            assert world.call(who, method, path).status_code == 404, (who, method, path)
        assert mine["key_id"] not in world.get(who, "/api-keys").get_data(as_text=True)
    assert world.snapshot() == before
    assert world.get(mine["api_key"], "/me").status_code == 200


def _replica() -> tuple[Any, Any, Any]:
    """A key replica as matching and scheduling keep it, fed by the same handlers they use."""
    metadata = sa.MetaData()
    _, _, table = messaging_tables(metadata)
    engine = make_engine("sqlite://")
    metadata.create_all(engine)
    return engine, table, apikey_replica_handlers(table)


def test_rotation_issues_a_new_secret_revokes_the_old_and_the_other_services_follow(world: World) -> None:
    old = new_key(world, ["read", "write"], label="planning")
    engine, replica, handlers = _replica()
    seen: set[str] = set()

    def deliver() -> None:
        from sqlalchemy.orm import Session

        for envelope in world.outbox():
            if envelope.message_id in seen or envelope.type not in handlers:
                continue
            seen.add(envelope.message_id)
            with Session(engine) as session, session.begin():
                handlers[envelope.type](session, envelope)

    deliver()
    first = authenticate(engine, replica, old["api_key"])
    assert first is not None and first.scopes == {"read", "write"}

    assert world.post(old["api_key"], f"/api-keys/{old['key_id']}/rotate").status_code == 403  # needs 'keys'
    resp = world.post("coord_a", f"/api-keys/{old['key_id']}/rotate")
    assert resp.status_code == 201 and resp.headers["Cache-Control"] == "no-store"
    new = resp.get_json()
    assert new["key_id"] != old["key_id"] and new["api_key"] != old["api_key"]
    assert (new["scopes"], new["label"], new["rotated_from"]) == (["read", "write"], "planning", old["key_id"])
    assert world.get(old["api_key"], "/me").status_code == 401
    assert world.get(new["api_key"], "/me").status_code == 200
    assert world.ok("coord_a", "GET", f"/api-keys/{old['key_id']}")["revoked_at"] is not None
    events = [(e.type, e.payload["key_id"]) for e in world.outbox()[-2:]]
    assert sorted(events) == sorted([("apikey.issued", new["key_id"]), ("apikey.revoked", old["key_id"])])

    deliver()
    assert authenticate(engine, replica, old["api_key"]) is None
    principal = authenticate(engine, replica, new["api_key"])
    assert principal is not None and principal.organisation_id == world.org["coord_a"]
    assert principal.scopes == {"read", "write"}  # rotation keeps the scopes, in the replica too
    assert [e.version for e in world.outbox() if e.type == "apikey.issued" and e.payload["key_id"] == new["key_id"]
            ] == [2]

    before = world.snapshot()
    again = world.post("coord_a", f"/api-keys/{old['key_id']}/rotate", headers={"Accept-Language": "en"})
    assert again.status_code == 409
    assert again.get_json()["errors"] == [{"field": "key_id", "reason": "a revoked key cannot be rotated"}]
    assert world.snapshot() == before
    engine.dispose()


def test_revocation_stops_the_key_once(world: World) -> None:
    key = new_key(world, ["read"])
    revoked = world.ok("coord_a", "POST", f"/api-keys/{key['key_id']}/revoke")
    assert revoked["revoked_at"] is not None
    assert world.get(key["api_key"], "/me").status_code == 401
    count = len(world.outbox())
    assert world.ok("coord_a", "POST", f"/api-keys/{key['key_id']}/revoke")["revoked_at"] == revoked["revoked_at"]
    assert len(world.outbox()) == count  # no second apikey.revoked
    assert [e.payload["key_id"] for e in world.outbox() if e.type == "apikey.revoked"] == [key["key_id"]]


def test_an_answer_that_carries_a_secret_is_never_stored_for_replay(world: World) -> None:
    before = world.snapshot()
    resp = world.post("coord_a", "/api-keys", {"scopes": ["read"]}, headers={"Idempotency-Key": "k1"})
    assert resp.status_code == 400
    assert fields_of(resp) == ["headers.Idempotency-Key"]
    assert world.snapshot() == before
    with world.infra.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orm.idempotency)).scalar_one() == 0


def test_key_management_needs_a_key(world: World) -> None:
    for method, path in (("GET", "/api-keys"), ("POST", "/api-keys"), ("GET", "/api-keys/x"),
                         ("POST", "/api-keys/x/rotate"), ("POST", "/api-keys/x/revoke"), ("GET", "/accounts"),
                         ("POST", "/accounts"), ("GET", "/accounts/x"), ("POST", "/accounts/x/disable")):
        assert world.call(None, method, path, {} if method == "POST" else None).status_code == 401, path


# ---- documentation and texts ------------------------------------------------------------------


def test_the_openapi_document_declares_the_routes_strictly(world: World) -> None:
    doc = world.get(None, "/openapi.json").get_json()
    assert doc["paths"]["/tokens/{audience}"]["post"]["security"] == []
    for name in ("AccountIn", "TokenIn", "KeyIn"):
        assert doc["components"]["schemas"][name]["additionalProperties"] is False, name
    assert "password" not in doc["components"]["schemas"]["AccountOut"]["properties"]
    assert "api_key" not in doc["components"]["schemas"]["KeyOut"]["properties"]


def _literal_texts(path: Path, call: str, position: int) -> list[str]:
    """The literal text (an f-string's fixed start, plus a sample value) passed to each ``call(...)``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == call and len(node.args) > position):
            continue
        arg = node.args[position]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.append(arg.value)
        elif isinstance(arg, ast.JoinedStr):
            found.append("".join(str(v.value) if isinstance(v, ast.Constant) else "7" for v in arg.values))
    return found


def test_every_text_has_a_dutch_version() -> None:
    texts = _literal_texts(ROOT / "services/intake/intake/service_layer/accounts.py", "AccountError", 1)
    assert len(texts) >= 7
    texts += [accounts_api.SIGN_IN_FAILED, auth.DISABLED_ACCOUNT, accounts_api.NO_IDEMPOTENCY,
              accounts_api.UNKNOWN_AUDIENCE, *auth.LACKS_SCOPE.values()]
    texts += _literal_texts(ROOT / "shared/werkplaats_shared/tokens.py", "TokenRefused", 0)
    missing = [t for t in texts if accounts_api.to_dutch(t) is None]
    assert not missing, missing
