"""Schemathesis against each service's OpenAPI document (fixed seed, bounded examples), with every check
it has but positive-data acceptance (see ALL_CHECKS): generated valid and invalid requests, as the role each
operation is meant for, never get a server error or a response that breaks the document (headers, 405 with
Allow, content types, status codes), and invalid data is refused. About 25 s for the three services."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, given, settings
from intake import bootstrap as intake_bootstrap
from intake.entrypoints.api import create_intake_app
from intake.service_layer import services
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance
from werkplaats_shared.auth import generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.db import utcnow

from ..conftest import free_port

KEYS: dict[str, str] = {}
load_all_checks()
# Every check schemathesis has, but positive-data acceptance: valid-looking data may still break a business
# rule (a period outside the calendar, a webhook URL that is not https, a NUL character) and 422 is right.
ALL_CHECKS = [check for check in CHECKS.get_all() if check is not positive_data_acceptance]


def _role_for(method: str, path: str) -> str:
    if path.startswith("/organisations"):
        return "operator"
    if path.startswith("/teams"):
        return "institution"
    if path.startswith(("/assignments", "/firm", "/imports/assignments")):
        return "entrepreneur"
    if path.startswith("/imports/teams"):
        return "institution"
    return "coordinator"


class _MailSink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_port() -> Iterator[int]:
    """A real SMTP server for the invitations intake mails while it is fuzzed."""
    port = free_port()
    controller = Controller(_MailSink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def intake_schema(tmp_path: Path, smtp_port: int) -> Iterator[Any]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings_ = Settings.from_env("intake", {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/i.sqlite3",
                                             "WERKPLAATS_DATA_DIR": str(tmp_path),
                                             "WERKPLAATS_SECRET_KEY": "fuzz-test-only-secret-key-0123456789abcdef",
                                             "WERKPLAATS_SMTP_PORT": str(smtp_port)})
    infra = intake_bootstrap.bootstrap(settings_)
    with infra.session_factory.begin() as session:
        def emit(env: Any) -> None:
            infra.emit(session, env)

        for role, levels in (("coordinator", []), ("institution", ["HBO"]), ("entrepreneur", []), ("operator", [])):
            _, KEYS[role] = services.create_organisation(session, emit, name=f"fuzz {role}", role=role,
                                                         levels=levels)
    app = create_intake_app(infra)
    yield schemathesis.openapi.from_wsgi("/openapi.json", app)
    infra.engine.dispose()
    root.handlers[:], root.level = handlers, level


def test_intake_api_conforms_to_its_document(intake_schema: Any) -> None:
    operations = [result.ok() for result in intake_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        auth = {"Authorization": f"Bearer {KEYS[_role_for(operation.method.upper(), operation.path)]}"}

        @given(case=operation.as_strategy())
        @settings(max_examples=12, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers=auth,  # noqa: B023 - check() runs inside this iteration
                                   checks=ALL_CHECKS)

        check()


def _fuzz(app: Any, role_for: Callable[[str, str], str], keys: dict[str, str]) -> None:
    schema: Any = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        auth = {"Authorization": f"Bearer {keys[role_for(operation.method.upper(), operation.path)]}"}

        @given(case=operation.as_strategy())
        @settings(max_examples=10, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers=auth,  # noqa: B023 - check() runs inside this iteration
                                   checks=ALL_CHECKS)

        check()


@pytest.mark.parametrize("service", ["matching", "scheduling"])
def test_matching_and_scheduling_apis_conform_to_their_documents(service: str, tmp_path: Path) -> None:
    import importlib

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    bootstrap = importlib.import_module(f"{service}.bootstrap")
    factory = getattr(importlib.import_module(f"{service}.entrypoints.api"), f"create_{service}_app")
    settings_ = Settings.from_env(service, {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/{service}.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": "fuzz-only-secret-key-0123456789abcdefghij"})
    infra = bootstrap.bootstrap(settings_)
    keys = {}
    try:
        with infra.engine.begin() as conn:
            for role in ("coordinator", "institution", "entrepreneur"):
                key = generate_key()
                conn.execute(infra.api_keys.insert().values(
                    key_id=key.key_id, organisation_id=str(uuid.uuid4()), role=role, secret_hash=key.secret_hash,
                    created_at=utcnow()))
                keys[role] = key.plaintext

        def role_for(method: str, path: str) -> str:
            if path.startswith(("/contact", "/webhook")):
                return "entrepreneur"
            return "coordinator"

        _fuzz(factory(infra), role_for, keys)
    finally:
        infra.engine.dispose()
        root.handlers[:], root.level = handlers, level
