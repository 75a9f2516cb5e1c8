"""Intake's use cases, called directly (no HTTP): a real in-memory SQLite database with intake's schema,
one transaction per use case, and a fake outbox that reads every envelope back through its contract.

A refused request raises a DomainError naming the field, with a Dutch text for its reason, and leaves
every table and the outbox as they were."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from intake.adapters import orm
from intake.domain.messages import to_dutch
from intake.domain.model import AssignmentStatus, DomainError
from intake.entrypoints import schemas
from intake.entrypoints.handlers import HANDLERS
from intake.service_layer import services
from sqlalchemy.orm import Session
from werkplaats_shared.consumer import PermanentError
from werkplaats_shared.contracts import Envelope, make_envelope, parse_envelope

from .intake_fakes import (
    Database,
    World,
    assignment_data,
    batch_data,
    capacity_data,
    firm_data,
    institution_data,
    make_world,
    published,
    responded,
    rows_of,
    team_data,
    workspace_data,
)

S = AssignmentStatus


@pytest.fixture
def world() -> Iterator[World]:
    db = Database()
    yield make_world(db)
    db.close()


def assert_refused(db: Database, field: str, status: int, use_case: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> str:
    """The use case is refused with this field and status, and neither a row nor the outbox changed."""
    before, sent = db.state(), len(db.emit.published)
    with pytest.raises(DomainError) as info:
        db.run(use_case, *args, **kwargs)
    assert (info.value.field, info.value.status) == (field, status), info.value.reason
    assert to_dutch(info.value.reason) is not None, f"no Dutch text for {info.value.reason!r}"
    assert db.state() == before
    assert len(db.emit.published) == sent
    return info.value.reason


def with_assignment(assignment_id: str, use_case: Callable[..., Any], *args: Any) -> Callable[[Session], Any]:
    """A use case that takes the assignment object, as the API hands it over after its access check."""
    def run(session: Session) -> Any:
        return use_case(session, session.get(orm.Assignment, assignment_id), *args)
    return run


# ---- workspaces -----------------------------------------------------------------------------


def test_a_workspace_keeps_its_working_area_and_calendar(world: World) -> None:
    db = world.db
    ws = db.run(services.create_workspace, world.who["coord_b"], workspace_data(
        name="Werkplaats Utrecht", municipalities=["GM0344", "GM0307", "GM0344"],
        periods=[{"code": "S1", "starts_on": "2025-09-01", "ends_on": "2026-01-30"}]))
    stored = db.get(orm.Workspace, ws.id)
    assert stored.organisation_id == world.org("coord_b")
    assert stored.municipalities == ["GM0307", "GM0344"]
    assert stored.periods == [{"code": "S1", "starts_on": "2025-09-01", "ends_on": "2026-01-30"}]


def test_a_calendar_with_a_repeated_or_reversed_period_is_refused(world: World) -> None:
    q1 = {"code": "Q1", "starts_on": "2025-01-06", "ends_on": "2025-03-28"}
    assert_refused(world.db, "periods", 422, services.create_workspace, world.who["coord_a"],
                   workspace_data(periods=[q1, {**q1, "starts_on": "2025-04-01", "ends_on": "2025-06-01"}]))
    assert_refused(world.db, "periods.1.ends_on", 422, services.create_workspace, world.who["coord_a"],
                   workspace_data(periods=[q1, {"code": "Q2", "starts_on": "2025-06-01", "ends_on": "2025-04-01"}]))


def test_a_new_workspace_serves_its_area_from_the_next_assignment_on(world: World) -> None:
    world.add_org("firm_3", "entrepreneur")
    world.db.run(services.register_firm, world.who["firm_3"], firm_data(kvk_number="11112222",
                                                                        municipality="GM0014"), create=True)
    before = world.submit("firm_3")
    assert before.status == S.REFERRED
    groningen = world.db.run(services.create_workspace, world.who["coord_b"], workspace_data(
        name="Werkplaats Groningen", municipalities=["GM0014"])).id
    after, routing = world.db.run(services.submit_assignment, world.emit, world.who["firm_3"],
                                  assignment_data(world.ws["a"]))
    assert (routing.outcome, after.workspace_id, after.status) == ("routed", groningen, S.SUBMITTED)


# ---- firm profile ---------------------------------------------------------------------------


def test_a_firm_profile_is_placed_with_the_oldest_workspace_covering_it(world: World) -> None:
    db = world.db
    db.run(services.create_workspace, world.who["coord_b"], workspace_data(name="Tweede Amsterdam"))
    world.add_org("firm_3", "entrepreneur")
    firm = db.run(services.register_firm, world.who["firm_3"], firm_data(kvk_number="11112222"), create=True)
    assert (firm.kvk_number, firm.municipality, firm.workspace_id) == ("11112222", "GM0363", world.ws["a"])
    moved = db.run(services.register_firm, world.who["firm_3"], dict(schemas.FirmPatch().load(
        {"municipality": "GM0193", "max_concurrent_teams": 2})), create=False)
    assert (moved.workspace_id, moved.max_concurrent_teams, moved.kvk_number) == (world.ws["b"], 2, "11112222")
    nowhere = db.run(services.register_firm, world.who["firm_3"], {"municipality": "GM0014"}, create=False)
    assert nowhere.workspace_id is None


def test_a_kvk_number_has_eight_digits_and_belongs_to_one_firm(world: World) -> None:
    db = world.db
    world.add_org("firm_3", "entrepreneur")
    for bad in ("1234567a", "1234567", "123456789", "00000000", "١٢٣٤٥٦٧٨", "1234 567"):
        assert_refused(db, "kvk_number", 422, services.register_firm, world.who["firm_3"],
                       {**firm_data(), "kvk_number": bad}, create=True)
    assert_refused(db, "kvk_number", 409, services.register_firm, world.who["firm_3"], firm_data(), create=True)
    assert_refused(db, "kvk_number", 409, services.register_firm, world.who["firm_1"],
                   firm_data(kvk_number="55556666"), create=True)
    assert_refused(db, "kvk_number", 409, services.register_firm, world.who["firm_2"],
                   {"kvk_number": "12345678"}, create=False)
    before = db.state()
    with pytest.raises(services.NotFound):
        db.run(services.register_firm, world.who["firm_3"], {"sector": "garage"}, create=False)
    assert db.state() == before


# ---- routing and referral -------------------------------------------------------------------


def test_an_assignment_from_inside_the_area_is_accepted_and_announced(world: World) -> None:
    assignment, routing = world.db.run(services.submit_assignment, world.emit, world.who["firm_1"],
                                       assignment_data(world.ws["a"], theme="webshop", required_skills=["js", "js"]))
    assert (routing.outcome, routing.workspace_id) == ("accepted", world.ws["a"])
    stored = world.db.get(orm.Assignment, assignment.id)
    assert (stored.status, stored.workspace_id, stored.firm_id, stored.batch_id) == (
        S.SUBMITTED, world.ws["a"], world.org("firm_1"), None)
    assert (stored.kind, stored.mode, stored.required_skills) == ("project", "on_site", ["js"])
    assert world.emit.payloads("assignment.submitted") == [{
        "assignment_id": assignment.id, "firm_id": world.org("firm_1"), "workspace_id": world.ws["a"],
        "period": "2025-Q1", "theme": "webshop", "accepted_levels": ["HBO", "WO"],
        "routed_from_workspace_id": None}]


def test_an_assignment_sent_to_a_workspace_that_does_not_serve_the_firm_is_routed_to_one_that_does(
        world: World) -> None:
    assignment, routing = world.db.run(services.submit_assignment, world.emit, world.who["firm_1"],
                                       assignment_data(world.ws["b"]))
    assert (routing.outcome, routing.workspace_id) == ("routed", world.ws["a"])
    stored = world.db.get(orm.Assignment, assignment.id)
    assert (stored.workspace_id, stored.routed_from_workspace_id, stored.status) == (
        world.ws["a"], world.ws["b"], S.SUBMITTED)
    [event] = world.emit.payloads("assignment.submitted")
    assert (event["workspace_id"], event["routed_from_workspace_id"]) == (world.ws["a"], world.ws["b"])
    assert world.emit.payloads("firm.referred") == [] and rows_of(world.db, orm.Referral) == []


def test_routing_into_a_calendar_without_the_period_is_refused_and_names_the_serving_workspace(
        world: World) -> None:
    world.add_org("firm_3", "entrepreneur")
    world.db.run(services.register_firm, world.who["firm_3"], firm_data(kvk_number="11112222",
                                                                        municipality="GM0193"), create=True)
    reason = assert_refused(world.db, "period", 422, services.submit_assignment, world.emit, world.who["firm_3"],
                            assignment_data(world.ws["a"], period="2025-Q2"))
    assert "Werkplaats Zwolle" in reason
    assert "Werkplaats Zwolle" in str(to_dutch(reason))


def test_a_firm_no_workspace_serves_is_referred_to_the_matching_schemes_and_notified(world: World) -> None:
    db = world.db

    def scheme(code: str, themes: list[str], active: bool = True) -> None:
        db.run(services.put_scheme, world.who["coord_a"], world.ws["a"], code, dict(schemas.SchemeIn().load({
            "name_nl": f"Regeling {code}", "name_en": f"Scheme {code}", "url": f"https://example.org/{code}",
            "themes": themes, "active": active})))

    scheme("loket", [])
    scheme("cyber", ["cyber_security"])
    scheme("shops", ["webshop", "website"])
    scheme("oud", [], active=False)
    db.run(services.register_firm, world.who["firm_2"], {"municipality": "GM0014"}, create=False)
    assignment, routing = db.run(services.submit_assignment, world.emit, world.who["firm_2"],
                                 assignment_data(world.ws["a"], theme="webshop"))
    assert routing.outcome == "referred"
    stored = db.get(orm.Assignment, assignment.id)
    assert (stored.status, stored.workspace_id) == (S.REFERRED, world.ws["a"])
    [referral] = rows_of(db, orm.Referral)
    assert (referral.firm_id, referral.assignment_id, referral.from_workspace_id, referral.scheme_codes) == (
        world.org("firm_2"), assignment.id, world.ws["a"], ["loket", "shops"])
    assert world.emit.payloads("firm.referred") == [{
        "referral_id": referral.id, "firm_id": world.org("firm_2"), "assignment_id": assignment.id,
        "from_workspace_id": world.ws["a"], "coordinator_id": world.org("coord_a"),
        "scheme_codes": ["loket", "shops"],
        "schemes": [{"code": c, "label_nl": f"Regeling {c}", "label_en": f"Scheme {c}",
                     "url": f"https://example.org/{c}"} for c in ("loket", "shops")],
        "reason": "outside_working_area"}]
    assert world.emit.payloads("assignment.submitted") == []
    no_theme, _ = db.run(services.submit_assignment, world.emit, world.who["firm_2"], assignment_data(world.ws["a"]))
    assert world.emit.payloads("firm.referred")[-1]["scheme_codes"] == ["cyber", "loket", "shops"]
    assert_refused(db, "assignment_ids.0", 409, services.submit_batch, world.emit, world.who["coord_a"],
                   batch_data(world.ws["a"], [no_theme.id]))


def test_a_firm_must_say_where_it_is_and_pick_an_existing_workspace(world: World) -> None:
    world.add_org("firm_3", "entrepreneur")
    assert_refused(world.db, "firm", 422, services.submit_assignment, world.emit, world.who["firm_3"],
                   assignment_data(world.ws["a"]))
    assert_refused(world.db, "workspace_id", 422, services.submit_assignment, world.emit, world.who["firm_1"],
                   assignment_data("no-such-workspace"))


# ---- handover -------------------------------------------------------------------------------


def test_handover_moves_exactly_the_open_work_of_the_chosen_firms_and_is_audited(world: World) -> None:
    db = world.db
    successor = db.run(services.create_workspace, world.who["coord_b"], workspace_data(
        name="Werkplaats Opvolger", municipalities=["GM0344"])).id
    open_q1, open_q2 = world.submit("firm_1"), world.submit("firm_1", period="2025-Q2")
    batched, withdrawn = world.submit("firm_1"), world.submit("firm_1")
    db.run(services.submit_batch, world.emit, world.who["coord_a"], batch_data(world.ws["a"], [batched.id]))
    db.run(with_assignment(withdrawn.id, services.withdraw_assignment, world.emit))
    other_firm = world.submit("firm_2")
    sent = len(world.emit.published)

    handover = db.run(services.hand_over, world.emit, world.who["coord_a"], {
        "from_workspace_id": world.ws["a"], "to_workspace_id": successor, "firm_ids": [world.org("firm_1")],
        "reason": "regionaal programma stopt"})

    where = {a.id: a.workspace_id for a in rows_of(db, orm.Assignment)}
    assert where == {open_q1.id: successor, open_q2.id: successor, batched.id: world.ws["a"],
                     withdrawn.id: world.ws["a"], other_firm.id: world.ws["a"]}
    assert db.get(orm.Organisation, world.org("firm_1")).workspace_id == successor
    assert db.get(orm.Organisation, world.org("firm_2")).workspace_id == world.ws["a"]
    stored = db.get(orm.Handover, handover.id)
    assert (stored.from_workspace_id, stored.to_workspace_id, stored.firm_ids, stored.assignment_ids,
            stored.rerun_pending_assignment_ids) == (
        world.ws["a"], successor, [world.org("firm_1")], sorted([open_q1.id, open_q2.id]), [])
    assert (stored.reason, stored.actor_organisation_id, stored.actor_key_id) == (
        "regionaal programma stopt", world.org("coord_a"), world.who["coord_a"].key_id)
    [entry] = rows_of(db, orm.AuditEntry, action="handover")
    assert (entry.object_type, entry.object_id, entry.actor_organisation_id, entry.actor_key_id) == (
        "handover", handover.id, world.org("coord_a"), world.who["coord_a"].key_id)
    assert entry.details == {"from_workspace_id": world.ws["a"], "to_workspace_id": successor, "firms": 1,
                             "assignments": 2, "assignments_rerun_pending": 0}
    assert len(world.emit.published) == sent
    # the receiving coordinator now batches the moved work; the handing-over one no longer can
    assert_refused(db, "assignment_ids.0", 422, services.submit_batch, world.emit, world.who["coord_a"],
                   batch_data(world.ws["a"], [open_q1.id]))
    db.run(services.submit_batch, world.emit, world.who["coord_b"], batch_data(successor, [open_q1.id]))
    assert world.status(open_q1.id) == S.IN_BATCH

    rest = db.run(services.hand_over, world.emit, world.who["coord_a"], {
        "from_workspace_id": world.ws["a"], "to_workspace_id": successor, "reason": "de rest"})
    assert (rest.firm_ids, rest.assignment_ids) == ([world.org("firm_2")], [other_firm.id])


def test_handover_moves_the_open_work_of_a_firm_placed_before_its_workspace_existed(world: World) -> None:
    """A firm registered while no workspace covered it keeps no placement; its assignments go to the
    workspace created for its area later, and that workspace's handover takes them (and may name the firm)."""
    db = world.db
    world.add_org("firm_3", "entrepreneur")
    db.run(services.register_firm, world.who["firm_3"], firm_data(kvk_number="11112222", municipality="GM0014"),
           create=True)
    groningen = db.run(services.create_workspace, world.who["coord_b"], workspace_data(
        name="Werkplaats Groningen", municipalities=["GM0014"])).id
    open_work, _ = db.run(services.submit_assignment, world.emit, world.who["firm_3"], assignment_data(groningen))
    successor = db.run(services.create_workspace, world.who["coord_b"], workspace_data(name="Opvolger")).id

    handover = db.run(services.hand_over, world.emit, world.who["coord_b"], {
        "from_workspace_id": groningen, "to_workspace_id": successor, "firm_ids": [world.org("firm_3")],
        "reason": "programma stopt"})

    assert (handover.firm_ids, handover.assignment_ids) == ([world.org("firm_3")], [open_work.id])
    assert db.get(orm.Assignment, open_work.id).workspace_id == successor
    assert db.get(orm.Organisation, world.org("firm_3")).workspace_id is None  # it was never placed there


