"""Matching's and scheduling's HTTP edges: Flask's test client against real SQLite databases, no broker.

API keys reach these services as replicas of intake's key hashes; here they are inserted directly or
fed through the replica handlers. Runs and notices come from the services' own message handlers.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from matching import bootstrap as matching_bootstrap
from matching.adapters import orm as morm
from matching.entrypoints.api import create_matching_app
from matching.service_layer import services as mservices
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm as sorm
from scheduling.entrypoints.api import create_scheduling_app
from scheduling.service_layer import services as sservices
from werkplaats_shared.auth import generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.service import Infrastructure, apikey_replica_handlers
from werkzeug.test import TestResponse

PUBLIC = {"/", "/health", "/ready", "/openapi.json",
          "/docs", "/docs/docs.js", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js"}  # API docs (Swagger UI)
# routes whose credential is a signed token in the path, not an API key (tested in test_scheduling_responses)
TOKEN_ROUTES = ("/responses/",)
SECRET_KEY = "test-only-secret-key-for-signed-links-0123456789"
MIB = 1024 * 1024
ROLES = {"coord_1": "coordinator", "coord_2": "coordinator", "inst_1": "institution", "inst_2": "institution",
         "firm_1": "entrepreneur", "firm_2": "entrepreneur"}


@dataclass
class Service:
    infra: Infrastructure
    app: Flask
    client: FlaskClient
    tables: list[sa.Table]
    keys: dict[str, str] = field(default_factory=dict)

    def call(self, who: str | None, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:
        h = dict(headers or {})
        if who is not None:
            h["Authorization"] = f"Bearer {self.keys[who]}"
        if body is not None:
            kwargs["json"] = body
        return self.client.open(path, method=method, headers=h, **kwargs)

    def get(self, who: str | None, path: str, **kwargs: Any) -> TestResponse:
        return self.call(who, "GET", path, **kwargs)

    def put(self, who: str | None, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.call(who, "PUT", path, body, **kwargs)

    def add_key(self, who: str, organisation_id: str, role: str, revoked: bool = False) -> None:
        key = generate_key()
        with self.infra.engine.begin() as conn:
            conn.execute(self.infra.api_keys.insert().values(
                key_id=key.key_id, organisation_id=organisation_id, role=role, secret_hash=key.secret_hash,
                created_at=utcnow(), revoked_at=utcnow() if revoked else None))
        self.keys[who] = key.plaintext

    def handle(self, handler: Any, envelope: Envelope) -> None:
        with self.infra.session_factory.begin() as session:
            handler(session, envelope)

    def snapshot(self) -> dict[str, Any]:
        """Every table's rows: what a rejected request must not change."""
        with self.infra.engine.connect() as conn:
            return {str(t.name): sorted(tuple(map(str, r)) for r in conn.execute(sa.select(t)).all())
                    for t in self.tables}


@dataclass
class World:
    matching: Service
    scheduling: Service
    org: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)


def _service(tmp_path: Path, name: str, bootstrap: Any, factory: Any, tables: list[Any]) -> Service:
    settings = Settings.from_env(name, {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/{name}.sqlite3",
                                        "WERKPLAATS_DATA_DIR": str(tmp_path), "WERKPLAATS_SECRET_KEY": SECRET_KEY})
    infra = bootstrap.bootstrap(settings)
    app = factory(infra)
    return Service(infra, app, app.test_client(), tables)


def batch_envelope(org: dict[str, str], coordinator: str, ids: dict[str, str]) -> Envelope:
    return make_envelope("batch.submitted", 1, {
        "batch_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "coordinator_id": org[coordinator],
        "period": "2025-Q1", "policy": "max_fit", "auto_publish": True,
        "assignments": [
            {"assignment_id": ids["a1"], "firm_id": org["firm_1"], "accepted_levels": ["HBO"],
             "required_skills": ["python"], "nice_to_have_skills": [], "min_teams": 1, "max_teams": 1},
            {"assignment_id": ids["a2"], "firm_id": org["firm_2"], "accepted_levels": ["WO"],
             "required_skills": [], "nice_to_have_skills": ["ux"], "min_teams": 1, "max_teams": 1},
        ],
        "teams": [
            {"team_id": ids["t1"], "institution_id": org["inst_1"], "level": "HBO", "skills": ["python"]},
            {"team_id": ids["t2"], "institution_id": org["inst_2"], "level": "WO", "skills": ["ux"]},
        ],
    })


