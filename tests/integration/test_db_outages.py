"""Nothing lost when the database blinks (DESIGN.md §3, delivery rule 5; issue 19, items 1-3).

Matching on real PostgreSQL (and RabbitMQ for the stream): its database is made unreachable with
``ALTER DATABASE ... ALLOW_CONNECTIONS false`` and ``pg_terminate_backend`` of its connections (only this
test's own database), then opened again. Each test prints its figures.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from matching import bootstrap
from matching.adapters import orm
from matching.entrypoints.api import create_matching_app
from matching.entrypoints.handlers import HANDLERS
from matching.service_layer import services
from werkplaats_shared import broker
from werkplaats_shared.auth import generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import upgrade_database, utcnow
from werkplaats_shared.publisher import Publisher
from werkplaats_shared.service import Infrastructure, consumer_loop

from ..conftest import free_port
from .harness import Harness, announce_workspace_of, batch_envelope, record_effect, wait_until, workspace_announcement

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Database:
    """One test database and the admin connection that blocks and unblocks it."""

    url: str
    name: str
    admin: sa.Engine

    def block(self) -> None:
        """Refuse new connections and cut the open ones: the database is unreachable for the service."""
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
        self.cut()

    def cut(self, pid: int | None = None) -> None:
        """Drop the service's connections (one backend, or all of them) as a restart or a network cut does."""
        query = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
        query += " AND pid = :pid" if pid is not None else " AND pid <> pg_backend_pid()"
        with self.admin.connect() as conn:
            conn.execute(sa.text(query), {"name": self.name, "pid": pid})

    def unblock(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))


@pytest.fixture
def database(make_postgres_db: Any, postgres_admin_url: str) -> Iterator[Database]:
    url = make_postgres_db("blink")
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    db = Database(url, sa.make_url(url).database or "", admin)
    try:
        yield db
    finally:
        db.unblock()  # the fixture drops it: it must accept the admin again
        admin.dispose()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def matching_on(database: Database, extra: dict[str, str] | None = None) -> Infrastructure:
    settings = Settings.from_env("matching", {"WERKPLAATS_DATABASE_URL": database.url, **(extra or {})})
    return bootstrap.bootstrap(settings)


def batch(batch_id: str) -> dict[str, Any]:
    return {
        "batch_id": batch_id, "workspace_id": "w", "coordinator_id": "c", "period": "P", "policy": "max_fit",
        "auto_publish": True,
        "assignments": [{"assignment_id": f"a{i}", "firm_id": f"f{i}", "accepted_levels": ["HBO"],
                         "required_skills": [], "nice_to_have_skills": ["web"] if i == 1 else [],
                         "min_teams": 1, "max_teams": 1} for i in range(1, 4)],
        "teams": [{"team_id": f"t{i}", "institution_id": "i", "level": "HBO", "skills": ["web"] if i == 2 else []}
                  for i in range(1, 4)],
    }


def runs_per_batch(infra: Infrastructure) -> dict[str, int]:
    with infra.engine.connect() as conn:
        rows = conn.execute(sa.select(orm.Run.batch_id, sa.func.count()).group_by(orm.Run.batch_id)).all()
    return {batch_id: int(count) for batch_id, count in rows}


def queue_depth(infra: Infrastructure, name: str) -> int:
    with infra.connection() as conn:
        _, count, _ = conn.default_channel.queue_declare(queue=name, passive=True)
    return int(count)


def figures(title: str, **values: object) -> None:
    print(f"\n[{title}] " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in values.items()))


# ---- item 1: the consumer waits for the database ------------------------------------------------


