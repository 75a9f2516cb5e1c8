"""Matching's rounds (every batch of one workspace and period) on SQLite with Flask's test client: runs of a
round take turns, a run is solved without the teams the round's other batches hold (and without the
capacity they use), publishing never places a team twice, a decline frees the team for the round; every
run's end is told to intake (run.ended), and a closed batch runs no more."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from matching import bootstrap
from matching.adapters import orm
from matching.entrypoints.api import create_matching_app
from matching.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope, parse_envelope
from werkplaats_shared.db import utcnow

from .test_matching_api import ROLES, UTRECHT, Matching, assignment, assignment_v2, error, runs_of, team, team_v2

PERIOD = "2026-Q1"


@pytest.fixture
def m(tmp_path: Path) -> Iterator[Matching]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("matching", {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/m.sqlite3",
                                              "WERKPLAATS_DATA_DIR": str(tmp_path)})
    infra = bootstrap.bootstrap(settings)
    svc = Matching(infra, create_matching_app(infra).test_client(), {w: str(uuid.uuid4()) for w in ROLES})
    for who, role in ROLES.items():
        svc.add_key(who, svc.org[who], role)
    try:
        yield svc
    finally:
        infra.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def submit_to_round(m: Matching, workspace_id: str, teams: list[dict[str, Any]],
                    assignments: list[dict[str, Any]], *, auto_publish: bool = True, version: int = 1,
                    capacities: list[dict[str, Any]] | None = None,
                    floors: list[dict[str, Any]] | None = None) -> str:
    batch_id = str(uuid.uuid4())
    payload: dict[str, Any] = {
        "batch_id": batch_id, "workspace_id": workspace_id, "coordinator_id": m.org["coord_1"], "period": PERIOD,
        "policy": "max_fit", "auto_publish": auto_publish, "assignments": assignments, "teams": teams}
    if version == 2:
        payload.update({"working_area": ["GM0344"], "capacities": capacities or [], "firm_caps": [],
                        "fairness_floors": floors or []})
    m.handle(make_envelope("batch.submitted", version, payload))
    return batch_id


def current_pairs(m: Matching, batch_id: str) -> set[tuple[str, str]]:
    """The batch's published pairs the firms have not declined."""
    with m.infra.session_factory() as session:
        return {(row.team_id, row.assignment_id) for row in session.execute(
            sa.select(orm.Match.team_id, orm.Match.assignment_id).join(orm.Run).where(
                orm.Run.batch_id == batch_id, orm.Run.status == "published",
                sa.or_(orm.Match.response.is_(None), orm.Match.response != "declined")))}


def sent(m: Matching, message_type: str) -> list[dict[str, Any]]:
    with m.infra.engine.connect() as conn:
        bodies = [json.loads(b) for b in conn.execute(
            sa.select(orm.outbox.c.body).order_by(orm.outbox.c.created_at)).scalars()]
    return [parse_envelope(b).payload for b in bodies if b["type"] == message_type]


TEAMS = [team("t1", "HBO", []), team("t2", "HBO", [])]


def test_two_batches_of_a_round_submitted_back_to_back_place_each_team_once(m: Matching) -> None:
    workspace = str(uuid.uuid4())
    first = submit_to_round(m, workspace, TEAMS, [assignment("a1", ["HBO"]), assignment("a2", ["HBO"])])
    second = submit_to_round(m, workspace, TEAMS, [assignment("b1", ["HBO"]), assignment("b2", ["HBO"])])
    elsewhere = submit_to_round(m, str(uuid.uuid4()), TEAMS, [assignment("c1", ["HBO"])])
    m.work()
    placed_first, placed_second = current_pairs(m, first), current_pairs(m, second)
    assert {t for t, _ in placed_first} == {"t1", "t2"}
    assert placed_second == set()  # both teams are held by the first batch of the round
    (run,) = runs_of(m, second)
    assert run["status"] == "published"
    assert sorted((h["team_id"], h["batch_id"]) for h in run["controls"]["held"]) == [("t1", first), ("t2", first)]
    explained = m.ok("coord_1", "GET", f"/runs/{run['id']}/explanations")
    assert [(h["team_id"], h["batch_id"]) for h in explained["held_by_round"]] == [("t1", first), ("t2", first)]
    assert "another batch" in explained["held_by_round"][0]["en"]
    assert len(current_pairs(m, elsewhere)) == 1  # another workspace's round is not affected


