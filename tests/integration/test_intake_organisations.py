"""The operator's organisations at intake's HTTP edge, and the admin command on the same service layer.

Only the operator may create, list, read and deactivate organisations (401 without a key, 403 for any other
role). A created organisation's key works at once; a deactivated one's keys and account tokens stop at once,
its data stays, and deactivating it twice is refused. A CSV file creates all its organisations or none, and
names every bad row. Every change is in the audit log; no key is in a log or in the audit log.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from intake import bootstrap as intake_bootstrap
from intake.adapters import orm
from intake.adapters.privacy_orm import access_log
from intake.entrypoints import cli
from intake.entrypoints.api import create_intake_app
from intake.service_layer import organisations, services
from sqlalchemy.orm import Session
from werkplaats_shared import audit
from werkplaats_shared.auth import authenticate
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import parse_envelope
from werkplaats_shared.db import make_engine, messaging_tables
from werkplaats_shared.service import Infrastructure, apikey_replica_handlers
from werkzeug.test import TestResponse

SECRET = "organisations-test-only-secret-key-0123456789"
PASSWORD = "correct horse battery staple"


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

    def ok(self, who: str | None, method: str, path: str, body: Any = None, status: int = 200,
           **kwargs: Any) -> Any:
        resp = self.call(who, method, path, body, **kwargs)
        assert resp.status_code == status, resp.get_data(as_text=True)
        return resp.get_json()

    def csv(self, who: str, text: str, **kwargs: Any) -> TestResponse:
        return self.call(who, "POST", "/organisations/bulk", data=text.encode(),
                         headers={"Content-Type": "text/csv", **kwargs.pop("headers", {})}, **kwargs)

    def count(self, table: Any, *where: Any) -> int:
        with self.infra.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())

    def audit(self, action: str) -> list[Any]:
        with self.infra.engine.connect() as conn:
            return list(conn.execute(sa.select(orm.AuditEntry.__table__).where(orm.AuditEntry.action == action)
                                     .order_by(orm.AuditEntry.id)).all())

    def outbox_types(self) -> list[str]:
        with self.infra.engine.connect() as conn:
            return [parse_envelope(json.loads(body)).type for body in conn.execute(
                sa.select(self.infra.outbox.c.body).order_by(self.infra.outbox.c.created_at)).scalars()]

    def deliver(self, engine: Any, handlers: dict[str, Any]) -> None:
        """Every key message of the outbox to a replica, as matching and scheduling receive them."""
        with self.infra.engine.connect() as conn:
            bodies = conn.execute(sa.select(self.infra.outbox.c.body)
                                  .order_by(self.infra.outbox.c.created_at)).scalars().all()
        for envelope in (parse_envelope(json.loads(body)) for body in bodies):
            if envelope.type in handlers:
                with Session(engine) as session, session.begin():
                    handlers[envelope.type](session, envelope)

    def stored(self) -> dict[str, list[tuple[str, ...]]]:
        tables: list[Any] = [orm.Organisation.__table__, orm.api_keys, orm.outbox, orm.AuditEntry.__table__]
        with self.infra.engine.connect() as conn:
            return {str(t.name): sorted(tuple(map(str, r)) for r in conn.execute(sa.select(t)).all())
                    for t in tables}


def _world(settings: Settings) -> Iterator[World]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    infra = intake_bootstrap.bootstrap(settings)
    w = World(infra, create_intake_app(infra).test_client())
    with infra.session_factory.begin() as session:
        for who, role in (("operator", "operator"), ("coord", "coordinator"), ("inst", "institution"),
                          ("firm", "entrepreneur")):
            org, key = services.create_organisation(session, lambda env: infra.emit(session, env),
                                                    name=f"Organisatie {who}", role=role,
                                                    levels=["HBO"] if role == "institution" else [])
            w.org[who], w.keys[who] = org.id, key
    try:
        yield w
    finally:
        infra.engine.dispose()
        root.handlers[:], root.level = handlers, level


open_world = contextmanager(_world)


def _settings(tmp_path: Path, database_url: str | None = None) -> Settings:
    env = {"WERKPLAATS_DATA_DIR": str(tmp_path), "WERKPLAATS_SECRET_KEY": SECRET,
           "WERKPLAATS_RATE_LIMIT": "100000 per minute"}
    if database_url:
        env["WERKPLAATS_DATABASE_URL"] = database_url
    return Settings.from_env("intake", env)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from _world(_settings(tmp_path))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    url = request.getfixturevalue("make_postgres_db")("intake") if request.param == "postgresql" else None
    yield from _world(_settings(tmp_path, url))


FIRM = {"name": "Bakkerij  de Zon", "role": "entrepreneur"}


def test_only_the_operator_manages_organisations(world: World) -> None:
    before = world.stored()
    target = world.org["firm"]
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/organisations", None), ("POST", "/organisations", FIRM), ("GET", f"/organisations/{target}", None),
        ("POST", f"/organisations/{target}/deactivate", {"reason": "test"}),
    ]
    for method, path, body in calls:
        assert world.call(None, method, path, body).status_code == 401, path
        for who in ("coord", "inst", "firm"):
            resp = world.call(who, method, path, body)
            assert resp.status_code == 403, (who, path, resp.get_data(as_text=True))
    assert world.call(None, "POST", "/organisations/bulk", data=b"name,role\nX,coordinator\n",
                      headers={"Content-Type": "text/csv"}).status_code == 401
    refused = world.csv("coord", "name,role\nX,coordinator\n")
    assert refused.status_code == 403 and refused.get_json()["message"] == "Deze actie vraagt de rol operator."
    assert world.stored() == before
    # an operator key without the scope keys cannot mint keys for others
    with world.infra.engine.begin() as conn:
        conn.execute(orm.api_keys.update().where(orm.api_keys.c.organisation_id == world.org["operator"])
                     .values(scopes=["read", "write"]))
    before = world.stored()
    assert world.call("operator", "POST", "/organisations", FIRM).status_code == 403
    assert world.stored() == before


def test_a_created_organisation_s_key_works_at_once_and_the_rules_hold(
        any_db_world: World, caplog: pytest.LogCaptureFixture) -> None:
    w = any_db_world
    caplog.set_level(logging.DEBUG)
    resp = w.call("operator", "POST", "/organisations", FIRM)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    made = resp.get_json()
    assert resp.headers["Location"].endswith(f"/organisations/{made['id']}")
    assert resp.headers["Cache-Control"] == "no-store"
    assert made["name"] == "Bakkerij  de Zon" and made["role"] == "entrepreneur" and made["deactivated_at"] is None
    me = w.ok(made["api_key"], "GET", "/me")
    assert me["id"] == made["id"] and me["role"] == "entrepreneur"
    assert w.ok("operator", "GET", f"/organisations/{made['id']}") == {k: v for k, v in made.items()
                                                                       if k != "api_key"}
    # names of organisations are read as personal data: the access log has who read which
    logged = audit.entries(w.infra.engine, access_log, route="/organisations/<organisation_id>", action="read")
    assert [(e["subject_id"], e["actor_organisation_id"], e["status"]) for e in logged] == [
        (made["id"], w.org["operator"], 200)]
    (entry,) = w.audit("organisation.created")
    assert entry.actor_organisation_id == w.org["operator"] and entry.object_id == made["id"]
    assert entry.actor_key_id == w.keys["operator"].split("_")[1]
    assert entry.details == {"role": "entrepreneur", "levels": [], "via": "api"}
    assert w.outbox_types().count("apikey.issued") == 5

    # the same rules as the admin command, each with its field and a Dutch reason
    before = w.stored()
    again = w.call("operator", "POST", "/organisations", {"name": " bakkerij DE  zon ", "role": "entrepreneur"})
    assert again.status_code == 409
    assert again.get_json()["errors"] == [{"field": "name",
                                           "reason": "Er is al een actieve organisatie met deze rol en deze naam."}]
    bad = w.call("operator", "POST", "/organisations", {"name": "Hogeschool", "role": "institution"})
    assert bad.status_code == 422 and bad.get_json()["errors"] == [
        {"field": "levels", "reason": "Een instelling biedt minstens één niveau aan."}]
    bad = w.call("operator", "POST", "/organisations", {"name": "  ", "role": "pirate"},
                 headers={"Accept-Language": "en"})
    assert bad.status_code == 422 and bad.get_json()["errors"] == [{"field": "name", "reason": "a name is required"}]
    assert w.call("operator", "POST", "/organisations", {"name": "X", "role": "pirate"}).status_code == 422
    assert w.call("operator", "POST", "/organisations", {"name": "x" * 201, "role": "coordinator"}).status_code == 422
    assert w.stored() == before
    # a retried request with the same Idempotency-Key creates nothing; it learns the first was done and where
    # the organisation is, but the key was shown once: it is not kept in the idempotency table
    retry = {"Idempotency-Key": "onboarding-0001"}
    done = w.call("operator", "POST", "/organisations", {"name": "Drukkerij Pers", "role": "entrepreneur"},
                  headers=retry)
    assert done.status_code == 201, done.get_data(as_text=True)
    first = done.get_json()
    replayed = w.call("operator", "POST", "/organisations", {"name": "Drukkerij Pers", "role": "entrepreneur"},
                      headers=retry)
    assert replayed.status_code == 409 and replayed.headers["Location"] == done.headers["Location"]
    assert replayed.get_json()["errors"][0]["field"] == "headers.Idempotency-Key"
    assert first["api_key"] not in replayed.get_data(as_text=True)
    with w.infra.engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT body FROM idempotency_keys")).scalars().all()
    assert kept and not any(first["api_key"] in (body or "") for body in kept)
    assert w.count(orm.Organisation.__table__, orm.Organisation.name == "Drukkerij Pers") == 1
    # the same name in another role is another organisation
    other = w.ok("operator", "POST", "/organisations", {"name": "Bakkerij de Zon", "role": "coordinator"},
                 status=201)
    institution = w.ok("operator", "POST", "/organisations",
                       {"name": "Hogeschool Zuid", "role": "institution", "levels": ["WO", "HBO", "WO"]}, status=201)
    assert institution["levels"] == ["HBO", "WO"]

    # listed a page at a time, by role and by whether active
    page = w.call("operator", "GET", "/organisations?role=entrepreneur&active=true&page_size=1")
    assert page.status_code == 200 and len(page.get_json()) == 1
    assert json.loads(page.headers["X-Pagination"])["total"] == 3
    listed = w.ok("operator", "GET", "/organisations?role=coordinator")
    assert [o["id"] for o in listed] == [w.org["coord"], other["id"]]
    assert w.ok("operator", "GET", "/organisations?active=false") == []
    assert w.call("operator", "GET", "/organisations?role=pirate").status_code == 422
    assert w.call("operator", "GET", "/organisations/no-such-id").status_code == 404

    texts = [r.getMessage() for r in caplog.records]
    for key in (made["api_key"], other["api_key"], institution["api_key"]):
        secret = key.split("_", 2)[2]
        assert not any(secret in t for t in texts)
        assert not any(secret in json.dumps(e.details) for e in w.audit("organisation.created"))


def test_a_deactivated_organisation_s_keys_and_tokens_stop_at_once_and_its_data_stays(any_db_world: World) -> None:
    w = any_db_world
    made = w.ok("operator", "POST", "/organisations", {"name": "Werkplaats Oost", "role": "coordinator"}, status=201)
    key = made["api_key"]
    workspace = w.ok(key, "POST", "/workspaces", {
        "name": "Werkplaats Oost", "municipalities": ["GM0363"],
        "periods": [{"code": "2025-Q1", "starts_on": "2025-01-06", "ends_on": "2025-03-28"}]}, status=201)
    w.ok(key, "POST", "/accounts", {"email": "planner@oost.example.nl", "password": PASSWORD}, status=201)
    second = w.ok(key, "POST", "/api-keys", {"scopes": ["read"], "label": "rapportage"}, status=201)["api_key"]
    token = w.ok(None, "POST", "/tokens/intake", {"email": "planner@oost.example.nl", "password": PASSWORD},
                 status=201)["token"]
    assert w.call(token, "GET", "/me").status_code == 200
    metadata = sa.MetaData()  # the key replica matching and scheduling keep, fed by their own handlers
    _, _, replica = messaging_tables(metadata)
    replica_engine = make_engine("sqlite://")
    metadata.create_all(replica_engine)
    handlers = apikey_replica_handlers(replica)
    w.deliver(replica_engine, handlers)
    assert authenticate(replica_engine, replica, key) is not None

    assert w.call("operator", "POST", f"/organisations/{made['id']}/deactivate", {}).status_code == 422
    assert w.call("operator", "POST", f"/organisations/{made['id']}/deactivate", {"reason": "  "}).status_code == 422
    assert w.call("operator", "POST", "/organisations/no-such-id/deactivate", {"reason": "x"}).status_code == 404
    done = w.ok("operator", "POST", f"/organisations/{made['id']}/deactivate",
                {"reason": "Samenwerking beëindigd (ticket 4711)"})
    assert done["deactivated_at"] is not None and done["id"] == made["id"]
    for credential in (key, second, token):
        assert w.call(credential, "GET", "/me").status_code == 401
    w.deliver(replica_engine, handlers)  # the other services follow with apikey.revoked and account.disabled
    assert authenticate(replica_engine, replica, key) is None and authenticate(replica_engine, replica, second) is None
    with replica_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(metadata.tables["disabled_accounts"])
                            ).scalar_one() == 1
    replica_engine.dispose()
    # its data stays
    assert w.ok("operator", "GET", f"/organisations/{made['id']}")["deactivated_at"] == done["deactivated_at"]
    assert w.count(orm.Workspace.__table__, orm.Workspace.id == workspace["id"]) == 1
    assert [o["id"] for o in w.ok("operator", "GET", "/organisations?active=false")] == [made["id"]]
    assert made["id"] not in [o["id"] for o in w.ok("operator", "GET", "/organisations?active=true")]

    twice = w.call("operator", "POST", f"/organisations/{made['id']}/deactivate", {"reason": "nog eens"})
    assert twice.status_code == 409
    assert twice.get_json()["errors"] == [{"field": "status", "reason": "De organisatie is al gedeactiveerd."}]
    (entry,) = w.audit("organisation.deactivated")
    assert entry.actor_organisation_id == w.org["operator"] and entry.object_id == made["id"]
    assert entry.details == {"reason": "Samenwerking beëindigd (ticket 4711)", "revoked_keys": 2,
                             "disabled_accounts": 1}
    types = w.outbox_types()
    assert types.count("apikey.revoked") == 2 and types.count("account.disabled") == 1
    # a new organisation may take the name of a deactivated one
    w.ok("operator", "POST", "/organisations", {"name": "Werkplaats Oost", "role": "coordinator"}, status=201)


BULK = """name;role;levels
Bakkerij de Zon;entrepreneur;
Hogeschool Noord;institution;HBO, WO
Werkplaats West;coordinator;
"""


def test_a_csv_file_creates_all_its_organisations_or_none(any_db_world: World,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    w = any_db_world
    caplog.set_level(logging.DEBUG)
    w.ok("operator", "POST", "/organisations", {"name": "Bakkerij Het Anker", "role": "entrepreneur"}, status=201)
    before = w.stored()
    bad = w.csv("operator", BULK + "Hogeschool Oost;institution;\nBAKKERIJ  DE ZON;entrepreneur;\n"
                                   "Nieuw;pirate;\n;coordinator;\nbakkerij het anker;entrepreneur;\n"
                                   "Instituut;institution;HBO PhD\n")
    assert bad.status_code == 422, bad.get_data(as_text=True)
    body = bad.get_json()
    assert body["message"] == "6 problemen in het bestand; er is niets opgeslagen."
    assert [(e["row"], e["column"], e["reason"]) for e in body["errors"]] == [
        (5, "levels", "Een instelling biedt minstens één niveau aan."),
        (6, "name", "Rij 2 bevat deze organisatie al."),
        (7, "role", "Moet een van deze waarden zijn: coordinator, institution, entrepreneur, operator."),
        (8, "name", "Een naam is verplicht."),
        (9, "name", "Er is al een actieve organisatie met deze rol en deze naam."),
        (10, "levels", "Moet een van deze waarden zijn: MBO, HBO, WO."),
    ], body["errors"]
    assert w.stored() == before

    header = w.csv("operator", "naam;role\nX;coordinator\n", headers={"Accept-Language": "en"})
    assert header.status_code == 422
    assert {(e["column"], e["reason"]) for e in header.get_json()["errors"]} == {
        ("naam", "unknown column"), ("name", "the column is missing")}
    too_many = "name,role\n" + "".join(f"Firma {i},entrepreneur\n" for i in range(organisations.MAX_BULK_ROWS + 1))
    assert w.csv("operator", too_many).status_code == 413
    assert w.call("operator", "POST", "/organisations/bulk", data=b"PK\x03\x04rest",
                  headers={"Content-Type": "text/csv"}).status_code == 415
    assert w.call("operator", "POST", "/organisations/bulk", {"name": "x"}).status_code == 415
    assert w.stored() == before

    resp = w.csv("operator", BULK)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    created = resp.get_json()
    assert created["count"] == 3 and resp.headers["Cache-Control"] == "no-store"
    assert [(o["name"], o["role"], o["levels"]) for o in created["organisations"]] == [
        ("Bakkerij de Zon", "entrepreneur", []), ("Hogeschool Noord", "institution", ["HBO", "WO"]),
        ("Werkplaats West", "coordinator", [])]
    for org in created["organisations"]:
        assert w.ok(org["api_key"], "GET", "/me")["id"] == org["id"]
    entries = w.audit("organisation.created")
    assert [e.object_id for e in entries][-3:] == [o["id"] for o in created["organisations"]]
    (summary,) = w.audit("organisation.bulk_created")
    assert summary.details == {"count": 3, "via": "api"} and summary.actor_organisation_id == w.org["operator"]
    # the same file again: every row is a stored duplicate now
    again = w.csv("operator", BULK)
    assert again.status_code == 422 and [e["row"] for e in again.get_json()["errors"]] == [2, 3, 4]
    # as a multipart upload too
    upload = w.call("operator", "POST", "/organisations/bulk", data={"file": (
        io.BytesIO(b"name,role\nWerkplaats Zuid,coordinator\n"), "orgs.csv")},
        content_type="multipart/form-data")
    assert upload.status_code == 201 and upload.get_json()["count"] == 1

    texts = [r.getMessage() for r in caplog.records]
    for org in created["organisations"]:
        assert not any(org["api_key"].split("_", 2)[2] in t for t in texts)


def test_the_admin_command_creates_and_deactivates_through_the_same_rules(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WERKPLAATS_DATABASE_URL", raising=False)
    monkeypatch.setenv("WERKPLAATS_DATA_DIR", str(tmp_path))  # the admin command reads the environment
    monkeypatch.setenv("WERKPLAATS_SECRET_KEY", SECRET)
    with open_world(_settings(tmp_path)) as w:
        cli.admin(["create-organisation", "--name", "Werkplaats Noord", "--role", "coordinator"])
        made = json.loads(capsys.readouterr().out)
        assert w.ok(made["api_key"], "GET", "/me")["role"] == "coordinator"
        (entry,) = w.audit("organisation.created")
        assert entry.actor_key_id == "cli" and entry.details["via"] == "cli"

        before = w.stored()
        with pytest.raises(SystemExit) as refused:
            cli.admin(["create-organisation", "--name", "werkplaats  NOORD", "--role", "coordinator"])
        assert refused.value.code == 2
        assert "an active organisation of this role has this name already" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            cli.admin(["create-organisation", "--name", "Hogeschool", "--role", "institution"])
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps([
            {"name": "Firma A", "role": "entrepreneur"}, {"name": "Firma B", "role": "entrepreneur"},
            {"name": "firma a", "role": "entrepreneur"}])))
        with pytest.raises(SystemExit):
            cli.admin(["create-organisations"])
        assert "organisation 2: name: row 0 has this organisation already" in capsys.readouterr().err
        assert w.stored() == before

        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps([
            {"name": "Firma A", "role": "entrepreneur"}, {"name": "Hogeschool Zuid", "role": "institution",
                                                          "levels": ["HBO"]}])))
        cli.admin(["create-organisations"])
        listed = json.loads(capsys.readouterr().out)
        assert [o["name"] for o in listed] == ["Firma A", "Hogeschool Zuid"]
        assert w.ok(listed[1]["api_key"], "GET", "/me")["levels"] == ["HBO"]

        cli.admin(["deactivate-organisation", made["organisation_id"], "--reason", "opgeheven"])
        assert json.loads(capsys.readouterr().out)["organisation_id"] == made["organisation_id"]
        assert w.call(made["api_key"], "GET", "/me").status_code == 401
        with pytest.raises(SystemExit):
            cli.admin(["issue-key", made["organisation_id"]])
        assert "the organisation is deactivated" in capsys.readouterr().err
        (entry,) = w.audit("organisation.deactivated")
        assert entry.actor_key_id == "cli" and entry.details["reason"] == "opgeheven"


@pytest.mark.postgres
def test_the_same_organisation_asked_for_at_once_is_created_once(make_postgres_db: Any, tmp_path: Path) -> None:
    with open_world(_settings(tmp_path, make_postgres_db("intake"))) as w:
        barrier = threading.Barrier(6)
        # one app per request, as six processes would have; made before the race (an app is made once per process)
        clients = [create_intake_app(w.infra).test_client() for _ in range(6)]

        def create(n: int) -> int:
            client = clients[n]
            barrier.wait(timeout=60)  # a thread that fails before it ends the test instead of hanging it
            return client.post("/organisations", json={"name": "Werkplaats Midden", "role": "coordinator"},
                               headers={"Authorization": f"Bearer {w.keys['operator']}"}).status_code

        with ThreadPoolExecutor(6) as pool:
            statuses = sorted(pool.map(create, range(6)))
        assert statuses == [201, 409, 409, 409, 409, 409]
        assert w.count(orm.Organisation.__table__, orm.Organisation.name == "Werkplaats Midden") == 1
