"""Each service's Alembic migrations create exactly the schema its models describe."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from werkplaats_shared.db import upgrade_database

SERVICES = ("intake", "matching", "scheduling")


def _diff(url: str, service: str) -> list[Any]:
    bootstrap = importlib.import_module(f"{service}.bootstrap")
    orm = importlib.import_module(f"{service}.adapters.orm")
    upgrade_database(url, bootstrap.MIGRATIONS)
    upgrade_database(url, bootstrap.MIGRATIONS)  # idempotent: a restart migrates nothing
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), orm.metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_models_on_sqlite(service: str, tmp_path: Path) -> None:
    assert _diff(f"sqlite:///{tmp_path / 'db.sqlite3'}", service) == []


@pytest.mark.postgres
@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_models_on_postgres(service: str, make_postgres_db: Any) -> None:
    assert _diff(make_postgres_db(service), service) == []
