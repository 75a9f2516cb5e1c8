"""Each service's Alembic migrations create exactly the schema its models describe."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
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


def _referral_schemes_become_national(url: str) -> None:
    """0014: the catalogue from before workspaces had their own schemes becomes the national list; undone,
    the national list is the catalogue again."""
    from alembic import command
    from alembic.config import Config
    from intake import bootstrap

    def alembic(action: str, revision: str) -> None:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as connection:
                cfg = Config()
                cfg.set_main_option("script_location", bootstrap.MIGRATIONS)
                cfg.attributes["connection"] = connection
                getattr(command, action)(cfg, revision)
        finally:
            engine.dispose()

    alembic("upgrade", "0013")
    engine = sa.create_engine(url)
    row = {"code": "loket", "name_nl": "Loket", "name_en": "Desk", "url": "https://example.org/", "active": True,
           "updated_at": datetime(2026, 1, 5, 10, tzinfo=UTC)}
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO referral_schemes (code, name_nl, name_en, url, themes, active, "
                                 "updated_at) VALUES (:code, :name_nl, :name_en, :url, '[]', :active, :updated_at)"),
                         row)
        alembic("upgrade", "0014")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT scope, code, url FROM referral_schemes")).all() == [
                ("national", "loket", "https://example.org/")]
        alembic("downgrade", "0013")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT code, url FROM referral_schemes")).all() == [
                ("loket", "https://example.org/")]
    finally:
        engine.dispose()


def test_the_old_scheme_catalogue_becomes_the_national_list_on_sqlite(tmp_path: Path) -> None:
    _referral_schemes_become_national(f"sqlite:///{tmp_path / 'intake.sqlite3'}")


@pytest.mark.postgres
def test_the_old_scheme_catalogue_becomes_the_national_list_on_postgres(make_postgres_db: Any) -> None:
    _referral_schemes_become_national(make_postgres_db("schemes"))