def test_handover_moves_open_work_submitted_to_a_second_workspace_covering_the_firm(world: World) -> None:
    """A firm may submit to any workspace whose area covers it; the second workspace covering Amsterdam
    hands over that work, while the firm stays placed with the oldest one, which keeps its own work."""
    db = world.db
    in_a = world.submit("firm_1")
    second = db.run(services.create_workspace, world.who["coord_b"], workspace_data(name="Tweede Amsterdam")).id
    open_work, routing = db.run(services.submit_assignment, world.emit, world.who["firm_1"],
                                assignment_data(second))
    assert (routing.outcome, open_work.workspace_id) == ("accepted", second)
    successor = db.run(services.create_workspace, world.who["coord_b"], workspace_data(name="Opvolger")).id

    handover = db.run(services.hand_over, world.emit, world.who["coord_b"], {
        "from_workspace_id": second, "to_workspace_id": successor, "reason": "programma stopt"})

    assert (handover.firm_ids, handover.assignment_ids) == ([world.org("firm_1")], [open_work.id])
    assert db.get(orm.Assignment, open_work.id).workspace_id == successor
    assert db.get(orm.Assignment, in_a.id).workspace_id == world.ws["a"]
    assert db.get(orm.Organisation, world.org("firm_1")).workspace_id == world.ws["a"]


