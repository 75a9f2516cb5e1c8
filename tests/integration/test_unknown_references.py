"""A batch intake does not know is not acted on (issue 19, item 5), on a real broker.

- matching acts on ``batch.submitted`` only for a workspace intake announced (``workspace.registered``) and by
  that workspace's coordinators' organisation; scheduling acts on ``matches.published`` only for a batch intake
  announced to it, with matches that pair that batch's assignments and teams, and a re-run only when it
  supersedes a run it holds. What fails is dead-lettered with the reason; nothing of it is stored.
- intake's reconciliation announces a batch left without a run outcome again, with the same message id: a
  batch whose message was dropped is matched, once, however often it is announced.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from intake import bootstrap as intake_bootstrap
from intake.adapters import orm as intake_orm
from intake.entrypoints.handlers import HANDLERS as INTAKE_HANDLERS
from intake.service_layer import reconcile
from intake.service_layer import services as intake_services
from matching import bootstrap as matching_bootstrap
from matching.adapters import orm as matching_orm
from matching.entrypoints.handlers import HANDLERS as MATCHING_HANDLERS
from matching.service_layer import services as matching_services
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm as scheduling_orm
from scheduling.entrypoints.handlers import HANDLERS as SCHEDULING_HANDLERS
from werkplaats_shared import broker
from werkplaats_shared.auth import Principal
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.publisher import Publisher
from werkplaats_shared.runner import Loop
from werkplaats_shared.service import Infrastructure, consumer_loop, relay_loop

from .harness import wait_until

PERIOD = "2027-S1"
TIMEOUT = 60.0


class Running:
    """Loops of the services under test, started and stopped by the test."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.loops: list[tuple[Loop, threading.Thread]] = []

    def start(self, loop: Loop) -> None:
        thread = threading.Thread(target=loop.run, args=(self.stop,), name=loop.name, daemon=True)
        thread.start()
        self.loops.append((loop, thread))

    def halt(self, loop: Loop) -> None:
        """Stop one loop (a consumer: it stops receiving)."""
        [(_, thread)] = [(lp, t) for lp, t in self.loops if lp is loop]
        assert loop.stop is not None
        loop.stop()
        thread.join(15)
        assert not thread.is_alive()
        self.loops = [(lp, t) for lp, t in self.loops if lp is not loop]

    def close(self) -> None:
        self.stop.set()
        for loop, _ in self.loops:
            if loop.stop is not None:
                loop.stop()
        for _, thread in self.loops:
            thread.join(15)