def published_envelope(run: morm.Run, matches: list[dict[str, Any]], unmatched: list[str]) -> Envelope:
    return make_envelope("matches.published", 1, {
        "run_id": run.id, "batch_id": run.batch_id, "workspace_id": run.workspace_id,
        "coordinator_id": run.coordinator_id, "period": run.period, "matches": matches,
        "unmatched_assignment_ids": unmatched,
    })


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    matching = _service(tmp_path, "matching", matching_bootstrap, create_matching_app,
                        [morm.Run.__table__, morm.Match.__table__, morm.outbox, morm.api_keys])
    scheduling = _service(tmp_path, "scheduling", scheduling_bootstrap, create_scheduling_app,
                          [sorm.Contact.__table__, sorm.Notice.__table__, sorm.Webhook.__table__,
                           sorm.Delivery.__table__, sorm.MatchResponse.__table__, sorm.outbox, sorm.api_keys])
    org = {who: str(uuid.uuid4()) for who in ROLES}
    w = World(matching, scheduling, org)
    try:
        for svc in (matching, scheduling):
            for who, role in ROLES.items():
                svc.add_key(who, org[who], role)
            svc.add_key("revoked", org["coord_1"], "coordinator", revoked=True)
        ids = w.ids
        ids.update({name: str(uuid.uuid4()) for name in ("a1", "a2", "t1", "t2", "m1", "m2", "m3")})
        # two runs, one per coordinator; coord_1's is published with two matches, coord_2's is still queued
        matching.handle(mservices.on_batch_submitted, batch_envelope(org, "coord_1", ids))
        matching.handle(mservices.on_batch_submitted, batch_envelope(org, "coord_2", ids))
        with matching.infra.session_factory.begin() as session:
            runs = {r.coordinator_id: r for r in session.execute(sa.select(morm.Run)).scalars()}
            run_1, run_2 = runs[org["coord_1"]], runs[org["coord_2"]]
            run_1.status, run_1.published_at = "published", utcnow()
            session.add_all([
                morm.Match(id=ids["m1"], run_id=run_1.id, assignment_id=ids["a1"], team_id=ids["t1"],
                           firm_id=org["firm_1"], institution_id=org["inst_1"], score=0.9),
                morm.Match(id=ids["m2"], run_id=run_1.id, assignment_id=ids["a2"], team_id=ids["t2"],
                           firm_id=org["firm_2"], institution_id=org["inst_2"], score=0.6),
                morm.Match(id=ids["m3"], run_id=run_2.id, assignment_id=ids["a1"], team_id=ids["t1"],
                           firm_id=org["firm_1"], institution_id=org["inst_1"], score=0.5),
            ])
        ids["run_1"], ids["run_2"] = run_1.id, run_2.id
        # scheduling hears coord_1's run (both firms matched) and a later run of coord_2 (firm_1 only)
        scheduling.handle(sservices.on_matches_published, published_envelope(run_1, [
            {"match_id": ids["m1"], "assignment_id": ids["a1"], "team_id": ids["t1"],
             "firm_id": org["firm_1"], "institution_id": org["inst_1"], "score": 0.9},
            {"match_id": ids["m2"], "assignment_id": ids["a2"], "team_id": ids["t2"],
             "firm_id": org["firm_2"], "institution_id": org["inst_2"], "score": 0.6},
        ], []))
        scheduling.handle(sservices.on_matches_published, published_envelope(run_2, [
            {"match_id": ids["m3"], "assignment_id": ids["a1"], "team_id": ids["t1"],
             "firm_id": org["firm_1"], "institution_id": org["inst_1"], "score": 0.5},
        ], [ids["a2"]]))
        with scheduling.infra.engine.connect() as conn:
            for n in conn.execute(sa.select(sorm.Notice)).all():
                holder = "coord_1" if n.coordinator_id == org["coord_1"] else "coord_2"
                firm = "firm_1" if n.firm_id == org["firm_1"] else "firm_2"
                ids[f"notice_{holder}_{firm}"] = n.id
        yield w
    finally:
        matching.infra.engine.dispose()
        scheduling.infra.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def assert_error(resp: TestResponse, status: int, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"status", "error", "errors", "message"}, body
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list)
    for item in body["errors"]:
        assert set(item) == {"field", "reason"}, item
        assert isinstance(item["field"], str) and isinstance(item["reason"], str) and item["reason"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return dict(body)


def protected_routes(app: Flask) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule in PUBLIC or rule.rule.startswith(TOKEN_ROUTES):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule))
    return routes


