"""Matching's coordinator API on SQLite with Flask's test client, no broker: policies, runs as jobs
(progress, cancel, publish, supersede), pins and forbids with their audit trail, re-runs, comparison,
explanations, model downloads, infeasibility diagnoses and the decline re-run."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import highspy
import pulp
import pytest
import sqlalchemy as sa
from marshmallow import ValidationError
from matching import bootstrap
from matching.adapters import orm
from matching.entrypoints.api import create_matching_app
from matching.entrypoints.handlers import HANDLERS
from matching.service_layer import services
from werkplaats_shared.auth import generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.consumer import PermanentError
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.service import Infrastructure
from werkzeug.test import TestResponse

from .harness import announce_workspace_of

ROLES = {"coord_1": "coordinator", "coord_2": "coordinator", "inst_1": "institution", "firm_1": "entrepreneur"}


@dataclass
class Matching:
    infra: Infrastructure
    client: Any
    org: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)

    def call(self, who: str, method: str, path: str, body: Any = None) -> TestResponse:
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        resp: TestResponse = self.client.open(
            path, method=method, headers={"Authorization": f"Bearer {self.keys[who]}"}, **kwargs)
        return resp

    def ok(self, who: str, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        resp = self.call(who, method, path, body)
        assert resp.status_code == status, resp.get_data(as_text=True)
        return resp.get_json()

    def add_key(self, who: str, organisation_id: str, role: str) -> None:
        key = generate_key()
        with self.infra.engine.begin() as conn:
            conn.execute(self.infra.api_keys.insert().values(
                key_id=key.key_id, organisation_id=organisation_id, role=role, secret_hash=key.secret_hash,
                created_at=utcnow()))
        self.org[who], self.keys[who], self.key_ids[who] = organisation_id, key.plaintext, key.key_id

    def handle(self, envelope: Envelope) -> None:
        with self.infra.session_factory.begin() as session:
            announce_workspace_of(session, envelope)
            HANDLERS[envelope.type](session, envelope)

    def work(self, make: Any = None) -> list[str]:
        """What the worker loop does: claim and solve every queued run, in order."""
        done = []
        while (run_id := services.claim_next_run(self.infra.session_factory)) is not None:
            services.execute_run(self.infra.session_factory, self.infra.emit, run_id, "highs", 30, make)
            done.append(run_id)
        return done

    def published(self) -> list[dict[str, Any]]:
        with self.infra.engine.connect() as conn:
            rows = conn.execute(sa.select(orm.outbox.c.body).order_by(orm.outbox.c.created_at)).scalars()
            bodies = [json.loads(b) for b in rows]
        return [b["payload"] for b in bodies if b["type"] == "matches.published"]

    def rows(self, table: Any) -> int:
        with self.infra.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


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


def team(team_id: str, level: str, skills: list[str], institution: str = "inst-a") -> dict[str, Any]:
    return {"team_id": team_id, "institution_id": institution, "level": level, "skills": skills}


def assignment(assignment_id: str, levels: list[str], required: list[str] | None = None,
               nice: list[str] | None = None, lo: int = 1, hi: int = 1) -> dict[str, Any]:
    return {"assignment_id": assignment_id, "firm_id": f"firm-{assignment_id}", "accepted_levels": levels,
            "required_skills": required or [], "nice_to_have_skills": nice or [], "min_teams": lo, "max_teams": hi}


# Three HBO teams and three HBO assignments; the best matching is web->t-web, data->t-data, plain->t-plain.
TEAMS = [team("t-web", "HBO", ["web"]), team("t-data", "HBO", ["data"], "inst-b"), team("t-plain", "HBO", [])]
ASSIGNMENTS = [assignment("a-web", ["HBO"], nice=["web"]), assignment("a-data", ["HBO"], nice=["data"]),
               assignment("a-plain", ["HBO"])]


def submit(m: Matching, coordinator: str = "coord_1", *, policy: str = "max_fit", auto_publish: bool = True,
           teams: list[dict[str, Any]] | None = None, assignments: list[dict[str, Any]] | None = None) -> str:
    batch_id = str(uuid.uuid4())
    m.handle(make_envelope("batch.submitted", 1, {
        "batch_id": batch_id, "workspace_id": str(uuid.uuid4()), "coordinator_id": m.org[coordinator],
        "period": "2026-Q1", "policy": policy, "auto_publish": auto_publish,
        "assignments": ASSIGNMENTS if assignments is None else assignments,
        "teams": TEAMS if teams is None else teams}))
    return batch_id


def runs_of(m: Matching, batch_id: str, who: str = "coord_1") -> list[dict[str, Any]]:
    return list(m.ok(who, "GET", f"/batches/{batch_id}/runs"))


def pairs(m: Matching, run_id: str) -> set[tuple[str, str]]:
    explained = m.ok("coord_1", "GET", f"/runs/{run_id}/explanations")
    return {(x["team_id"], x["assignment_id"]) for x in explained["matches"]}


def error(resp: TestResponse, status: int, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["status"] == status and body["message"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return dict(body)


# ---- policies -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["coord_1", "inst_1", "firm_1"])
def test_policies_are_described_in_dutch_and_english(m: Matching, who: str) -> None:
    policies = {p["name"]: p for p in m.ok(who, "GET", "/policies")}
    assert {"max_fit", "max_served"} <= set(policies)
    assert [o["name"] for o in policies["max_served"]["objectives"]] == ["served", "fit"]
    assert [o["name"] for o in policies["max_fit"]["objectives"]] == ["fit"]
    for policy in policies.values():
        assert len(policy["en"]) > 40 and len(policy["nl"]) > 40 and policy["en"] != policy["nl"]
    assert policies["max_served"]["selectable"] and not policies["min_change"]["selectable"]


def test_batch_policy_max_served_is_what_the_run_solves(m: Matching) -> None:
    two_team_job = assignment("big", ["HBO"], nice=["web"], lo=2, hi=2)
    small = [assignment("s1", ["HBO"]), assignment("s2", ["HBO"])]
    web_teams = [team("w1", "HBO", ["web"]), team("w2", "HBO", ["web"])]
    fit_batch = submit(m, teams=web_teams, assignments=[two_team_job, *small])
    served_batch = submit(m, policy="max_served", teams=web_teams, assignments=[two_team_job, *small])
    m.work()
    by_fit, by_served = runs_of(m, fit_batch)[0], runs_of(m, served_batch)[0]
    assert (by_fit["policy"], by_served["policy"]) == ("max_fit", "max_served")
    assert by_fit["objective_values"]["served"] == 1 and by_served["objective_values"]["served"] == 2
    assert by_served["objective"] < by_fit["objective"]


# ---- runs as jobs ---------------------------------------------------------------------------


def test_a_run_reports_progress_and_everything_needed_to_reproduce_it(m: Matching) -> None:
    batch_id = submit(m)
    (queued,) = runs_of(m, batch_id)
    assert (queued["status"], queued["stage"], queued["elapsed_seconds"]) == ("queued", "queued", None)
    seen: list[tuple[str, str, float]] = []

    class Watching(pulp.HiGHS):  # type: ignore[misc]
        def actualSolve(self, lp: pulp.LpProblem) -> int:
            run = m.ok("coord_1", "GET", f"/runs/{queued['id']}")
            seen.append((run["status"], run["stage"], run["elapsed_seconds"]))
            return int(super().actualSolve(lp))

    m.work(make=lambda limit, seed: Watching(msg=False, timeLimit=limit))
    assert seen and seen[0][:2] == ("running", "solving") and seen[0][2] >= 0
    run = m.ok("coord_1", "GET", f"/runs/{queued['id']}")
    assert (run["status"], run["stage"], run["solver_status"]) == ("published", "done", "optimal")
    assert run["elapsed_seconds"] >= seen[0][2]
    assert run["objective"] == pytest.approx(13.0 + 13.0 + 10.0)
    assert run["gap"] == pytest.approx(0.0) and run["time_limit_reached"] is False
    assert run["seed"] == 0 and run["solver"] == "highs" and run["solver_version"].startswith("HiGHS")
    assert {"pulp", "highspy"} <= set(run["library_versions"])
    assert len(run["input_hash"]) == 64 and len(run["model_hash"]) == 64
    assert run["figures"]["assignments"]["served"] == 3
    # the same input gives the same hashes
    again = submit(m)
    m.work()
    other = runs_of(m, again)[0]
    assert other["model_hash"] == run["model_hash"]


def test_time_limit_keeps_the_best_found_and_marks_the_run(m: Matching) -> None:
    class StoppedByTimeLimit(pulp.HiGHS):  # type: ignore[misc]
        def actualSolve(self, lp: pulp.LpProblem) -> int:
            status = super().actualSolve(lp)
            lp.assignStatus(pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible)
            return int(status)

    batch_id = submit(m)
    m.work(make=lambda limit, seed: StoppedByTimeLimit(msg=False))
    (run,) = runs_of(m, batch_id)
    assert (run["status"], run["solver_status"], run["time_limit_reached"]) == ("published", "feasible", True)
    assert len(m.published()[0]["matches"]) == 3


def test_cancelled_queued_run_is_never_solved(m: Matching) -> None:
    batch_id = submit(m)
    (run,) = runs_of(m, batch_id)
    cancelled = m.ok("coord_1", "POST", f"/runs/{run['id']}/cancel")
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    assert m.work() == []
    error(m.call("coord_1", "POST", f"/runs/{run['id']}/cancel"), 409, "status")
    error(m.call("coord_1", "POST", f"/runs/{run['id']}/publish"), 409, "status")
    assert m.published() == []


def test_a_run_cancelled_while_solving_has_its_result_discarded(m: Matching) -> None:
    batch_id = submit(m)
    (run,) = runs_of(m, batch_id)

    class CancelledMeanwhile(pulp.HiGHS):  # type: ignore[misc]
        def actualSolve(self, lp: pulp.LpProblem) -> int:
            m.ok("coord_1", "POST", f"/runs/{run['id']}/cancel")
            return int(super().actualSolve(lp))

    assert m.work(make=lambda limit, seed: CancelledMeanwhile(msg=False)) == [run["id"]]
    after = m.ok("coord_1", "GET", f"/runs/{run['id']}")
    assert (after["status"], after["objective"]) == ("cancelled", None)
    assert m.ok("coord_1", "GET", "/matches") == [] and m.published() == []


def test_runs_and_batches_of_another_coordinator_are_404_and_other_roles_403(m: Matching) -> None:
    batch_id = submit(m)
    (run,) = runs_of(m, batch_id)
    for method, path in [("GET", f"/runs/{run['id']}"), ("POST", f"/runs/{run['id']}/cancel"),
                         ("POST", f"/runs/{run['id']}/publish"), ("GET", f"/runs/{run['id']}/model.lp"),
                         ("GET", f"/runs/{run['id']}/explanations"), ("GET", f"/batches/{batch_id}/pins"),
                         ("GET", f"/batches/{batch_id}/runs"), ("POST", f"/batches/{batch_id}/runs"),
                         ("GET", f"/batches/{batch_id}/audit"),
                         ("GET", f"/runs/compare?a={run['id']}&b={run['id']}")]:
        body: dict[str, Any] | None = {} if method == "POST" else None
        error(m.call("coord_2", method, path, body), 404)
        error(m.call("inst_1", method, path, body), 403)
    assert m.ok("coord_1", "GET", f"/runs/{run['id']}")["status"] == "queued"


# ---- publication ----------------------------------------------------------------------------


def test_without_auto_publish_a_solved_run_waits_for_the_coordinator(m: Matching) -> None:
    batch_id = submit(m, auto_publish=False)
    m.work()
    (run,) = runs_of(m, batch_id)
    assert run["status"] == "solved" and m.published() == []
    assert m.ok("firm_1", "GET", "/matches") == []
    published = m.ok("coord_1", "POST", f"/runs/{run['id']}/publish")
    assert published["status"] == "published" and published["published_at"]
    (message,) = m.published()
    assert message["run_id"] == run["id"] and message["batch_id"] == batch_id
    assert len({x["match_id"] for x in message["matches"]}) == 3 and message["unmatched_assignment_ids"] == []
    error(m.call("coord_1", "POST", f"/runs/{run['id']}/publish"), 409, "status")
    assert len(m.published()) == 1


def test_publishing_a_newer_run_supersedes_the_older_one(m: Matching) -> None:
    batch_id = submit(m, auto_publish=False)
    m.work()
    first = runs_of(m, batch_id)[0]
    m.ok("coord_1", "POST", f"/runs/{first['id']}/publish")
    second = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {}, status=202)
    third = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {}, status=202)
    m.work()
    m.ok("coord_1", "POST", f"/runs/{third['id']}/publish")
    statuses = {r["id"]: r["status"] for r in runs_of(m, batch_id)}
    assert statuses == {first["id"]: "superseded", second["id"]: "solved", third["id"]: "published"}
    # two runs of the same snapshot, controls and policy were solved from the same input
    hashes = {r["id"]: r["input_hash"] for r in runs_of(m, batch_id)}
    assert hashes[second["id"]] == hashes[third["id"]] and len(hashes[second["id"]]) == 64
    assert m.ok("coord_1", "GET", f"/runs/{first['id']}")["superseded_at"]
    # an older run cannot replace a newer published one
    error(m.call("coord_1", "POST", f"/runs/{second['id']}/publish"), 409, "status")
    assert [p["run_id"] for p in m.published()] == [first["id"], third["id"]]
    actions = [e["action"] for e in m.ok("coord_1", "GET", f"/batches/{batch_id}/audit")]
    assert actions.count("run.published") == 2 and actions.count("run.superseded") == 1


# ---- pins, forbids, re-runs, compare --------------------------------------------------------


def test_pins_and_forbids_steer_a_rerun_and_are_audited(m: Matching) -> None:
    batch_id = submit(m, auto_publish=False)
    m.work()
    (first,) = runs_of(m, batch_id)
    assert pairs(m, first["id"]) == {("t-web", "a-web"), ("t-data", "a-data"), ("t-plain", "a-plain")}
    pin = m.ok("coord_1", "POST", f"/batches/{batch_id}/pins",
               {"team_id": "t-web", "assignment_id": "a-data", "reason": "firm asked for this team"}, status=201)
    assert (pin["kind"], pin["author_organisation_id"], pin["author_key_id"]) == (
        "pin", m.org["coord_1"], m.key_ids["coord_1"])
    assert pin["warning"] is None
    forbid = m.ok("coord_1", "POST", f"/batches/{batch_id}/forbids",
                  {"team_id": "t-plain", "assignment_id": "a-plain", "reason": "worked there last year"},
                  status=201)
    assert [p["id"] for p in m.ok("coord_1", "GET", f"/batches/{batch_id}/pins")] == [pin["id"]]
    assert [f["id"] for f in m.ok("coord_1", "GET", f"/batches/{batch_id}/forbids")] == [forbid["id"]]
    second = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {"policy": "max_served", "seed": 7}, status=202)
    assert second["status"] == "queued" and second["trigger"] == "coordinator" and second["seed"] == 7
    assert second["controls"]["pins"] == [{"team_id": "t-web", "assignment_id": "a-data"}]
    m.work()
    got = pairs(m, second["id"])
    assert ("t-web", "a-data") in got and ("t-plain", "a-plain") not in got
    hashes = {r["id"]: r["input_hash"] for r in runs_of(m, batch_id)}
    assert hashes[second["id"]] != hashes[first["id"]]  # its pins, forbids and policy are part of its input
    comparison = m.ok("coord_1", "GET", f"/runs/compare?a={first['id']}&b={second['id']}")
    added = {(p["team_id"], p["assignment_id"]) for p in comparison["added"]}
    removed = {(p["team_id"], p["assignment_id"]) for p in comparison["removed"]}
    kept = {(p["team_id"], p["assignment_id"]) for p in comparison["kept"]}
    assert added == got - pairs(m, first["id"]) and removed == pairs(m, first["id"]) - got
    assert kept == got & pairs(m, first["id"]) and comparison["same_batch"] is True
    assert comparison["a"]["figures"]["matches"] == 3 and comparison["b"]["policy"] == "max_served"
    # removing a pin is audited too; the audit trail names every author
    assert m.call("coord_1", "DELETE", f"/batches/{batch_id}/pins/{pin['id']}").status_code == 204
    assert m.ok("coord_1", "GET", f"/batches/{batch_id}/pins") == []
    error(m.call("coord_1", "DELETE", f"/batches/{batch_id}/pins/{pin['id']}"), 404)
    error(m.call("coord_1", "DELETE", f"/batches/{batch_id}/forbids/{pin['id']}"), 404)
    trail = m.ok("coord_1", "GET", f"/batches/{batch_id}/audit")
    assert [e["action"] for e in trail] == ["run.requested", "pin.added", "forbid.added", "run.requested",
                                            "pin.removed"]
    assert all(e["actor_key_id"] == m.key_ids["coord_1"] for e in trail[1:])
    assert trail[1]["details"]["reason"] == "firm asked for this team"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"team_id": "nobody", "assignment_id": "a-web", "reason": "x"}, 422, "team_id"),
    ({"team_id": "t-web", "assignment_id": "nothing", "reason": "x"}, 422, "assignment_id"),
    ({"team_id": "t-web", "assignment_id": "a-web"}, 422, "reason"),
    ({"team_id": "t-web", "assignment_id": "a-web", "reason": ""}, 422, "reason"),
    ({"team_id": "t-web", "assignment_id": "a-web", "reason": "x", "author_key_id": "me"}, 422, "author_key_id"),
    ({"team_id": "t-web", "assignment_id": "a-web", "reason": "x", "kind": "forbid"}, 422, "kind"),
])
def test_invalid_pins_are_rejected_and_store_nothing(m: Matching, body: dict[str, Any], status: int,
                                                     field: str) -> None:
    batch_id = submit(m)
    error(m.call("coord_1", "POST", f"/batches/{batch_id}/pins", body), status, field)
    assert m.rows(orm.Control.__table__) == 0 and m.rows(orm.AuditEntry.__table__) == 1


def test_a_pair_cannot_be_pinned_twice_or_pinned_and_forbidden(m: Matching) -> None:
    batch_id = submit(m)
    body = {"team_id": "t-web", "assignment_id": "a-web", "reason": "x"}
    m.ok("coord_1", "POST", f"/batches/{batch_id}/pins", body, status=201)
    error(m.call("coord_1", "POST", f"/batches/{batch_id}/pins", body), 409)
    assert "pinned" in error(m.call("coord_1", "POST", f"/batches/{batch_id}/forbids", body), 409)["message"]
    error(m.call("coord_1", "POST", f"/batches/{batch_id}/runs", {"policy": "min_change"}), 422, "policy")
    error(m.call("coord_1", "POST", f"/batches/{batch_id}/runs", {"seed": -1}), 422, "seed")
    error(m.call("coord_1", "POST", f"/batches/{batch_id}/runs", {"snapshot": {}}), 422, "snapshot")
    error(m.call("coord_1", "GET", "/runs/compare?a=x"), 422, "query.b")
    error(m.call("coord_1", "GET", "/runs/compare?a=x&b=y&c=z"), 422, "query.c")


# ---- infeasible runs ------------------------------------------------------------------------


@pytest.mark.parametrize(("pins", "group"), [
    ([("t-wo", "a-web")], "pins"),
    ([("t-web", "a-web"), ("t-web", "a-data")], "team_at_most_one"),
    ([("t-web", "a-pair")], "assignment_min_teams"),
])
def test_infeasible_pins_give_a_diagnosis_naming_the_group(m: Matching, pins: list[tuple[str, str]],
                                                          group: str) -> None:
    teams = [*TEAMS, team("t-wo", "WO", ["web"])]
    assignments = [*ASSIGNMENTS, assignment("a-pair", ["HBO"], required=["web"], lo=2, hi=2)]
    batch_id = submit(m, teams=teams, assignments=assignments)
    for team_id, assignment_id in pins:
        pin = m.ok("coord_1", "POST", f"/batches/{batch_id}/pins",
                   {"team_id": team_id, "assignment_id": assignment_id, "reason": "test"}, status=201)
        assert (pin["warning"] is not None) == (group == "pins")
    rerun = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {}, status=202)
    m.work()
    run = m.ok("coord_1", "GET", f"/runs/{rerun['id']}")
    assert (run["status"], run["stage"]) == ("infeasible", "done")
    assert [g["group"] for g in run["diagnosis"]["groups"]] == [group]
    assert {(p["team_id"], p["assignment_id"]) for p in run["diagnosis"]["pins_involved"]} == set(pins)
    assert group in run["error"] or run["diagnosis"]["groups"][0]["en"] in run["error"]
    error(m.call("coord_1", "GET", f"/runs/{rerun['id']}/explanations"), 409, "status")
    error(m.call("coord_1", "POST", f"/runs/{rerun['id']}/publish"), 409, "status")
    assert [p["run_id"] for p in m.published()] != [rerun["id"]]


# ---- explanations and models ----------------------------------------------------------------


def test_explanations_and_model_downloads(m: Matching) -> None:
    teams = [*TEAMS, team("t-mbo", "MBO", ["web"], "inst-c")]
    assignments = [*ASSIGNMENTS, assignment("a-wo", ["WO"])]
    batch_id = submit(m, teams=teams, assignments=assignments, policy="max_served")
    m.work()
    (run,) = runs_of(m, batch_id)
    explained = m.ok("coord_1", "GET", f"/runs/{run['id']}/explanations")
    assert [(u["assignment_id"], u["reason"]) for u in explained["unmatched_assignments"]] == [
        ("a-wo", "no_team_of_accepted_level")]
    assert explained["unmatched_assignments"][0]["counts"]["teams"] == 4
    assert [(u["team_id"], u["reason"]) for u in explained["unmatched_teams"]] == [
        ("t-mbo", "no_assignment_accepts_level")]
    web = next(x for x in explained["matches"] if x["assignment_id"] == "a-web")
    assert web["score"] == {"base": 10.0, "nice_to_have_skills": ["web"], "nice_to_have": 3.0,
                            "extra_skills": [], "extra": 0.0, "team_preference_rank": None,
                            "team_preference": 0.0, "firm_preference_rank": None, "firm_preference": 0.0,
                            "distance_km": None, "distance": 0.0, "priority": 0.0, "total": 13.0}
    assert explained["figures"]["teams_by_institution"]["inst-c"] == {"served": 0, "total": 1, "share": 0.0}
    assert explained["figures"]["unused_teams"] == ["t-mbo"]
    lp = m.call("coord_1", "GET", f"/runs/{run['id']}/model.lp")
    assert lp.status_code == 200 and lp.mimetype == "text/plain"
    assert f"run-{run['id']}.lp" in lp.headers["Content-Disposition"]
    text = lp.get_data(as_text=True)
    assert "Maximize" in text and "level_served" in text and "team_at_most_one" in text
    mps = m.call("coord_1", "GET", f"/runs/{run['id']}/model.mps")
    assert mps.status_code == 200 and "ROWS" in mps.get_data(as_text=True)


# ---- responses from firms -------------------------------------------------------------------


def respond(m: Matching, run_id: str, assignment_id: str, response: str, message_id: str | None = None) -> str:
    with m.infra.session_factory() as session:
        match = session.execute(sa.select(orm.Match).where(
            orm.Match.run_id == run_id, orm.Match.assignment_id == assignment_id)).scalar_one()
        run = session.get(orm.Run, run_id)
        assert run is not None
        envelope = make_envelope("match.responded", 1, {
            "match_id": match.id, "run_id": run_id, "batch_id": run.batch_id,
            "assignment_id": match.assignment_id, "team_id": match.team_id, "firm_id": match.firm_id,
            "response": response, "responded_at": utcnow().isoformat()})
    m.handle(envelope)
    return match.id


def test_a_decline_forbids_the_pair_and_republishes_with_minimum_change(m: Matching) -> None:
    teams = [*TEAMS, team("t-spare", "HBO", ["web"])]
    batch_id = submit(m, teams=teams)
    m.work()
    (first,) = runs_of(m, batch_id)
    before = pairs(m, first["id"])
    respond(m, first["id"], "a-plain", "accepted")
    declined = respond(m, first["id"], "a-web", "declined")
    responses = {x["id"]: x["response"] for x in m.ok("coord_1", "GET", "/matches")}
    assert responses[declined] == "declined" and sorted(filter(None, responses.values())) == ["accepted", "declined"]
    forbids = m.ok("coord_1", "GET", f"/batches/{batch_id}/forbids")
    assert [(f["team_id"], f["assignment_id"], f["reason"]) for f in forbids] == [
        ("t-web", "a-web", "declined by the firm")]
    reruns = [r for r in runs_of(m, batch_id) if r["trigger"] == "declined"]
    assert [(r["policy"], r["parent_run_id"], r["status"]) for r in reruns] == [("min_change", first["id"], "queued")]
    m.work()
    rerun = m.ok("coord_1", "GET", f"/runs/{reruns[0]['id']}")
    assert rerun["status"] == "published"
    after = pairs(m, rerun["id"])
    # only the declined pair changed: the team left over took the assignment, every other pair stayed
    assert before - after == {("t-web", "a-web")}
    unused = {t["team_id"] for t in teams} - {team_id for team_id, _ in before}
    ((new_team, new_assignment),) = after - before
    assert new_assignment == "a-web" and new_team in unused
    assert m.ok("coord_1", "GET", f"/runs/{first['id']}")["status"] == "superseded"
    assert [p["run_id"] for p in m.published()] == [first["id"], rerun["id"]]
    # the firm of the declined assignment sees the match of the published run only
    m.add_key("firm_web", "firm-a-web", "entrepreneur")
    own = m.ok("firm_web", "GET", "/matches")
    assert [(x["run_id"], x["team_id"]) for x in own] == [(rerun["id"], new_team)]
    actions = [e["action"] for e in m.ok("coord_1", "GET", f"/batches/{batch_id}/audit")]
    assert actions[-6:] == ["match.accepted", "match.declined", "forbid.added", "run.requested",
                            "run.superseded", "run.published"]


def test_a_decline_without_auto_publish_leaves_the_rerun_to_the_coordinator(m: Matching) -> None:
    batch_id = submit(m, auto_publish=False)
    m.work()
    (first,) = runs_of(m, batch_id)
    m.ok("coord_1", "POST", f"/runs/{first['id']}/publish")
    respond(m, first["id"], "a-data", "declined")
    respond(m, first["id"], "a-data", "declined")  # the same response again: no second re-run
    m.work()
    reruns = [r for r in runs_of(m, batch_id) if r["trigger"] == "declined"]
    assert [r["status"] for r in reruns] == ["solved"]
    assert len(m.published()) == 1
    before, after = pairs(m, first["id"]), pairs(m, reruns[0]["id"])
    # no spare team: the declined assignment stays open, nothing else moves
    assert before - after == {("t-data", "a-data")} and after <= before


def test_a_response_to_an_unknown_match_is_rejected_for_the_dead_letter_queue(m: Matching) -> None:
    envelope = make_envelope("match.responded", 1, {
        "match_id": str(uuid.uuid4()), "run_id": str(uuid.uuid4()), "batch_id": str(uuid.uuid4()),
        "assignment_id": "a", "team_id": "t", "firm_id": "f", "response": "declined",
        "responded_at": utcnow().isoformat()})
    with pytest.raises(PermanentError):
        m.handle(envelope)
    assert m.rows(orm.Control.__table__) == 0


def test_a_pair_the_firm_accepted_is_not_moved_by_a_rerun(m: Matching) -> None:
    # a0 needs two web teams; after one of them is declined, the best fit would move a1's team there,
    # but a1's firm already accepted that team: it stays, and a0 (one team short) stays open
    teams = [team("t0", "HBO", ["web"]), team("t1", "HBO", ["web"]), team("t2", "HBO", ["web"])]
    assignments = [assignment("a0", ["HBO"], nice=["web"], lo=2, hi=2), assignment("a1", ["HBO"])]
    batch_id = submit(m, teams=teams, assignments=assignments)
    m.work()
    (first,) = runs_of(m, batch_id)
    before = pairs(m, first["id"])
    ((on_a1, _),) = [p for p in before if p[1] == "a1"]
    respond(m, first["id"], "a1", "accepted")
    with m.infra.session_factory() as session:
        declined = session.execute(sa.select(orm.Match).where(
            orm.Match.run_id == first["id"], orm.Match.assignment_id == "a0").order_by(orm.Match.id)).scalars().first()
        assert declined is not None
    m.handle(make_envelope("match.responded", 1, {
        "match_id": declined.id, "run_id": first["id"], "batch_id": batch_id, "assignment_id": "a0",
        "team_id": declined.team_id, "firm_id": "firm-a0", "response": "declined",
        "responded_at": utcnow().isoformat()}))
    (rerun,) = [r for r in runs_of(m, batch_id) if r["trigger"] == "declined"]
    assert rerun["controls"]["accepted"] == [{"team_id": on_a1, "assignment_id": "a1"}]
    m.work()
    assert pairs(m, rerun["id"]) == {(on_a1, "a1")}
    explained = m.ok("coord_1", "GET", f"/runs/{rerun['id']}/explanations")
    (why,) = explained["unmatched_assignments"]
    assert (why["assignment_id"], why["reason"]) == ("a0", "eligible_teams_went_elsewhere")
    assert (why["counts"]["forbidden"], why["counts"]["eligible"], why["counts"]["eligible_matched_elsewhere"]) == (
        1, 2, 1)


def test_a_coordinators_rerun_keeps_accepted_pairs_unless_released_with_a_reason(m: Matching) -> None:
    # max_fit gives a-web the HBO team with five web skills and leaves a-hbo (HBO only) open; a max_served
    # re-run would move that team, but a-web's firm accepted it: the pair stays until the coordinator
    # releases it, with a reason that the audit trail keeps
    web = ["html", "css", "javascript", "react", "seo"]
    batch_id = submit(m, teams=[team("t-hbo", "HBO", web), team("t-mbo", "MBO", [])],
                      assignments=[assignment("a-web", ["HBO", "MBO"], nice=web), assignment("a-hbo", ["HBO"])])
    m.work()
    (first,) = runs_of(m, batch_id)
    assert pairs(m, first["id"]) == {("t-hbo", "a-web")}
    respond(m, first["id"], "a-web", "accepted")
    held = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {"policy": "max_served"}, status=202)
    assert held["controls"]["accepted"] == [{"team_id": "t-hbo", "assignment_id": "a-web"}]
    m.work()
    assert m.ok("coord_1", "GET", f"/runs/{held['id']}")["status"] == "published"
    assert pairs(m, held["id"]) == {("t-hbo", "a-web")}
    error(m.call("coord_1", "POST", f"/batches/{batch_id}/runs", {"release": [
        {"team_id": "t-hbo", "assignment_id": "a-hbo", "reason": "x"}]}), 422, "release")
    error(m.call("coord_1", "POST", f"/batches/{batch_id}/runs", {"release": [
        {"team_id": "t-hbo", "assignment_id": "a-web"}]}), 422, "release.0.reason")
    released = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {"policy": "max_served", "release": [
        {"team_id": "t-hbo", "assignment_id": "a-web", "reason": "only HBO teams can do a-hbo"}]}, status=202)
    m.work()
    assert m.ok("coord_1", "GET", f"/runs/{released['id']}")["status"] == "published"
    assert pairs(m, released["id"]) == {("t-hbo", "a-hbo"), ("t-mbo", "a-web")}
    trail = m.ok("coord_1", "GET", f"/batches/{batch_id}/audit")
    (entry,) = [e for e in trail if e["action"] == "match.released"]
    assert (entry["run_id"], entry["actor_key_id"], entry["details"]["reason"]) == (
        released["id"], m.key_ids["coord_1"], "only HBO teams can do a-hbo")


def _audit_rows_cannot_change(engine: sa.engine.Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orm.AuditEntry.__table__)).scalar_one() >= 1
    for statement in (sa.update(orm.AuditEntry).values(action="rewritten"), sa.delete(orm.AuditEntry)):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(statement)


def test_the_audit_trail_is_append_only_in_the_database(m: Matching) -> None:
    submit(m)
    _audit_rows_cannot_change(m.infra.engine)


@pytest.mark.postgres
def test_the_audit_trail_is_append_only_on_postgres(make_postgres_db: Any, tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("matching", {"WERKPLAATS_DATABASE_URL": make_postgres_db("matching"),
                                              "WERKPLAATS_DATA_DIR": str(tmp_path)})
    infra = bootstrap.bootstrap(settings)
    try:
        with infra.session_factory.begin() as session:
            services.audit(session, "b", "run.requested", {}, actor_organisation_id="c")
        _audit_rows_cannot_change(infra.engine)
    finally:
        infra.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def test_progress_of_each_step_is_visible_while_solving(m: Matching, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "HEARTBEAT_SECONDS", 0.02)
    batch_id = submit(m, policy="max_served")
    (run,) = runs_of(m, batch_id)
    seen: list[dict[str, Any]] = []

    class Watched(pulp.HiGHS):  # type: ignore[misc]
        def actualSolve(self, lp: pulp.LpProblem) -> int:
            for _ in range(250):  # until the heartbeat has shown this step
                progress = m.ok("coord_1", "GET", f"/runs/{run['id']}")["progress"]
                if progress and progress["step"] == len(seen) + 1:
                    seen.append(progress)
                    break
                time.sleep(0.02)
            return int(super().actualSolve(lp))

    m.work(make=lambda limit, seed: Watched(msg=False))
    assert [(p["objective"], p["step"], p["of"]) for p in seen] == [("served", 1, 2), ("fit", 2, 2)]
    done = m.ok("coord_1", "GET", f"/runs/{run['id']}")
    assert done["progress"] == {"objective": "fit", "step": 2, "of": 2, "best": done["objective"], "gap": 0.0}


def test_cancelling_a_run_interrupts_its_solver(m: Matching, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "HEARTBEAT_SECONDS", 0.02)
    rng = random.Random(1)
    teams = [team(f"t{i}", rng.choice(["MBO", "HBO", "WO"]), rng.sample(["web", "data", "ai", "security"], 2))
             for i in range(60)]
    assignments = [assignment(f"a{j}", rng.sample(["MBO", "HBO", "WO"], 2), nice=["web", "ai"]) for j in range(30)]
    batch_id = submit(m, teams=teams, assignments=assignments)
    (run,) = runs_of(m, batch_id)
    statuses: list[Any] = []

    class CancelledMeanwhile(pulp.HiGHS):  # type: ignore[misc]
        def actualSolve(self, lp: pulp.LpProblem) -> int:
            m.ok("coord_1", "POST", f"/runs/{run['id']}/cancel")
            time.sleep(0.3)  # the heartbeat sees the cancellation and raises the stop flag
            status = int(super().actualSolve(lp))
            statuses.append(lp.solverModel.getModelStatus())
            return status

    m.work(make=lambda limit, seed: CancelledMeanwhile(msg=False))
    assert statuses == [highspy.HighsModelStatus.kInterrupt]
    after = m.ok("coord_1", "GET", f"/runs/{run['id']}")
    assert (after["status"], after["objective"]) == ("cancelled", None) and m.published() == []


# ---- batch.submitted v2: places, periods, preferences, capacity, caps, floors ----------------

UTRECHT = {"municipality": "GM0344", "latitude": 52.09, "longitude": 5.12, "region": "Utrecht"}
AMSTERDAM = {"municipality": "GM0363", "latitude": 52.37, "longitude": 4.89, "region": "Noord-Holland"}
GRONINGEN = {"municipality": "GM0014", "latitude": 53.22, "longitude": 6.57, "region": "Groningen"}


def team_v2(team_id: str, institution: str, prefs: list[str], *, skills: list[str] | None = None,
            limit: int | None = 60) -> dict[str, Any]:
    return {**team(team_id, "HBO", skills or [], institution), "periods": ["2026-Q1"], **UTRECHT,
            "travel_limit_km": limit, "remote_allowed": False, "preferences": prefs}


def assignment_v2(assignment_id: str, where: dict[str, Any], *, institutions: list[str] | None = None,
                  nice: list[str] | None = None, mode: str = "on_site", priority: int = 0) -> dict[str, Any]:
    return {**assignment(assignment_id, ["HBO"], nice=nice), "period": "2026-Q1", "mode": mode, **where,
            "priority": priority, "supervision_hours": 4, "preferred_institutions": institutions or [],
            "preferred_levels": ["HBO"]}


def submit_v2(m: Matching, *, policy: str, teams: list[dict[str, Any]], assignments: list[dict[str, Any]],
              capacities: list[dict[str, Any]] | None = None, floors: list[dict[str, Any]] | None = None,
              auto_publish: bool = False) -> str:
    batch_id = str(uuid.uuid4())
    m.handle(make_envelope("batch.submitted", 2, {
        "batch_id": batch_id, "workspace_id": str(uuid.uuid4()), "coordinator_id": m.org["coord_1"],
        "period": "2026-Q1", "policy": policy, "auto_publish": auto_publish, "working_area": ["GM0344", "GM0363"],
        "assignments": assignments, "teams": teams, "capacities": capacities or [], "firm_caps": [],
        "fairness_floors": floors or []}))
    return batch_id


# t-first ranks x first and x ranks t-first's institution first; max_fit would give x to t-skilled
# (whose skills fit x best), leaving the blocking pair (t-first, x). y is in Groningen, out of reach
# and outside the working area; z is in Amsterdam, for t-skilled's second choice.
V2_TEAMS = [team_v2("t-first", "inst-a", ["x"]), team_v2("t-skilled", "inst-b", ["x", "z"], skills=["web", "data"]),
            team_v2("t-third", "inst-b", [])]
V2_ASSIGNMENTS = [assignment_v2("x", UTRECHT, institutions=["inst-a", "inst-b"], nice=["web", "data"]),
                  assignment_v2("y", GRONINGEN), assignment_v2("z", AMSTERDAM, mode="hybrid", priority=2)]
V2_CAPACITY = [{"institution_id": "inst-b", "period": "2026-Q1", "level": "HBO", "teams": 1, "supervision_hours": 8}]


def test_policies_include_rank_maximal_and_stable_in_plain_words(m: Matching) -> None:
    policies = {p["name"]: p for p in m.ok("coord_1", "GET", "/policies")}
    assert policies["rank_maximal"]["selectable"] and policies["stable"]["selectable"]
    assert [o["name"] for o in policies["rank_maximal"]["objectives"]][:2] == ["rank_1", "rank_2"]
    assert policies["rank_maximal"]["objectives"][-1]["name"] == "fit"
    assert "first choice" in policies["rank_maximal"]["en"] and "eerste keuze" in policies["rank_maximal"]["nl"]
    assert "ties allowed" in policies["stable"]["en"] and "gelijke rangen" in policies["stable"]["nl"]


def test_a_v2_batch_under_the_stable_policy_shows_precheck_figures_and_explanations(m: Matching) -> None:
    batch_id = submit_v2(m, policy="stable", teams=V2_TEAMS, assignments=V2_ASSIGNMENTS, capacities=V2_CAPACITY)
    m.work()
    (run,) = runs_of(m, batch_id)
    assert (run["policy"], run["status"], run["solver_status"]) == ("stable", "solved", "optimal")
    assert pairs(m, run["id"]) == {("t-first", "x"), ("t-skilled", "z")}
    figures = run["figures"]
    assert figures["blocking_pairs"] == {"count": 0, "first": []}
    assert figures["preference_profile"] == {"1": 1, "2": 1, "unranked": 0, "unmatched": 1}
    assert figures["assignments_by_region"]["Groningen"] == {"served": 0, "total": 1, "share": 0.0}
    assert figures["teams_by_institution"]["inst-b"] == {"served": 1, "total": 2, "share": 0.5}
    assert figures["unused_capacity"] == [{
        "institution_id": "inst-b", "period": "2026-Q1", "level": "HBO", "teams": 1, "teams_used": 1,
        "teams_unused": 0, "supervision_hours": 8, "supervision_hours_used": 4, "supervision_hours_unused": 4}]
    check = run["precheck"]
    cell = next(c for c in check["cells"] if c["region"] == "Groningen")
    assert (cell["level"], cell["period"], cell["skill"], cell["demand"], cell["supply"], cell["short_by"]) == (
        "HBO", "2026-Q1", "*", 1, 0, 1)
    assert check["short_cells"] == 1 and check["message"] and check["message_nl"]

    explained = m.ok("coord_1", "GET", f"/runs/{run['id']}/explanations")
    (y,) = explained["unmatched_assignments"]
    assert (y["assignment_id"], y["reason"]) == ("y", "no_team_within_reach")
    assert y["removed"]["reach"] == 3 and y["counts"]["within_reach"] == 0
    assert list(explained["filters"]) == list(y["removed"]) and "reisgrens" in explained["filters"]["reach"]["nl"]
    (third,) = explained["unmatched_teams"]
    assert (third["team_id"], third["reason"]) == ("t-third", "capacity_ran_out")
    assert [b["group"] for b in third["binding"]] == ["institution_capacity"]
    z = next(x for x in explained["matches"] if x["assignment_id"] == "z")
    assert z["score"]["team_preference_rank"] == 2 and z["score"]["priority"] == 1.0
    assert z["score"]["distance_km"] == pytest.approx(34.9) and z["score"]["distance"] > 0

    # the same batch under max_fit, asked for by the coordinator: x goes to the better fit, and blocks
    fit_run = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {"policy": "max_fit"}, status=202)
    m.work()
    by_fit = m.ok("coord_1", "GET", f"/runs/{fit_run['id']}")
    assert pairs(m, by_fit["id"]) == {("t-skilled", "x"), ("t-first", "z")}
    assert by_fit["objective"] > run["objective"]
    assert by_fit["figures"]["blocking_pairs"] == {"count": 1, "first": [{"team_id": "t-first", "assignment_id": "x"}]}
    compared = m.ok("coord_1", "GET", f"/runs/compare?a={run['id']}&b={fit_run['id']}")
    assert compared["b"]["figures"]["blocking_pairs"]["count"] == 1
    assert {(p["team_id"], p["assignment_id"]) for p in compared["added"]} == {("t-skilled", "x"), ("t-first", "z")}


def test_a_stable_batch_counts_no_pair_that_a_capacity_keeps_apart_and_names_an_unknown_ranked_assignment(
        m: Matching) -> None:
    # z takes two teams and ranks every HBO team alike; inst-b may supply one team. t-third (inst-b) wants
    # z and z has room, but moving it there would break inst-b's capacity: not a blocking pair, so the
    # round has a stable matching (before: "infeasible"). t-third also ranks "gone", not in the batch.
    teams = [*V2_TEAMS[:2], team_v2("t-third", "inst-b", ["gone", "z"])]
    assignments = [*V2_ASSIGNMENTS[:2], {**V2_ASSIGNMENTS[2], "max_teams": 2}]
    batch_id = submit_v2(m, policy="stable", teams=teams, assignments=assignments, capacities=V2_CAPACITY)
    m.work()
    (run,) = runs_of(m, batch_id)
    assert (run["status"], run["solver_status"]) == ("solved", "optimal")
    assert pairs(m, run["id"]) == {("t-first", "x"), ("t-skilled", "z")}
    assert run["objective_values"]["blocking"] == 0 and run["figures"]["blocking_pairs"] == {"count": 0, "first": []}
    check = run["precheck"]
    assert check["unknown_preferences"] == [{"team_id": "t-third", "assignment_id": "gone", "rank": 1}]
    assert "team t-third keuze 1 (gone)" in check["unknown_preferences_message_nl"]
    policy = next(p for p in m.ok("coord_1", "GET", "/policies") if p["name"] == "stable")
    assert [(o["name"], o["minimise"]) for o in policy["objectives"]] == [("blocking", True), ("fit", False)]


def test_a_rank_maximal_rerun_serves_first_choices_first(m: Matching) -> None:
    # t-skilled fits x best, but t-first and t-third both list x or z first; rank-maximal counts choices
    teams = [team_v2("t-first", "inst-a", ["x"]), team_v2("t-skilled", "inst-b", ["z", "x"], skills=["web", "data"]),
             team_v2("t-third", "inst-b", ["z"])]
    batch_id = submit_v2(m, policy="max_fit", teams=teams, assignments=V2_ASSIGNMENTS)
    run = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {"policy": "rank_maximal"}, status=202)
    m.work()
    by_fit, by_rank = (m.ok("coord_1", "GET", f"/runs/{r['id']}") for r in runs_of(m, batch_id))
    assert by_rank["id"] == run["id"] and by_rank["policy"] == "rank_maximal"
    assert by_rank["objective_values"]["rank_1"] == 2 > by_fit["objective_values"]["rank_1"]
    assert by_rank["figures"]["preference_profile"]["1"] == 2
    assert by_rank["progress"]["objective"] == "fit"


def test_an_impossible_fairness_floor_in_a_v2_batch_is_diagnosed(m: Matching) -> None:
    floors = [{"dimension": "region", "value": "Groningen", "min_share": 1.0}]
    batch_id = submit_v2(m, policy="max_fit", teams=V2_TEAMS, assignments=V2_ASSIGNMENTS, floors=floors)
    m.work()
    (run,) = runs_of(m, batch_id)
    assert run["status"] == "infeasible" and run["precheck"]["short_cells"] == 1
    assert [g["group"] for g in run["diagnosis"]["groups"]] == ["fairness_floor"]
    assert run["diagnosis"]["groups"][0]["constraints"][0]["label"] == "region Groningen: at least 100%"
    assert "eerlijkheidsondergrens" in run["diagnosis"]["message_nl"]
    resp = m.call("coord_1", "GET", f"/runs/{run['id']}/explanations")
    error(resp, 409, "status")


def test_a_v2_batch_with_an_overlong_preference_list_is_refused_and_stores_nothing(m: Matching) -> None:
    long_list = [f"a{i}" for i in range(11)]
    with pytest.raises(ValidationError, match="preferences"):  # the contract refuses it on the way out
        submit_v2(m, policy="stable", teams=[team_v2("t", "inst-a", long_list)], assignments=V2_ASSIGNMENTS)
    # and matching refuses it too when a message skips that check (to the dead-letter queue)
    valid = make_envelope("batch.submitted", 2, {
        "batch_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "coordinator_id": m.org["coord_1"],
        "period": "2026-Q1", "policy": "stable", "auto_publish": False, "working_area": [],
        "assignments": V2_ASSIGNMENTS, "teams": [team_v2("t", "inst-a", [])], "capacities": [], "firm_caps": [],
        "fairness_floors": []})
    payload = {**valid.payload, "teams": [{**valid.payload["teams"][0], "preferences": long_list}]}
    with pytest.raises(PermanentError, match=r"teams\[0\].preferences: at most 10"):
        m.handle(Envelope(type=valid.type, version=2, producer="intake", payload=payload))
    assert m.rows(orm.Run.__table__) == 0 and m.rows(orm.Batch.__table__) == 0


def withdraw(m: Matching, batch_id: str | None, assignment_id: str) -> None:
    m.handle(make_envelope("assignment.withdrawn", 1, {
        "assignment_id": assignment_id, "firm_id": f"firm-{assignment_id}", "batch_id": batch_id,
        "withdrawn_at": utcnow().isoformat()}))


def test_a_withdrawn_assignment_is_matched_away_with_minimum_change(m: Matching) -> None:
    assignments = [*ASSIGNMENTS, assignment("a-extra", ["HBO"], required=["web"])]
    batch_id = submit(m, assignments=assignments)
    m.work()
    (first,) = runs_of(m, batch_id)
    before = pairs(m, first["id"])
    assert ("t-web", "a-web") in before and all(a != "a-extra" for _, a in before)
    m.ok("coord_1", "POST", f"/batches/{batch_id}/pins", {"team_id": "t-web", "assignment_id": "a-web",
                                                          "reason": "wens van de coördinator"}, status=201)
    withdraw(m, batch_id, "a-web")
    withdraw(m, batch_id, "a-web")  # a redelivery: no second re-run
    reruns = [r for r in runs_of(m, batch_id) if r["trigger"] == "withdrawn"]
    assert [(r["policy"], r["parent_run_id"]) for r in reruns] == [("min_change", first["id"])]
    assert m.ok("coord_1", "GET", f"/batches/{batch_id}/pins") == []  # the pin on it ended
    m.work()
    rerun = m.ok("coord_1", "GET", f"/runs/{reruns[0]['id']}")
    assert rerun["status"] == "published"
    after = pairs(m, rerun["id"])
    # the withdrawn assignment is gone, every other pair stayed, the freed team took the open assignment
    assert before - after == {("t-web", "a-web")} and after - before == {("t-web", "a-extra")}
    actions = [e["action"] for e in m.ok("coord_1", "GET", f"/batches/{batch_id}/audit")]
    assert {"pin.removed", "assignment.withdrawn", "run.requested"} <= set(actions)


def test_withdrawing_an_assignment_outside_a_published_matching_requests_no_run(m: Matching) -> None:
    withdraw(m, None, "a-web")  # never batched
    withdraw(m, str(uuid.uuid4()), "a-web")  # a batch matching never received
    batch_id = submit(m, auto_publish=False)
    m.work()
    withdraw(m, batch_id, "a-web")  # nothing published yet: the next run simply goes without it
    assert [r["trigger"] for r in runs_of(m, batch_id)] == ["batch.submitted"]
    run = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {}, status=202)
    m.work()
    assert all(a != "a-web" for _, a in pairs(m, run["id"]))


def test_an_unmatched_assignment_handed_over_leaves_the_batch_so_a_re_run_cannot_staff_it(m: Matching) -> None:
    assignments = [*ASSIGNMENTS, assignment("a-extra", ["HBO"], required=["web"])]
    batch_id = submit(m, assignments=assignments)
    m.work()
    (first,) = runs_of(m, batch_id)
    assert all(a != "a-extra" for _, a in pairs(m, first["id"]))
    m.handle(make_envelope("assignment.left_batch", 1, {
        "assignment_id": "a-extra", "firm_id": "firm-a-extra", "batch_id": batch_id, "reason": "handed_over",
        "left_at": utcnow().isoformat()}))
    assert [r["trigger"] for r in runs_of(m, batch_id)] == ["batch.submitted"]  # it had no team: nothing to redo
    withdraw(m, batch_id, "a-web")  # frees t-web, who could only have gone to a-extra
    m.work()
    (rerun,) = [r for r in runs_of(m, batch_id) if r["trigger"] == "withdrawn"]
    assert all(a not in ("a-extra", "a-web") for _, a in pairs(m, rerun["id"]))
    assert "assignment.handed_over" in [e["action"] for e in m.ok("coord_1", "GET", f"/batches/{batch_id}/audit")]


def test_a_coordinator_can_queue_only_a_bounded_number_of_runs(m: Matching) -> None:
    batch_id = submit(m, auto_publish=False)  # the submitted batch queues its first run
    for _ in range(4):
        m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {}, status=202)
    refused = m.call("coord_1", "POST", f"/batches/{batch_id}/runs", {})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["errors"][0]["field"] == "batch_id"
    assert len(runs_of(m, batch_id)) == 5  # nothing stored for the refused request
    other = submit(m, "coord_2", auto_publish=False)  # another coordinator's queue is its own
    m.ok("coord_2", "POST", f"/batches/{other}/runs", {}, status=202)
    m.work()  # once runs finish, there is room again
    m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {}, status=202)


# ---- re-publishing: matches.published v2 ------------------------------------------------------


def published_versions(m: Matching) -> list[int]:
    with m.infra.engine.connect() as conn:
        bodies = [json.loads(b) for b in conn.execute(
            sa.select(orm.outbox.c.body).order_by(orm.outbox.c.created_at)).scalars()]
    return [b["version"] for b in bodies if b["type"] == "matches.published"]


def test_a_re_run_names_the_run_it_supersedes_and_each_kept_pairs_previous_match(m: Matching) -> None:
    teams = [*TEAMS, team("t-spare", "HBO", ["web"])]
    batch_id = submit(m, teams=teams)
    m.work()
    (first,) = runs_of(m, batch_id)
    accepted = respond(m, first["id"], "a-plain", "accepted")
    declined = respond(m, first["id"], "a-web", "declined")
    m.work()
    first_out, second_out = m.published()
    assert published_versions(m) == [2, 2]
    assert first_out["supersedes_run_id"] is None
    assert all(x["previous_match_id"] is None for x in first_out["matches"])
    assert second_out["supersedes_run_id"] == first["id"]
    old = {(x["team_id"], x["assignment_id"]): x["match_id"] for x in first_out["matches"]}
    previous = {(x["team_id"], x["assignment_id"]): x["previous_match_id"] for x in second_out["matches"]}
    # every kept pair points at its match in the first run; the replacement (a new pair) at nothing
    assert {pair: v for pair, v in previous.items() if v is not None} == {
        pair: old[pair] for pair in previous if pair in old}
    ((replacement, none),) = [(pair, v) for pair, v in previous.items() if pair not in old]
    assert replacement[1] == "a-web" and none is None
    assert declined not in previous.values() and accepted in previous.values()
    # the firm that accepted stays accepted on the new match; the other pairs have no answer yet
    responses = {x["id"]: x["response"] for x in m.ok("coord_1", "GET", "/matches")
                 if x["run_id"] == second_out["run_id"]}
    carried = {x["match_id"]: x["previous_match_id"] for x in second_out["matches"]}
    assert {carried[match_id]: r for match_id, r in responses.items() if r is not None} == {accepted: "accepted"}
    assert len(responses) == 3


def test_a_run_the_worker_publishes_lists_its_stored_matches_by_assignment_and_team(m: Matching) -> None:
    """The worker publishes the matches it has just written without reading them back: the message lists
    exactly the run's stored matches (ids, firms, institutions, scores) by assignment and team, as a
    publication that reads them does; for a first run and for a decline's re-run."""
    # (named so that the order by team differs from the order by assignment)
    teams = [team("t-1", "HBO", ["data"], "inst-b"), team("t-2", "HBO", ["web"]), team("t-3", "HBO", []),
             team("t-0-spare", "HBO", ["web"])]
    batch_id = submit(m, teams=teams)
    m.work()
    (first,) = runs_of(m, batch_id)
    respond(m, first["id"], "a-web", "declined")
    m.work()
    outs = m.published()
    assert len(outs) == 2
    for out in outs:
        with m.infra.engine.connect() as conn:
            stored = [tuple(r) for r in conn.execute(
                sa.select(orm.Match.id, orm.Match.assignment_id, orm.Match.team_id, orm.Match.firm_id,
                          orm.Match.institution_id, orm.Match.score)
                .where(orm.Match.run_id == out["run_id"]).order_by(orm.Match.assignment_id, orm.Match.team_id))]
        assert len(stored) >= 3
        assert [(x["match_id"], x["assignment_id"], x["team_id"], x["firm_id"], x["institution_id"], x["score"])
                for x in out["matches"]] == stored


