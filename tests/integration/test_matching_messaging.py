"""Matching on a real broker: a submitted batch becomes a run, and a firm's decline, published by
scheduling as match.responded, reaches matching's consumer and queues a minimum-change re-run."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from matching import bootstrap
from matching.adapters import orm
from matching.entrypoints.handlers import HANDLERS
from matching.service_layer import services
from werkplaats_shared import broker
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.publisher import Publisher
from werkplaats_shared.service import Infrastructure, consumer_loop

from .harness import wait_until, workspace_announcement


@pytest.fixture
def matching(broker_url: str, namespace: str, tmp_path: Path) -> Iterator[Infrastructure]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("matching", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/matching.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_NAMESPACE": namespace})
    infra = bootstrap.bootstrap(settings)
    broker.declare_topology(settings)
    stop = threading.Event()
    loop = consumer_loop(infra, HANDLERS)
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield infra
    finally:
        stop.set()
        assert loop.stop is not None
        loop.stop()
        thread.join(10)
        infra.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def publish_as(infra: Infrastructure, producer: str, envelope: Envelope) -> None:
    with infra.connection() as conn:
        Publisher(conn, infra.topology, producer).publish_raw(
            envelope.to_json(), message_type=envelope.type, message_id=envelope.message_id)


def test_a_decline_on_the_broker_queues_a_minimum_change_rerun(matching: Infrastructure) -> None:
    batch_id = str(uuid.uuid4())
    publish_as(matching, "intake", workspace_announcement("w", "c"))  # before the workspace's first batch
    publish_as(matching, "intake", make_envelope("batch.submitted", 1, {
        "batch_id": batch_id, "workspace_id": "w", "coordinator_id": "c", "period": "P", "policy": "max_fit",
        "auto_publish": True,
        "assignments": [{"assignment_id": "a1", "firm_id": "f1", "accepted_levels": ["HBO"], "required_skills": [],
                         "nice_to_have_skills": [], "min_teams": 1, "max_teams": 1}],
        "teams": [{"team_id": "t1", "institution_id": "i", "level": "HBO", "skills": []},
                  {"team_id": "t2", "institution_id": "i", "level": "HBO", "skills": ["web"]}]}))
    sf = matching.session_factory
    run_id = wait_until(lambda: services.claim_next_run(sf), what="the run of the submitted batch")
    services.execute_run(sf, matching.emit, run_id, "highs", 30)
    with sf() as session:
        (match,) = services.run_matches(session, run_id)
    assert match.team_id == "t2"  # the better fit
    publish_as(matching, "scheduling", make_envelope("match.responded", 1, {
        "match_id": match.id, "run_id": run_id, "batch_id": batch_id, "assignment_id": "a1", "team_id": "t2",
        "firm_id": "f1", "response": "declined", "responded_at": utcnow().isoformat()}))

    def rerun() -> str | None:
        with sf() as session:
            return session.execute(sa.select(orm.Run.id).where(
                orm.Run.batch_id == batch_id, orm.Run.trigger == "declined")).scalar_one_or_none()

    rerun_id = wait_until(rerun, what="the re-run after the decline")
    assert services.claim_next_run(sf) == rerun_id
    services.execute_run(sf, matching.emit, rerun_id, "highs", 30)
    with sf() as session:
        assert [(m.team_id, m.assignment_id) for m in services.run_matches(session, rerun_id)] == [("t1", "a1")]
        statuses = dict(session.execute(sa.select(orm.Run.id, orm.Run.status)
                                        .where(orm.Run.batch_id == batch_id)).all())
        assert session.get(orm.Match, match.id).response == "declined"  # type: ignore[union-attr]
    assert statuses == {run_id: "superseded", rerun_id: "published"}