def test_handover_moves_unmatched_work_out_of_its_batch_and_leaves_declined_work_for_the_re_run(
        world: World) -> None:
    """An assignment the last round left unmatched moves and leaves that batch, so the receiving
    coordinator can batch it again. A declined one waits for the automatic re-run in its batch: it stays,
    and the handover and its audit entry say so."""
    db = world.db
    batch_id, (a1, a2, a3), (t1,) = _batch_with_teams(world, 3, 1)
    run = published("run-1", batch_id, world, [("m1", a1, t1)], unmatched=[a2, a3])
    db.run(services.on_matches_published, run)
    db.run(services.on_match_responded, responded(run, "m1", "declined"))
    assert [world.status(a) for a in (a1, a2, a3)] == [S.DECLINED, S.UNMATCHED, S.UNMATCHED]
    successor = db.run(services.create_workspace, world.who["coord_b"], workspace_data(name="Opvolger")).id

    handover = db.run(services.hand_over, world.emit, world.who["coord_a"], {
        "from_workspace_id": world.ws["a"], "to_workspace_id": successor, "firm_ids": [world.org("firm_1")],
        "reason": "programma stopt"})

    # firm_1 holds a1 (declined) and a3 (unmatched); a2 is firm_2's
    assert (handover.assignment_ids, handover.rerun_pending_assignment_ids) == ([a3], [a1])
    moved, left = db.get(orm.Assignment, a3), db.get(orm.Assignment, a1)
    assert (moved.workspace_id, moved.batch_id, moved.status) == (successor, None, S.UNMATCHED)
    assert (left.workspace_id, left.batch_id, left.status) == (world.ws["a"], batch_id, S.DECLINED)
    assert db.get(orm.Assignment, a2).batch_id == batch_id
    # matching hears that a3 left the batch (and only a3), so a later re-run cannot give it a team
    assert [(e["assignment_id"], e["batch_id"], e["reason"]) for e in world.emit.payloads("assignment.left_batch")] \
        == [(a3, batch_id, "handed_over")]
    [entry] = rows_of(db, orm.AuditEntry, action="handover")
    assert (entry.details["assignments"], entry.details["assignments_rerun_pending"]) == (1, 1)
    db.run(services.submit_batch, world.emit, world.who["coord_b"], batch_data(successor, [a3]))
    assert world.status(a3) == S.IN_BATCH
    assert_refused(db, "assignment_ids.0", 422, services.submit_batch, world.emit, world.who["coord_a"],
                   batch_data(world.ws["a"], [a3]))

    # the old batch's re-run finds a1 no other team; matching may still offer the moved a3 a team there,
    # which neither moves it nor counts when the firm answers: it is in the new batch now
    rerun = published("run-2", batch_id, world, [("m2", a3, t1)], unmatched=[a1, a2])
    db.run(services.on_matches_published, rerun)
    db.run(services.on_match_responded, responded(rerun, "m2", "accepted"))
    assert [world.status(a) for a in (a1, a2, a3)] == [S.UNMATCHED, S.UNMATCHED, S.IN_BATCH]