def test_a_late_answer_to_a_superseded_match_holds_for_its_pair_in_the_published_run(m: Matching) -> None:
    teams = [*TEAMS, team("t-spare", "HBO", ["web"])]
    batch_id = submit(m, teams=teams)
    m.work()
    (first,) = runs_of(m, batch_id)
    respond(m, first["id"], "a-web", "declined")
    m.work()
    _, second_out = m.published()
    # the answer was given to the first run's match before the firm's side saw the re-run
    late = respond(m, first["id"], "a-data", "accepted")
    ((kept,),) = [[x for x in second_out["matches"] if x["previous_match_id"] == late]]
    responses = {x["id"]: x["response"] for x in m.ok("coord_1", "GET", "/matches")}
    assert responses[late] == responses[kept["match_id"]] == "accepted"
    assert [r for x, r in responses.items() if x in {y["match_id"] for y in second_out["matches"]}
            and x != kept["match_id"]] == [None, None]
    # a coordinator's later re-run (published automatically) keeps the accepted pair, linked to its match
    m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {"policy": "max_fit"}, status=202)
    m.work()
    third_out = m.published()[-1]
    assert third_out["supersedes_run_id"] == second_out["run_id"]
    pair = (kept["team_id"], kept["assignment_id"])
    (again,) = [x for x in third_out["matches"] if (x["team_id"], x["assignment_id"]) == pair]
    assert again["previous_match_id"] == kept["match_id"]


# ---- Idempotency-Key (issue 19, item 9) -----------------------------------------------------


def test_a_rerun_retried_with_its_idempotency_key_makes_one_run(m: Matching) -> None:
    batch_id = submit(m, auto_publish=False)
    m.work()
    headers = {"Authorization": f"Bearer {m.keys['coord_1']}", "Idempotency-Key": "rerun-1"}
    first = m.client.post(f"/batches/{batch_id}/runs", json={}, headers=headers)
    again = m.client.post(f"/batches/{batch_id}/runs", json={}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202), again.get_data(as_text=True)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(runs_of(m, batch_id)) == 2  # the batch's first run and one re-run, not two
    other = m.client.post(f"/batches/{batch_id}/runs", json={"seed": 3}, headers=headers)
    error(other, 422, "headers.Idempotency-Key")
    assert len(runs_of(m, batch_id)) == 2