@pytest.fixture
def services_on(request: pytest.FixtureRequest, tmp_path: Path, namespace: str,
                broker_url: str) -> Iterator[Callable[[str], Infrastructure]]:
    """Start a service's infrastructure (SQLite; PostgreSQL too when the broker is RabbitMQ)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    started: list[Infrastructure] = []
    production = broker_url.startswith("amqp")

    def start(service: str) -> Infrastructure:
        url = (str(request.getfixturevalue("make_postgres_db")(service)) if production
               else f"sqlite:///{tmp_path}/{service}.sqlite3")
        settings = Settings.from_env(service, {
            "WERKPLAATS_DATABASE_URL": url, "WERKPLAATS_DATA_DIR": str(tmp_path), "WERKPLAATS_BROKER_URL": broker_url,
            "WERKPLAATS_NAMESPACE": namespace, "WERKPLAATS_POLL_INTERVAL": "0.1", "WERKPLAATS_MAX_DELIVERIES": "2",
            "WERKPLAATS_SOLVER_TIME_LIMIT": "30", "WERKPLAATS_SECRET_KEY": "k" * 32})
        boot = {"intake": intake_bootstrap.bootstrap, "matching": matching_bootstrap.bootstrap,
                "scheduling": scheduling_bootstrap.bootstrap}
        infra = boot[service](settings)
        broker.declare_topology(settings)
        started.append(infra)
        return infra

    try:
        yield start
    finally:
        for infra in started:
            infra.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def running() -> Iterator[Running]:
    r = Running()
    try:
        yield r
    finally:
        r.close()


def publish_as(infra: Infrastructure, producer: str, envelope: Envelope) -> None:
    with infra.connection() as conn:
        Publisher(conn, infra.topology, producer).publish_raw(
            envelope.to_json(), message_type=envelope.type, message_id=envelope.message_id)


def dead_letters(infra: Infrastructure, queue: str, expected: int) -> list[str]:
    """The reasons of the dead letters of ``queue`` (of this test's namespace), once ``expected`` are there."""
    found: list[str] = []
    with infra.connection() as conn:
        bound = infra.topology.dead_letter_queue(f"{infra.settings.namespace}{queue}")(conn.default_channel)
        bound.declare()

        def more() -> bool:
            while (message := bound.get(no_ack=False)) is not None:
                found.append(str((message.headers or {}).get("x-death-reason")))
                message.ack()
            return len(found) >= expected

        wait_until(more, TIMEOUT, f"{expected} dead letters of {queue}")
    return found


def workspace(workspace_id: str, coordinator_id: str) -> Envelope:
    return make_envelope("workspace.registered", 1, {"workspace_id": workspace_id, "coordinator_id": coordinator_id,
                                                     "registered_at": utcnow().isoformat()})


def batch(batch_id: str, workspace_id: str, coordinator_id: str, teams: tuple[str, ...] = ("t1",)) -> Envelope:
    return make_envelope("batch.submitted", 1, {
        "batch_id": batch_id, "workspace_id": workspace_id, "coordinator_id": coordinator_id, "period": "P",
        "policy": "max_fit", "auto_publish": True,
        "assignments": [{"assignment_id": "a1", "firm_id": "f1", "accepted_levels": ["HBO"], "required_skills": [],
                         "nice_to_have_skills": [], "min_teams": 1, "max_teams": 1}],
        "teams": [{"team_id": t, "institution_id": "i1", "level": "HBO", "skills": []} for t in teams]})


def runs_of(infra: Infrastructure, batch_id: str) -> int:
    with infra.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(matching_orm.Run.__table__)
                                .where(matching_orm.Run.batch_id == batch_id)).scalar_one())


def test_matching_dead_letters_a_batch_of_a_workspace_intake_never_announced(
        services_on: Callable[[str], Infrastructure], running: Running) -> None:
    matching = services_on("matching")
    running.start(consumer_loop(matching, MATCHING_HANDLERS))
    stranger, forged = str(uuid.uuid4()), str(uuid.uuid4())
    publish_as(matching, "intake", batch(stranger, "ws-nobody-made", "coord-1"))
    [reason] = dead_letters(matching, "matching.from-intake", 1)
    assert reason == (f"gave up after 2 attempts: unknown reference: batch {stranger}: workspace ws-nobody-made "
                      "was never announced by intake")
    assert runs_of(matching, stranger) == 0
    with matching.session_factory() as session:
        assert session.get(matching_orm.Batch, stranger) is None

    publish_as(matching, "intake", workspace("ws-1", "coord-1"))
    publish_as(matching, "intake", batch(forged, "ws-1", "coord-2"))  # another organisation's coordinator
    [reason] = dead_letters(matching, "matching.from-intake", 1)
    assert reason == f"rejected: batch {forged}: coordinator coord-2 does not run workspace ws-1"
    assert runs_of(matching, forged) == 0

    genuine = str(uuid.uuid4())
    publish_as(matching, "intake", batch(genuine, "ws-1", "coord-1"))
    wait_until(lambda: runs_of(matching, genuine) == 1, TIMEOUT, "the announced workspace's batch run")


def _published(run_id: str, batch_id: str, matches: list[tuple[str, str, str, str]], version: int = 1,
               supersedes: str | None = None) -> Envelope:
    payload: dict[str, Any] = {
        "run_id": run_id, "batch_id": batch_id, "workspace_id": "ws-1", "coordinator_id": "coord-1", "period": "P",
        "unmatched_assignment_ids": [],
        "matches": [{"match_id": str(uuid.uuid4()), "assignment_id": a, "firm_id": f, "team_id": t,
                     "institution_id": i, "score": 0.5, **({"previous_match_id": None} if version == 2 else {})}
                    for a, f, t, i in matches]}
    if version == 2:
        payload["supersedes_run_id"] = supersedes
    return make_envelope("matches.published", version, payload)


def notices_of(infra: Infrastructure, run_id: str) -> int:
    with infra.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(scheduling_orm.Notice.__table__)
                                .where(scheduling_orm.Notice.run_id == run_id)).scalar_one())