def test_a_handover_that_cannot_be_done_whole_moves_nothing(world: World) -> None:
    db = world.db
    world.submit("firm_1", period="2025-Q2")
    world.submit("firm_2")
    coord_a, ws_a, ws_b = world.who["coord_a"], world.ws["a"], world.ws["b"]

    def body(**over: Any) -> dict[str, Any]:
        return {"from_workspace_id": ws_a, "to_workspace_id": ws_b, "reason": "stopt", **over}

    reason = assert_refused(db, "to_workspace_id", 422, services.hand_over, world.emit, coord_a, body())
    assert "2025-Q2" in reason
    assert_refused(db, "to_workspace_id", 422, services.hand_over, world.emit, coord_a, body(to_workspace_id=ws_a))
    assert_refused(db, "to_workspace_id", 422, services.hand_over, world.emit, coord_a, body(to_workspace_id="nope"))
    assert_refused(db, "from_workspace_id", 422, services.hand_over, world.emit, world.who["coord_b"], body())
    assert_refused(db, "firm_ids.1", 422, services.hand_over, world.emit, coord_a,
                   body(firm_ids=[world.org("firm_2"), world.org("inst_1")]))
    assert rows_of(db, orm.Handover) == [] and rows_of(db, orm.AuditEntry, action="handover") == []


# ---- institutions ---------------------------------------------------------------------------


def test_an_institution_keeps_its_programmes_campuses_and_blocks_mapped_to_workspace_periods(
        world: World) -> None:
    inst = world.db.run(services.update_institution, world.who["inst_1"], institution_data(
        programmes=["Software Development", "HBO-ICT", "HBO-ICT"],
        campuses=[{"name": "Noord", "municipality": "GM0363"}, {"name": "Zuid", "municipality": "GM0384"}],
        blocks=[{"code": "B1", "workspace_id": world.ws["a"], "period": "2025-Q1"},
                {"code": "B1", "workspace_id": world.ws["b"], "period": "2025-Q1"},
                {"code": "B2", "workspace_id": world.ws["a"], "period": "2025-Q2"}]))
    stored = world.db.get(orm.Organisation, inst.id)
    assert stored.programmes == ["HBO-ICT", "Software Development"]
    assert [c["name"] for c in stored.campuses] == ["Noord", "Zuid"]
    assert [(b["code"], b["period"]) for b in stored.blocks] == [("B1", "2025-Q1"), ("B1", "2025-Q1"),
                                                                  ("B2", "2025-Q2")]
    assert stored.levels == ["HBO", "MBO"]


def test_institution_profiles_refuse_doubles_and_blocks_outside_a_calendar(world: World) -> None:
    db, inst = world.db, world.who["inst_1"]
    noord = {"name": "Noord", "municipality": "GM0363"}
    assert_refused(db, "campuses", 422, services.update_institution, inst,
                   institution_data(campuses=[noord, {**noord, "municipality": "GM0384"}]))
    assert_refused(db, "blocks.0.period", 422, services.update_institution, inst, institution_data(
        blocks=[{"code": "B1", "workspace_id": world.ws["b"], "period": "2025-Q2"}]))
    assert_refused(db, "blocks.0.workspace_id", 422, services.update_institution, inst, institution_data(
        blocks=[{"code": "B1", "workspace_id": "nope", "period": "2025-Q1"}]))
    assert_refused(db, "blocks.1.code", 422, services.update_institution, inst, institution_data(
        blocks=[{"code": "B1", "workspace_id": world.ws["a"], "period": "2025-Q1"},
                {"code": "B1", "workspace_id": world.ws["a"], "period": "2025-Q2"}]))


# ---- capacity and teams ---------------------------------------------------------------------


def test_capacity_is_stored_and_announced(world: World) -> None:
    capacity = world.db.run(services.register_capacity, world.emit, world.who["inst_1"],
                            capacity_data(world.ws["a"], skills=["ux", "python", "ux"]))
    stored = world.db.get(orm.Capacity, capacity.id)
    assert (stored.institution_id, stored.programme, stored.level, stored.teams, stored.skills) == (
        world.org("inst_1"), "HBO-ICT", "HBO", 3, ["python", "ux"])
    assert world.emit.payloads("capacity.registered") == [{
        "capacity_id": capacity.id, "institution_id": world.org("inst_1"), "workspace_id": world.ws["a"],
        "period": "2025-Q1", "level": "HBO", "teams": 3, "team_size_min": 3, "team_size_max": 5,
        "skills": ["python", "ux"], "supervision_hours": 60}]


@pytest.mark.parametrize(("over", "field"), [
    ({"level": "WO"}, "level"),
    ({"period": "2025-Q3"}, "period"),
    ({"programme": "Rechten"}, "programme"),
    ({"team_size_min": 6}, "team_size_min"),
    ({"workspace_id": "nope"}, "workspace_id"),
])
def test_capacity_for_a_level_not_offered_or_a_period_outside_the_calendar_is_refused(
        world: World, over: dict[str, Any], field: str) -> None:
    data = capacity_data(world.ws["a"], **over)
    assert_refused(world.db, field, 422, services.register_capacity, world.emit, world.who["inst_1"], data)


def test_a_team_is_stored_with_its_wishes_and_announced_without_its_code(world: World) -> None:
    wanted, also = world.submit("firm_1"), world.submit("firm_2")
    team = world.db.run(services.register_team, world.who["inst_1"], team_data(
        world.ws["a"], campus="Noord", travel_limit_km=30, remote_allowed=False,
        preferences=[also.id, wanted.id, also.id]), world.emit)
    stored = world.db.get(orm.Team, team.id)
    assert (stored.institution_id, stored.code, stored.campus, stored.preferences, stored.remote_allowed) == (
        world.org("inst_1"), "HE-T01", "Noord", [also.id, wanted.id], False)
    assert world.emit.payloads("team.registered") == [{
        "team_id": team.id, "institution_id": world.org("inst_1"), "workspace_id": world.ws["a"], "level": "HBO",
        "period": "2025-Q1", "skills": ["python", "ux"]}]
    assert "HE-T01" not in world.emit.published[-1].to_json()


def test_a_team_of_a_level_not_offered_or_outside_the_calendar_is_refused(world: World) -> None:
    db, inst = world.db, world.who["inst_1"]
    q2 = world.submit("firm_1", period="2025-Q2")
    in_b = world.submit("firm_1", "b")  # routed to A: not an assignment of B
    cases: list[tuple[dict[str, Any], str]] = [
        ({"level": "WO"}, "level"), ({"period": "2025-Q3"}, "period"),
        ({"workspace_id": world.ws["b"], "period": "2025-Q2"}, "period"),
        ({"campus": "Science Park"}, "campus"), ({"workspace_id": "nope"}, "workspace_id"),
        ({"preferences": [q2.id]}, "preferences.0"),
        ({"workspace_id": world.ws["b"], "preferences": [in_b.id]}, "preferences.0")]
    for over, field in cases:
        assert_refused(db, field, 422, services.register_team, inst, team_data(world.ws["a"], **over), world.emit)


# ---- assignments ----------------------------------------------------------------------------


def test_an_assignment_keeps_the_firms_ranked_wishes_once_each(world: World) -> None:
    inst_1, inst_2 = world.org("inst_1"), world.org("inst_2")
    assignment = world.submit("firm_1", kind="short_job", mode="remote", theme="ai",
                              preferred_levels=["WO", "HBO", "WO"], preferred_institutions=[inst_2, inst_1, inst_2])
    stored = world.db.get(orm.Assignment, assignment.id)
    assert (stored.kind, stored.mode, stored.theme) == ("short_job", "remote", "ai")
    assert (stored.preferred_levels, stored.preferred_institutions) == (["WO", "HBO"], [inst_2, inst_1])


