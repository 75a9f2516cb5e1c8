"""Too many requests from one API key get 429 with Retry-After; other keys and health checks go on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from intake import bootstrap as intake_bootstrap
from intake.entrypoints.api import create_intake_app
from intake.service_layer import services
from werkplaats_shared.config import Settings


@pytest.fixture
def client_and_keys(tmp_path: Path) -> Iterator[tuple[FlaskClient, list[str]]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/i.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_RATE_LIMIT": "3 per minute"})
    infra = intake_bootstrap.bootstrap(settings)
    keys = []
    with infra.session_factory.begin() as session:
        def emit(env: Any) -> None:
            infra.emit(session, env)

        for i in range(2):
            keys.append(services.create_organisation(session, emit, name=f"org {i}", role="coordinator")[1])
    yield create_intake_app(infra).test_client(), keys
    infra.engine.dispose()
    root.handlers[:], root.level = handlers, level


def test_a_key_over_its_limit_gets_429_with_retry_after(client_and_keys: tuple[FlaskClient, list[str]]) -> None:
    client, (first, second) = client_and_keys
    auth = {"Authorization": f"Bearer {first}"}
    assert [client.get("/me", headers=auth).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/me", headers=auth)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    body = refused.get_json()
    assert body["status"] == 429 and body["error"] == "Too Many Requests"
    # another organisation's key has its own allowance; health checks are never limited
    assert client.get("/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    assert all(client.get("/health").status_code == 200 for _ in range(5))
