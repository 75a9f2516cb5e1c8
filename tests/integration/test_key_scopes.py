"""The scopes of an API key hold in every service, not only where intake issued it.

Intake issues keys with scopes and announces them with apikey.issued v2; matching and scheduling keep the
scopes in their replica and the shared check refuses what a key may not do. Asserted over every route of
every service, read from each app's URL map: a read-only key reads (no scope refusal on any GET) and every
write answers 403 on the Authorization field, changing nothing. A key announced by apikey.issued v1, and a
key stored before scopes existed (migrated), keeps full access; a disabled account's token stops working in
every service once account.disabled arrives.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.testing import FlaskClient
from intake.service_layer import services as intake_services
from werkplaats_shared.auth import DISABLED_ACCOUNT, authenticate, generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope, parse_envelope
from werkplaats_shared.db import make_engine, upgrade_database, utcnow
from werkplaats_shared.service import Infrastructure
from werkzeug.test import TestResponse

SERVICES = ("intake", "matching", "scheduling")
SECRET_KEY = "scopes-test-only-secret-key-0123456789abcdef"
ROLES = ("coordinator", "institution", "entrepreneur")
# Routes that take no API key: they are checked elsewhere (test_access_matrix).
NO_KEY = {"/", "/health", "/ready", "/openapi.json", "/responses/<token>", "/tokens/<audience>", "/signups",
          "/sessions", "/sessions/refresh", "/sessions/revoke", "/sign-in-links", "/sign-in-links/<token>/session",
          "/invitations/<token>", "/invitations/<token>/accept",
          "/batch-snapshots/<snapshot_id>"}  # matching's signed request is the credential (test_batch_rounds.py)
KEY_MANAGEMENT = ("/api-keys", "/accounts", "/invitations", "/organisations")
NOTHING = "00000000-0000-4000-8000-000000000000"
LACKS = re.compile(r"this API key lacks the scope (read|write|keys)")


@dataclass
class World:
    infra: dict[str, Infrastructure]
    apps: dict[str, Flask]
    clients: dict[str, FlaskClient]
    keys: dict[str, str] = field(default_factory=dict)
    orgs: dict[str, str] = field(default_factory=dict)

    def call(self, service: str, key: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> TestResponse:
        h = {"Authorization": f"Bearer {self.keys.get(key, key)}", "Accept-Language": "en", **(headers or {})}
        return self.clients[service].open(path, method=method, headers=h, json=body)

    def pump(self) -> None:
        """Deliver every unsent outbox message to the services that consume it, as the relay would."""
        handlers = {name: importlib.import_module(f"{name}.entrypoints.handlers").HANDLERS for name in SERVICES}
        for producer in SERVICES:
            infra = self.infra[producer]
            with infra.engine.begin() as conn:
                rows = conn.execute(sa.select(infra.outbox).where(infra.outbox.c.sent_at.is_(None))
                                    .order_by(infra.outbox.c.created_at)).all()
                conn.execute(infra.outbox.update().where(infra.outbox.c.message_id.in_(
                    [r.message_id for r in rows])).values(sent_at=utcnow()))
            for row in rows:
                envelope = parse_envelope(json.loads(row.body))
                for consumer in SERVICES:
                    handler = handlers[consumer].get(envelope.type) if consumer != producer else None
                    if handler is not None:
                        with self.infra[consumer].session_factory.begin() as session:
                            handler(session, envelope)

    def rows(self) -> dict[str, list[tuple[str, ...]]]:
        out: dict[str, list[tuple[str, ...]]] = {}
        for name, infra in self.infra.items():
            metadata = sa.MetaData()
            metadata.reflect(infra.engine)
            with infra.engine.connect() as conn:
                for table in metadata.sorted_tables:
                    if table.name not in ("alembic_version", "personal_data_access_log"):
                        out[f"{name}.{table.name}"] = sorted(tuple(map(str, r))
                                                             for r in conn.execute(sa.select(table)).all())
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    tmp = tmp_path_factory.mktemp("scopes")
    infra: dict[str, Infrastructure] = {}
    apps: dict[str, Flask] = {}
    for name in SERVICES:
        settings = Settings.from_env(name, {
            "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp}/{name}.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp),
            "WERKPLAATS_SECRET_KEY": SECRET_KEY, "WERKPLAATS_PUBLIC_URL": "http://scheduling.test",
            "WERKPLAATS_RATE_LIMIT": "100000 per minute"})
        infra[name] = importlib.import_module(f"{name}.bootstrap").bootstrap(settings)
        apps[name] = getattr(importlib.import_module(f"{name}.entrypoints.api"), f"create_{name}_app")(infra[name])
    w = World(infra, apps, {name: app.test_client() for name, app in apps.items()})
    intake = infra["intake"]
    with intake.session_factory.begin() as session:
        for role in ROLES:
            org, key = intake_services.create_organisation(
                session, lambda env: intake.emit(session, env), name=f"Organisatie {role}", role=role,
                levels=["HBO"] if role == "institution" else [])
            w.orgs[role], w.keys[role] = org.id, key
    for role in ROLES:
        for scopes in (["read"], ["read", "write"]):
            created = w.call("intake", role, "POST", "/api-keys", {"scopes": scopes})
            assert created.status_code == 201, created.get_data(as_text=True)
            w.keys[f"{role}:{'+'.join(scopes)}"] = created.get_json()["api_key"]
    w.pump()  # apikey.issued v1 (admin keys) and v2 (scoped keys) reach matching and scheduling
    try:
        yield w
    finally:
        for i in infra.values():
            i.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def routes(app: Flask) -> list[tuple[str, str]]:
    return [(method, rule.rule) for rule in app.url_map.iter_rules()
            if rule.endpoint != "static" and rule.rule not in NO_KEY and not rule.rule.startswith("/docs")
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]


def path_of(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?[^<>]+>", NOTHING, rule)


def scope_refusal(resp: TestResponse) -> str | None:
    body = resp.get_json(silent=True)
    if not isinstance(body, dict):
        return None
    found = LACKS.fullmatch(str(body.get("message", "")))
    if resp.status_code != 403 or found is None:
        return None
    assert body["errors"] == [{"field": "Authorization", "reason": body["message"]}]
    return found.group(1)


def test_a_read_only_key_reads_but_cannot_write_on_any_route_of_any_service(world: World) -> None:
    before = world.rows()
    writes = reads = 0
    failures: list[str] = []
    for service, app in world.apps.items():
        for method, rule in routes(app):
            path = path_of(rule)
            if rule == "/runs/compare":
                path += f"?a={NOTHING}&b={NOTHING}"
            headers = {"If-Match": '"*"'} if method == "PATCH" else {}
            body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
            manages_keys = service == "intake" and rule.startswith(KEY_MANAGEMENT)
            for role in ROLES:
                resp = world.call(service, f"{role}:read", method, path, body, headers)
                refused = scope_refusal(resp)
                wanted = "keys" if manages_keys else ("read" if method == "GET" else "write")
                if refused != (None if wanted == "read" else wanted):
                    failures.append(f"{service} {role} {method} {rule} -> {resp.status_code} "
                                    f"{resp.get_data(as_text=True)[:120]}")
            writes += method != "GET"
            reads += method == "GET"
    assert not failures, "\n".join(failures)
    assert world.rows() == before, "a read-only key changed a row"
    assert writes >= 40 and reads >= 40, (writes, reads)  # the three services' routes were all enumerated


def test_a_read_write_key_writes_everywhere_but_manages_no_keys(world: World) -> None:
    for service, app in world.apps.items():
        for method, rule in routes(app):
            if method == "GET":
                continue
            manages_keys = service == "intake" and rule.startswith(KEY_MANAGEMENT)
            headers = {"If-Match": '"*"'} if method == "PATCH" else {}
            resp = world.call(service, "coordinator:read+write", method, path_of(rule),
                              {} if method in ("POST", "PUT", "PATCH") else None, headers)
            assert scope_refusal(resp) == ("keys" if manages_keys else None), (service, method, rule)


def test_the_replicas_hold_each_keys_scopes(world: World) -> None:
    for service in ("matching", "scheduling"):
        infra = world.infra[service]
        for name, scopes in (("institution:read", {"read"}), ("institution:read+write", {"read", "write"}),
                             ("institution", {"read", "write", "keys"})):
            principal = authenticate(infra.engine, infra.api_keys, world.keys[name])
            assert principal is not None and principal.scopes == scopes, (service, name)
    # a scoped write through scheduling: the read+write key may, the read key may not
    contact = {"email": "planning@bakkerij.example.nl", "language": "nl"}
    assert world.call("scheduling", "entrepreneur:read", "PUT", "/contact", contact).status_code == 403
    assert world.call("scheduling", "entrepreneur:read+write", "PUT", "/contact", contact).status_code == 200


def test_a_key_announced_by_v1_keeps_full_access(world: World) -> None:
    key = generate_key()
    v1 = make_envelope("apikey.issued", 1, {"key_id": key.key_id, "organisation_id": world.orgs["coordinator"],
                                            "role": "coordinator", "secret_hash": key.secret_hash,
                                            "issued_at": utcnow().isoformat()})
    for service in ("matching", "scheduling"):
        handlers = importlib.import_module(f"{service}.entrypoints.handlers").HANDLERS
        with world.infra[service].session_factory.begin() as session:
            handlers["apikey.issued"](session, v1)
        principal = authenticate(world.infra[service].engine, world.infra[service].api_keys, key.plaintext)
        assert principal is not None and principal.scopes == {"read", "write", "keys"}
    resp = world.call("matching", key.plaintext, "POST", f"/batches/{NOTHING}/pins",
                      {"team_id": NOTHING, "assignment_id": NOTHING, "reason": "afgesproken"})
    assert resp.status_code == 404 and scope_refusal(resp) is None


def test_a_disabled_accounts_tokens_stop_working_in_every_service(world: World) -> None:
    account = {"email": "coordinator@werkplaats-scopes.example.nl", "password": "scopes test password 0123"}
    created = world.call("intake", "coordinator", "POST", "/accounts", account)
    assert created.status_code == 201
    tokens = {service: world.clients["intake"].post(f"/tokens/{service}", json=account).get_json()["token"]
              for service in SERVICES}
    reads = {"intake": "/me", "matching": "/runs", "scheduling": "/kickoffs"}
    for service in SERVICES:
        assert world.call(service, tokens[service], "GET", reads[service]).status_code == 200, service
    disabled = world.call("intake", "coordinator", "POST", f"/accounts/{created.get_json()['id']}/disable")
    assert disabled.status_code == 200
    assert world.call("intake", tokens["intake"], "GET", "/me").status_code == 401  # at once in intake
    world.pump()  # account.disabled reaches matching and scheduling
    for service in SERVICES:
        resp = world.call(service, tokens[service], "GET", reads[service])
        assert resp.status_code == 401 and resp.get_json()["message"] == DISABLED_ACCOUNT, service
    world.pump()  # nothing left to deliver: a redelivery would be a no-op
    assert world.call("matching", "coordinator", "GET", "/runs").status_code == 200  # the organisation's key works


def _upgrade(url: str, service: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            cfg = Config()
            cfg.set_main_option("script_location", importlib.import_module(f"{service}.bootstrap").MIGRATIONS)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def test_keys_stored_before_scopes_existed_keep_their_access_after_the_migration(tmp_path: Path) -> None:
    legacy, scoped = generate_key(), generate_key()
    for service, before in (("matching", "0004"), ("scheduling", "0008"), ("intake", "0009")):
        url = f"sqlite:///{tmp_path / service}.sqlite3"
        _upgrade(url, service, before)
        engine = make_engine(url)
        with engine.begin() as conn:
            for key in (legacy, scoped):
                conn.execute(sa.text("INSERT INTO api_keys (key_id, organisation_id, role, secret_hash, created_at) "
                                     "VALUES (:k, 'org-1', 'coordinator', :h, :t)"),
                             {"k": key.key_id, "h": key.secret_hash, "t": utcnow()})
            if service == "intake":  # intake kept the scopes of API-issued keys in a table of their own
                conn.execute(sa.text("INSERT INTO api_key_scopes (key_id, scopes) VALUES (:k, :s)"),
                             {"k": scoped.key_id, "s": '["read"]'})
        upgrade_database(url, importlib.import_module(f"{service}.bootstrap").MIGRATIONS)
        api_keys = importlib.import_module(f"{service}.adapters.orm").api_keys
        old = authenticate(engine, api_keys, legacy.plaintext)
        assert old is not None and old.scopes == {"read", "write", "keys"}, service
        kept = authenticate(engine, api_keys, scoped.plaintext)
        assert kept is not None and kept.scopes == ({"read"} if service == "intake" else {"read", "write", "keys"})
        engine.dispose()