def fill(rule: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values.get(m.group(1), "does-not-exist"), rule)


def ids_of(resp: TestResponse) -> list[str]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return sorted(item["id"] for item in resp.get_json())


CONTACT = {"email": "planning@bakkerij-jansen.nl", "language": "en"}


# ---- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["matching", "scheduling"])
def test_health_and_ready_are_public(world: World, service: str) -> None:
    svc: Service = getattr(world, service)
    resp = svc.get(None, "/health")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}
    resp = svc.get(None, "/ready")  # no broker here: not ready, but answered without a key
    assert resp.status_code in (200, 503)
    assert resp.get_json()["checks"]["database"] == "ok"


@pytest.mark.parametrize("service", ["matching", "scheduling"])
def test_every_route_rejects_missing_invalid_and_revoked_keys(world: World, service: str) -> None:
    svc: Service = getattr(world, service)
    values = {"run_id": world.ids["run_1"], "notice_id": world.ids["notice_coord_1_firm_1"]}
    valid = svc.keys["firm_1"]
    key_id, secret = valid.split("_", 2)[1:]
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Basic ZmlybTpzZWNyZXQ="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Token {valid}"},
        {"Authorization": valid},
        {"Authorization": f"Bearer wpk_{uuid.uuid4().hex[:16]}_{secret}"},
        {"Authorization": f"Bearer wpk_{key_id}_{secret[:-1]}"},
        {"Authorization": f"Bearer {svc.keys['revoked']}"},
    ]
    routes = protected_routes(svc.app)
    expected = {("GET", "/runs"), ("GET", "/runs/<run_id>"), ("GET", "/matches")}
    if service == "scheduling":
        expected = {("GET", "/contact"), ("PUT", "/contact"), ("GET", "/notices"),
                    ("GET", "/notices/<notice_id>"), ("GET", "/notices/<notice_id>/deliveries"),
                    ("GET", "/webhook"), ("PUT", "/webhook"), ("DELETE", "/webhook"), ("GET", "/kickoffs")}
    assert expected <= set(routes)
    for method, rule in routes:
        before = svc.snapshot()
        path = fill(rule, values)
        body = CONTACT if method in ("POST", "PUT", "PATCH") else None
        for headers in bad_headers:
            resp = svc.call(None, method, path, body, headers=headers)
            assert_error(resp, 401)
            assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), (method, path, headers)
        assert svc.snapshot() == before, (method, path)
        # control: the same request with a valid key of the right role gets past authentication
        who = "coord_1" if rule.startswith("/runs") else "firm_1"
        assert svc.call(who, method, path, body).status_code != 401, (method, path)


@pytest.mark.parametrize("service", ["matching", "scheduling"])
def test_replicated_key_works_until_revoked(world: World, service: str) -> None:
    svc: Service = getattr(world, service)
    handlers = apikey_replica_handlers(svc.infra.api_keys)
    key = generate_key()
    issued = make_envelope("apikey.issued", 1, {
        "key_id": key.key_id, "organisation_id": world.org["firm_1"], "role": "entrepreneur",
        "secret_hash": key.secret_hash, "issued_at": utcnow().isoformat()})
    svc.handle(handlers["apikey.issued"], issued)
    svc.handle(handlers["apikey.issued"], issued)  # a redelivery changes nothing
    svc.keys["replica"] = key.plaintext
    path = "/matches" if service == "matching" else "/notices"
    assert svc.get("replica", path).status_code == 200
    svc.handle(handlers["apikey.revoked"], make_envelope("apikey.revoked", 1, {
        "key_id": key.key_id, "revoked_at": utcnow().isoformat()}))
    assert_error(svc.get("replica", path), 401)
    assert svc.get("firm_1", path).status_code == 200  # other keys are unaffected


# ---- matching -------------------------------------------------------------------------------


