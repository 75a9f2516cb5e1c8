"""The lists benchmark (issue 20, item 2): the long lists of intake, matching and scheduling paged in the
database. Each service gets a database filled through its ORM (no HTTP) with N rows of each list, then its
API (Flask's test client, in process: routing, authentication, the queries and the JSON) is timed for the
first page, a late page by number and a whole walk by ``after``, at N and at N/10:

    python -m benchmarks.lists                                   # N = 10,000 and 50,000, temporary SQLite
    python -m benchmarks.lists --rows 10000 --database-url postgresql+psycopg://postgres@127.0.0.1/postgres

With a PostgreSQL URL each size gets a fresh database (created and dropped). Walking is linear when walking
N rows takes at most about 10x (20x allowed: the issue's "within 2x of a tenth", per row) the time of
walking N/10. ``GET /runs`` is timed too: 20 runs whose snapshots and explanations weigh what a big round's
do (about 2 MB each), which the list must not load.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from werkplaats_shared.auth import generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.db import utcnow
from werkplaats_shared.service import Infrastructure

from benchmarks.run import machine

SECRET_KEY = "benchmark-only-secret-key-for-signed-links-0123456789"  # noqa: S105 - signs nothing real
PAGE_SIZE = 100
START = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class World:
    """A service's database, app and keys, and the ids of the organisations in it."""

    infra: Infrastructure
    client: Any
    keys: dict[str, str]
    ids: dict[str, str]

    def get(self, who: str, path: str) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.keys[who]}"})


def add_key(infra: Infrastructure, organisation_id: str, role: str) -> str:
    key = generate_key()
    with infra.engine.begin() as conn:
        conn.execute(infra.api_keys.insert().values(key_id=key.key_id, organisation_id=organisation_id, role=role,
                                                    secret_hash=key.secret_hash, created_at=utcnow()))
    return key.plaintext


def _settings(service: str, database_url: str, data_dir: str) -> Settings:
    return Settings.from_env(service, {"WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_DATA_DIR": data_dir,
                                       "WERKPLAATS_SECRET_KEY": SECRET_KEY})


# ---- intake: teams --------------------------------------------------------------------------------------


def intake_world(database_url: str, data_dir: str) -> World:
    from intake import bootstrap
    from intake.adapters import orm
    from intake.entrypoints.api import create_intake_app

    infra = bootstrap.bootstrap(_settings("intake", database_url, data_dir))
    ids = {"institution": str(uuid.uuid4()), "coordinator": str(uuid.uuid4()), "workspace": str(uuid.uuid4())}
    with infra.session_factory.begin() as session:
        session.add_all([orm.Organisation(id=ids["institution"], name="Hogeschool Eenhoorn", role="institution",
                                          levels=["HBO"], created_at=START),
                         orm.Organisation(id=ids["coordinator"], name="Gemeente Alfa", role="coordinator",
                                          levels=[], created_at=START)])
        session.flush()
        session.add(orm.Workspace(id=ids["workspace"], organisation_id=ids["coordinator"], name="Werkplaats Alfa",
                                  municipalities=["GM0363"], periods=[{"code": "2030-Q1"}], created_at=START))
    keys = {"institution": add_key(infra, ids["institution"], "institution"),
            "coordinator": add_key(infra, ids["coordinator"], "coordinator")}
    return World(infra, create_intake_app(infra).test_client(), keys, ids)


def add_teams(world: World, n: int, at: datetime | None = None) -> list[str]:
    """n teams of the world's institution, created one millisecond apart from ``at`` (default: now)."""
    from intake.adapters import orm

    at = at or utcnow()
    rows = [{"id": str(uuid.uuid4()), "institution_id": world.ids["institution"],
             "workspace_id": world.ids["workspace"], "code": f"T{i:06d}", "level": "HBO", "size": 4,
             "skills": ["python"], "period": "2030-Q1", "created_at": at + timedelta(milliseconds=i),
             "remote_allowed": True, "preferences": []} for i in range(n)]
    with world.infra.session_factory.begin() as session:
        for start in range(0, n, 5000):
            session.execute(sa.insert(orm.Team), rows[start:start + 5000])
    return [str(r["id"]) for r in rows]


# ---- matching: runs and matches -------------------------------------------------------------------------