@pytest.mark.rabbitmq
def test_database_unreachable_30s_while_batches_arrive_every_batch_is_applied_once(
        database: Database, rabbitmq_url: str, namespace: str, restore_logging: None) -> None:
    # Five deliveries in about six seconds used to send a batch to the dead-letter queue after such an outage.
    infra = matching_on(database, {"WERKPLAATS_BROKER_URL": rabbitmq_url, "WERKPLAATS_NAMESPACE": namespace,
                                   "WERKPLAATS_MAX_DELIVERIES": "5"})
    broker.declare_topology(infra.settings)
    stop = threading.Event()
    loop = consumer_loop(infra, HANDLERS)
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    queue = f"{namespace}matching.from-intake"
    submitted: list[str] = []
    with infra.connection() as conn:  # what intake sends before the workspace's first batch
        announcement = workspace_announcement("w", "c")
        Publisher(conn, infra.topology, "intake").publish_raw(
            announcement.to_json(), message_type=announcement.type, message_id=announcement.message_id)

    def submit(n: int, pause: float = 0.2) -> None:
        with infra.connection() as conn:
            publisher = Publisher(conn, infra.topology, "intake")
            for _ in range(n):
                envelope = make_envelope("batch.submitted", 1, batch(str(uuid.uuid4())))
                publisher.publish_raw(envelope.to_json(), message_type=envelope.type, message_id=envelope.message_id)
                submitted.append(envelope.payload["batch_id"])
                time.sleep(pause)

    try:
        submit(5)
        wait_until(lambda: len(runs_per_batch(infra)) == 5, what="the first batches applied")
        database.block()
        blocked_at = time.monotonic()
        while time.monotonic() - blocked_at < 30:  # the stream goes on for the whole outage: a batch every 3 s
            submit(1, pause=3.0)
        database.unblock()
        unblocked_at = time.monotonic()
        submit(5)
        try:  # the figures are printed even when batches went missing
            wait_until(lambda: len(runs_per_batch(infra)) == len(submitted) and queue_depth(infra, queue) == 0,
                       timeout=45, what="every batch applied")
        except AssertionError:
            pass
        recovery = time.monotonic() - unblocked_at
        runs = runs_per_batch(infra)
        dead = queue_depth(infra, f"{queue}.dlq")
        lost = [b for b in submitted if b not in runs]
        duplicated = [b for b in submitted if runs.get(b, 0) > 1]
        figures("database unreachable 30 s during a stream of batches", submitted=len(submitted),
                processed_once=sum(1 for b in submitted if runs.get(b) == 1), lost=len(lost),
                duplicated=len(duplicated), dead_letters=dead, recovery_seconds=round(recovery, 1))
        assert len(submitted) >= 19
        assert (lost, duplicated, dead) == ([], [], 0)
        with infra.engine.connect() as conn:
            inbox = conn.execute(sa.select(sa.func.count()).select_from(infra.inbox)
                                 .where(infra.inbox.c.type == "batch.submitted")).scalar_one()
        assert inbox == len(submitted)
    finally:
        stop.set()
        database.unblock()
        assert loop.stop is not None
        loop.stop()
        thread.join(40)
        infra.engine.dispose()
    assert not thread.is_alive()


# ---- item 2: a run survives a dropped connection -------------------------------------------------


def _cut_on(infra: Infrastructure, database: Database, matches: Any, *, block_seconds: float = 0.0) -> list[float]:
    """Drop the connection that is about to run the first statement ``matches`` accepts (and, with
    ``block_seconds``, keep the database unreachable that long). Returns the moments of the cut."""
    cut: list[float] = []

    @sa.event.listens_for(infra.engine, "before_cursor_execute")
    def _drop(conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if cut or not matches(statement, parameters):
            return
        cut.append(time.monotonic())
        pid = conn.connection.dbapi_connection.info.backend_pid
        if block_seconds:
            with database.admin.connect() as admin:
                admin.execute(sa.text(f'ALTER DATABASE "{database.name}" ALLOW_CONNECTIONS false'))
            threading.Timer(block_seconds, database.unblock).start()
        database.cut(pid)

    return cut


def _one_run(infra: Infrastructure) -> str:
    envelope = make_envelope("batch.submitted", 1, batch(str(uuid.uuid4())))
    with infra.session_factory.begin() as session:
        announce_workspace_of(session, envelope)
        HANDLERS[envelope.type](session, envelope)
    run_id = services.claim_next_run(infra.session_factory)
    assert run_id is not None
    return run_id


def _published(infra: Infrastructure) -> int:
    with infra.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(infra.outbox)
                                .where(infra.outbox.c.type == "matches.published")).scalar_one())