def test_coordinators_see_only_their_own_runs(world: World) -> None:
    m, ids = world.matching, world.ids
    assert ids_of(m.get("coord_1", "/runs")) == [ids["run_1"]]
    assert ids_of(m.get("coord_2", "/runs")) == [ids["run_2"]]
    run = m.get("coord_1", f"/runs/{ids['run_1']}")
    assert run.status_code == 200
    assert (run.get_json()["status"], run.get_json()["attempts"]) == ("published", 0)
    assert m.get("coord_2", f"/runs/{ids['run_2']}").get_json()["status"] == "queued"
    assert_error(m.get("coord_1", f"/runs/{ids['run_2']}"), 404)
    assert_error(m.get("coord_2", f"/runs/{ids['run_1']}"), 404)
    assert_error(m.get("coord_1", f"/runs/{uuid.uuid4()}"), 404)


@pytest.mark.parametrize("who", ["inst_1", "firm_1"])
def test_runs_are_for_coordinators_only(world: World, who: str) -> None:
    before = world.matching.snapshot()
    # Dutch unless English is asked for, like a 401
    assert assert_error(world.matching.get(who, "/runs"), 403)["message"] == "Deze actie vraagt de rol coördinator."
    assert "role" in assert_error(world.matching.get(who, "/runs", headers={"Accept-Language": "en"}), 403)["message"]
    assert_error(world.matching.get(who, f"/runs/{world.ids['run_1']}"), 403)
    assert world.matching.snapshot() == before


def test_matches_are_scoped_to_the_organisation(world: World) -> None:
    m, ids = world.matching, world.ids
    assert ids_of(m.get("coord_1", "/matches")) == sorted([ids["m1"], ids["m2"]])
    assert ids_of(m.get("coord_2", "/matches")) == [ids["m3"]]  # own run, though not yet published
    # institutions and firms see their own matches of published runs only
    assert ids_of(m.get("inst_1", "/matches")) == [ids["m1"]]
    assert ids_of(m.get("inst_2", "/matches")) == [ids["m2"]]
    assert ids_of(m.get("firm_1", "/matches")) == [ids["m1"]]
    assert ids_of(m.get("firm_2", "/matches")) == [ids["m2"]]
    assert_error(m.get("coord_1", "/matches?page_size=0"), 422, "query.page_size")


def test_matching_reads_refuse_writes_and_unknown_urls(world: World) -> None:
    m = world.matching
    before = m.snapshot()
    assert_error(m.call("coord_1", "POST", "/runs", {"batch_id": "x"}), 405)
    assert_error(m.call("coord_1", "DELETE", f"/runs/{world.ids['run_1']}"), 405)
    assert_error(m.get("coord_1", "/nothing-here"), 404)
    assert m.snapshot() == before


# ---- scheduling: contact --------------------------------------------------------------------


def test_contact_is_404_until_set_then_readable_by_its_firm_only(world: World) -> None:
    s = world.scheduling
    assert_error(s.get("firm_1", "/contact"), 404)
    resp = s.put("firm_1", "/contact", CONTACT)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == {**CONTACT, "organisation_id": world.org["firm_1"]}
    assert s.get("firm_1", "/contact").get_json() == resp.get_json()
    assert_error(s.get("firm_2", "/contact"), 404)
    # language defaults to Dutch; a second PUT replaces, never adds
    resp = s.put("firm_1", "/contact", {"email": "info@bakkerij-jansen.nl"})
    assert resp.get_json() == {"email": "info@bakkerij-jansen.nl", "language": "nl",
                               "organisation_id": world.org["firm_1"]}
    assert len(s.snapshot()["contacts"]) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "not-an-address"}, "email"),
    ({"email": "planning@bakkerij"}, "email"),
    ({"email": "a@b.nl\nBcc: x@y.nl"}, "email"),
    ({"email": "Jan <jan@bakkerij.nl>"}, "email"),
    ({"email": 42}, "email"),
    ({"email": ["a@b.nl"]}, "email"),
    ({"email": None}, "email"),
    ({"email": "x" * 250 + "@b.nl"}, "email"),
    ({"language": "nl"}, "email"),
    ({**CONTACT, "language": "de"}, "language"),
    ({**CONTACT, "language": "NL"}, "language"),
    ({**CONTACT, "language": 1}, "language"),
    ({**CONTACT, "phone": "+31 6 12345678"}, "phone"),
    ({**CONTACT, "organisation_id": "someone-else"}, "organisation_id"),
])
def test_invalid_contact_is_rejected_and_stores_nothing(
        world: World, body: dict[str, Any], field: str) -> None:
    s = world.scheduling
    before = s.snapshot()
    assert_error(s.put("firm_1", "/contact", body), 422, field)
    assert s.snapshot() == before
    assert_error(s.get("firm_1", "/contact"), 404)