def matching_world(database_url: str, data_dir: str) -> World:
    from matching import bootstrap
    from matching.entrypoints.api import create_matching_app

    infra = bootstrap.bootstrap(_settings("matching", database_url, data_dir))
    ids = {"coordinator": str(uuid.uuid4()), "firm": str(uuid.uuid4()), "institution": str(uuid.uuid4())}
    keys = {"coordinator": add_key(infra, ids["coordinator"], "coordinator"),
            "firm": add_key(infra, ids["firm"], "entrepreneur")}
    return World(infra, create_matching_app(infra).test_client(), keys, ids)


def add_runs(world: World, n: int, payload_bytes: int = 0, at: datetime | None = None) -> list[str]:
    """n published runs of the world's coordinator, each with a snapshot and explanations of about
    ``payload_bytes`` each."""
    from matching.adapters import orm

    at = at or utcnow()
    filler = {"teams": [{"team_id": str(i), "note": "x" * 40} for i in range(payload_bytes // 60)]}
    rows = [{"id": str(uuid.uuid4()), "batch_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()),
             "coordinator_id": world.ids["coordinator"], "period": "2030-Q1", "policy": "balanced",
             "status": "published", "input_hash": "0" * 64, "attempts": 1,
             "created_at": at + timedelta(milliseconds=i), "published_at": at,
             "figures": {"served_share": 0.75}}
            for i in range(n)]
    with world.infra.session_factory.begin() as session:
        for row in rows:
            session.execute(sa.insert(orm.Run), [row])
            session.execute(sa.insert(orm.RunSnapshot), [{"run_id": row["id"], "snapshot": filler}])
            session.execute(sa.insert(orm.RunExplanations), [{
                "run_id": row["id"], "explanations": {"figures": {"served_share": 0.75}, **filler}}])
    return [str(r["id"]) for r in rows]


def add_matches(world: World, run_ids: list[str], n: int) -> list[str]:
    """n matches spread over the runs, every one the world's firm's."""
    from matching.adapters import orm

    rows = [{"id": str(uuid.uuid4()), "run_id": run_ids[i % len(run_ids)], "assignment_id": str(uuid.uuid4()),
             "team_id": str(uuid.uuid4()), "firm_id": world.ids["firm"], "institution_id": world.ids["institution"],
             "score": 0.5} for i in range(n)]
    with world.infra.session_factory.begin() as session:
        for start in range(0, n, 5000):
            session.execute(sa.insert(orm.Match), rows[start:start + 5000])
    return [str(r["id"]) for r in rows]


# ---- scheduling: notices --------------------------------------------------------------------------------


def scheduling_world(database_url: str, data_dir: str) -> World:
    from scheduling import bootstrap
    from scheduling.entrypoints.api import create_scheduling_app

    infra = bootstrap.bootstrap(_settings("scheduling", database_url, data_dir))
    ids = {"coordinator": str(uuid.uuid4()), "firm": str(uuid.uuid4()), "run": str(uuid.uuid4())}
    keys = {"coordinator": add_key(infra, ids["coordinator"], "coordinator"),
            "firm": add_key(infra, ids["firm"], "entrepreneur")}
    return World(infra, create_scheduling_app(infra).test_client(), keys, ids)


def add_notices(world: World, n: int, at: datetime | None = None) -> list[str]:
    """n sent match notices of the world's coordinator, to its firm (one per run: distinct runs)."""
    from scheduling.adapters import orm

    at = at or utcnow()
    rows = [{"id": str(uuid.uuid4()), "kind": "matches", "firm_id": world.ids["firm"],
             "coordinator_id": world.ids["coordinator"], "run_id": str(uuid.uuid4()), "batch_id": str(uuid.uuid4()),
             "period": "2030-Q1", "matches": [{"match_id": str(uuid.uuid4())}], "status": "sent", "language": "nl",
             "attempts": 1, "created_at": at + timedelta(milliseconds=i), "sent_at": at, "subject_id": "",
             "sequence": 0, "webhook_attempts": 0} for i in range(n)]
    with world.infra.session_factory.begin() as session:
        for start in range(0, n, 5000):
            session.execute(sa.insert(orm.Notice), rows[start:start + 5000])
    return [str(r["id"]) for r in rows]


# ---- walking --------------------------------------------------------------------------------------------


def analyze(world: World) -> None:
    """Statistics as autovacuum keeps them after a bulk load (PostgreSQL; SQLite plans without)."""
    if world.infra.engine.dialect.name == "postgresql":
        with world.infra.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))


def walk(world: World, who: str, path: str, between: Callable[[], object] | None = None,
         page_size: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """Every item of a list, page after page by ``after``; ``between`` runs after each page (rows inserted
    while a client walks)."""
    items: list[dict[str, Any]] = []
    glue = "&" if "?" in path else "?"
    url = f"{path}{glue}page_size={page_size}"
    while True:
        response = world.get(who, url)
        assert response.status_code == 200, response.get_data(as_text=True)
        items.extend(response.get_json())
        following = json.loads(response.headers["X-Pagination"]).get("next_after")
        if between is not None:
            between()
        if following is None:
            return items
        url = f"{path}{glue}page_size={page_size}&after={following}"


def _timed(what: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = what()
    return time.perf_counter() - started, result


@contextmanager
def _database(base_url: str | None, label: str) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="lists-bench-") as data_dir:
        if base_url is None:
            yield f"sqlite:///{data_dir}/{label}.sqlite3", data_dir
            return
        admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
        name = f"wp_bench_{label}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.make_url(base_url).set(database=name).render_as_string(hide_password=False), data_dir
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def measure(rows: int, base_url: str | None) -> list[dict[str, Any]]:
    """The timings of every list at ``rows`` rows."""
    results = []
    late = max(1, rows // PAGE_SIZE - 1)

    def lists(world: World, who: str, path: str, count: int) -> dict[str, Any]:
        first, _ = _timed(lambda: world.get(who, f"{path}?page_size={PAGE_SIZE}"))
        late_page, _ = _timed(lambda: world.get(who, f"{path}?page_size={PAGE_SIZE}&page={late}"))
        whole, items = _timed(lambda: walk(world, who, path))
        assert len(items) == count, (path, len(items), count)
        return {"list": f"GET {path} ({who})", "rows": count, "first_page_s": first, "late_page_s": late_page,
                "walk_s": whole, "pages": -(-count // PAGE_SIZE)}

    with _database(base_url, "intake") as (url, data_dir):
        world = intake_world(url, data_dir)
        add_teams(world, rows, START)
        analyze(world)
        results.append(lists(world, "institution", "/teams", rows))
        results.append(lists(world, "coordinator", "/teams", rows))
        world.infra.engine.dispose()
    with _database(base_url, "matching") as (url, data_dir):
        world = matching_world(url, data_dir)
        run_ids = add_runs(world, 20, payload_bytes=2_000_000, at=START)
        add_matches(world, run_ids, rows)
        analyze(world)
        results.append(lists(world, "coordinator", "/matches", rows))
        results.append(lists(world, "firm", "/matches", rows))
        first, response = _timed(lambda: world.get("coordinator", "/runs?page_size=20"))
        assert response.status_code == 200 and len(response.get_json()) == 20
        results.append({"list": "GET /runs (20 runs of ~2 MB snapshot + ~2 MB explanations)", "rows": 20,
                        "first_page_s": first, "late_page_s": None, "walk_s": None, "pages": 1})
        world.infra.engine.dispose()
    with _database(base_url, "scheduling") as (url, data_dir):
        world = scheduling_world(url, data_dir)
        add_notices(world, rows, START)
        analyze(world)
        results.append(lists(world, "coordinator", "/notices", rows))
        results.append(lists(world, "firm", "/notices", rows))
        world.infra.engine.dispose()
    return results


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="N (repeatable; default 10000 and 50000)")
    parser.add_argument("--database-url", default=os.environ.get("WERKPLAATS_BENCH_POSTGRES_URL"),
                        help="a PostgreSQL server's URL (each size gets a fresh database); default: SQLite")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; load average before: {os.getloadavg()}")
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; page size {PAGE_SIZE}")
    for n in args.rows or [10_000, 50_000]:
        small, large = measure(n // 10, args.database_url), measure(n, args.database_url)
        print(f"\nN = {n:,} (and N/10 = {n // 10:,})")
        print(f"{'list':62} {'rows':>7} {'first':>7} {'late':>7} {'walk':>8} {'walk N / walk N/10':>19}")
        for a, b in zip(small, large, strict=True):
            for row in (a, b):
                ratio = "" if row is a or a["walk_s"] is None else f"{b['walk_s'] / a['walk_s']:.1f}x"
                print(f"{row['list']:62} {row['rows']:>7} {_seconds(row['first_page_s']):>7} "
                      f"{_seconds(row['late_page_s']):>7} {_seconds(row['walk_s']):>8} {ratio:>19}")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
