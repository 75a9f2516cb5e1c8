"""The notice-sending benchmark (issue 20, item 5): mails per second for N notices to a local SMTP server
(aiosmtpd in its own process, a sink), one by one - one connection per mail, one mail at a time
(WERKPLAATS_MAIL_CONCURRENCY=1, WERKPLAATS_MAIL_PER_CONNECTION=1) - against pooled and concurrent (connections
kept open, several at once), in the same run on the same data.

    python -m benchmarks.notices                           # 2,000 notices, SQLite
    python -m benchmarks.notices --notices 2000 --concurrency 4 --per-connection 100
    python -m benchmarks.notices --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python -m benchmarks.notices --named 10000             # the batch names a 10k round's assignments and teams
    python -m benchmarks.notices --named 25000 --collector both   # pooled with Python's default collector, then
                                                                   # as the worker sets it (settle_collector)

Each mode gets a fresh database (with ``--database`` a PostgreSQL server: a new database is made and dropped)
holding N firms with a contact and one published run with one match for each firm: N match notices. The
worker's send passes run until none is pending; every notice must end ``sent`` with exactly one attempt.
The machine's load average is printed before and after each mode: the machine is shared, so figures are noisy.
Each mode also prints the cyclic garbage collector's collections and time while it sends (``gc.callbacks``).
``--collector`` chooses the collector's settings: ``worker`` (the default: as the scheduling worker runs,
``bootstrap.settle_collector``), ``default`` (Python's), or ``both`` (pooled with each, in this order, instead of
one by one against pooled).
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope
from werkplaats_shared.db import utcnow

SECRET = "benchmark-secret-key-of-at-least-32-characters"  # noqa: S105 - a throwaway database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[int]:
    """aiosmtpd in a process of its own, taking and dropping every mail."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                               "-c", "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the SMTP sink did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def database(url: str | None, data_dir: str) -> Iterator[str]:
    if url is None:
        yield f"sqlite:///{data_dir}/scheduling-{uuid.uuid4().hex[:8]}.sqlite3"
        return
    name = f"wp_bench_notices_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def load(settings: Settings, notices: int, named: int = 0) -> Any:
    """N firms with a contact, one run matching each once: N pending match notices. With ``named``, the batch is
    announced first (``batch.announced`` v2) naming that many assignments and teams, as a national batch names
    every one of its round (the matched ones among them)."""
    infra = scheduling_bootstrap.bootstrap(settings)
    with infra.session_factory.begin() as session:
        session.add_all([orm.Contact(organisation_id=f"firm-{i}", email=f"planning@firm-{i}.example",
                                     language="nl" if i % 3 else "en", updated_at=utcnow()) for i in range(notices)])
    batch_id, workspace_id = str(uuid.uuid4()), str(uuid.uuid4())
    matches: list[dict[str, Any]] = [
        {"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4()),
         "firm_id": f"firm-{i}", "institution_id": "inst", "score": 0.5} for i in range(notices)]
    if named:
        pairs = [(m["assignment_id"], m["team_id"], m["firm_id"]) for m in matches]
        pairs += [(str(uuid.uuid4()), str(uuid.uuid4()), f"firm-x{i}") for i in range(max(0, named - notices))]
        with infra.session_factory.begin() as session:
            services.on_workspace_registered(session, make_envelope("workspace.registered", 1, {
                "workspace_id": workspace_id, "coordinator_id": "coord-1",
                "registered_at": "2030-11-01T09:00:00+00:00"}))
            services.on_batch_announced(session, make_envelope("batch.announced", 2, {
                "batch_id": batch_id, "workspace_id": workspace_id, "coordinator_id": "coord-1",
                "workspace_name": "Digitale Werkplaats Nederland", "coordinator_name": "Gemeente Voorbeeld",
                "period": {"code": "2031-Q1", "starts_on": None, "ends_on": None},
                "assignments": [{"assignment_id": a, "firm_id": f, "title": f"Webshop voor klant {a[:8]}",
                                 "firm_name": f"Bedrijf {f}"} for a, _t, f in pairs],
                "teams": [{"team_id": t, "institution_id": "inst", "code": f"T-{t[:6]}",
                           "institution_name": "Hogeschool Voorbeeld", "level": "HBO",
                           "skills": ["web", "data"]} for _a, t, _f in pairs]}))
    with infra.session_factory.begin() as session:
        services.on_matches_published(session, make_envelope("matches.published", 1, {
            "run_id": str(uuid.uuid4()), "batch_id": batch_id, "workspace_id": workspace_id,
            "coordinator_id": "coord-1", "period": "2031-Q1", "unmatched_assignment_ids": [], "matches": matches}))
    return infra