def test_invalid_contact_does_not_overwrite_the_stored_one(world: World) -> None:
    s = world.scheduling
    assert s.put("firm_1", "/contact", CONTACT).status_code == 200
    before = s.snapshot()
    assert_error(s.put("firm_1", "/contact", {**CONTACT, "language": "fr"}), 422, "language")
    assert_error(s.put("firm_1", "/contact", {"email": "broken"}), 422, "email")
    assert s.snapshot() == before


def test_contact_is_for_entrepreneurs_and_coordinators_only(world: World) -> None:
    s = world.scheduling
    before = s.snapshot()
    assert assert_error(s.put("inst_1", "/contact", CONTACT), 403)["message"] == (
        "Deze actie vraagt de rol coördinator of ondernemer.")
    assert_error(s.get("inst_1", "/contact"), 403)
    assert s.snapshot() == before


def test_a_coordinator_registers_the_workspace_address_firms_are_told_to_write_to(world: World) -> None:
    s = world.scheduling
    mailbox = {"email": "werkplaats@regio.example.nl", "language": "nl"}
    resp = s.put("coord_1", "/contact", mailbox)
    assert resp.status_code == 200, resp.get_json()
    assert {k: v for k, v in s.get("coord_1", "/contact").get_json().items() if k != "organisation_id"} == mailbox


def test_contact_body_over_one_mib_is_413_json(world: World) -> None:
    s = world.scheduling
    before = s.snapshot()
    body = json.dumps({**CONTACT, "padding": "x" * MIB}).encode()
    assert_error(s.put("firm_1", "/contact", data=body, content_type="application/json"), 413)
    assert s.snapshot() == before


@pytest.mark.parametrize(("data", "content_type"), [
    (b'{"email": "a@b.nl", ', "application/json"),
    (b"email=a@b.nl", "application/json"),
    (b"\xff\xfe{", "application/json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    (b'{"email": ' + b"7" * 5000 + b"}", "application/json"),
    (b'["a@b.nl"]', "application/json"),
    (b"null", "application/json"),
    (b"", "application/json"),
    (b'{"email": "a@b.nl"}', "text/plain"),
    (b"email=a%40b.nl", "application/x-www-form-urlencoded"),
])
def test_malformed_contact_body_gets_a_json_4xx_never_500(
        world: World, data: bytes, content_type: str) -> None:
    s = world.scheduling
    before = s.snapshot()
    resp = s.put("firm_1", "/contact", data=data, content_type=content_type)
    assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)
    assert_error(resp, resp.status_code)
    assert s.snapshot() == before


# ---- scheduling: notices --------------------------------------------------------------------


def test_entrepreneurs_see_only_their_own_notices(world: World) -> None:
    s, ids, org = world.scheduling, world.ids, world.org
    own_1 = sorted([ids["notice_coord_1_firm_1"], ids["notice_coord_2_firm_1"]])
    assert ids_of(s.get("firm_1", "/notices")) == own_1
    assert ids_of(s.get("firm_2", "/notices")) == [ids["notice_coord_1_firm_2"]]
    notice = s.get("firm_1", f"/notices/{ids['notice_coord_1_firm_1']}")
    assert notice.status_code == 200
    body = notice.get_json()
    assert (body["firm_id"], body["status"], body["run_id"]) == (org["firm_1"], "pending", ids["run_1"])
    assert body["matches"] == [{"match_id": ids["m1"], "assignment_id": ids["a1"], "team_id": ids["t1"]}]
    assert_error(s.get("firm_1", f"/notices/{ids['notice_coord_1_firm_2']}"), 404)
    assert_error(s.get("firm_2", f"/notices/{ids['notice_coord_1_firm_1']}"), 404)
    assert_error(s.get("firm_2", f"/notices/{ids['notice_coord_2_firm_1']}"), 404)
    assert_error(s.get("firm_1", f"/notices/{uuid.uuid4()}"), 404)


