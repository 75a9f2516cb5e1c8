"""The access matrix, proven over every route of every service, read from each app's URL map.

Organisation set A (a coordinator, an institution and a firm) builds a real world through the APIs and
the services' own message handlers: a workspace, capacity, a team, an assignment, a batch, a solved and
published matching run with pins and forbids, notices with their signed links, a contact and a webhook.
Then every role of organisation set B calls every method of every route with A's ids and A's own request
bodies, and nobody calls without a key. Asserted:

- B never succeeds on an object of A: routes naming one of A's objects answer 401, 403 or 404 only;
- no answer to B (2xx or not) carries an id, key id, code or address of A's, and none of A's rows changes;
- without a key every route answers 401, except the declared public ones;
- control: A itself reaches each of its objects through the same routes (so the ids used are real).

A route added without an entry in OBJECTS fails this test until the matrix knows which object it names.
"""

from __future__ import annotations

import email
import email.policy
import importlib
import io
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from intake.adapters.accounts_orm import SignInThrottle
from intake.service_layer import services as intake_services
from matching.service_layer import services as matching_services
from scheduling.adapters.links import ResponseLinks
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import parse_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.service import Infrastructure
from werkzeug.test import TestResponse

from ..conftest import free_port

SERVICES = ("intake", "matching", "scheduling")
SECRET_KEY = "matrix-test-only-secret-key-0123456789abcdef"
PUBLIC_URL = "http://scheduling.test"
ROLES = {"coordinator": "coord", "institution": "inst", "entrepreneur": "firm"}
# Routes any caller may use without an API key: the base URL (it points to the documentation), health,
# readiness, the OpenAPI document and its browsable view (Swagger UI's page, script and style).
# /responses/<token> carries its own credential (the signed link of a notice): it is checked with a valid and
# a forged token.
PUBLIC = {"/", "/health", "/ready", "/openapi.json",
          "/docs", "/docs/docs.js", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js"}
# (matching's signed request for a large batch snapshot: test_batch_rounds.py checks what it opens without one)
SIGNED_LINK_RULES = {("scheduling", "/responses/<token>"), ("intake", "/batch-snapshots/<snapshot_id>")}
# Routes whose body is the credential: an account's e-mail and password, exchanged for a token. Checked with
# another organisation's keys and a wrong password, and with the right password as the control.
LOGIN_RULES = {("intake", "/tokens/<audience>")}
# The portal's sign-in routes: their body or path carries the credential (an address and password, a refresh
# token, a link or invitation token). Checked on their own, with A's real invitation as the control.
SIGN_IN_RULES = {("intake", rule) for rule in (
    "/signups", "/sessions", "/sessions/refresh", "/sessions/revoke", "/sign-in-links",
    "/sign-in-links/<token>/session", "/invitations/<token>", "/invitations/<token>/accept")}
INVITED_EMAIL = "nieuwe.collega@werkplaats-alfa.example.nl"
ACCOUNT_EMAIL = "coordinator@werkplaats-alfa.example.nl"
ACCOUNT_PASSWORD = "matrix test password 0123"
# Shared by design, not owned by one organisation: the directory of workspaces (name, working area,
# calendar: what an institution or firm chooses from). Its ids are not secrets of A. (A workspace's own
# referral schemes are A's: B's coordinator changing them answers 404; the national list has no route.)
SHARED = {("intake", "GET", "/workspaces/<workspace_id>")}
# Which of A's objects each path argument names, per service (and rule where the same name differs).
OBJECTS: dict[tuple[str, str], str] = {
    ("intake", "workspace_id"): "ws_a", ("intake", "team_id"): "team_a",
    ("intake", "assignment_id"): "asg_a", ("intake", "batch_id"): "batch_a",
    ("intake", "capacity_id"): "capacity_a", ("intake", "code"): "scheme_a",
    ("intake", "account_id"): "account_a", ("intake", "key_id"): "apikey_a", ("intake", "match_id"): "match_a",
    ("intake", "token"): "invitation_token_a",
    ("matching", "batch_id"): "batch_a", ("matching", "run_id"): "run_a",
    ("matching", "control_id"): "control_a",
    ("scheduling", "notice_id"): "notice_a", ("scheduling", "token"): "token_a",
    ("scheduling", "match_id"): "match_a", ("scheduling", "job_id"): "plan_job_a",
}
# Path arguments whose objects this world does not build yet. The sweep still calls their routes, with an
# id that names nothing (so it proves authentication, roles and the leak scan, not scoping); each entry
# says why, and the test fails once an entry no longer matches a route.
PENDING: dict[tuple[str, str], str] = {
    ("scheduling", "programme_id"): "workshops are new: open programmes are meant for every entrepreneur, "
                                    "which of their routes other organisations may use is not settled yet",
    ("scheduling", "registration_id"): "workshops are new (see programme_id)",
    # the operator's dead-letter routes: no party may use them (403 for every role here, whatever the id);
    # the operator's own access is tested in test_dead_letters.py
    ("intake", "message_id"): "a dead letter's message id: operator routes only",
    ("matching", "message_id"): "a dead letter's message id: operator routes only",
    ("scheduling", "message_id"): "a dead letter's message id: operator routes only",
    # the operator's organisation routes: no party may use them; tested in test_intake_organisations.py
    ("intake", "organisation_id"): "an organisation's id: operator routes only",
}
NOTHING = "00000000-0000-4000-8000-000000000000"
CONTROL_KIND = {"/batches/<batch_id>/pins/<control_id>": "pin_a",
                "/batches/<batch_id>/forbids/<control_id>": "forbid_a"}


def workspace_body(name: str, municipality: str) -> dict[str, Any]:
    return {"name": name, "municipalities": [municipality],
            "periods": [{"code": "2025-Q1", "starts_on": "2025-01-06", "ends_on": "2025-03-28"}]}


def firm_body(kvk: str, municipality: str) -> dict[str, Any]:
    return {"kvk_number": kvk, "sector": "bakkerij", "size_class": "micro", "municipality": municipality,
            "language": "nl"}


@dataclass
class App:
    name: str
    infra: Infrastructure
    app: Flask
    client: FlaskClient


@dataclass
class World:
    apps: dict[str, App]
    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    etags: dict[tuple[str, str], str] = field(default_factory=dict)
    secrets_of_a: set[str] = field(default_factory=set)
    bodies: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def call(self, service: str, who: str | None, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:
        h = dict(headers or {})
        if who is not None:  # an account's token is meant for one service
            h["Authorization"] = f"Bearer {self.keys.get(f'{who}@{service}') or self.keys[who]}"
        if body is not None:
            kwargs["json"] = body
        return self.apps[service].client.open(path, method=method, headers=h, **kwargs)

    def ok(self, service: str, who: str | None, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        resp = self.call(service, who, method, path, body, **kwargs)
        assert resp.status_code in (200, 201, 202), (service, method, path, resp.get_data(as_text=True))
        return resp.get_json()

    def pump(self) -> None:
        """Deliver every unsent outbox message to the services that consume it, as the relay would."""
        handlers = {name: importlib.import_module(f"{name}.entrypoints.handlers").HANDLERS for name in SERVICES}
        moved = True
        while moved:
            moved = False
            for producer in SERVICES:
                infra = self.apps[producer].infra
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
                            with self.apps[consumer].infra.session_factory.begin() as session:
                                handler(session, envelope)
                    moved = True

    def rows_of_a(self) -> dict[str, list[tuple[str, ...]]]:
        """Every row, in every service, that carries one of A's ids: what B must never change."""
        out: dict[str, list[tuple[str, ...]]] = {}
        for name, svc in self.apps.items():
            metadata = sa.MetaData()
            metadata.reflect(svc.infra.engine)
            with svc.infra.engine.connect() as conn:
                for table in metadata.sorted_tables:
                    if table.name in ("alembic_version", "inbox", "outbox", "personal_data_access_log"):
                        continue
                    rows = [tuple(map(str, r)) for r in conn.execute(sa.select(table)).all()]
                    out[f"{name}.{table.name}"] = sorted(
                        r for r in rows if any(s in v for v in r for s in self.private_ids_of_a()))
        return out

    def private_ids_of_a(self) -> set[str]:
        return {self.ids[k] for k in ("coord_a", "inst_a", "firm_a", "team_a", "asg_a", "batch_a",
                                      "capacity_a", "run_a", "notice_a", "pin_a", "forbid_a", "match_a",
                                      "account_a", "apikey_a", "invitation_a")}


def _settings(service: str, tmp: Path, smtp_port: int) -> Settings:
    return Settings.from_env(service, {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp}/{service}.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY, "WERKPLAATS_PUBLIC_URL": PUBLIC_URL,
        "WERKPLAATS_RATE_LIMIT": "100000 per minute", "WERKPLAATS_SMTP_PORT": str(smtp_port)})


class _Mails:
    """aiosmtpd handler keeping the links of every mail it receives."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # read as a mail client reads it: a long line may be folded by its transfer encoding
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.bodies.append(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        return "250 Message accepted for delivery"


def _public_resolver(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]  # a public address; nothing is ever sent to it in this test


def _build(tmp: Path, smtp_port: int, mails: _Mails) -> World:
    apps: dict[str, App] = {}
    for name in SERVICES:
        bootstrap = importlib.import_module(f"{name}.bootstrap")
        factory = getattr(importlib.import_module(f"{name}.entrypoints.api"), f"create_{name}_app")
        infra = bootstrap.bootstrap(_settings(name, tmp, smtp_port))
        app = factory(infra, resolve=_public_resolver) if name == "scheduling" else factory(infra)
        apps[name] = App(name, infra, app, app.test_client())
    w = World(apps)
    intake = apps["intake"].infra
    with intake.session_factory.begin() as session:
        for side in ("a", "b"):
            for role, short in ROLES.items():
                org, key = intake_services.create_organisation(
                    session, lambda env: intake.emit(session, env),
                    name=f"Organisatie {short} {side}", role=role, levels=["HBO"] if role == "institution" else [])
                w.ids[f"{short}_{side}"], w.keys[f"{short}_{side}"] = org.id, key
    w.pump()  # the key hashes reach matching and scheduling through apikey.issued

    ids = w.ids
    account = {"email": ACCOUNT_EMAIL, "password": ACCOUNT_PASSWORD}
    ids["account_a"] = w.ok("intake", "coord_a", "POST", "/accounts", account)["id"]
    w.ok("intake", "coord_b", "POST", "/accounts", {"email": "coordinator@werkplaats-beta.example.nl",
                                                    "password": ACCOUNT_PASSWORD})
    for service in SERVICES:  # B's coordinator also calls with its account's token, one per service
        w.keys[f"coord_b_token@{service}"] = w.ok("intake", None, "POST", f"/tokens/{service}", {
            "email": "coordinator@werkplaats-beta.example.nl", "password": ACCOUNT_PASSWORD})["token"]
    ids["invitation_a"] = w.ok("intake", "coord_a", "POST", "/invitations", {"email": INVITED_EMAIL})["id"]
    ids["invitation_token_a"] = re.findall(r"/invitations/([A-Za-z0-9_-]+)", mails.bodies[-1])[-1]
    scoped = w.ok("intake", "coord_a", "POST", "/api-keys", {"scopes": ["read"], "label": "dashboard alfa"})
    ids["apikey_a"], w.keys["coord_a_read"] = scoped["key_id"], scoped["api_key"]
    ids["ws_a"] = w.ok("intake", "coord_a", "POST", "/workspaces", workspace_body("Werkplaats Alfa", "GM0363"))["id"]
    ids["ws_b"] = w.ok("intake", "coord_b", "POST", "/workspaces", workspace_body("Werkplaats Beta", "GM0599"))["id"]
    w.ok("intake", "firm_a", "POST", "/firm", firm_body("11111111", "GM0363"))
    w.ok("intake", "firm_b", "POST", "/firm", firm_body("22222222", "GM0599"))
    capacity = {"workspace_id": ids["ws_a"], "programme": "ICT", "period": "2025-Q1", "level": "HBO", "teams": 2,
                "team_size_min": 3, "team_size_max": 5, "supervision_hours": 40}
    team = {"workspace_id": ids["ws_a"], "code": "ALFA-T01", "level": "HBO", "size": 4, "skills": ["python"],
            "period": "2025-Q1"}
    assignment = {"workspace_id": ids["ws_a"], "title": "Webwinkel", "description": "Bestellen via de site.",
                  "period": "2025-Q1", "accepted_levels": ["HBO"], "required_skills": ["python"],
                  "nice_to_have_skills": [], "min_teams": 1, "max_teams": 1}
    for who in ("inst_a", "inst_b"):
        etag = w.call("intake", who, "GET", "/institution").headers["ETag"]
        w.ok("intake", who, "PATCH", "/institution", {"programmes": ["ICT"]}, headers={"If-Match": etag})
    ids["capacity_a"] = w.ok("intake", "inst_a", "POST", "/capacity", capacity)["id"]
    ids["team_a"] = w.ok("intake", "inst_a", "POST", "/teams", team)["id"]
    w.ok("intake", "inst_a", "POST", "/teams", {**team, "code": "ALFA-T02"})
    ids["asg_a"] = w.ok("intake", "firm_a", "POST", "/assignments", assignment)["id"]
    scheme = {"name_nl": "Regeling", "name_en": "Scheme", "url": "https://regeling.example.nl"}
    ids["scheme_a"] = w.ok("intake", "coord_a", "PUT", f"/workspaces/{ids['ws_a']}/referral-schemes/regeling-alfa",
                           scheme)["code"]
    batch = {"workspace_id": ids["ws_a"], "period": "2025-Q1", "assignment_ids": [ids["asg_a"]]}
    ids["batch_a"] = w.ok("intake", "coord_a", "POST", "/batches", batch)["id"]
    w.pump()  # batch.submitted: matching queues the run

    matching = apps["matching"].infra
    run_id = matching_services.claim_next_run(matching.session_factory)
    assert run_id is not None
    matching_services.execute_run(matching.session_factory, matching.emit, run_id, "highs", 30)
    ids["run_a"] = run_id
    assert w.ok("matching", "coord_a", "GET", f"/runs/{run_id}")["status"] == "published"
    control = {"team_id": ids["team_a"], "assignment_id": ids["asg_a"], "reason": "afgesproken"}
    ids["pin_a"] = w.ok("matching", "coord_a", "POST", f"/batches/{ids['batch_a']}/pins", control)["id"]
    teams_a = w.ok("intake", "inst_a", "GET", "/teams")
    other = next(t["id"] for t in teams_a if t["id"] != ids["team_a"])
    forbid = {**control, "team_id": other}
    ids["forbid_a"] = w.ok("matching", "coord_a", "POST", f"/batches/{ids['batch_a']}/forbids", forbid)["id"]
    w.pump()  # matches.published: scheduling writes the notices, intake records the matches

    contact = {"email": "planning@alfa-bakkerij.example.nl", "language": "nl"}
    w.ok("scheduling", "firm_a", "PUT", "/contact", contact)
    webhook = {"url": "https://hooks.alfa-bakkerij.example.nl/werkplaats"}
    w.ok("scheduling", "firm_a", "PUT", "/webhook", webhook)
    notices = w.ok("scheduling", "firm_a", "GET", "/notices")
    assert len(notices) == 1, notices
    ids["notice_a"] = notices[0]["id"]
    match_id = w.ok("matching", "firm_a", "GET", "/matches")[0]["id"]
    ids["match_a"] = match_id
    ids["token_a"] = ResponseLinks(SECRET_KEY, PUBLIC_URL).issue(ids["notice_a"], match_id)
    calendar = {"region": "midden"}
    availability = {"windows": [{"weekday": 1, "start": "09:00", "end": "12:00"}], "venue": "on_site",
                    "address": "Bakkerstraat 1, Alfadorp"}
    w.ok("scheduling", "inst_a", "PUT", "/institution-calendar", calendar)
    w.ok("scheduling", "firm_a", "PUT", "/availability", availability)
    w.ok("scheduling", None, "POST", f"/responses/{ids['token_a']}", {"decision": "accepted"})
    w.pump()  # match.responded reaches intake and matching
    assert w.ok("scheduling", "firm_a", "GET", f"/kickoffs/{match_id}")["match_id"] == match_id
    ids["plan_job_a"] = w.ok("scheduling", "coord_a", "POST", "/kickoffs/plan", {"batch_id": ids["batch_a"]})["id"]

    for path, who in (("/teams/" + ids["team_a"], "inst_a"), ("/assignments/" + ids["asg_a"], "firm_a"),
                      ("/firm", "firm_a"), ("/institution", "inst_a")):
        w.etags[("intake", path)] = w.call("intake", who, "GET", path).headers["ETag"]

    # A's own request bodies, sent by B unchanged
    w.bodies.update({
        ("intake", "POST", "/workspaces"): workspace_body("Werkplaats Alfa", "GM0363"),
        ("intake", "POST", "/capacity"): capacity, ("intake", "POST", "/teams"): team,
        ("intake", "POST", "/assignments"): assignment, ("intake", "POST", "/batches"): batch,
        ("intake", "POST", "/firm"): firm_body("11111111", "GM0363"),
        ("intake", "PATCH", "/firm"): {"sector": "slagerij"},
        ("intake", "PATCH", "/institution"): {"programmes": ["ICT"]},
        ("intake", "PATCH", "/teams/<team_id>"): {"size": 5},
        ("intake", "PATCH", "/assignments/<assignment_id>"): {"title": "Overgenomen"},
        ("intake", "PUT", "/workspaces/<workspace_id>/referral-schemes/<code>"): scheme,
        ("intake", "POST", "/accounts"): account, ("intake", "POST", "/api-keys"): {"scopes": ["read"]},
        ("intake", "POST", "/handovers"): {"from_workspace_id": ids["ws_a"], "to_workspace_id": ids["ws_b"],
                                           "reason": "overname"},
        ("matching", "POST", "/batches/<batch_id>/pins"): control,
        ("matching", "POST", "/batches/<batch_id>/forbids"): forbid,
        ("matching", "POST", "/batches/<batch_id>/runs"): {"seed": 1},
        ("scheduling", "PUT", "/contact"): contact, ("scheduling", "PUT", "/webhook"): webhook,
        ("scheduling", "POST", "/responses/<token>"): {"decision": "declined"},
        ("scheduling", "POST", "/match-answers/<match_id>"): {"decision": "declined"},
        ("scheduling", "PUT", "/institution-calendar"): calendar,
        ("scheduling", "PUT", "/availability"): availability,
        ("scheduling", "POST", "/kickoffs/plan"): {"batch_id": ids["batch_a"]},
        ("scheduling", "PATCH", "/kickoffs/<match_id>"): {"starts_at": "2025-01-08T10:00:00+01:00"},
        ("scheduling", "POST", "/kickoffs/<match_id>/agreement"): {"sequence": 0},
    })
    with intake.engine.connect() as conn:
        key_ids = conn.execute(sa.select(intake.api_keys.c.key_id).where(
            intake.api_keys.c.organisation_id.in_([ids["coord_a"], ids["inst_a"], ids["firm_a"]]))).scalars()
        w.secrets_of_a = {*w.private_ids_of_a(), match_id, *key_ids, contact["email"], "alfa-bakkerij",
                          "ALFA-T01", "ALFA-T02", other, "11111111",
                          "Bakkerstraat", "Alfadorp", w.keys["coord_a"], w.keys["inst_a"], w.keys["firm_a"],
                          w.keys["coord_a_read"], ACCOUNT_EMAIL, "werkplaats-alfa", ids["invitation_token_a"]}
    return w


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    mails = _Mails()
    port = free_port()
    smtp = Controller(mails, hostname="127.0.0.1", port=port)
    smtp.start()
    w = _build(tmp_path_factory.mktemp("matrix"), port, mails)
    try:
        yield w
    finally:
        smtp.stop()
        for svc in w.apps.values():
            svc.infra.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def routes(app: Flask) -> list[tuple[str, str, list[str]]]:
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method, rule.rule, sorted(rule.arguments)))
    return out


def _object(w: World, service: str, rule: str, argument: str) -> str:
    if (service, argument) in PENDING:
        return NOTHING
    if (service, argument) not in OBJECTS:
        pytest.fail(f"{service} {rule}: the matrix does not know which object '{argument}' names: add it to OBJECTS")
    key = CONTROL_KIND.get(rule, OBJECTS[(service, argument)])
    return w.ids[key]


def request_for(w: World, service: str, method: str, rule: str,
                arguments: list[str]) -> tuple[str, Any, dict[str, str]]:
    path = rule
    for argument in arguments:
        path = re.sub(rf"<(?:[^:<>]+:)?{argument}>", _object(w, service, rule, argument), path)
    if (service, rule) == ("matching", "/runs/compare"):
        path += f"?a={w.ids['run_a']}&b={w.ids['run_a']}"
    if rule == "/reach":  # A's workspace, over all days: B's coordinator gets 403 (scheduling: B's own workshops)
        path += f"?workspace_id={w.ids['ws_a']}&from=2000-01-01&to=2100-12-31"
    headers = {}
    if method == "PATCH":
        headers["If-Match"] = w.etags.get((service, path), '"*"')
    body = w.bodies.get((service, method, rule), {} if method in ("POST", "PUT", "PATCH") else None)
    return path, body, headers


def leaks(w: World, resp: TestResponse, sent: Any = None, public: frozenset[str] = frozenset()) -> list[str]:
    """A's secrets in an answer, except what the caller itself sent or what the route publishes."""
    data = resp.get_data()
    if data.startswith(b"PK"):  # a spreadsheet: search the files inside the zip
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            data = b" ".join(archive.read(name) for name in archive.namelist())
    text = data.decode("utf-8", "replace") + " " + " ".join(f"{k}: {v}" for k, v in resp.headers.items())
    echoed = json.dumps(sent) if sent is not None else ""
    return sorted(s for s in w.secrets_of_a - public if s in text and s not in echoed)


def test_no_role_of_another_organisation_reaches_anything_of_a(world: World) -> None:
    before = world.rows_of_a()
    failures: list[str] = []
    calls = 0
    for service, svc in world.apps.items():
        for method, rule, arguments in routes(svc.app):
            if rule in PUBLIC or (service, rule) in SIGNED_LINK_RULES | LOGIN_RULES | SIGN_IN_RULES:
                continue
            path, body, headers = request_for(world, service, method, rule, arguments)
            for who in ("coord_b", "inst_b", "firm_b", "coord_b_token"):
                resp = world.call(service, who, method, path, body, headers=headers)
                calls += 1
                where = f"{service} {who} {method} {path} -> {resp.status_code}"
                pending = any((service, a) in PENDING for a in arguments)
                if (arguments and not pending and (service, method, rule) not in SHARED
                        and resp.status_code not in (401, 403, 404)):
                    failures.append(f"{where}: another organisation's object must answer 401/403/404")
                # the workspace directory names the organisation that runs each workspace
                public = frozenset({world.ids["coord_a"]}) if rule.startswith("/workspaces") else frozenset()
                if found := leaks(world, resp, body, public):
                    failures.append(f"{where}: the answer carries A's {found}")
    assert not failures, "\n".join(failures)
    assert world.rows_of_a() == before, "a call of organisation B changed a row of organisation A"
    assert calls >= 3 * 45, calls  # every role on every route of the three services


def test_without_a_key_only_the_declared_public_routes_answer(world: World) -> None:
    before = world.rows_of_a()
    failures: list[str] = []
    for service, svc in world.apps.items():
        for method, rule, arguments in routes(svc.app):
            if (service, rule) in SIGNED_LINK_RULES | LOGIN_RULES | SIGN_IN_RULES:
                continue
            path, body, headers = request_for(world, service, method, rule, arguments)
            resp = world.call(service, None, method, path, body, headers=headers)
            if rule in PUBLIC:
                if resp.status_code not in (200, 503):  # /ready: 503 without a broker, yet answered
                    failures.append(f"{service} {method} {path}: public route answered {resp.status_code}")
            elif resp.status_code != 401:
                failures.append(f"{service} {method} {path}: {resp.status_code} without a key, not 401")
    assert not failures, "\n".join(failures)
    assert world.rows_of_a() == before


def test_the_signed_link_is_its_own_credential_and_a_forged_one_opens_nothing(world: World) -> None:
    token = world.ids["token_a"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    json_accept = {"Accept": "application/json"}
    for who in (None, "firm_b", "coord_b"):
        for bad in (forged, "not-a-token", token[:20]):
            for method, body in (("GET", None), ("POST", {"decision": "declined"})):
                resp = world.call("scheduling", who, method, f"/responses/{bad}", body, headers=json_accept)
                assert resp.status_code in (400, 403, 404), (who, method, bad, resp.status_code)
                assert not leaks(world, resp)
    resp = world.call("scheduling", None, "GET", f"/responses/{token}", headers=json_accept)
    assert resp.status_code == 200
    assert resp.get_json()["notice_id"] == world.ids["notice_a"]


def test_a_reaches_its_own_objects_through_the_same_routes(world: World) -> None:
    """Control for the sweep above: the ids B was refused are A's real, reachable objects."""
    owner = {"intake": {"team_id": "inst_a", "assignment_id": "firm_a", "batch_id": "coord_a",
                        "capacity_id": "inst_a", "workspace_id": "coord_a", "code": "coord_a",
                        "account_id": "coord_a", "key_id": "coord_a", "match_id": "firm_a"},
             "matching": {"batch_id": "coord_a", "run_id": "coord_a"},
             "scheduling": {"notice_id": "firm_a", "match_id": "firm_a", "job_id": "coord_a"}}
    missed = []
    for service, svc in world.apps.items():
        for method, rule, arguments in routes(svc.app):
            if not arguments or (service, rule) in SIGNED_LINK_RULES | LOGIN_RULES | SIGN_IN_RULES or method != "GET":
                continue
            if any((service, a) in PENDING for a in arguments):
                continue
            path, body, headers = request_for(world, service, method, rule, arguments)
            resp = world.call(service, owner[service][arguments[0]], method, path, body, headers=headers)
            if resp.status_code in (401, 403, 404):
                missed.append(f"{service} {method} {path} -> {resp.status_code}")
    assert not missed, missed


def test_every_pending_entry_still_names_a_route(world: World) -> None:
    arguments = {(service, a) for service, svc in world.apps.items() for _, _, args in routes(svc.app) for a in args}
    assert set(PENDING) <= arguments, set(PENDING) - arguments


def test_the_login_gives_a_token_for_the_right_password_only(world: World) -> None:
    before = world.rows_of_a()
    elsewhere = {"REMOTE_ADDR": "192.0.2.44"}  # its own allowance of login attempts
    for service, rule in LOGIN_RULES:
        assert rule == "/tokens/<audience>"
        attempts = [(who, "wrong password 0123") for who in (None, "coord_b", "inst_b", "firm_b", "coord_b_token")]
        for who, password in [(None, ""), *attempts]:
            resp = world.call(service, who, "POST", f"/tokens/{service}",
                              {"email": ACCOUNT_EMAIL, "password": password}, environ_base=elsewhere)
            assert resp.status_code == (401 if password else 422), (who, password, resp.status_code)
            assert "token" not in (resp.get_json() or {})
            assert not leaks(world, resp, {"email": ACCOUNT_EMAIL})
    assert world.rows_of_a() == before
    # five failures lock the address's password sign-in, even for the right password (as POST /sessions does)
    right = {"email": ACCOUNT_EMAIL, "password": ACCOUNT_PASSWORD}
    locked = world.call("intake", None, "POST", "/tokens/intake", right, environ_base=elsewhere)
    assert locked.status_code == 429 and "token" not in (locked.get_json() or {})
    with world.apps["intake"].infra.engine.begin() as conn:  # the lock ends (after 15 minutes)
        conn.execute(sa.delete(SignInThrottle))
    token = world.ok("intake", None, "POST", "/tokens/intake", right, environ_base=elsewhere)["token"]
    world.keys["coord_a_token@intake"] = token
    assert world.ok("intake", "coord_a_token", "GET", "/me")["id"] == world.ids["coord_a"]
    assert world.ok("intake", "coord_a_token", "GET", f"/accounts/{world.ids['account_a']}")["id"] == \
        world.ids["account_a"]
    # the read-only key of A reads, and changes nothing
    assert world.ok("intake", "coord_a_read", "GET", f"/batches/{world.ids['batch_a']}")["id"] == world.ids["batch_a"]
    assert world.call("intake", "coord_a_read", "POST", "/workspaces",
                      workspace_body("Werkplaats Alfa 2", "GM0363")).status_code == 403
    assert world.rows_of_a() == before


def test_the_sign_in_routes_take_their_own_credential_and_open_nothing_of_a_without_it(world: World) -> None:
    before = world.rows_of_a()
    token = world.ids["invitation_token_a"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elsewhere = {"REMOTE_ADDR": "192.0.2.45"}  # its own allowance of sign-in attempts
    for who in (None, "coord_b", "inst_b", "firm_b", "coord_b_token"):
        answers = {
            "wrong password": world.call("intake", who, "POST", "/sessions",
                                         {"email": ACCOUNT_EMAIL, "password": "wrong password 0123"},
                                         environ_base=elsewhere),
            "forged refresh": world.call("intake", who, "POST", "/sessions/refresh", {"refresh_token": forged}),
            "forged link": world.call("intake", who, "POST", f"/sign-in-links/{forged}/session"),
            "forged invitation": world.call("intake", who, "GET", f"/invitations/{forged}"),
            "forged acceptance": world.call("intake", who, "POST", f"/invitations/{forged}/accept",
                                            {"password": ACCOUNT_PASSWORD}),
        }
        expected = {"wrong password": 401, "forged refresh": 401, "forged link": 404, "forged invitation": 404,
                    "forged acceptance": 404}
        for name, resp in answers.items():
            assert resp.status_code == expected[name], (who, name, resp.get_data(as_text=True))
            assert "tokens" not in (resp.get_json() or {}), (who, name)
            assert not leaks(world, resp, {"email": ACCOUNT_EMAIL}), (who, name)
        revoked = world.call("intake", who, "POST", "/sessions/revoke", {"refresh_token": forged})
        assert revoked.status_code == 204 and not revoked.get_data()
        asked = world.call("intake", who, "POST", "/sign-in-links", {"email": ACCOUNT_EMAIL}, environ_base=elsewhere)
        assert asked.status_code == 202 and not leaks(world, asked, {"email": ACCOUNT_EMAIL})
    changed = {k for k, v in world.rows_of_a().items() if v != before.get(k)}
    # asking for sign-in links adds A's links (mailed to A's own address) and their audit entries, nothing else
    assert changed <= {"intake.sign_in_links", "intake.audit_log"}, changed
    # control: A's real invitation token is the credential that shows the invitation, to anyone holding it
    shown = world.ok("intake", None, "GET", f"/invitations/{token}")
    assert shown["email"] == INVITED_EMAIL and shown["organisation_name"] == "Organisatie coord a"
    listed = world.ok("intake", "coord_a", "GET", "/invitations")
    assert [i["id"] for i in listed] == [world.ids["invitation_a"]]
    for who in ("coord_b", "inst_b", "firm_b", "coord_b_token"):
        assert world.ok("intake", who, "GET", "/invitations") == []