def test_a_round_runs_one_run_at_a_time(m: Matching) -> None:
    workspace = str(uuid.uuid4())
    submit_to_round(m, workspace, TEAMS, [assignment("a1", ["HBO"])])
    submit_to_round(m, workspace, TEAMS, [assignment("b1", ["HBO"])])
    other = submit_to_round(m, str(uuid.uuid4()), TEAMS, [assignment("c1", ["HBO"])])
    sf = m.infra.session_factory
    first = services.claim_next_run(sf)
    assert first is not None
    claimed = services.claim_next_run(sf)
    with sf() as session:
        run = session.get(orm.Run, claimed)
        assert run is not None and run.batch_id == other  # the round's second run waits its turn
    assert services.claim_next_run(sf) is None
    services.execute_run(sf, m.infra.emit, first, "highs", 30)
    assert services.claim_next_run(sf) is not None  # now it may run


def test_publishing_by_hand_refuses_a_team_another_batch_of_the_round_placed_meanwhile(m: Matching) -> None:
    workspace = str(uuid.uuid4())
    waiting = submit_to_round(m, workspace, [TEAMS[0]], [assignment("a1", ["HBO"])], auto_publish=False)
    m.work()
    (solved,) = runs_of(m, waiting)
    assert solved["status"] == "solved"
    quick = submit_to_round(m, workspace, [TEAMS[0]], [assignment("b1", ["HBO"])])
    m.work()
    assert current_pairs(m, quick) == {("t1", "b1")}  # a solved, unpublished run holds nothing
    body = error(m.call("coord_1", "POST", f"/runs/{solved['id']}/publish"), 409, "team_id")
    assert "t1" in body["message"] and quick in body["message"]
    assert m.ok("coord_1", "GET", f"/runs/{solved['id']}")["status"] == "solved"
    assert current_pairs(m, waiting) == set()


def test_a_declined_team_is_free_for_another_batch_of_the_round(m: Matching) -> None:
    workspace = str(uuid.uuid4())
    first = submit_to_round(m, workspace, [TEAMS[0]], [assignment("a1", ["HBO"])])
    second = submit_to_round(m, workspace, [TEAMS[0]], [assignment("b1", ["HBO"])])
    m.work()
    assert (current_pairs(m, first), current_pairs(m, second)) == ({("t1", "a1")}, set())
    (run,) = runs_of(m, first)
    with m.infra.session_factory() as session:
        (match,) = services.run_matches(session, run["id"])
    m.handle(make_envelope("match.responded", 1, {
        "match_id": match.id, "run_id": run["id"], "batch_id": first, "assignment_id": "a1", "team_id": "t1",
        "firm_id": "firm-a1", "response": "declined", "responded_at": utcnow().isoformat()}))
    m.ok("coord_1", "POST", f"/batches/{second}/runs", {}, status=202)
    m.work()
    assert current_pairs(m, second) == {("t1", "b1")}
    assert current_pairs(m, first) == set()


def test_capacity_the_round_used_is_taken_off(m: Matching) -> None:
    workspace = str(uuid.uuid4())
    teams = [team_v2("t1", "inst-a", []), team_v2("t2", "inst-a", [])]
    capacity = [{"institution_id": "inst-a", "period": PERIOD, "level": "HBO", "teams": 2, "supervision_hours": 100}]
    first = submit_to_round(m, workspace, teams, [assignment_v2("a1", UTRECHT)], version=2, capacities=capacity)
    second = submit_to_round(m, workspace, teams, [assignment_v2("b1", UTRECHT), assignment_v2("b2", UTRECHT)],
                             version=2, capacities=capacity)
    m.work()
    assert len(current_pairs(m, first)) == 1
    assert len(current_pairs(m, second)) == 1  # one team left, and one of the institution's two places