@pytest.mark.parametrize(("over", "field"), [
    ({"min_teams": 3, "max_teams": 2}, "min_teams"),
    ({"period": "2026-Q1"}, "period"),
    ({"preferred_levels": ["HBO", "MBO"]}, "preferred_levels.1"),
    ({"preferred_institutions": ["no-such-institution"]}, "preferred_institutions.0"),
])
def test_assignment_rules_refuse_bad_input(world: World, over: dict[str, Any], field: str) -> None:
    assert_refused(world.db, field, 422, services.submit_assignment, world.emit, world.who["firm_1"],
                   assignment_data(world.ws["a"], **over))


def test_a_firm_is_not_an_institution_a_firm_can_prefer(world: World) -> None:
    assert_refused(world.db, "preferred_institutions.1", 422, services.submit_assignment, world.emit,
                   world.who["firm_1"], assignment_data(world.ws["a"], preferred_institutions=[
                       world.org("inst_1"), world.org("firm_2")]))


def test_an_assignment_can_be_changed_within_the_rules_until_it_is_in_a_batch(world: World) -> None:
    db = world.db
    assignment = world.submit("firm_1")
    patch = schemas.AssignmentPatch().load({"period": "2025-Q2", "max_teams": 3,
                                            "required_skills": ["sql", "js", "sql"]})
    changed = db.run(with_assignment(assignment.id, services.update_assignment, dict(patch)))
    assert (changed.period, changed.max_teams, changed.required_skills) == ("2025-Q2", 3, ["js", "sql"])
    assert_refused(db, "period", 422, with_assignment(assignment.id, services.update_assignment, {"period": "2027"}))
    assert_refused(db, "min_teams", 422, with_assignment(assignment.id, services.update_assignment,
                                                         {"min_teams": 4}))
    db.run(services.submit_batch, world.emit, world.who["coord_a"],
           batch_data(world.ws["a"], [assignment.id], period="2025-Q2"))
    assert_refused(db, "status", 409, with_assignment(assignment.id, services.update_assignment,
                                                      {"title": "Nieuw"}))


def test_changing_the_levels_keeps_every_preferred_level_among_the_accepted_ones(world: World) -> None:
    """A preferred level must be an accepted level, on a change as on submission: narrowing the accepted
    levels under a preference is refused (naming accepted_levels), and the wishes can be changed with them."""
    db = world.db
    inst_1, inst_2 = world.org("inst_1"), world.org("inst_2")
    assignment = world.submit("firm_1", accepted_levels=["HBO", "WO"], preferred_levels=["WO", "HBO"])

    def change(data: dict[str, Any]) -> Callable[[Session], Any]:
        return with_assignment(assignment.id, services.update_assignment,
                               dict(schemas.AssignmentPatch().load(data)))

    assert_refused(db, "accepted_levels", 422, change({"accepted_levels": ["HBO"]}))
    assert_refused(db, "preferred_levels.0", 422, change({"preferred_levels": ["MBO"]}))
    assert_refused(db, "preferred_levels.1", 422, change({"accepted_levels": ["HBO"],
                                                          "preferred_levels": ["HBO", "WO"]}))
    assert_refused(db, "preferred_institutions.1", 422, change({"preferred_institutions": [
        inst_1, world.org("firm_2")]}))

    db.run(change({"accepted_levels": ["WO", "HBO", "MBO"], "preferred_levels": ["MBO", "WO", "MBO"],
                   "preferred_institutions": [inst_2, inst_1, inst_2]}))
    stored = db.get(orm.Assignment, assignment.id)
    assert (stored.accepted_levels, stored.preferred_levels, stored.preferred_institutions) == (
        ["HBO", "MBO", "WO"], ["MBO", "WO"], [inst_2, inst_1])
    db.run(change({"accepted_levels": ["MBO", "WO"]}))  # HBO is no longer preferred: it may go
    db.run(change({"preferred_levels": [], "preferred_institutions": []}))
    db.run(change({"accepted_levels": ["HBO"]}))
    stored = db.get(orm.Assignment, assignment.id)
    assert (stored.accepted_levels, stored.preferred_levels, stored.preferred_institutions) == (["HBO"], [], [])


# ---- lifecycle ------------------------------------------------------------------------------

# What a firm and a coordinator may do in each state, as the issue lists the lifecycle.
WITHDRAWABLE = {S.SUBMITTED, S.IN_BATCH, S.MATCHED, S.UNMATCHED, S.ACCEPTED, S.DECLINED}
BATCHABLE = {S.SUBMITTED, S.UNMATCHED, S.DECLINED}


@pytest.mark.parametrize("status", list(AssignmentStatus))
def test_withdrawing_is_allowed_until_work_starts_and_refused_otherwise(world: World, status: S) -> None:
    assignment = world.submit("firm_1")
    world.set_status(assignment.id, status.value)
    if status in WITHDRAWABLE:
        world.db.run(with_assignment(assignment.id, services.withdraw_assignment, world.emit))
        assert world.status(assignment.id) == S.WITHDRAWN
        [event] = world.emit.payloads("assignment.withdrawn")
        assert (event["assignment_id"], event["firm_id"]) == (assignment.id, assignment.firm_id)
    else:
        withdraw = with_assignment(assignment.id, services.withdraw_assignment, world.emit)
        assert_refused(world.db, "status", 409, withdraw)
        assert world.status(assignment.id) == status


@pytest.mark.parametrize("status", list(AssignmentStatus))
def test_only_open_assignments_go_into_a_batch_and_a_refused_one_changes_nothing(world: World, status: S) -> None:
    ready, assignment = world.submit("firm_2"), world.submit("firm_1")
    world.set_status(assignment.id, status.value)
    data = batch_data(world.ws["a"], [ready.id, assignment.id])
    if status in BATCHABLE:
        batch = world.db.run(services.submit_batch, world.emit, world.who["coord_a"], data)
        assert [(a.status, a.batch_id) for a in rows_of(world.db, orm.Assignment)] == [(S.IN_BATCH, batch.id)] * 2
    else:
        assert_refused(world.db, "assignment_ids.1", 409, services.submit_batch, world.emit,
                       world.who["coord_a"], data)
        assert (world.status(ready.id), world.status(assignment.id)) == (S.SUBMITTED, status)


@pytest.mark.parametrize("status", [s for s in AssignmentStatus if s != S.SUBMITTED])
def test_an_assignment_can_only_be_edited_while_submitted(world: World, status: S) -> None:
    assignment = world.submit("firm_1")
    world.set_status(assignment.id, status.value)
    assert_refused(world.db, "status", 409, with_assignment(assignment.id, services.update_assignment,
                                                            {"title": "Nieuw"}))


# ---- batches --------------------------------------------------------------------------------