def test_coordinators_see_their_runs_notices_and_institutions_none(world: World) -> None:
    s, ids = world.scheduling, world.ids
    assert ids_of(s.get("coord_1", "/notices")) == sorted([ids["notice_coord_1_firm_1"],
                                                           ids["notice_coord_1_firm_2"]])
    assert ids_of(s.get("coord_2", "/notices")) == [ids["notice_coord_2_firm_1"]]
    assert_error(s.get("coord_2", f"/notices/{ids['notice_coord_1_firm_1']}"), 404)
    assert ids_of(s.get("inst_1", "/notices")) == []
    assert_error(s.get("inst_1", f"/notices/{ids['notice_coord_1_firm_1']}"), 404)


def test_notices_never_carry_the_contact(world: World) -> None:
    s = world.scheduling
    assert s.put("firm_1", "/contact", CONTACT).status_code == 200
    for who in ("firm_1", "coord_1"):
        text = s.get(who, "/notices").get_data(as_text=True)
        assert CONTACT["email"] not in text and "@" not in text


# ---- timestamps carry their offset (issue 19, item 11) --------------------------------------

_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(?P<offset>Z|[+-]\d\d:\d\d)?$")


def _timestamps(value: Any, path: str = "") -> list[tuple[str, str, bool]]:
    """Every ISO timestamp in a JSON answer: (where, value, has an offset)."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _timestamps(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _timestamps(v, f"{path}.{i}")]
    if isinstance(value, str) and (found := _ISO.match(value)):
        return [(path, value, found.group("offset") is not None)]
    return []


def test_every_timestamp_read_from_matching_and_scheduling_carries_its_offset(world: World) -> None:
    m, s, ids = world.matching, world.scheduling, world.ids
    with s.infra.session_factory.begin() as session:  # the firm's answer deadline, as a match notice has it
        notice = session.get(sorm.Notice, ids["notice_coord_1_firm_1"])
        assert notice is not None
        notice.answer_deadline = utcnow() + timedelta(days=7)
    reads = [(m, "coord_1", f"/runs/{ids['run_1']}"), (m, "coord_1", "/runs"), (m, "coord_1", "/matches"),
             (s, "firm_1", "/notices"), (s, "firm_1", f"/notices/{ids['notice_coord_1_firm_1']}"),
             (s, "coord_1", "/notices")]
    seen: list[tuple[str, str, bool]] = []
    for svc, who, path in reads:
        resp = svc.get(who, path)
        assert resp.status_code == 200, (path, resp.get_data(as_text=True))
        seen += [(f"{path}{where}", value, ok) for where, value, ok in _timestamps(resp.get_json())]
    wanted = {f"/runs/{ids['run_1']}.created_at", f"/runs/{ids['run_1']}.published_at",
              f"/notices/{ids['notice_coord_1_firm_1']}.created_at",
              f"/notices/{ids['notice_coord_1_firm_1']}.answer_deadline"}
    assert wanted <= {where for where, _, _ in seen}, seen
    assert [t for t in seen if not t[2]] == []


# ---- what the specs promise (issue 19, item 13) -------------------------------------------


@pytest.mark.parametrize(("service", "who", "path", "allowed"), [
    ("matching", "coord_1", "/runs", {"GET"}), ("scheduling", "firm_1", "/contact", {"GET", "PUT"}),
    ("scheduling", "coord_1", "/workshop-programmes", {"GET", "POST"})])
def test_a_method_a_route_does_not_take_answers_405_with_allow(world: World, service: str, who: str, path: str,
                                                               allowed: set[str]) -> None:
    svc = world.matching if service == "matching" else world.scheduling
    resp = svc.call(who, "DELETE", path)
    assert_error(resp, 405)
    assert allowed <= {m.strip() for m in resp.headers["Allow"].split(",")} <= allowed | {"HEAD", "OPTIONS"}


@pytest.mark.parametrize(("service", "who", "path"), [("matching", "coord_1", "/runs"),
                                                     ("scheduling", "firm_1", "/notices")])
def test_x_pagination_is_json_text_and_the_spec_says_so(world: World, service: str, who: str, path: str) -> None:
    svc = world.matching if service == "matching" else world.scheduling
    resp = svc.get(who, path)
    assert resp.status_code == 200
    assert json.loads(resp.headers["X-Pagination"])["total"] == len(resp.get_json())
    spec = svc.get(None, "/openapi.json").get_json()
    header = spec["paths"][path]["get"]["responses"]["200"]["headers"]["X-Pagination"]
    assert header["schema"] == {"type": "string"} and "JSON" in header["description"]
