"""Intake's consumer on a real broker. Matching's and scheduling's events reach intake on two queues in
no fixed order: a firm's answer that overtakes its match is delivered again until the match is in."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from intake import bootstrap
from intake.adapters import orm
from intake.entrypoints.handlers import HANDLERS
from werkplaats_shared import broker
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.publisher import Publisher
from werkplaats_shared.service import Infrastructure, consumer_loop

from .harness import wait_until
from .test_intake_events import World


class Failures(logging.Handler):
    """The message ids of the deliveries the consumer could not apply (and will retry)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message_ids: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "handler failed":
            self.message_ids.append(str(getattr(record, "message_id", "")))


@pytest.fixture
def intake(broker_url: str, namespace: str, tmp_path: Path) -> Iterator[tuple[Infrastructure, Failures]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/intake.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_NAMESPACE": namespace})
    infra = bootstrap.bootstrap(settings)
    broker.declare_topology(settings)
    failures = Failures()
    consumer_log = logging.getLogger("werkplaats_shared.consumer")
    consumer_log.addHandler(failures)
    stop = threading.Event()
    loop = consumer_loop(infra, HANDLERS)
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield infra, failures
    finally:
        stop.set()
        assert loop.stop is not None
        loop.stop()
        thread.join(10)
        consumer_log.removeHandler(failures)
        infra.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def publish_as(infra: Infrastructure, producer: str, envelope: Envelope) -> None:
    with infra.connection() as conn:
        Publisher(conn, infra.topology, producer).publish_raw(
            envelope.to_json(), message_type=envelope.type, message_id=envelope.message_id)


def test_an_acceptance_that_overtakes_its_match_is_applied_once_the_match_is_in(
        intake: tuple[Infrastructure, Failures]) -> None:
    infra, failures = intake
    world = World(infra)  # a batch of two assignments of one firm, two teams
    run_id, match_id = str(uuid.uuid4()), str(uuid.uuid4())
    assignment, team = world.assignments[0], world.teams[0]
    published = make_envelope("matches.published", 1, {
        "run_id": run_id, "batch_id": world.batch.id, "workspace_id": world.batch.workspace_id,
        "coordinator_id": world.coord.organisation_id, "period": "P1",
        "matches": [{"match_id": match_id, "assignment_id": assignment.id, "team_id": team.id,
                     "firm_id": world.firm.organisation_id, "institution_id": world.inst.organisation_id,
                     "score": 10.0}],
        "unmatched_assignment_ids": [world.assignments[1].id]})
    accepted = make_envelope("match.responded", 1, {
        "match_id": match_id, "run_id": run_id, "batch_id": world.batch.id, "assignment_id": assignment.id,
        "team_id": team.id, "firm_id": world.firm.organisation_id, "response": "accepted",
        "responded_at": "2027-01-10T10:00:00+00:00"})

    publish_as(infra, "scheduling", accepted)
    wait_until(lambda: accepted.message_id in failures.message_ids, what="the early answer to be tried and retried")
    assert world.states() == ["in_batch", "in_batch"]
    publish_as(infra, "matching", published)

    wait_until(lambda: world.states() == ["accepted", "unmatched"], what="the answer to count after the match")
    with infra.session_factory() as session:
        applied = session.execute(orm.inbox.select().where(orm.inbox.c.message_id == accepted.message_id)).all()
    assert len(applied) == 1