def test_a_submitted_batch_sends_matching_the_whole_snapshot_and_no_personal_data(world: World) -> None:
    db, ws_a = world.db, world.ws["a"]
    inst_1, inst_2, firm_1, firm_2 = (world.org(w) for w in ("inst_1", "inst_2", "firm_1", "firm_2"))
    db.run(services.register_firm, world.who["firm_1"], {"max_concurrent_teams": 2}, create=False)
    a1 = world.submit("firm_1", kind="short_job", mode="hybrid", preferred_levels=["WO", "HBO"],
                      preferred_institutions=[inst_2])
    a2 = world.submit("firm_2", kind="roadmap", accepted_levels=["MBO"], required_skills=[], nice_to_have_skills=[])
    later = world.submit("firm_1", period="2025-Q2")
    t1 = db.run(services.register_team, world.who["inst_1"], team_data(
        ws_a, campus="Noord", travel_limit_km=25, remote_allowed=False, preferences=[a1.id]), world.emit)
    t2 = db.run(services.register_team, world.who["inst_2"], team_data(
        ws_a, code="UT-1", level="WO", skills=["python"]), world.emit)
    db.run(services.register_team, world.who["inst_1"], team_data(ws_a, code="Q2", period="2025-Q2"), world.emit)
    db.run(services.register_team, world.who["inst_1"], team_data(world.ws["b"], code="ZW"), world.emit)
    for over in ({}, {"programme": "Software Development", "teams": 2, "supervision_hours": 40},
                 {"level": "MBO", "teams": 1, "supervision_hours": 10}, {"period": "2025-Q2"}):
        db.run(services.register_capacity, world.emit, world.who["inst_1"], capacity_data(ws_a, **over))
    db.run(services.register_capacity, world.emit, world.who["inst_2"], capacity_data(
        world.ws["b"], programme="Informatica", level="WO"))
    floors = [{"dimension": "level", "value": "HBO", "min_share": 0.5},
              {"dimension": "region", "value": "Noord-Holland", "min_share": 0.25},
              {"dimension": "institution", "value": inst_2, "min_share": 0.1}]
    sent = len(world.emit.published)

    batch = db.run(services.submit_batch, world.emit, world.who["coord_a"], batch_data(
        ws_a, [a2.id, a1.id, a2.id], policy="max_served", auto_publish=False, fairness_floors=floors))

    # the workspace's first batch: the workspace is announced first (ids only)
    assert world.emit.types()[sent:] == ["workspace.registered", "batch.announced", "batch.submitted"]
    assert set(world.emit.published[-3].payload) == {"workspace_id", "coordinator_id", "registered_at"}
    envelope = world.emit.published[-1]
    assert envelope.version == 3
    amsterdam = {"municipality": "GM0363", "latitude": pytest.approx(52.37, abs=0.01),
                 "longitude": pytest.approx(4.89, abs=0.01), "region": "Noord-Holland"}
    diemen = {"municipality": "GM0384", "latitude": pytest.approx(52.34, abs=0.01),
              "longitude": pytest.approx(4.99, abs=0.01), "region": "Noord-Holland"}
    nowhere = {"municipality": None, "latitude": None, "longitude": None, "region": None}
    teams = {t1.id: {"team_id": t1.id, "workspace_id": ws_a, "institution_id": inst_1, "level": "HBO",
                     "skills": ["python", "ux"], "periods": ["2025-Q1"], **amsterdam, "travel_limit_km": 25,
                     "remote_allowed": False, "preferences": [a1.id]},
             t2.id: {"team_id": t2.id, "workspace_id": ws_a, "institution_id": inst_2, "level": "WO",
                     "skills": ["python"], "periods": ["2025-Q1"], **nowhere, "travel_limit_km": None,
                     "remote_allowed": True, "preferences": []}}
    assert envelope.payload == {
        "batch_id": batch.id, "workspace_id": ws_a, "workspace_ids": [ws_a], "coordinator_id": world.org("coord_a"),
        "period": "2025-Q1", "policy": "max_served", "auto_publish": False, "working_area": ["GM0363", "GM0384"],
        "snapshot_ref": None,
        "assignments": [
            {"assignment_id": a2.id, "workspace_id": ws_a, "firm_id": firm_2, "accepted_levels": ["MBO"],
             "required_skills": [], "nice_to_have_skills": [], "min_teams": 1, "max_teams": 2, "period": "2025-Q1",
             "mode": "on_site", **diemen, "priority": 0, "supervision_hours": 8, "preferred_institutions": [],
             "preferred_levels": []},
            {"assignment_id": a1.id, "workspace_id": ws_a, "firm_id": firm_1, "accepted_levels": ["HBO", "WO"],
             "required_skills": ["python"], "nice_to_have_skills": ["ux"], "min_teams": 1, "max_teams": 2,
             "period": "2025-Q1", "mode": "hybrid", **amsterdam, "priority": 0, "supervision_hours": 4,
             "preferred_institutions": [inst_2], "preferred_levels": ["WO", "HBO"]}],
        "teams": [teams[i] for i in sorted(teams)],
        "capacities": [{"institution_id": inst_1, "period": "2025-Q1", "level": "HBO", "teams": 5,
                        "supervision_hours": 100},
                       {"institution_id": inst_1, "period": "2025-Q1", "level": "MBO", "teams": 1,
                        "supervision_hours": 10}],
        "firm_caps": [{"firm_id": firm_1, "max_teams": 2}],
        "fairness_floors": floors,
    }
    body = envelope.to_json()
    for personal in ("Webwinkel", "Bestellen", "HE-T01", "UT-1", "Organisatie", "12345678", "bakkerij"):
        assert personal not in body
    # scheduling hears the names its notices use: titles, organisations' names, team codes, the period's dates;
    # never a description, a KvK number or anything of a person
    announced = world.emit.published[-2].payload
    assert world.emit.published[-2].version == 2
    assert (announced["workspace_name"], announced["coordinator_name"], announced["period"]) == (
        "Werkplaats Amsterdam-Noord", "Organisatie coord_a",
        {"code": "2025-Q1", "starts_on": "2025-01-06", "ends_on": "2025-03-28"})
    assert {a["assignment_id"]: (a["firm_id"], a["title"], a["firm_name"]) for a in announced["assignments"]} == {
        a1.id: (firm_1, "Webwinkel voor de bakkerij", "Organisatie firm_1"),
        a2.id: (firm_2, "Webwinkel voor de bakkerij", "Organisatie firm_2")}
    assert {t["team_id"]: (t["code"], t["institution_name"], t["level"], t["skills"]) for t in announced["teams"]} == {
        t1.id: ("HE-T01", "Organisatie inst_1", "HBO", ["python", "ux"]),
        t2.id: ("UT-1", "Organisatie inst_2", "WO", ["python"])}
    announced_json = world.emit.published[-2].to_json()
    assert "Bestellen" not in announced_json and "12345678" not in announced_json
    stored = db.get(orm.Batch, batch.id)
    assert (stored.status, stored.policy, stored.fairness_floors, stored.run_id) == (
        "submitted", "max_served", floors, None)
    states = {a.id: (a.status, a.batch_id) for a in rows_of(db, orm.Assignment)}
    assert states == {a1.id: (S.IN_BATCH, batch.id), a2.id: (S.IN_BATCH, batch.id), later.id: (S.SUBMITTED, None)}


