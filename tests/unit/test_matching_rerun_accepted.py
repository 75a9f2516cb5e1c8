"""A coordinator's re-run keeps the pairs firms accepted (issue 15, item 5), at the service layer on
SQLite: accepted pairs are held like pins, also those accepted after the request; a pair goes only when
the coordinator releases it with a reason (audited); a run that would drop an accepted pair anyway is not
published."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from matching import bootstrap
from matching.adapters import orm
from matching.entrypoints.handlers import HANDLERS
from matching.service_layer import services
from sqlalchemy.orm import selectinload
from werkplaats_shared.auth import Principal
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.service import Infrastructure

from ..integration.harness import announce_workspace_of

COORDINATOR = str(uuid.uuid4())
WEB = ["html", "css", "javascript", "react", "seo"]


@pytest.fixture
def infra(tmp_path: Path) -> Iterator[Infrastructure]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("matching", {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/m.sqlite3",
                                              "WERKPLAATS_DATA_DIR": str(tmp_path)})
    built = bootstrap.bootstrap(settings)
    try:
        yield built
    finally:
        built.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


COORD = Principal(COORDINATOR, "coordinator", "key-coord")


def handle(infra: Infrastructure, envelope: Envelope) -> None:
    with infra.session_factory.begin() as session:
        announce_workspace_of(session, envelope)
        HANDLERS[envelope.type](session, envelope)


def work(infra: Infrastructure) -> list[str]:
    done = []
    while (run_id := services.claim_next_run(infra.session_factory)) is not None:
        services.execute_run(infra.session_factory, infra.emit, run_id, "highs", 30)
        done.append(run_id)
    return done


def submit(infra: Infrastructure) -> str:
    """The HBO team with five web skills fits a-web far best (25 against 21 for serving both
    assignments), so max_fit leaves a-hbo (HBO only) open; max_served would move it to a-hbo and give
    a-web the MBO team."""
    batch_id = str(uuid.uuid4())
    handle(infra, make_envelope("batch.submitted", 1, {
        "batch_id": batch_id, "workspace_id": str(uuid.uuid4()), "coordinator_id": COORDINATOR,
        "period": "2026-Q1", "policy": "max_fit", "auto_publish": True,
        "assignments": [
            {"assignment_id": "a-web", "firm_id": "firm-web", "accepted_levels": ["HBO", "MBO"],
             "required_skills": [], "nice_to_have_skills": WEB, "min_teams": 1, "max_teams": 1},
            {"assignment_id": "a-hbo", "firm_id": "firm-hbo", "accepted_levels": ["HBO"],
             "required_skills": [], "nice_to_have_skills": [], "min_teams": 1, "max_teams": 1}],
        "teams": [{"team_id": "t-hbo", "institution_id": "inst", "level": "HBO", "skills": WEB},
                  {"team_id": "t-mbo", "institution_id": "inst", "level": "MBO", "skills": []}]}))
    return batch_id


def pairs(infra: Infrastructure, run_id: str) -> set[tuple[str, str]]:
    with infra.session_factory() as session:
        return {(m.team_id, m.assignment_id) for m in services.run_matches(session, run_id)}


def controls(infra: Infrastructure, run_id: str) -> dict[str, Any]:
    return dict(run_of(infra, run_id).controls or {})


def run_of(infra: Infrastructure, run_id: str) -> orm.Run:
    with infra.session_factory() as session:
        run = session.get(orm.Run, run_id, options=[selectinload(orm.Run.stored_snapshot)])  # read after the session
        assert run is not None
        return run


def accept(infra: Infrastructure, run_id: str, assignment_id: str) -> None:
    with infra.session_factory() as session:
        match = session.execute(sa.select(orm.Match).where(orm.Match.run_id == run_id,
                                                           orm.Match.assignment_id == assignment_id)).scalar_one()
        run = session.get(orm.Run, run_id)
        assert run is not None
        envelope = make_envelope("match.responded", 1, {
            "match_id": match.id, "run_id": run_id, "batch_id": run.batch_id, "assignment_id": assignment_id,
            "team_id": match.team_id, "firm_id": match.firm_id, "response": "accepted",
            "responded_at": utcnow().isoformat()})
    handle(infra, envelope)


def request(infra: Infrastructure, batch_id: str, data: dict[str, Any]) -> str:
    with infra.session_factory.begin() as session:
        return services.request_run(session, COORD, batch_id, data).id


def first_run(infra: Infrastructure) -> tuple[str, str]:
    batch_id = submit(infra)
    (first,) = work(infra)
    assert run_of(infra, first).status == "published"
    assert pairs(infra, first) == {("t-hbo", "a-web")}
    return batch_id, first


def test_without_an_accepted_pair_a_max_served_rerun_moves_the_team(infra: Infrastructure) -> None:
    # the control case: nothing accepted, so the re-run serves both assignments
    batch_id, _ = first_run(infra)
    rerun = request(infra, batch_id, {"policy": "max_served"})
    work(infra)
    assert run_of(infra, rerun).status == "published"
    assert pairs(infra, rerun) == {("t-hbo", "a-hbo"), ("t-mbo", "a-web")}


def test_a_coordinators_rerun_holds_the_pair_a_firm_accepted(infra: Infrastructure) -> None:
    batch_id, first = first_run(infra)
    accept(infra, first, "a-web")
    rerun = request(infra, batch_id, {"policy": "max_served"})
    assert controls(infra, rerun)["accepted"] == [{"team_id": "t-hbo", "assignment_id": "a-web"}]
    work(infra)
    assert run_of(infra, rerun).status == "published"
    assert pairs(infra, rerun) == {("t-hbo", "a-web")}


def test_a_pair_accepted_after_the_request_is_held_when_the_run_starts(infra: Infrastructure) -> None:
    batch_id, first = first_run(infra)
    rerun = request(infra, batch_id, {"policy": "max_served"})
    assert controls(infra, rerun)["accepted"] == []
    accept(infra, first, "a-web")
    work(infra)
    assert controls(infra, rerun)["accepted"] == [{"team_id": "t-hbo", "assignment_id": "a-web"}]
    assert pairs(infra, rerun) == {("t-hbo", "a-web")}


def test_a_solved_run_that_drops_a_pair_accepted_since_is_not_published(infra: Infrastructure) -> None:
    batch_id, first = first_run(infra)
    rerun = request(infra, batch_id, {"policy": "max_served", "auto_publish": False})
    work(infra)
    assert pairs(infra, rerun) == {("t-hbo", "a-hbo"), ("t-mbo", "a-web")}
    accept(infra, first, "a-web")  # the firm answers while the solved run waits for the coordinator
    with pytest.raises(services.ServiceError) as refused, infra.session_factory.begin() as session:
        services.publish_run(session, infra.emit, COORD, rerun)
    assert refused.value.status == 409 and "accepted" in refused.value.reason
    assert run_of(infra, rerun).status == "solved" and run_of(infra, first).status == "published"


def test_an_automatic_publication_refused_for_a_pair_accepted_since_the_claim_leaves_the_published_run_alone(
        infra: Infrastructure) -> None:
    """The worker publishes a re-run itself (auto_publish) but a firm accepted a pair the run drops after the
    run was claimed (so the pair was not held): the run stays solved and the published matching stays
    published, not superseded by a run that was never published."""
    batch_id, first = first_run(infra)
    rerun = request(infra, batch_id, {"policy": "max_served", "auto_publish": True})
    assert services.claim_next_run(infra.session_factory) == rerun
    accept(infra, first, "a-web")  # after the claim: the run does not hold it
    services.execute_run(infra.session_factory, infra.emit, rerun, "highs", 30)
    assert pairs(infra, rerun) == {("t-hbo", "a-hbo"), ("t-mbo", "a-web")}
    assert run_of(infra, rerun).status == "solved" and run_of(infra, first).status == "published"
    with infra.session_factory() as session:
        trail = services.audit_trail(session, COORD, batch_id)
    assert not [e for e in trail if e.action == "run.superseded"]


def test_a_released_pair_may_change_and_the_release_is_audited(infra: Infrastructure) -> None:
    batch_id, first = first_run(infra)
    accept(infra, first, "a-web")
    reason = "the HBO team is needed where only HBO teams can go"
    rerun = request(infra, batch_id, {"policy": "max_served", "release": [
        {"team_id": "t-hbo", "assignment_id": "a-web", "reason": reason}]})
    used = controls(infra, rerun)
    assert used["accepted"] == []
    assert [(r["team_id"], r["assignment_id"], r["reason"]) for r in used["released"]] == [
        ("t-hbo", "a-web", reason)]
    work(infra)
    assert run_of(infra, rerun).status == "published"
    assert pairs(infra, rerun) == {("t-hbo", "a-hbo"), ("t-mbo", "a-web")}
    with infra.session_factory() as session:
        trail = services.audit_trail(session, COORD, batch_id)
    (released,) = [e for e in trail if e.action == "match.released"]
    assert (released.run_id, released.actor_key_id, released.details["reason"]) == (rerun, "key-coord", reason)
    assert (released.details["team_id"], released.details["assignment_id"]) == ("t-hbo", "a-web")


@pytest.mark.parametrize(("release", "status"), [
    ([{"team_id": "t-mbo", "assignment_id": "a-web", "reason": "never matched"}], 422),
    ([{"team_id": "t-hbo", "assignment_id": "a-hbo", "reason": "not accepted"}], 422),
    ([{"team_id": "t-hbo", "assignment_id": "a-web", "reason": "once"},
      {"team_id": "t-hbo", "assignment_id": "a-web", "reason": "twice"}], 422),
])
def test_a_release_of_a_pair_no_firm_accepted_is_refused_and_stores_nothing(
        infra: Infrastructure, release: list[dict[str, str]], status: int) -> None:
    batch_id, first = first_run(infra)
    accept(infra, first, "a-web")
    with infra.engine.connect() as conn:
        runs_before = conn.execute(sa.select(sa.func.count()).select_from(orm.Run.__table__)).scalar_one()
    with pytest.raises(services.ServiceError) as refused, infra.session_factory.begin() as session:
        services.request_run(session, COORD, batch_id, {"release": release})
    assert (refused.value.status, refused.value.field) == (status, "release")
    with infra.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orm.Run.__table__)).scalar_one() == runs_before


def test_an_accepted_pair_the_coordinator_forbids_must_be_released_to_rerun(infra: Infrastructure) -> None:
    batch_id, first = first_run(infra)
    accept(infra, first, "a-web")
    with infra.session_factory.begin() as session:
        services.add_control(session, COORD, batch_id, "forbid",
                             {"team_id": "t-hbo", "assignment_id": "a-web", "reason": "conflict of interest"})
    with pytest.raises(services.ServiceError) as refused, infra.session_factory.begin() as session:
        services.request_run(session, COORD, batch_id, {})
    assert (refused.value.status, refused.value.field) == (409, "release")
    rerun = request(infra, batch_id, {"release": [
        {"team_id": "t-hbo", "assignment_id": "a-web", "reason": "conflict of interest"}]})
    work(infra)
    assert run_of(infra, rerun).status == "published"
    assert ("t-hbo", "a-web") not in pairs(infra, rerun)


@pytest.mark.parametrize(("kind", "subject"), [("team", "t-hbo"), ("firm_contact", "firm-web")])
def test_erasing_the_team_or_firm_replaces_the_release_reason(infra: Infrastructure, kind: str, subject: str) -> None:
    batch_id, first = first_run(infra)
    accept(infra, first, "a-web")
    rerun = request(infra, batch_id, {"release": [
        {"team_id": "t-hbo", "assignment_id": "a-web", "reason": "asked by Jan de Vries"}]})
    other = request(infra, batch_id, {})
    before = controls(infra, other)
    handle(infra, make_envelope("personal_data.erased", 1, {
        "subject_kind": kind, "subject_id": subject, "erased_at": utcnow().isoformat()}))
    (released,) = controls(infra, rerun)["released"]
    assert (released["team_id"], released["assignment_id"], released["reason"]) == ("t-hbo", "a-web", "[erased]")
    assert controls(infra, other) == before


def test_a_pair_accepted_after_the_request_is_not_held_once_its_assignment_left_the_batch(
        infra: Infrastructure) -> None:
    # the run was requested with the assignment in the batch (its snapshot still has it); the claim holds
    # only pairs whose assignment is in the batch when the run starts
    batch_id, first = first_run(infra)
    rerun = request(infra, batch_id, {"policy": "max_served", "auto_publish": False})
    accept(infra, first, "a-web")
    handle(infra, make_envelope("assignment.left_batch", 1, {
        "assignment_id": "a-web", "firm_id": "firm-web", "batch_id": batch_id, "reason": "handed_over",
        "left_at": utcnow().isoformat()}))
    assert "a-web" in {a["assignment_id"] for a in run_of(infra, rerun).snapshot["assignments"]}
    assert rerun in work(infra)
    assert controls(infra, rerun)["accepted"] == []
    assert ("t-hbo", "a-web") not in pairs(infra, rerun)
