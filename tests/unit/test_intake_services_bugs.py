"""Intake service-layer behaviour users rely on that the current code gets wrong (found while writing
test_intake_services.py). Each test fails until its bug is fixed; the report next to it proposes the fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from intake.adapters import orm
from intake.domain.model import AssignmentStatus, DomainError
from intake.entrypoints.handlers import HANDLERS
from intake.service_layer import services
from sqlalchemy.orm import Session
from werkplaats_shared.consumer import PermanentError
from werkplaats_shared.contracts import Envelope

from .intake_fakes import (
    Database,
    World,
    assignment_data,
    batch_data,
    firm_data,
    make_world,
    published,
    responded,
    team_data,
    workspace_data,
)

S = AssignmentStatus


@pytest.fixture
def world() -> Iterator[World]:
    db = Database()
    yield make_world(db)
    db.close()


def deliver(db: Database, envelope: Envelope) -> str:
    """Hand the envelope to intake's handler as the consumer does: applied, dead-lettered (a permanent
    error) or left for a later redelivery (any other error)."""
    try:
        db.run(HANDLERS[envelope.type], envelope)
    except PermanentError:
        return "dead-lettered"
    except Exception:  # noqa: BLE001 - the consumer retries these
        return "retry"
    return "applied"


def test_an_answer_that_arrives_before_intake_has_seen_the_match_is_not_lost(world: World) -> None:
    """intake reads matches.published and match.responded from two queues, in no fixed order (after a
    restart, say). An acceptance handled first is acknowledged and dropped today, so the assignment
    stays 'matched' although the firm accepted."""
    a1 = world.submit("firm_1").id
    t1 = world.db.run(services.register_team, world.who["inst_1"], team_data(world.ws["a"]), world.emit).id
    batch = world.db.run(services.submit_batch, world.emit, world.who["coord_a"], batch_data(world.ws["a"], [a1]))
    run = published("run-1", batch.id, world, [("m1", a1, t1)], unmatched=[])
    answer = responded(run, "m1", "accepted")

    first = deliver(world.db, answer)
    assert deliver(world.db, run) == "applied"
    if first == "retry":
        assert deliver(world.db, answer) == "applied"

    assert world.status(a1) == S.ACCEPTED


def test_changing_the_accepted_levels_keeps_the_preferred_levels_among_them(world: World) -> None:
    """A preferred level must be an accepted level (checked on submit), but a PATCH of accepted_levels
    can drop a level the firm still prefers, and matching then gets a preference it cannot honour."""
    assignment = world.submit("firm_1", accepted_levels=["HBO", "WO"], preferred_levels=["WO", "HBO"])

    def narrow(session: Session) -> orm.Assignment:
        found = session.get(orm.Assignment, assignment.id)
        assert found is not None
        return services.update_assignment(session, found, {"accepted_levels": ["HBO"]})

    try:
        world.db.run(narrow)
    except DomainError as exc:
        assert exc.field == "accepted_levels"
    stored = world.db.get(orm.Assignment, assignment.id)
    assert set(stored.preferred_levels) <= set(stored.accepted_levels)


def test_handover_moves_the_open_work_of_a_firm_placed_before_its_workspace_existed(world: World) -> None:
    """A firm registered while no workspace covered it keeps workspace_id None; once a workspace for its
    area exists its assignments are routed there. When that workspace hands over, the firm is not 'of the
    workspace', so its open assignment stays behind, and naming the firm is refused."""
    db = world.db
    world.add_org("firm_3", "entrepreneur")
    db.run(services.register_firm, world.who["firm_3"], firm_data(kvk_number="11112222", municipality="GM0014"),
           create=True)
    groningen = db.run(services.create_workspace, world.who["coord_b"], workspace_data(
        name="Werkplaats Groningen", municipalities=["GM0014"])).id
    open_work, _ = db.run(services.submit_assignment, world.emit, world.who["firm_3"], assignment_data(groningen))
    successor = db.run(services.create_workspace, world.who["coord_b"], workspace_data(name="Opvolger")).id

    handover = db.run(services.hand_over, world.who["coord_b"], {
        "from_workspace_id": groningen, "to_workspace_id": successor, "reason": "programma stopt"})

    assert handover.assignment_ids == [open_work.id]
    assert db.get(orm.Assignment, open_work.id).workspace_id == successor


def test_handover_moves_open_work_submitted_to_a_second_workspace_covering_the_firm(world: World) -> None:
    """A firm may submit to any workspace whose area covers it (the second of two covering Amsterdam
    accepts the assignment), but handover selects work by the firm's placement (the oldest covering
    workspace), so the second workspace's open assignments stay behind when it hands over."""
    db = world.db
    second = db.run(services.create_workspace, world.who["coord_b"], workspace_data(name="Tweede Amsterdam")).id
    open_work, routing = db.run(services.submit_assignment, world.emit, world.who["firm_1"],
                                assignment_data(second))
    assert (routing.outcome, open_work.workspace_id) == ("accepted", second)
    successor = db.run(services.create_workspace, world.who["coord_b"], workspace_data(name="Opvolger")).id

    handover = db.run(services.hand_over, world.who["coord_b"], {
        "from_workspace_id": second, "to_workspace_id": successor, "reason": "programma stopt"})

    assert handover.assignment_ids == [open_work.id]
    assert db.get(orm.Assignment, open_work.id).workspace_id == successor


def test_handover_moves_an_assignment_the_last_round_left_unmatched(world: World) -> None:
    """OPEN_STATUSES counts 'unmatched' as open work, but hand_over also requires batch_id IS NULL, and
    every unmatched assignment has the batch that left it unmatched. It stays in the workspace that stops,
    where no one will batch it again; the receiving coordinator cannot reach it."""
    db = world.db
    a1 = world.submit("firm_1").id
    batch = db.run(services.submit_batch, world.emit, world.who["coord_a"], batch_data(world.ws["a"], [a1]))
    db.run(services.on_matches_published, published("run-1", batch.id, world, [], unmatched=[a1]))
    assert world.status(a1) == S.UNMATCHED
    successor = db.run(services.create_workspace, world.who["coord_b"], workspace_data(name="Opvolger")).id

    handover = db.run(services.hand_over, world.who["coord_a"], {
        "from_workspace_id": world.ws["a"], "to_workspace_id": successor, "reason": "programma stopt"})

    assert handover.assignment_ids == [a1]
    db.run(services.submit_batch, world.emit, world.who["coord_b"], batch_data(successor, [a1]))
    assert world.status(a1) == S.IN_BATCH