def test_a_batch_that_breaks_a_rule_sends_nothing_and_changes_nothing(world: World) -> None:
    db, ws_a = world.db, world.ws["a"]
    ok, q2 = world.submit("firm_1"), world.submit("firm_1", period="2025-Q2")
    in_batch = world.submit("firm_2")
    db.run(services.submit_batch, world.emit, world.who["coord_a"], batch_data(ws_a, [in_batch.id]))
    world.add_org("firm_3", "entrepreneur")
    db.run(services.register_firm, world.who["firm_3"], firm_data(kvk_number="11112222", municipality="GM0193"),
           create=True)
    elsewhere = world.submit("firm_3", "b")

    def refused(field: str, status: int, data: dict[str, Any], who: str = "coord_a") -> str:
        return assert_refused(db, field, status, services.submit_batch, world.emit, world.who[who], data)

    refused("workspace_id", 422, batch_data("nope", [ok.id]))
    refused("workspace_id", 422, batch_data(ws_a, [ok.id]), who="coord_b")
    refused("period", 422, batch_data(ws_a, [ok.id], period="2025-Q3"))
    refused("assignment_ids.1", 422, batch_data(ws_a, [ok.id, elsewhere.id]))
    refused("assignment_ids.1", 422, batch_data(ws_a, [ok.id, "no-such-assignment"]))
    assert "2025-Q2" in refused("assignment_ids.1", 422, batch_data(ws_a, [ok.id, q2.id]))
    refused("assignment_ids.1", 409, batch_data(ws_a, [ok.id, in_batch.id]))
    refused("assignment_ids", 413, batch_data(ws_a, [ok.id]) | {
        "assignment_ids": [f"id-{i}" for i in range(services.MAX_BATCH_ASSIGNMENTS + 1)]})
    assert world.status(ok.id) == S.SUBMITTED


@pytest.mark.parametrize(("floors", "field"), [
    ([{"dimension": "region", "value": "Mars", "min_share": 0.1}], "fairness_floors.0.value"),
    ([{"dimension": "region", "value": "West-Nederland", "min_share": 0.1}], "fairness_floors.0.value"),
    ([{"dimension": "level", "value": "BSc", "min_share": 0.1}], "fairness_floors.0.value"),
    ([{"dimension": "institution", "value": "FIRM", "min_share": 0.1}], "fairness_floors.0.value"),
    ([{"dimension": "level", "value": "MBO", "min_share": 0.1},
      {"dimension": "level", "value": "MBO", "min_share": 0.3}], "fairness_floors.1.value"),
])
def test_fairness_floors_must_name_a_known_group_once(world: World, floors: list[dict[str, Any]],
                                                      field: str) -> None:
    for floor in floors:
        if floor["value"] == "FIRM":
            floor["value"] = world.org("firm_1")
    assignment = world.submit("firm_1")
    assert_refused(world.db, field, 422, services.submit_batch, world.emit, world.who["coord_a"],
                   batch_data(world.ws["a"], [assignment.id], fairness_floors=floors))
    assert world.status(assignment.id) == S.SUBMITTED


# ---- events from matching and scheduling ----------------------------------------------------


def _batch_with_teams(world: World, assignments: int, teams: int) -> tuple[str, list[str], list[str]]:
    ids = [world.submit("firm_1" if i % 2 == 0 else "firm_2").id for i in range(assignments)]
    team_ids = [world.db.run(services.register_team, world.who["inst_1"],
                             team_data(world.ws["a"], code=f"T{i}"), world.emit).id for i in range(teams)]
    batch = world.db.run(services.submit_batch, world.emit, world.who["coord_a"], batch_data(world.ws["a"], ids))
    return batch.id, ids, team_ids


def test_published_matches_move_assignments_and_a_redelivery_changes_nothing(world: World) -> None:
    db = world.db
    batch_id, (a1, a2, a3), (t1, t2) = _batch_with_teams(world, 3, 2)
    run = published("run-1", batch_id, world, [("m1", a1, t1), ("m2", a2, t2)], unmatched=[a3])

    sent = len(world.emit.published)
    db.run(services.on_matches_published, run)

    assert len(world.emit.published) == sent
    assert [world.status(a) for a in (a1, a2, a3)] == [S.MATCHED, S.MATCHED, S.UNMATCHED]
    batch = db.get(orm.Batch, batch_id)
    assert (batch.status, batch.run_id) == ("matched", "run-1")
    assert {(m.match_id, m.assignment_id, m.team_id, m.run_id) for m in rows_of(db, orm.BatchMatch)} == {
        ("m1", a1, t1, "run-1"), ("m2", a2, t2, "run-1")}
    after_first, sent = db.state(), len(world.emit.published)
    db.run(services.on_matches_published, run)
    assert db.state() == after_first
    assert len(world.emit.published) == sent


def test_responses_move_the_current_match_and_a_redelivery_changes_nothing(world: World) -> None:
    db = world.db
    batch_id, (a1, a2, a3), (t1, t2, t3) = _batch_with_teams(world, 3, 3)
    run_1 = published("run-1", batch_id, world, [("m1", a1, t1), ("m2", a2, t2)], unmatched=[a3])
    db.run(services.on_matches_published, run_1)
    sent = len(world.emit.published)

    for envelope in (responded(run_1, "m1", "accepted"), responded(run_1, "m2", "declined")):
        db.run(services.on_match_responded, envelope)
        settled = db.state()
        db.run(services.on_match_responded, envelope)
        assert db.state() == settled
    assert [world.status(a) for a in (a1, a2, a3)] == [S.ACCEPTED, S.DECLINED, S.UNMATCHED]

    # a minimum-change re-run keeps the accepted pair and gives the declined assignment another team
    db.run(with_assignment(a3, services.withdraw_assignment, world.emit))
    run_2 = published("run-2", batch_id, world, [("m3", a1, t1), ("m4", a2, t3)], unmatched=[a3])
    db.run(services.on_matches_published, run_2)
    assert [world.status(a) for a in (a1, a2, a3)] == [S.ACCEPTED, S.MATCHED, S.WITHDRAWN]
    assert db.get(orm.Batch, batch_id).run_id == "run-2"
    with db.session_factory() as session:
        current = services.batch_matches(session, batch_id, "run-2")
        assert [(m.assignment_id, m.team_id) for m in current] == [(a1, t1), (a2, t3)]

    # a late answer to the superseded match changes nothing; the answer to the current one counts
    superseded = db.state()
    db.run(services.on_match_responded, responded(run_1, "m2", "accepted"))
    assert db.state() == superseded
    db.run(services.on_match_responded, responded(run_2, "m4", "accepted"))
    assert world.status(a2) == S.ACCEPTED
    assert [e.type for e in world.emit.published[sent:]] == ["assignment.withdrawn"]  # only the withdrawal


