"""The authorization matrices: written once per service, enforced in one place, complete, and documented.

The three real apps are built (SQLite in a temporary directory); callers hold real API keys of each role."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient
from werkplaats_shared.auth import MISSING_KEY, generate_key, unauthorized_text
from werkplaats_shared.authorization import (
    NOT_IN_MATRIX,
    ROLES,
    SERVICES,
    Matrix,
    allow,
    app_routes,
    authorization_markdown,
    public,
    service_matrix,
)
from werkplaats_shared.config import Settings
from werkplaats_shared.db import utcnow

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    app: Flask
    client: FlaskClient
    keys: dict[str, str]


def _build(name: str, tmp: Path) -> Service:
    settings = Settings.from_env(name, {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp}/{name}.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp),
        "WERKPLAATS_SECRET_KEY": "authorization-test-secret-0123456789abcdef",
        "WERKPLAATS_PUBLIC_URL": "http://scheduling.test", "WERKPLAATS_RATE_LIMIT": "100000 per minute"})
    infra = importlib.import_module(f"{name}.bootstrap").bootstrap(settings)
    app = getattr(importlib.import_module(f"{name}.entrypoints.api"), f"create_{name}_app")(infra)
    keys = {}
    with infra.engine.begin() as conn:
        for role in ROLES:
            key = generate_key()
            conn.execute(infra.api_keys.insert().values(
                key_id=key.key_id, organisation_id=f"org-{role}", role=role, secret_hash=key.secret_hash,
                created_at=utcnow()))
            keys[role] = key.plaintext

    # Added after the factory, as a route someone forgets to put in the matrix would be.
    @app.get("/unlisted")
    def unlisted() -> Any:
        return jsonify(reached=True)

    @app.get("/responses/unlisted/<token>")
    def unlisted_public(token: str) -> Any:
        return jsonify(reached=True)

    return Service(app, app.test_client(), keys)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    tmp = tmp_path_factory.mktemp("authorization")
    built = {name: _build(name, tmp) for name in SERVICES}
    try:
        yield built
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _call(svc: Service, role: str | None, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Accept-Language": "en", **kwargs.pop("headers", {})}
    if role is not None:
        headers["Authorization"] = f"Bearer {svc.keys[role]}"
    return svc.client.open(path, method=method, headers=headers, **kwargs)


def test_the_documentation_is_generated_from_the_matrices() -> None:
    written = (ROOT / "docs" / "authorization.md").read_text(encoding="utf-8")
    assert written == authorization_markdown(service_matrix(name) for name in SERVICES), (
        "docs/authorization.md is out of date: python -m werkplaats_shared.authorization > docs/authorization.md")


@pytest.mark.parametrize("name", SERVICES)
def test_every_route_of_the_app_is_in_its_matrix_and_nothing_else(services: dict[str, Service], name: str) -> None:
    routes = app_routes(services[name].app) - {("unlisted", "GET", "/unlisted"),
                                              ("unlisted_public", "GET", "/responses/unlisted/<token>")}
    entries = service_matrix(name).entries()
    assert sorted(routes - entries) == [], "routes of the app that the matrix does not name"
    assert sorted(entries - routes) == [], "matrix entries (endpoint, method, path) the app does not have"


@pytest.mark.parametrize(("name", "method", "path", "refused", "allowed", "message"), [
    ("intake", "POST", "/batches", "institution", "coordinator", "this action needs the role coordinator"),
    ("intake", "POST", "/assignments/nothing/withdraw", "institution", "entrepreneur",
     "this action needs the role entrepreneur or coordinator"),
    ("matching", "GET", "/runs", "entrepreneur", "coordinator", "this action needs the role coordinator"),
    ("scheduling", "PUT", "/contact", "institution", "coordinator",
     "this action needs the role coordinator or entrepreneur"),
    ("scheduling", "GET", "/workshop-programmes", "institution", "entrepreneur",
     "this action needs the role coordinator or entrepreneur"),
])
def test_a_role_outside_the_matrix_gets_403_and_a_role_in_it_passes(
        services: dict[str, Service], name: str, method: str, path: str, refused: str, allowed: str,
        message: str) -> None:
    svc = services[name]
    assert refused not in (service_matrix(name).roles_for(svc.app.url_map.bind("x").match(path, method)[0],
                                                          method) or ())
    resp = _call(svc, refused, method, path, json={})
    assert resp.status_code == 403
    assert resp.get_json() == {"status": 403, "error": "Forbidden", "message": message, "errors": []}
    assert _call(svc, allowed, method, path, json={}).status_code not in (401, 403)


def test_the_refusal_speaks_dutch_by_default_in_intake(services: dict[str, Service]) -> None:
    resp = services["intake"].client.post("/batches", json={},
                                          headers={"Authorization": f"Bearer {services['intake'].keys['institution']}"})
    assert resp.status_code == 403
    assert resp.get_json()["message"] == "Deze actie vraagt de rol coördinator."


@pytest.mark.parametrize(("name", "method", "path", "refused", "dutch"), [
    ("intake", "POST", "/batches", "institution", "Deze actie vraagt de rol coördinator."),
    ("matching", "GET", "/runs", "entrepreneur", "Deze actie vraagt de rol coördinator."),
    ("scheduling", "PUT", "/contact", "institution", "Deze actie vraagt de rol coördinator of ondernemer."),
    ("scheduling", "POST", "/kickoffs/nothing/agreement", "coordinator",
     "Deze actie vraagt de rol ondernemer of onderwijsinstelling."),
])
def test_every_service_says_a_403_in_the_callers_language_like_a_401(
        services: dict[str, Service], name: str, method: str, path: str, refused: str, dutch: str) -> None:
    svc = services[name]
    for headers, language in (({}, "nl"), ({"Accept-Language": "nl-NL,nl;q=0.9"}, "nl"),
                              ({"Accept-Language": "en-GB,en;q=0.8"}, "en")):
        resp = svc.client.open(path, method=method, json={},
                               headers={"Authorization": f"Bearer {svc.keys[refused]}", **headers})
        assert resp.status_code == 403
        message = resp.get_json()["message"]
        assert message == dutch if language == "nl" else message.startswith("this action needs the role "), (
            name, headers, message)
        unauthorized = svc.client.open(path, method=method, json={}, headers=headers).get_json()["message"]
        assert unauthorized == unauthorized_text(MISSING_KEY, language)


def test_head_is_checked_as_get(services: dict[str, Service]) -> None:
    svc = services["matching"]
    assert _call(svc, "institution", "HEAD", "/runs").status_code == 403
    assert _call(svc, "coordinator", "HEAD", "/runs").status_code == 200


@pytest.mark.parametrize("name", SERVICES)
def test_a_route_left_out_of_the_matrix_is_refused_to_every_role(services: dict[str, Service], name: str) -> None:
    svc = services[name]
    for role in ROLES:
        resp = _call(svc, role, "GET", "/unlisted")
        assert resp.status_code == 403, role
        assert resp.get_json()["message"] == NOT_IN_MATRIX
    assert _call(svc, None, "GET", "/unlisted").status_code == 401


def test_a_route_under_a_public_prefix_but_not_declared_public_is_refused(services: dict[str, Service]) -> None:
    svc = services["scheduling"]
    resp = _call(svc, None, "GET", "/responses/unlisted/some-token")
    assert resp.status_code == 403
    assert resp.get_json()["message"] == NOT_IN_MATRIX


def test_declared_public_routes_answer_without_a_key(services: dict[str, Service]) -> None:
    assert _call(services["intake"], None, "GET", "/health").status_code == 200
    assert _call(services["matching"], None, "GET", "/openapi.json").status_code == 200
    # the signed link is its own credential: a forged one is refused by the link check (403 "not valid"), not here
    resp = _call(services["scheduling"], None, "GET", "/responses/forged", headers={"Accept": "application/json"})
    assert resp.status_code == 403
    assert resp.get_json()["message"] == "this link is not valid"


def test_a_matrix_refuses_unknown_roles_methods_and_double_entries() -> None:
    with pytest.raises(ValueError, match="roles"):
        Matrix("x", [allow("team", "read", "GET", "/teams", "teams.Teams", "student")])
    with pytest.raises(ValueError, match="roles"):
        Matrix("x", [allow("team", "read", "GET", "/teams", "teams.Teams")])
    with pytest.raises(ValueError, match="method"):
        Matrix("x", [allow("team", "read", "FETCH", "/teams", "teams.Teams", "coordinator")])
    with pytest.raises(ValueError, match=r"GET teams\.Teams"):
        Matrix("x", [allow("team", "list", "GET", "/teams", "teams.Teams", "coordinator"),
                     allow("team", "list", "GET", "/teams", "teams.Teams", "institution")])
    with pytest.raises(ValueError, match="GET health"):
        Matrix("x", [], [public("GET", "/health", "health", "twice")])


def test_intake_imports_allow_the_role_each_import_kind_names() -> None:
    from intake.entrypoints.bulk_api import import_kinds

    matrix = service_matrix("intake")
    for name, kind in import_kinds().items():
        assert matrix.roles_for(f"imports.import_{name}", "POST") == (kind.role,), name
