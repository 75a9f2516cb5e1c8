"""Shared fixtures: the real servers the integration tests use, isolated per test run.

RabbitMQ, PostgreSQL and Redis are named by WERKPLAATS_TEST_RABBITMQ_URL, WERKPLAATS_TEST_POSTGRES_URL and
WERKPLAATS_TEST_REDIS_URL (.ci/run sets all three). When one is not configured, its tests skip with that
reason, except under CI=true, where they fail: CI never passes by skipping.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from werkplaats_shared.devstack.ports import reserve_port

IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(what: str, variable: str) -> None:
    reason = f"{what} not configured: set {variable} to run these tests"
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A port for a test's server, held for this worker until it ends (see werkplaats_shared.devstack.ports)."""
    return reserve_port()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    url = os.environ.get("WERKPLAATS_TEST_RABBITMQ_URL")
    if not url:
        _missing("RabbitMQ", "WERKPLAATS_TEST_RABBITMQ_URL")
    from kombu.connection import Connection

    try:
        with Connection(url, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2, interval_start=0.5)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"RabbitMQ at WERKPLAATS_TEST_RABBITMQ_URL is not reachable: {exc}")
    return str(url)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("WERKPLAATS_TEST_POSTGRES_URL")
    if not url:
        _missing("PostgreSQL", "WERKPLAATS_TEST_POSTGRES_URL")
    engine = sa.create_engine(str(url))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL at WERKPLAATS_TEST_POSTGRES_URL is not reachable: {exc}")
    finally:
        engine.dispose()
    return str(url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("WERKPLAATS_TEST_REDIS_URL")
    if not url:
        _missing("Redis", "WERKPLAATS_TEST_REDIS_URL")
    import redis

    client = redis.Redis.from_url(str(url), socket_connect_timeout=5)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Redis at WERKPLAATS_TEST_REDIS_URL is not reachable: {exc}")
    finally:
        client.close()
    return str(url)


@pytest.fixture
def make_postgres_db(postgres_admin_url: str) -> Iterator[object]:
    """Create uniquely named databases; drop them after the test."""
    created: list[str] = []
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")

    def make(label: str) -> str:
        name = f"wp_test_{label}_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return str(sa.make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False))

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from werkplaats_shared.devstack.embedded_broker import EmbeddedBroker

    broker = EmbeddedBroker(str(tmp_path_factory.mktemp("broker")))
    broker.start()
    yield broker.url
    broker.stop()


@pytest.fixture(params=["embedded", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "rabbitmq":
        return str(request.getfixturevalue("rabbitmq_url"))
    return str(request.getfixturevalue("embedded_broker"))


@pytest.fixture
def namespace() -> Iterator[str]:
    """A unique prefix for exchanges and queues; on RabbitMQ they are deleted afterwards (quorum queues
    are Raft groups: leaving hundreds behind slows the broker down for every later run)."""
    ns = f"t{uuid.uuid4().hex[:10]}."
    yield ns
    url = os.environ.get("WERKPLAATS_TEST_RABBITMQ_URL")
    if url:
        delete_namespace(url, ns)


def delete_namespace(url: str, ns: str) -> None:
    from kombu.connection import Connection
    from werkplaats_shared.topology import Topology

    entities = Topology(ns, quorum=True).all_entities()
    try:
        with Connection(url, connect_timeout=5) as conn:
            for entity in entities:
                channel = conn.channel()
                with contextlib.suppress(Exception):  # already gone
                    entity(channel).delete()
                with contextlib.suppress(Exception):  # the broker closed it after an error
                    channel.close()
    except Exception:  # noqa: BLE001 - the broker is gone; the next run starts it again
        return