def test_an_answer_that_arrives_before_its_match_is_redelivered_until_intake_has_the_match(world: World) -> None:
    """intake reads matches.published and match.responded from two queues, in no fixed order (after a
    restart, say). An answer to a match intake has not seen yet fails without a trace and without being
    dead-lettered, so the consumer delivers it again; once the match is in, the answer counts."""
    db = world.db
    batch_id, (a1,), (t1,) = _batch_with_teams(world, 1, 1)
    run = published("run-1", batch_id, world, [("m1", a1, t1)], unmatched=[])
    answer = responded(run, "m1", "accepted")
    before, sent = db.state(), len(world.emit.published)

    with pytest.raises(Exception) as early:  # any error but a permanent one: the consumer redelivers it
        db.run(HANDLERS["match.responded"], answer)
    assert not isinstance(early.value, (PermanentError, DomainError))
    assert (db.state(), len(world.emit.published)) == (before, sent)

    db.run(HANDLERS["matches.published"], run)
    db.run(HANDLERS["match.responded"], answer)
    assert world.status(a1) == S.ACCEPTED


def test_a_re_run_that_moves_an_accepted_assignment_to_another_team_asks_the_firm_again(world: World) -> None:
    db = world.db
    batch_id, (a1,), (t1, t2) = _batch_with_teams(world, 1, 2)
    run_1 = published("run-1", batch_id, world, [("m1", a1, t1)], unmatched=[])
    db.run(services.on_matches_published, run_1)
    db.run(services.on_match_responded, responded(run_1, "m1", "accepted"))
    db.run(services.on_matches_published, published("run-2", batch_id, world, [("m2", a1, t2)], unmatched=[]))
    assert world.status(a1) == S.MATCHED


def test_events_that_break_the_lifecycle_or_name_unknown_objects_are_refused(world: World) -> None:
    db = world.db
    batch_id, (a1, a2), (t1,) = _batch_with_teams(world, 2, 1)
    run_1 = published("run-1", batch_id, world, [("m1", a1, t1)], unmatched=[a2])
    db.run(services.on_matches_published, run_1)
    db.run(with_assignment(a1, services.withdraw_assignment, world.emit))
    assert_refused(db, "status", 409, services.on_match_responded, responded(run_1, "m1", "accepted"))
    assert world.status(a1) == S.WITHDRAWN

    assert_refused(db, "batch_id", 422, services.on_matches_published,
                   replace(run_1, payload=run_1.payload | {"batch_id": "no-such-batch"}))
    unknown = responded(run_1, "m1", "accepted")
    assert_refused(db, "assignment_id", 422, services.on_match_responded,
                   replace(unknown, payload=unknown.payload | {"assignment_id": "nope"}))


def test_a_withdrawal_while_matching_runs_is_kept_when_the_run_is_published(world: World) -> None:
    db = world.db
    batch_id, (a1, a2), (t1, t2) = _batch_with_teams(world, 2, 2)
    db.run(with_assignment(a2, services.withdraw_assignment, world.emit))
    db.run(services.on_matches_published, published("run-1", batch_id, world, [("m1", a1, t1), ("m2", a2, t2)],
                                                    unmatched=[]))
    assert (world.status(a1), world.status(a2)) == (S.MATCHED, S.WITHDRAWN)



# ---- re-runs published as matches.published v2 ------------------------------------------------


def published_v2(v1: Envelope, supersedes: str | None, previous: dict[str, str]) -> Envelope:
    """The v2 form of a ``published`` envelope: ``previous`` maps a match id to the id of the same pair's
    match in the run it supersedes."""
    payload = {**v1.payload, "supersedes_run_id": supersedes,
               "matches": [{**m, "previous_match_id": previous.get(m["match_id"])} for m in v1.payload["matches"]]}
    return parse_envelope(json.loads(make_envelope("matches.published", 2, payload).to_json()))


def test_a_v2_re_run_keeps_an_accepted_assignment_accepted_when_its_pair_carried_over(world: World) -> None:
    db = world.db
    batch_id, (a1, a2, a3), (t1, t2, t3) = _batch_with_teams(world, 3, 3)
    run_1 = published_v2(published("run-1", batch_id, world, [("m1", a1, t1), ("m2", a2, t2)], unmatched=[a3]),
                         None, {})
    db.run(HANDLERS["matches.published"], run_1)
    db.run(services.on_match_responded, responded(run_1, "m1", "accepted"))
    db.run(services.on_match_responded, responded(run_1, "m2", "declined"))
    assert [world.status(a) for a in (a1, a2, a3)] == [S.ACCEPTED, S.DECLINED, S.UNMATCHED]
    # the decline's re-run: a1 keeps its team (m1 -> m3), a2 gets another team, a3 stays open
    run_2 = published_v2(published("run-2", batch_id, world, [("m3", a1, t1), ("m4", a2, t3)], unmatched=[a3]),
                         "run-1", {"m3": "m1"})
    db.run(HANDLERS["matches.published"], run_2)
    assert [world.status(a) for a in (a1, a2, a3)] == [S.ACCEPTED, S.MATCHED, S.UNMATCHED]
    assert db.get(orm.Batch, batch_id).run_id == "run-2"


def test_a_v2_re_run_asks_again_when_the_pair_is_new_even_with_the_same_team(world: World) -> None:
    db = world.db
    batch_id, (a1,), (t1, _) = _batch_with_teams(world, 1, 2)
    run_1 = published_v2(published("run-1", batch_id, world, [("m1", a1, t1)], unmatched=[]), None, {})
    db.run(services.on_matches_published, run_1)
    db.run(services.on_match_responded, responded(run_1, "m1", "accepted"))
    # matching did not carry the pair over (no previous_match_id): the firm is asked again
    db.run(services.on_matches_published, published_v2(
        published("run-2", batch_id, world, [("m2", a1, t1)], unmatched=[]), "run-1", {}))
    assert world.status(a1) == S.MATCHED


def test_a_late_answer_to_a_superseded_match_counts_when_the_re_run_kept_its_pair(world: World) -> None:
    db = world.db
    batch_id, (a1, a2), (t1, t2, t3) = _batch_with_teams(world, 2, 3)
    run_1 = published_v2(published("run-1", batch_id, world, [("m1", a1, t1), ("m2", a2, t2)], unmatched=[]),
                         None, {})
    db.run(services.on_matches_published, run_1)
    db.run(services.on_match_responded, responded(run_1, "m2", "declined"))
    run_2 = published_v2(published("run-2", batch_id, world, [("m3", a1, t1), ("m4", a2, t3)], unmatched=[]),
                         "run-1", {"m3": "m1"})
    db.run(services.on_matches_published, run_2)
    assert world.status(a1) == S.MATCHED
    # a1's firm answered through its first link before the re-run reached scheduling
    db.run(services.on_match_responded, responded(run_1, "m1", "accepted"))
    assert world.status(a1) == S.ACCEPTED
    # an answer to the declined pair's old match changes nothing: that pair is gone
    state = db.state()
    db.run(services.on_match_responded, responded(run_1, "m2", "accepted"))
    assert db.state() == state and world.status(a2) == S.MATCHED