@pytest.mark.parametrize("where, block_seconds", [("extracting", 0.0), ("extracting", 5.0), ("recording", 5.0)])
def test_a_connection_dropped_mid_run_the_run_completes(database: Database, restore_logging: None,
                                                         where: str, block_seconds: float) -> None:
    infra = matching_on(database)
    try:
        run_id = _one_run(infra)
        if where == "extracting":  # the stage marker that opens extracting
            def matches(statement: str, parameters: Any) -> bool:
                return statement.startswith("UPDATE runs") and "extracting" in str(parameters)
        else:  # the transaction that records the result (it reads the run FOR UPDATE first)
            def matches(statement: str, parameters: Any) -> bool:
                return statement.startswith("SELECT runs") and "FOR UPDATE" in statement
        cut = _cut_on(infra, database, matches, block_seconds=block_seconds)
        services.execute_run(infra.session_factory, infra.emit, run_id, "highs", 30)
        finished = time.monotonic()
        assert cut, "the connection was never cut"
        with infra.session_factory() as session:
            run = session.get(orm.Run, run_id)
            assert run is not None
            status, attempts, error = run.status, run.attempts, run.error
            matched = len(services.run_matches(session, run_id))
        figures(f"connection dropped while {where}" + (f", database refusing {block_seconds:.0f} s" if block_seconds
                                                          else ""),
                runs=1, completed=int(status == "published"), failed=int(status == "failed"), attempts=attempts,
                matches=matched, published_messages=_published(infra),
                recovery_seconds=round(finished - cut[0], 1))
        assert (status, attempts, error) == ("published", 1, None)
        assert matched == 3 and _published(infra) == 1
        if block_seconds:
            assert finished - cut[0] >= block_seconds - 0.5  # it waited for the database, then went on
    finally:
        database.unblock()
        infra.engine.dispose()


def test_a_run_still_fails_for_a_reason_of_its_own(database: Database, restore_logging: None) -> None:
    infra = matching_on(database)
    try:
        run_id = _one_run(infra)

        def broken_solver(limit: float, seed: int) -> Any:
            raise RuntimeError("solver broke")

        services.execute_run(infra.session_factory, infra.emit, run_id, "highs", 30, make=broken_solver)
        with infra.session_factory() as session:
            run = session.get(orm.Run, run_id)
            assert run is not None
            assert (run.status, run.error) == ("failed", "RuntimeError")
    finally:
        infra.engine.dispose()


# ---- item 3: 503 while the database is down; start-up waits for it --------------------------------


def test_the_api_answers_503_with_retry_after_while_the_database_is_down(
        database: Database, restore_logging: None) -> None:
    infra = matching_on(database)
    key = generate_key()
    with infra.engine.begin() as conn:
        conn.execute(infra.api_keys.insert().values(key_id=key.key_id, organisation_id=str(uuid.uuid4()),
                                                    role="coordinator", secret_hash=key.secret_hash,
                                                    created_at=utcnow()))
    client = create_matching_app(infra).test_client()
    auth = {"Authorization": f"Bearer {key.plaintext}"}
    try:
        assert client.get("/runs", headers=auth).status_code == 200
        database.block()
        dutch = client.get("/runs", headers=auth)
        english = client.get("/runs", headers={**auth, "Accept-Language": "en"})
        for resp in (dutch, english):
            assert resp.status_code == 503, resp.get_data(as_text=True)
            assert resp.headers["Retry-After"] == "5"
            body = resp.get_json()
            assert (body["status"], body["error"]) == (503, "Service Unavailable")
            assert body["errors"] == [{"field": "_service", "reason": body["message"]}]
        assert dutch.get_json()["message"].startswith("De database is tijdelijk niet bereikbaar")
        assert english.get_json()["message"].startswith("The database is temporarily unreachable")
        assert client.get("/ready").status_code == 503
        database.unblock()
        assert client.get("/runs", headers=auth).status_code == 200
    finally:
        database.unblock()
        infra.engine.dispose()


def test_a_service_started_while_the_database_is_down_waits_for_it(
        database: Database, caplog: pytest.LogCaptureFixture) -> None:
    database.block()
    threading.Timer(3.0, database.unblock).start()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="werkplaats_shared.transient"):
        upgrade_database(database.url, bootstrap.MIGRATIONS)
    waited = time.monotonic() - started
    attempts = [r for r in caplog.records if "database unreachable; waiting" in r.getMessage()]
    figures("service started while the database is down", waited_seconds=round(waited, 1),
            attempts_logged=len(attempts))
    assert waited >= 2.5 and len(attempts) >= 2
    engine = sa.create_engine(database.url)
    try:
        with engine.connect() as conn:  # migrated once it answered
            assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == 0
    finally:
        engine.dispose()