def test_scheduling_acts_only_on_runs_that_fit_a_batch_intake_announced(
        services_on: Callable[[str], Infrastructure], running: Running) -> None:
    scheduling = services_on("scheduling")
    running.start(consumer_loop(scheduling, SCHEDULING_HANDLERS))
    unknown_batch, bad_team, bad_rerun = (str(uuid.uuid4()) for _ in range(3))
    publish_as(scheduling, "matching", _published(unknown_batch, "b-never-announced", [("a1", "f1", "t1", "i1")]))
    [reason] = dead_letters(scheduling, "scheduling.from-matching", 1)
    assert reason == (f"gave up after 2 attempts: unknown reference: run {unknown_batch}: batch b-never-announced "
                      "was never announced by intake")

    publish_as(scheduling, "intake", workspace("ws-1", "coord-1"))
    publish_as(scheduling, "intake", make_envelope("batch.announced", 1, {
        "batch_id": "b-1", "workspace_id": "ws-1", "coordinator_id": "coord-1",
        "assignments": [{"assignment_id": "a1", "firm_id": "f1"}],
        "teams": [{"team_id": "t1", "institution_id": "i1"}]}))
    wait_until(lambda: _known(scheduling, "b-1"), TIMEOUT, "the announced batch in scheduling")
    publish_as(scheduling, "matching", _published(bad_team, "b-1", [("a1", "f1", "t-elsewhere", "i1")]))
    [reason] = dead_letters(scheduling, "scheduling.from-matching", 1)
    assert reason.startswith(f"rejected: run {bad_team}: match ")
    assert "names a team (or institution) batch b-1 does not hold" in reason
    publish_as(scheduling, "matching", _published(bad_rerun, "b-1", [("a1", "f1", "t1", "i1")], version=2,
                                                  supersedes="run-scheduling-never-saw"))
    [reason] = dead_letters(scheduling, "scheduling.from-matching", 1)
    assert reason == (f"rejected: run {bad_rerun} supersedes run run-scheduling-never-saw, which scheduling holds "
                      "for no such batch")
    assert notices_of(scheduling, unknown_batch) == notices_of(scheduling, bad_team) == notices_of(
        scheduling, bad_rerun) == 0

    fitting = str(uuid.uuid4())
    publish_as(scheduling, "matching", _published(fitting, "b-1", [("a1", "f1", "t1", "i1")]))
    wait_until(lambda: notices_of(scheduling, fitting) == 1, TIMEOUT, "the fitting run's notice")
    rerun = str(uuid.uuid4())
    publish_as(scheduling, "matching", _published(rerun, "b-1", [("a1", "f1", "t1", "i1")], version=2,
                                                  supersedes=fitting))
    wait_until(lambda: _run_known(scheduling, rerun), TIMEOUT, "the re-run acted on")


def _known(infra: Infrastructure, batch_id: str) -> bool:
    with infra.session_factory() as session:
        return session.get(scheduling_orm.KnownBatch, batch_id) is not None


def _run_known(infra: Infrastructure, run_id: str) -> bool:
    with infra.session_factory() as session:
        return session.get(scheduling_orm.KnownRun, run_id) is not None


# ---- intake's reconciliation -----------------------------------------------------------------------------------


def _intake_world(intake: Infrastructure) -> tuple[Principal, str, str]:
    """A coordinator with a workspace, a firm's assignment and an institution's team in it."""
    with intake.session_factory.begin() as s:
        def emit(env: Any) -> None:
            intake.emit(s, env)

        coordinator, _ = intake_services.create_organisation(s, emit, name="Werkplaats", role="coordinator")
        institution, _ = intake_services.create_organisation(s, emit, name="ROC", role="institution",
                                                             levels=["HBO"])
        firm, _ = intake_services.create_organisation(s, emit, name="Firm", role="entrepreneur")
        who = {o.role: Principal(o.id, o.role, "k") for o in (coordinator, institution, firm)}
        ws = intake_services.create_workspace(s, who["coordinator"], {
            "name": "Werkplaats", "municipalities": ["GM0193"],
            "periods": [{"code": PERIOD, "starts_on": date(2027, 2, 1), "ends_on": date(2027, 6, 30)}]})
        s.flush()
        intake_services.register_firm(s, who["entrepreneur"], {"kvk_number": "87654321", "sector": "retail",
                                                               "size_class": "small", "municipality": "GM0193"},
                                      create=True)
        intake_services.register_team(s, who["institution"], {
            "workspace_id": ws.id, "code": "HBO-1", "level": "HBO", "size": 3, "skills": [], "period": PERIOD}, emit)
        assignment, _ = intake_services.submit_assignment(s, emit, who["entrepreneur"], {
            "workspace_id": ws.id, "title": "Webshop", "description": "", "period": PERIOD, "accepted_levels": ["HBO"],
            "required_skills": [], "nice_to_have_skills": [], "min_teams": 1, "max_teams": 1, "mode": "remote"})
        return who["coordinator"], ws.id, assignment.id


