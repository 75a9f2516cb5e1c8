"""SQLite's writers of one process take turns in a queue (``db._WriterQueue``) before SQLite's own write lock:
the next one starts the moment the previous transaction ends, however it ends, and nothing else changes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker
from werkplaats_shared.db import READ_ONLY, make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, thread TEXT)"))
    yield engine
    engine.dispose()


def _waits_for(engine: Any, end: str) -> float:
    """How long a second thread's write waited for the first's, which ends (``end``) after 0.3 s."""
    started = threading.Event()
    waited: list[float] = []

    def second() -> None:
        started.wait(5)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            waited.append(time.perf_counter() - t0)
            conn.execute(sa.text("INSERT INTO t (id, thread) VALUES (2, 'second')"))

    other = threading.Thread(target=second)
    other.start()
    conn = engine.connect()
    transaction = conn.begin()
    conn.execute(sa.text("INSERT INTO t (id, thread) VALUES (1, 'first')"))
    started.set()
    time.sleep(0.3)
    if end == "commit":
        transaction.commit()
        conn.close()
    elif end == "rollback":
        transaction.rollback()
        conn.close()
    else:  # closed with the transaction still open: SQLAlchemy rolls it back
        conn.close()
    other.join(10)
    assert not other.is_alive()
    return waited[0]


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_the_next_writer_starts_when_the_transaction_ends_however_it_ends(engine: Any, end: str) -> None:
    waited = _waits_for(engine, end)
    assert 0.25 <= waited < 5  # it waited for the first (not SQLite's 30 s busy timeout, nor forever)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, thread FROM t")).all())
    assert rows == ({1: "first", 2: "second"} if end == "commit" else {2: "second"})


def test_a_failed_begin_or_statement_lets_the_next_writer_in(engine: Any) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t (id) VALUES (5)"))
        conn.execute(sa.text("INSERT INTO t (id) VALUES (5)"))
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t (id) VALUES (6)"))
        done.set()

    threading.Thread(target=write).start()
    assert done.wait(5)


def test_readers_and_sessions_are_not_queued_behind_a_writer(engine: Any) -> None:
    sessions = sessionmaker(engine)
    with sessions.begin() as session:
        session.execute(sa.text("INSERT INTO t (id) VALUES (1)"))
        # a read-only connection of the same thread does not wait for the open write transaction
        with engine.connect().execution_options(**READ_ONLY) as reader:
            assert reader.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 0
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 1


def test_many_threads_write_each_row_once(engine: Any) -> None:
    def write(n: int) -> None:
        for i in range(20):
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO t (id, thread) VALUES (:id, :thread)"),
                             {"id": n * 100 + i, "thread": str(n)})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 160