def test_a_failure_with_the_database_healthy_still_counts_toward_the_budget(
        database: Database, rabbitmq_url: str, namespace: str, restore_logging: None) -> None:
    """The other side of rule 5: a handler bug (database fine) still ends in the dead-letter queue."""
    infra = matching_on(database, {"WERKPLAATS_BROKER_URL": rabbitmq_url, "WERKPLAATS_NAMESPACE": namespace,
                                   "WERKPLAATS_MAX_DELIVERIES": "2"})
    broker.declare_topology(infra.settings)
    calls: list[str] = []

    def buggy(session: Any, envelope: Envelope) -> None:
        calls.append(envelope.message_id)
        raise KeyError("bug")

    stop = threading.Event()
    loop = consumer_loop(infra, {**HANDLERS, "batch.submitted": buggy})
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    queue = f"{namespace}matching.from-intake"
    try:
        envelope = make_envelope("batch.submitted", 1, batch("bug"))
        with infra.connection() as conn:
            Publisher(conn, infra.topology, "intake").publish_raw(
                envelope.to_json(), message_type=envelope.type, message_id=envelope.message_id)
        wait_until(lambda: queue_depth(infra, f"{queue}.dlq") == 1, what="dead letter")
        assert len(calls) == 2
    finally:
        stop.set()
        assert loop.stop is not None
        loop.stop()
        thread.join(20)
        infra.engine.dispose()


def test_the_consumer_holds_messages_through_an_outage_on_either_broker(
        broker_url: str, namespace: str, database: Database) -> None:
    """The shared consumer (harness service), on the embedded Redis and on RabbitMQ: two attempts per
    message, a database refusing connections for 8 s, messages arriving before and during the outage."""
    h = Harness(broker_url, namespace, database.url, max_deliveries=2)
    try:
        h.start_consumer({"batch.submitted": record_effect})
        ids = [f"hold-{i}" for i in range(6)]
        h.publish_raw(batch_envelope(ids[0]).to_json(), message_id=ids[0])
        wait_until(lambda: h.effect_count(ids[0]) == 1, what="first effect")
        database.block()
        reopen = threading.Timer(8.0, database.unblock)
        reopen.start()
        for batch_id in ids[1:]:
            h.publish_raw(batch_envelope(batch_id).to_json(), message_id=batch_id)
            time.sleep(0.5)
        reopen.join()  # the test's own queries need the database too
        wait_until(lambda: all(h.effect_count(b) == 1 for b in ids), timeout=40, what="every effect")
        wait_until(lambda: h.queue_depth() == 0, what="queue drained")
        assert h.effect_count() == len(ids)
        assert h.dead_letters(0, timeout=1) == []
        with broker.connect(h.settings) as conn:
            dlq = h.topology.dead_letter_queue(h.queue_name)(conn.default_channel)
            assert dlq.get(no_ack=True) is None
    finally:
        database.unblock()
        h.stop()


@pytest.mark.rabbitmq
def test_a_worker_process_started_while_the_database_is_down_waits_then_serves(
        database: Database, rabbitmq_url: str, namespace: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "WERKPLAATS_DATABASE_URL": database.url, "WERKPLAATS_BROKER_URL": rabbitmq_url,
           "WERKPLAATS_NAMESPACE": namespace, "WERKPLAATS_DATA_DIR": str(tmp_path), "WERKPLAATS_PROCESS": "worker",
           "WERKPLAATS_HTTP_PORT": str(port), "WERKPLAATS_POLL_INTERVAL": "0.2"}
    database.block()
    log_path = tmp_path / "matching.log"
    with open(log_path, "w", encoding="utf-8") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "matching"], env=env, cwd=ROOT, stderr=log_file)
    try:
        wait_until(lambda: log_path.read_text().count("database unreachable; waiting") >= 3, timeout=30,
                   what="attempts logged while the database is down")
        assert process.poll() is None, log_path.read_text()[-2000:]  # waiting, not exited
        assert "Traceback" not in log_path.read_text()
        database.unblock()
        unblocked = time.monotonic()
        wait_until(lambda: _ready(port), timeout=40, what="the worker ready")
        figures("worker started while the database is down", attempts_logged=log_path.read_text().count(
            "database unreachable; waiting"), ready_seconds_after_the_database=round(time.monotonic() - unblocked, 1))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log_path.read_text()[-2000:]


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def test_a_misconfigured_database_url_fails_at_once_instead_of_waiting(postgres_admin_url: str) -> None:
    wrong = sa.make_url(postgres_admin_url).set(database=f"wp_test_missing_{uuid.uuid4().hex[:8]}")
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="does not exist"):
        upgrade_database(wrong.render_as_string(hide_password=False), bootstrap.MIGRATIONS)
    assert time.monotonic() - started < 5
