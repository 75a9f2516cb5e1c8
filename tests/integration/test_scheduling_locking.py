"""Kickoff planning is serialised per coordinator, firm and team: two batch plans, or a plan and an
acceptance, running at the same moment on PostgreSQL never double-book a firm, team or coordinator and
never exceed the coordinator's daily cap across batches (each sees the other's kickoffs as booked)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm
from scheduling.adapters.locks import lock_for_planning, lock_key
from scheduling.domain.calendar import TZ
from scheduling.domain.kickoffs import Rules, violations
from scheduling.service_layer import kickoffs as kickoff_services
from werkplaats_shared.config import Settings
from werkplaats_shared.db import utcnow
from werkplaats_shared.service import Infrastructure

from .test_matching_scheduling_api import SECRET_KEY

PERIOD = "2031-Q1"
COORDINATOR = "coord-1"


@pytest.fixture
def pg(make_postgres_db: Any, tmp_path: Path) -> Iterator[Infrastructure]:
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": make_postgres_db("kickoff_locks"), "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY})
    infra = scheduling_bootstrap.bootstrap(settings)
    yield infra
    infra.engine.dispose()


def _open_kickoffs(infra: Infrastructure, batch_id: str, firms: list[str]) -> list[str]:
    """Accepted matches whose kickoffs wait for the batch plan (unplaced so far)."""
    ids = []
    with infra.session_factory.begin() as session:
        for firm in firms:
            match_id = str(uuid.uuid4())
            session.add(orm.Kickoff(
                match_id=match_id, notice_id="", firm_id=firm, coordinator_id=COORDINATOR, run_id="run",
                batch_id=batch_id, period=PERIOD, assignment_id=str(uuid.uuid4()), team_id=str(uuid.uuid4()),
                institution_id="inst", status="unplaced", uid=f"kickoff-{match_id}@werkplaats", sequence=0,
                created_at=utcnow() - timedelta(days=1)))
            ids.append(match_id)
    return ids


def _race(*work: Callable[[], None]) -> None:
    start = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and not any(t.is_alive() for t in threads)


def _assert_no_conflicts(infra: Infrastructure, rules: Rules) -> list[orm.Kickoff]:
    """Across all batches: the validator (the optimiser's own rows) and a direct count find nothing wrong."""
    with infra.session_factory() as session:
        rows = list(session.execute(sa.select(orm.Kickoff).where(orm.Kickoff.status == "proposed")).scalars())
        requests = [kickoff_services.as_request(r, 2) for r in rows]
        cal = kickoff_services.load_calendars(session, requests)
    plan = {r.match_id: r.starts_at.astimezone(TZ) for r in rows if r.starts_at is not None}
    assert violations(requests, plan, [], cal, rules) == []
    for attr in ("firm_id", "team_id", "coordinator_id"):
        assert max(Counter((getattr(r, attr), plan[r.match_id]) for r in rows).values()) == 1, attr
    assert max(Counter(s.date() for s in plan.values()).values()) <= rules.daily_cap
    return rows


@pytest.mark.postgres
def test_two_batch_plans_at_once_share_the_coordinators_day_cap_and_firms(pg: Infrastructure) -> None:
    rules = Rules(daily_cap=2)
    shared = ["firm-shared-1", "firm-shared-2"]
    for b in ("b1", "b2"):
        _open_kickoffs(pg, b, [*shared, f"firm-{b}-1", f"firm-{b}-2"])

    def plan(batch_id: str) -> Callable[[], None]:
        def job() -> None:
            with pg.session_factory.begin() as session:
                kickoff_services.plan_batch(session, COORDINATOR, batch_id, 2, rules.daily_cap)
        return job

    _race(plan("b1"), plan("b2"))
    rows = _assert_no_conflicts(pg, rules)
    assert len(rows) == 8  # both batches fully placed: the window has room for all at two a day
    days = Counter(r.starts_at.astimezone(TZ).date() for r in rows if r.starts_at is not None)
    assert sorted(days.values()) == [2, 2, 2, 2]


@pytest.mark.postgres
def test_a_plan_and_an_acceptance_at_once_do_not_double_book(pg: Infrastructure) -> None:
    rules = Rules()
    _open_kickoffs(pg, "b1", [f"firm-{i}" for i in range(6)])
    with pg.session_factory.begin() as session:  # a match notice of another batch, answered during the plan
        notice = orm.Notice(
            id=str(uuid.uuid4()), kind="match_notice", firm_id="firm-0", coordinator_id=COORDINATOR, run_id="r2",
            batch_id="b2", period=PERIOD, matches=[], details={"institutions": {}}, status="sent", attempts=1,
            created_at=utcnow(), webhook_attempts=0)
        session.add(notice)
    match = {"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4())}

    def plan() -> None:
        with pg.session_factory.begin() as session:
            kickoff_services.plan_batch(session, COORDINATOR, "b1", 2)

    def accept() -> None:
        with pg.session_factory.begin() as session:
            stored = session.get(orm.Notice, notice.id)
            assert stored is not None
            kickoff_services.place_accepted(session, stored, match, datetime.now(UTC) - timedelta(days=1))

    _race(plan, accept)
    rows = _assert_no_conflicts(pg, rules)
    assert len(rows) == 7


@pytest.mark.postgres
def test_a_second_planner_waits_for_the_first_to_commit(pg: Infrastructure) -> None:
    """The lock itself: held until commit, and it names coordinators, firms and teams apart."""
    assert len({lock_key(kind, "x") for kind in ("coordinator", "firm", "team")}) == 3
    holder = pg.session_factory()
    holder.begin()
    assert lock_for_planning(holder, coordinators=[COORDINATOR], firms=["f", "f"], teams=["t"]) == 3
    waited = threading.Event()
    done = threading.Event()

    def second() -> None:
        with pg.session_factory.begin() as session:
            session.execute(sa.text("SET LOCAL lock_timeout = '20s'"))
            lock_for_planning(session, firms=["f"])
            waited.set()
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not waited.wait(0.5)  # blocked while the first transaction holds the firm's lock
    holder.commit()
    holder.close()
    assert done.wait(20)
    thread.join(timeout=5)
