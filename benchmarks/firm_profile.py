"""The firm profile benchmark (issue 20: "about 5 ms of CPU per ``POST /firm``"): N firms, each with its own API
key, send their profile to intake (``POST /firm``) through its Flask app in process (Flask's test client: routing,
authentication, the schema, the query and the JSON, no network), one request after another, on a database of
W workspaces with working areas. Prints the CPU and wall time per request; ``--profile`` prints the functions
that took the most CPU (cProfile) instead:

    python -m benchmarks.firm_profile                         # 2,000 firms, 20 workspaces, temporary SQLite
    python -m benchmarks.firm_profile --firms 500 --profile
    python -m benchmarks.firm_profile --database-url postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from werkplaats_shared.auth import generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.db import utcnow
from werkplaats_shared.geo import municipalities

from benchmarks.run import machine

SORT, LINES = ("cumulative",), 60
SECRET_KEY = "benchmark-only-secret-key-for-signed-links-0123456789"  # noqa: S105 - signs nothing real


def kvk_number(n: int) -> str:
    """A KvK number: eight digits."""
    return f"{10_000_000 + n:08d}"


@contextmanager
def _database(base_url: str | None) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="wp-firm-bench-") as data_dir:
        if base_url is None:
            yield f"sqlite:///{data_dir}/intake.sqlite3", data_dir
            return
        name = f"wp_bench_firm_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.make_url(base_url).set(database=name).render_as_string(hide_password=False), data_dir
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def _world(database_url: str, data_dir: str, firms: int, workspaces: int) -> tuple[Any, Any, list[tuple[str, str]]]:
    """Intake with ``workspaces`` workspaces (their working areas cut from the country's municipalities) and
    ``firms`` firms without a profile, each with its API key; the firms' (key, municipality)."""
    from intake import bootstrap
    from intake.adapters import orm
    from intake.entrypoints.api import create_intake_app

    infra = bootstrap.bootstrap(Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_DATA_DIR": data_dir, "WERKPLAATS_SECRET_KEY": SECRET_KEY}))
    codes = sorted(municipalities())
    coordinator = str(uuid.uuid4())
    out: list[tuple[str, str]] = []
    with infra.session_factory.begin() as session:
        session.add(orm.Organisation(id=coordinator, name="Landelijke Werkplaats", role="coordinator", levels=[],
                                     created_at=utcnow()))
        session.flush()
        for w in range(workspaces):
            session.add(orm.Workspace(id=str(uuid.uuid4()), organisation_id=coordinator, name=f"Werkplaats {w}",
                                      municipalities=codes[w::workspaces], periods=[{"code": "2030-Q1"}],
                                      created_at=utcnow()))
        keys = []
        for n in range(firms):
            firm = str(uuid.uuid4())
            session.add(orm.Organisation(id=firm, name=f"Firma {n}", role="entrepreneur", levels=[],
                                         created_at=utcnow()))
            key = generate_key()
            keys.append(dict(key_id=key.key_id, organisation_id=firm, role="entrepreneur",
                             secret_hash=key.secret_hash, created_at=utcnow()))
            out.append((key.plaintext, codes[(n * 7) % len(codes)]))
        session.flush()
        session.execute(infra.api_keys.insert(), keys)
    return infra, create_intake_app(infra).test_client(), out


def run(database_url: str, data_dir: str, firms: int, workspaces: int, profile: bool) -> None:
    infra, client, keys = _world(database_url, data_dir, firms, workspaces)
    cpu: list[float] = []
    profiler = cProfile.Profile() if profile else None
    wall_start = time.perf_counter()
    for n, (key, municipality) in enumerate(keys, start=1):
        started = time.process_time()
        if profiler is not None:
            profiler.enable()
        resp = client.post("/firm", headers={"Authorization": f"Bearer {key}"}, json={
            "kvk_number": kvk_number(n), "sector": "mkb", "size_class": "micro", "municipality": municipality,
            "language": "nl"})
        if profiler is not None:
            profiler.disable()
        cpu.append(time.process_time() - started)
        if resp.status_code != 201:
            raise SystemExit(f"POST /firm answered {resp.status_code}: {resp.get_data(as_text=True)}")
    wall = time.perf_counter() - wall_start
    infra.engine.dispose()
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(*SORT).print_stats(LINES)
        print(text.getvalue())
        return
    ms = sorted(c * 1000 for c in cpu)
    print(f"POST /firm x {firms} ({workspaces} workspaces, {sa.make_url(database_url).get_backend_name()}): "
          f"CPU per request mean {statistics.fmean(ms):.2f} ms, median {statistics.median(ms):.2f} ms, "
          f"p95 {ms[int(len(ms) * 0.95) - 1]:.2f} ms; wall {wall / firms * 1000:.2f} ms per request, "
          f"{firms / wall:.0f} requests/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=2000)
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server's URL (a fresh database is made and dropped); default SQLite")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions instead")
    args = parser.parse_args(argv)
    for line in machine():
        print(line)
    with _database(args.database_url) as (url, data_dir):
        run(url, data_dir, args.firms, args.workspaces, args.profile)


if __name__ == "__main__":
    main()
