"""Matching's migrations that move data (0002, 0011, 0015, 0016)

The 0002 migration on a database with runs from before it: each batch gets its snapshot back
(so it can be re-run), finished runs read as done, and the migration can be undone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from matching import bootstrap
from werkplaats_shared.db import make_engine

SNAPSHOT = {"batch_id": "b1", "workspace_id": "w1", "coordinator_id": "c1", "period": "P1", "policy": "max_fit",
            "auto_publish": False, "assignments": [], "teams": []}


def _alembic(url: str, action: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            cfg = Config()
            cfg.set_main_option("script_location", bootstrap.MIGRATIONS)
            cfg.attributes["connection"] = connection
            getattr(command, action)(cfg, revision)
    finally:
        engine.dispose()


def _check(url: str) -> None:
    _alembic(url, "upgrade", "0001")
    engine = sa.create_engine(url)
    runs = sa.Table("runs", sa.MetaData(), autoload_with=engine)
    now = datetime(2026, 1, 5, tzinfo=UTC)
    common: dict[str, Any] = {"batch_id": "b1", "workspace_id": "w1", "coordinator_id": "c1", "period": "P1",
                              "policy": "max_fit", "snapshot": SNAPSHOT, "input_hash": "0" * 64, "attempts": 1}
    with engine.begin() as conn:
        conn.execute(runs.insert(), [{**common, "id": "r1", "status": "published", "created_at": now},
                                     {**common, "id": "r2", "status": "queued", "created_at": now}])
    try:
        _alembic(url, "upgrade", "head")
        with engine.connect() as conn:
            stages: dict[str, str] = {r.id: r.stage for r in conn.execute(sa.text("SELECT id, stage FROM runs"))}
            batches = conn.execute(sa.text("SELECT batch_id, coordinator_id, auto_publish FROM batches")).all()
        assert stages == {"r1": "done", "r2": "queued"}
        assert [(b, c, bool(a)) for b, c, a in batches] == [("b1", "c1", False)]
        _alembic(url, "downgrade", "0001")
        assert "batches" not in sa.inspect(engine).get_table_names()
        _alembic(url, "upgrade", "head")
    finally:
        engine.dispose()


def test_upgrade_keeps_older_runs_usable_on_sqlite(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'm.sqlite3'}")


@pytest.mark.postgres
def test_upgrade_keeps_older_runs_usable_on_postgres(make_postgres_db: Any) -> None:
    _check(make_postgres_db("matching"))


def _figures_kept_apart(url: str) -> None:
    """0011: a solved run's figures are copied out of its explanations, so the runs list still shows them."""
    _alembic(url, "upgrade", "0010")
    engine = sa.create_engine(url)
    runs = sa.Table("runs", sa.MetaData(), autoload_with=engine)
    common: dict[str, Any] = {"batch_id": "b1", "workspace_id": "w1", "coordinator_id": "c1", "period": "P1",
                              "policy": "max_fit", "snapshot": SNAPSHOT, "input_hash": "0" * 64, "attempts": 1,
                              "created_at": datetime(2026, 1, 5, tzinfo=UTC)}
    figures = {"served_share": 0.75, "by_level": {"HBO": 1.0}}
    with engine.begin() as conn:
        conn.execute(runs.insert(), [{**common, "id": "r1", "status": "published",
                                      "explanations": {"figures": figures, "matches": [{"team_id": "t1"}]}},
                                     {**common, "id": "r2", "status": "queued", "explanations": None}])
    try:
        _alembic(url, "upgrade", "head")
        runs = sa.Table("runs", sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            kept = {r.id: r.figures for r in conn.execute(sa.select(runs.c.id, runs.c.figures))}
        assert kept == {"r1": figures, "r2": None}
        _alembic(url, "downgrade", "0010")
        assert "figures" not in {c["name"] for c in sa.inspect(engine).get_columns("runs")}
    finally:
        engine.dispose()


def test_a_runs_figures_are_kept_apart_on_sqlite(tmp_path: Path) -> None:
    _figures_kept_apart(f"sqlite:///{tmp_path / 'm.sqlite3'}")


@pytest.mark.postgres
def test_a_runs_figures_are_kept_apart_on_postgres(make_postgres_db: Any) -> None:
    _figures_kept_apart(make_postgres_db("matching"))


def _snapshots_kept_apart(url: str) -> None:
    """0015: each run's snapshot moves to run_snapshots (a run's row is written without it) and comes back
    on a downgrade; a run still reads its own."""
    _alembic(url, "upgrade", "0012")
    engine = sa.create_engine(url)
    runs = sa.Table("runs", sa.MetaData(), autoload_with=engine)
    common: dict[str, Any] = {"batch_id": "b1", "workspace_id": "w1", "coordinator_id": "c1", "period": "P1",
                              "policy": "max_fit", "input_hash": "0" * 64, "attempts": 1, "status": "published",
                              "created_at": datetime(2026, 1, 5, tzinfo=UTC)}
    other = {**SNAPSHOT, "teams": [{"team_id": "t1", "skills": ["python"]}]}
    with engine.begin() as conn:
        conn.execute(runs.insert(), [{**common, "id": "r1", "snapshot": SNAPSHOT},
                                     {**common, "id": "r2", "snapshot": other}])
    try:
        _alembic(url, "upgrade", "head")
        assert "snapshot" not in {c["name"] for c in sa.inspect(engine).get_columns("runs")}
        with engine.connect() as conn:
            moved: dict[str, Any] = {r.run_id: r.snapshot
                                     for r in conn.execute(sa.text("SELECT run_id, snapshot FROM run_snapshots"))}
        assert {k: json.loads(v) if isinstance(v, str) else v for k, v in moved.items()} == {
            "r1": SNAPSHOT, "r2": other}
        _alembic(url, "downgrade", "0012")
        assert "run_snapshots" not in sa.inspect(engine).get_table_names()
        runs = sa.Table("runs", sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            back = {r.id: r.snapshot for r in conn.execute(sa.select(runs.c.id, runs.c.snapshot))}
        assert back == {"r1": SNAPSHOT, "r2": other}
        _alembic(url, "upgrade", "head")
    finally:
        engine.dispose()


def test_a_runs_snapshot_is_kept_apart_on_sqlite(tmp_path: Path) -> None:
    _snapshots_kept_apart(f"sqlite:///{tmp_path / 'm.sqlite3'}")


@pytest.mark.postgres
def test_a_runs_snapshot_is_kept_apart_on_postgres(make_postgres_db: Any) -> None:
    _snapshots_kept_apart(make_postgres_db("matching"))


def _explanations_kept_apart(url: str) -> None:
    """0016: each run's explanations move to run_explanations (a run's row is written without them) and come
    back on a downgrade; a run without explanations gets no row."""
    _alembic(url, "upgrade", "0015")
    engine = sa.create_engine(url)
    runs = sa.Table("runs", sa.MetaData(), autoload_with=engine)
    common: dict[str, Any] = {"batch_id": "b1", "workspace_id": "w1", "coordinator_id": "c1", "period": "P1",
                              "policy": "max_fit", "input_hash": "0" * 64, "attempts": 1,
                              "created_at": datetime(2026, 1, 5, tzinfo=UTC)}
    explained = {"figures": {"matches": 1}, "matches": [{"team_id": "t1", "assignment_id": "a1"}],
                 "unmatched_teams": [], "unmatched_assignments": []}
    with engine.begin() as conn:
        conn.execute(runs.insert(), [{**common, "id": "r1", "status": "published", "explanations": explained},
                                     {**common, "id": "r2", "status": "queued", "explanations": None}])
        conn.execute(runs.insert(), [{**common, "id": "r3", "status": "queued"}])  # SQL NULL (r2: JSON null)
    try:
        _alembic(url, "upgrade", "head")
        assert "explanations" not in {c["name"] for c in sa.inspect(engine).get_columns("runs")}
        with engine.connect() as conn:
            moved: dict[str, Any] = {r.run_id: r.explanations for r in conn.execute(
                sa.text("SELECT run_id, explanations FROM run_explanations"))}
        assert {k: json.loads(v) if isinstance(v, str) else v for k, v in moved.items()} == {"r1": explained}
        _alembic(url, "downgrade", "0015")
        assert "run_explanations" not in sa.inspect(engine).get_table_names()
        runs = sa.Table("runs", sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            back = {r.id: r.explanations for r in conn.execute(sa.select(runs.c.id, runs.c.explanations))}
        assert back == {"r1": explained, "r2": None, "r3": None}
        _alembic(url, "upgrade", "head")
    finally:
        engine.dispose()


def test_a_runs_explanations_are_kept_apart_on_sqlite(tmp_path: Path) -> None:
    _explanations_kept_apart(f"sqlite:///{tmp_path / 'm.sqlite3'}")


@pytest.mark.postgres
def test_a_runs_explanations_are_kept_apart_on_postgres(make_postgres_db: Any) -> None:
    _explanations_kept_apart(make_postgres_db("matching"))
