"""Intake learns how each run of a batch ended (run.ended): the batch shows the latest outcome, an older one
arriving late changes nothing, and a batch closed before matching heard of it ignores a late publication."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from intake import bootstrap as intake_bootstrap
from intake.adapters import orm
from intake.domain.model import DomainError
from intake.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.consumer import PermanentError
from werkplaats_shared.contracts import make_envelope

from .test_intake_events import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = Settings.from_env("intake", {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/i.sqlite3",
                                            "WERKPLAATS_DATA_DIR": str(tmp_path)})
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    infra = intake_bootstrap.bootstrap(settings)
    yield World(infra)
    infra.engine.dispose()
    root.handlers[:], root.level = handlers, level


def ended(world: World, status: str, at: str, *, run_id: str | None = None,
          diagnosis: dict[str, Any] | None = None) -> str:
    run_id = run_id or str(uuid.uuid4())
    world.handle(make_envelope("run.ended", 1, {
        "run_id": run_id, "batch_id": world.batch.id, "trigger": "batch.submitted", "status": status,
        "ended_at": at, "error": "gave up after 3 attempts" if status == "failed" else None,
        "diagnosis": diagnosis}))
    return run_id


def batch(world: World) -> orm.Batch:
    with world.infra.session_factory() as s:
        found = s.get(orm.Batch, world.batch.id)
        assert found is not None
        return found


DIAGNOSIS = {"groups": ["fairness_floor"], "message": "infeasible: ...", "message_nl": "onoplosbaar: ..."}


def test_the_latest_outcome_is_shown_and_a_late_older_one_changes_nothing(world: World) -> None:
    first = ended(world, "infeasible", "2027-01-10T10:00:00+00:00", diagnosis=DIAGNOSIS)
    shown = batch(world)
    assert (shown.status, shown.last_run_id, shown.last_run_diagnosis) == ("infeasible", first, DIAGNOSIS)
    second = ended(world, "failed", "2027-01-10T11:00:00+00:00")
    shown = batch(world)
    assert (shown.status, shown.last_run_id, shown.last_run_error) == ("failed", second, "gave up after 3 attempts")
    ended(world, "cancelled", "2027-01-10T10:30:00+00:00")  # older than the one shown: a late redelivery
    assert (batch(world).status, batch(world).last_run_id) == ("failed", second)


def test_a_solved_run_waiting_to_be_published_leaves_the_batch_submitted(world: World) -> None:
    run_id = ended(world, "solved", "2027-01-10T10:00:00+00:00")
    assert (batch(world).status, batch(world).last_run_status, batch(world).last_run_id) == (
        "submitted", "solved", run_id)


def test_an_outcome_of_a_matched_batch_keeps_its_matching(world: World) -> None:
    world.publish([(0, 0)])
    ended(world, "infeasible", "2027-01-10T12:00:00+00:00", diagnosis=DIAGNOSIS)  # a re-run found nothing
    assert (batch(world).status, batch(world).last_run_status) == ("matched", "infeasible")
    assert world.states() == ["matched", "unmatched"]


def test_an_outcome_for_an_unknown_batch_goes_to_the_dead_letter_queue(world: World) -> None:
    with pytest.raises(PermanentError):
        world.handle(make_envelope("run.ended", 1, {
            "run_id": "r", "batch_id": "nope", "trigger": "batch.submitted", "status": "failed",
            "ended_at": "2027-01-10T10:00:00+00:00", "error": "x", "diagnosis": None}))


def test_matches_published_after_the_batch_was_closed_are_ignored(world: World) -> None:
    ended(world, "infeasible", "2027-01-10T10:00:00+00:00", diagnosis=DIAGNOSIS)
    with world.infra.session_factory.begin() as s:
        stuck = s.get(orm.Batch, world.batch.id)
        assert stuck is not None
        services.close_batch(s, lambda env: world.infra.emit(s, env), world.coord, stuck)
    assert world.states() == ["submitted", "submitted"]
    world.publish([(0, 0)])  # matching published before it heard of the close
    assert world.states() == ["submitted", "submitted"]
    assert (batch(world).status, batch(world).run_id) == ("closed", None)


def test_only_a_stuck_batch_can_be_changed_or_closed(world: World) -> None:
    with world.infra.session_factory.begin() as s:
        pending = s.get(orm.Batch, world.batch.id)
        assert pending is not None
        for attempt in (lambda: services.update_batch(s, lambda env: None, world.coord, pending, {"policy": "stable"}),
                        lambda: services.close_batch(s, lambda env: None, world.coord, pending)):
            with pytest.raises(DomainError) as refused:
                attempt()
            assert (refused.value.status, refused.value.field) == (409, "status")
            assert "this batch is submitted" in refused.value.reason