def _relay(infra: Infrastructure) -> int:
    with infra.connection() as conn:
        return int(infra.relay(conn).relay_once())


def _reconcile(intake: Infrastructure, later: timedelta) -> reconcile.Reconciled:
    with intake.session_factory.begin() as session:
        return reconcile.reconcile(session, lambda env: intake.emit(session, env), after=timedelta(minutes=15),
                                   now=utcnow() + later)


def test_a_dropped_batch_is_announced_again_and_matched_once(
        services_on: Callable[[str], Infrastructure], running: Running) -> None:
    intake, matching = services_on("intake"), services_on("matching")
    coordinator, workspace_id, assignment_id = _intake_world(intake)
    # workspaces made before announcements existed are announced by the reconciliation
    assert _reconcile(intake, timedelta(0)) == reconcile.Reconciled(1, 0, 0)
    first_consumer = consumer_loop(matching, MATCHING_HANDLERS)
    running.start(first_consumer)
    assert _relay(intake) > 0

    def workspace_known() -> bool:
        with matching.session_factory() as s:
            return s.get(matching_orm.KnownWorkspace, workspace_id) is not None

    wait_until(workspace_known, TIMEOUT, "the workspace announced to matching")
    running.halt(first_consumer)  # matching stops receiving

    with intake.session_factory.begin() as s:
        batch_id = intake_services.submit_batch(s, lambda env: intake.emit(s, env), coordinator, {
            "workspace_id": workspace_id, "period": PERIOD, "policy": "max_fit", "assignment_ids": [assignment_id],
            "fairness_floors": []}).id
    assert _relay(intake) == 2  # batch.announced (to scheduling) and batch.submitted (to matching)
    with matching.connection() as conn:  # and the batch's announcement is lost
        [queue] = [q for q in matching.topology.queues_for("matching") if q.name.endswith("matching.from-intake")]
        assert queue(conn.default_channel).purge() == 1

    assert _reconcile(intake, timedelta(minutes=1)) == reconcile.Reconciled(0, 0, 0)  # not stuck yet
    # stuck, twice while matching is still away: the same message announced twice
    assert _reconcile(intake, timedelta(minutes=16)) == reconcile.Reconciled(0, 1, 0)
    assert _relay(intake) == 1
    assert _reconcile(intake, timedelta(minutes=32)) == reconcile.Reconciled(0, 1, 0)
    assert _relay(intake) == 1
    with intake.session_factory() as s:
        held = s.get(intake_orm.Batch, batch_id)
        assert held is not None and held.reannouncements == 2

    for loop in (consumer_loop(matching, MATCHING_HANDLERS), relay_loop(matching), relay_loop(intake),
                 consumer_loop(intake, INTAKE_HANDLERS)):
        running.start(loop)

    def matched() -> bool:
        with intake.session_factory() as s:
            held = s.get(intake_orm.Batch, batch_id)
            return held is not None and held.status == "matched"

    def solve() -> bool:
        run_id = matching_services.claim_next_run(matching.session_factory)
        if run_id is not None:
            matching_services.execute_run(matching.session_factory, matching.emit, run_id, "highs", 30)
        return matched()

    wait_until(solve, TIMEOUT, "the batch matched in intake")
    assert runs_of(matching, batch_id) == 1  # two copies of one message: one run
    assert _reconcile(intake, timedelta(minutes=60)) == reconcile.Reconciled(0, 0, 0)  # matched: nothing to do