def test_every_run_that_ends_is_told_to_intake_with_an_infeasible_runs_diagnosis(m: Matching) -> None:
    workspace = str(uuid.uuid4())
    floors = [{"dimension": "level", "value": "HBO", "min_share": 1.0}]
    impossible = submit_to_round(m, workspace, [team_v2("t1", "inst-a", []), team_v2("t2", "inst-a", [])],
                                 [assignment_v2("a1", UTRECHT)], version=2, floors=floors)
    m.work()
    waiting = submit_to_round(m, str(uuid.uuid4()), TEAMS, [assignment("b1", ["HBO"])], auto_publish=False)
    m.work()
    cancelled = m.ok("coord_1", "POST", f"/batches/{waiting}/runs", {}, status=202)
    m.ok("coord_1", "POST", f"/runs/{cancelled['id']}/cancel")
    ended = {e["batch_id"] + e["status"]: e for e in sent(m, "run.ended")}
    infeasible = ended[impossible + "infeasible"]
    assert infeasible["trigger"] == "batch.submitted" and infeasible["error"] is None
    assert infeasible["diagnosis"]["groups"] == ["fairness_floor"]
    assert "level HBO: at least 100%" in infeasible["diagnosis"]["message"]
    assert infeasible["diagnosis"]["message_nl"].startswith("onoplosbaar")
    assert ended[waiting + "solved"]["diagnosis"] is None
    (solved,) = [r for r in runs_of(m, waiting) if r["status"] == "solved"]
    m.ok("coord_1", "POST", f"/runs/{solved['id']}/publish")
    published = [e for e in sent(m, "run.ended") if e["batch_id"] == waiting and e["status"] == "published"]
    assert [e["run_id"] for e in published] == [solved["id"]]
    assert published[0]["ended_at"] > ended[waiting + "solved"]["ended_at"]
    assert ended[waiting + "cancelled"]["run_id"] == cancelled["id"]


def test_a_resubmitted_batch_replaces_its_copy_and_runs_with_the_new_settings(m: Matching) -> None:
    workspace = str(uuid.uuid4())
    teams = [team_v2("t1", "inst-a", []), team_v2("t2", "inst-a", [])]
    floors = [{"dimension": "level", "value": "HBO", "min_share": 1.0}]
    batch_id = submit_to_round(m, workspace, teams, [assignment_v2("a1", UTRECHT)], version=2, floors=floors)
    m.work()
    with m.infra.session_factory() as session:
        batch = session.get(orm.Batch, batch_id)
        assert batch is not None
        snapshot = dict(batch.snapshot)
    m.handle(make_envelope("batch.submitted", 2, {
        **snapshot, "fairness_floors": [{"dimension": "level", "value": "HBO", "min_share": 0.5}]}))
    m.work()
    assert [r["status"] for r in runs_of(m, batch_id)] == ["infeasible", "published"]
    assert len(current_pairs(m, batch_id)) == 1


def test_a_closed_batch_cancels_its_open_runs_and_runs_no_more(m: Matching) -> None:
    batch_id = submit_to_round(m, str(uuid.uuid4()), TEAMS, [assignment("a1", ["HBO"])], auto_publish=False)
    m.work()
    (solved,) = runs_of(m, batch_id)
    queued = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {}, status=202)
    m.handle(make_envelope("batch.closed", 1, {"batch_id": batch_id, "closed_at": utcnow().isoformat()}))
    assert {r["id"]: r["status"] for r in runs_of(m, batch_id)} == {solved["id"]: "cancelled",
                                                                    queued["id"]: "cancelled"}
    error(m.call("coord_1", "POST", f"/batches/{batch_id}/runs", {}), 409, "batch_id")
    assert m.work() == []
    actions = [e["action"] for e in m.ok("coord_1", "GET", f"/batches/{batch_id}/audit")]
    assert actions[-1] == "batch.closed"
    # a redelivered close changes nothing
    m.handle(make_envelope("batch.closed", 1, {"batch_id": batch_id, "closed_at": utcnow().isoformat()}))
    assert [e["action"] for e in m.ok("coord_1", "GET", f"/batches/{batch_id}/audit")] == actions
