"""What production keeps in Redis works across replicas (docker-compose runs several behind one address):
the API rate limits count a key's requests on every replica together, and a portal session started on one
replica (with its CSRF token) is honoured by another."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from intake import bootstrap as intake_bootstrap
from intake.entrypoints.api import create_intake_app
from intake.service_layer import services
from portal.bootstrap import build
from portal.config import PortalSettings
from werkplaats_shared.config import Settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def _intake_replicas(tmp_path: Path, storage: str) -> tuple[list[FlaskClient], str, Any]:
    settings = Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/i.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_RATE_LIMIT": "3 per minute", "WERKPLAATS_RATE_LIMIT_STORAGE": storage})
    infra = intake_bootstrap.bootstrap(settings)
    with infra.session_factory.begin() as session:
        key = services.create_organisation(session, lambda env: infra.emit(session, env),
                                           name=f"org {uuid.uuid4().hex[:6]}", role="coordinator")[1]
    # two apps over one database: two replicas, each with its own limiter
    return [create_intake_app(infra).test_client() for _ in range(2)], key, infra


@pytest.mark.usefixtures("restore_logging")
def test_rate_limits_count_a_keys_requests_on_every_replica_together(tmp_path: Path, redis_url: str) -> None:
    (first, second), key, infra = _intake_replicas(tmp_path / "redis", redis_url)
    auth = {"Authorization": f"Bearer {key}"}
    try:
        assert [first.get("/me", headers=auth).status_code for _ in range(2)] == [200, 200]
        assert second.get("/me", headers=auth).status_code == 200
        refused = second.get("/me", headers=auth)  # the fourth request of the minute, on the other replica
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    finally:
        infra.engine.dispose()


@pytest.mark.usefixtures("restore_logging")
def test_with_counters_in_memory_each_replica_counts_alone(tmp_path: Path) -> None:
    """The contrast that makes the test above meaningful: per-process counters let the same key through."""
    (first, second), key, infra = _intake_replicas(tmp_path / "memory", "memory://")
    auth = {"Authorization": f"Bearer {key}"}
    try:
        assert [first.get("/me", headers=auth).status_code for _ in range(3)] == [200, 200, 200]
        assert second.get("/me", headers=auth).status_code == 200
    finally:
        infra.engine.dispose()


def _portal(tmp_path: Path, store: str) -> Flask:
    app = build(PortalSettings(secret_key="redis-session-test-secret-0123456789abcdef", data_dir=str(tmp_path),
                               public_url="http://127.0.0.1:8100", session_store=store,
                               intake_url="http://127.0.0.1:9", matching_url="http://127.0.0.1:9",
                               scheduling_url="http://127.0.0.1:9"))
    app.config["TESTING"] = False  # CSRF on, as in production
    return app


def _switch_language_on_another_replica(first: FlaskClient, second: FlaskClient) -> int:
    page = first.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, "the start page carries the language form with its CSRF token"
    cookie = first.get_cookie("werkplaats_session")
    assert cookie is not None
    second.set_cookie("werkplaats_session", cookie.value)
    answer = second.post("/language", data={"csrf_token": token.group(1), "language": "en"})
    return answer.status_code


@pytest.mark.usefixtures("restore_logging")
def test_a_portal_session_started_on_one_replica_is_honoured_by_another(tmp_path: Path, redis_url: str) -> None:
    first = _portal(tmp_path / "a", redis_url).test_client()
    second = _portal(tmp_path / "b", redis_url).test_client()
    assert _switch_language_on_another_replica(first, second) == 302
    # the choice made through the second replica is in the session the first replica reads
    assert first.get("/").headers["Content-Language"] == "en"


@pytest.mark.usefixtures("restore_logging")
def test_sessions_in_local_files_are_not_shared_between_replicas(tmp_path: Path) -> None:
    first = _portal(tmp_path / "a", "").test_client()
    second = _portal(tmp_path / "b", "").test_client()
    assert _switch_language_on_another_replica(first, second) == 400  # the CSRF session token is missing there
    assert first.get("/").headers["Content-Language"] == "nl"