class CollectorWatch:
    """The cyclic garbage collector's collections (by generation) and their wall time while it is started."""

    def __init__(self) -> None:
        self.counts, self.seconds, self._started = [0, 0, 0], [0.0, 0.0, 0.0], 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.counts[info["generation"]] += 1
            self.seconds[info["generation"]] += time.perf_counter() - self._started

    def __enter__(self) -> CollectorWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)

    def __str__(self) -> str:
        return (f"collector {sum(self.seconds):.2f} s in {'/'.join(map(str, self.counts))} collections "
                f"(generations 0/1/2; thresholds {gc.get_threshold()}, {gc.get_freeze_count():,} objects frozen)")


@contextmanager
def collector(settings: str) -> Iterator[None]:
    """Python's default collector, or the worker's (``settle_collector``); back to the default afterwards."""
    if settings == "worker":
        scheduling_bootstrap.settle_collector()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*DEFAULT_THRESHOLDS)


DEFAULT_THRESHOLDS = gc.get_threshold()


def measure(label: str, url: str | None, data_dir: str, port: int, notices: int, concurrency: int,
            per_connection: int, named: int = 0, collector_settings: str = "worker") -> float:
    with database(url, data_dir) as database_url:
        settings = Settings.from_env("scheduling", {
            "WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_DATA_DIR": data_dir,
            "WERKPLAATS_SECRET_KEY": SECRET, "WERKPLAATS_SMTP_PORT": str(port),
            "WERKPLAATS_MAIL_CONCURRENCY": str(concurrency), "WERKPLAATS_MAIL_PER_CONNECTION": str(per_connection)})
        infra = load(settings, notices, named)
        try:
            mailer = SmtpMailer.from_settings(settings)
            links = ResponseLinks(settings.secret_key, settings.public_url)
            print(f"{label}: load average before {_load()}", flush=True)
            with collector(collector_settings), CollectorWatch() as watch:
                started = time.perf_counter()
                cpu = time.process_time()
                sent = 0
                while (n := services.send_pending(infra.session_factory, mailer, links,
                                                  concurrency=settings.mail_concurrency)) > 0:
                    sent += n
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                watched = str(watch)
            with infra.session_factory() as session:
                statuses: dict[str, int] = dict(session.execute(sa.select(orm.Notice.status, sa.func.count())
                                                .group_by(orm.Notice.status)).all())
                attempts = session.scalar(sa.select(sa.func.count()).select_from(orm.Delivery))
            if statuses != {"sent": notices} or attempts != notices or sent != notices:
                raise SystemExit(f"{label}: not every notice sent exactly once: {statuses}, {attempts} attempts")
            rate = notices / seconds
            print(f"{label}: {notices} mails in {seconds:.2f} s = {rate:.0f} mails/s "
                  f"(sender CPU {cpu:.2f} s; concurrency {concurrency}, {per_connection} mails a connection); "
                  f"load average after {_load()}", flush=True)
            print(f"{label}: {watched}", flush=True)
            return rate
        finally:
            infra.engine.dispose()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--per-connection", type=int, default=100)
    parser.add_argument("--named", type=int, default=0,
                        help="announce the batch naming this many assignments and teams (a 10k round: 10000)")
    parser.add_argument("--database", help="a PostgreSQL server's URL (default: SQLite files in a temporary directory)")
    parser.add_argument("--collector", choices=("worker", "default", "both"), default="worker",
                        help="the garbage collector's settings: the worker's, Python's, or pooled with each")
    args = parser.parse_args(argv)
    print(f"{args.notices} notices, {os.cpu_count()} cores, "
          f"database {'PostgreSQL' if args.database else 'SQLite'}"
          f"{f', the batch naming {args.named:,} assignments and teams' if args.named else ''}", flush=True)
    with tempfile.TemporaryDirectory() as data_dir, smtp_sink() as port:
        if args.collector == "both":
            python = measure("pooled, Python's collector", args.database, data_dir, port, args.notices,
                             args.concurrency, args.per_connection, args.named, "default")
            worker = measure("pooled, the worker's collector", args.database, data_dir, port, args.notices,
                             args.concurrency, args.per_connection, args.named, "worker")
            print(f"the worker's collector / Python's: {worker / python:.2f}x")
            return
        one = measure("one by one", args.database, data_dir, port, args.notices, 1, 1, args.named, args.collector)
        pooled = measure("pooled + concurrent", args.database, data_dir, port, args.notices, args.concurrency,
                         args.per_connection, args.named, args.collector)
    print(f"pooled + concurrent / one by one: {pooled / one:.1f}x")


if __name__ == "__main__":
    main()
