"""Rounds that agree with each other, across intake and matching: both services in this process with
their own databases, outbox relays, consumers and matching's solver loop, talking through a real broker;
on the local default (embedded broker, SQLite) and as in production (RabbitMQ, PostgreSQL).

- Two batches of one workspace and period submitted back to back place a team at most once among the
  published and accepted matches; a team a firm declined is placed again by the other batch's re-run.
- An infeasible round (a fairness floor that cannot hold) shows its outcome and diagnosis on the batch in
  intake; the coordinator changes the floor and the re-run succeeds, or closes the batch and its
  assignments go into a new batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from intake import bootstrap as intake_bootstrap
from intake.entrypoints.api import create_intake_app
from intake.entrypoints.handlers import HANDLERS as INTAKE_HANDLERS
from intake.service_layer import services as intake_services
from matching import bootstrap as matching_bootstrap
from matching.adapters import orm as matching_orm
from matching.entrypoints.api import create_matching_app
from matching.entrypoints.handlers import HANDLERS as MATCHING_HANDLERS
from matching.entrypoints.worker import solver_loop
from werkplaats_shared import broker
from werkplaats_shared.auth import Principal
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.publisher import Publisher
from werkplaats_shared.runner import Loop
from werkplaats_shared.service import Infrastructure, consumer_loop, relay_loop
from werkzeug.test import TestResponse

from .harness import wait_until

PERIOD = "2027-S1"
TIMEOUT = 60.0


@dataclass
class System:
    intake: Infrastructure
    matching: Infrastructure
    intake_client: Any
    matching_client: Any
    coordinator_key: str
    coordinator: Principal
    institution: Principal
    firm: Principal
    workspace_id: str

    def call(self, service: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> TestResponse:
        client = self.intake_client if service == "intake" else self.matching_client
        resp: TestResponse = client.open(path, method=method, json=body, headers={
            "Authorization": f"Bearer {self.coordinator_key}", **(headers or {})})
        return resp

    def ok(self, service: str, method: str, path: str, body: Any = None, status: int = 200,
           headers: dict[str, str] | None = None) -> Any:
        resp = self.call(service, method, path, body, headers)
        assert resp.status_code == status, resp.get_data(as_text=True)
        return resp.get_json()

    def in_intake(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.intake.session_factory.begin() as session:
            return fn(session, lambda env: self.intake.emit(session, env), *args)

    def team(self, code: str, level: str) -> str:
        def register(session: Any, emit: Any) -> str:
            return str(intake_services.register_team(session, self.institution, {
                "workspace_id": self.workspace_id, "code": code, "level": level, "size": 3, "skills": [],
                "period": PERIOD}, emit).id)
        return str(self.in_intake(register))

    def assignment(self, title: str, levels: list[str]) -> str:
        def submit(session: Any, emit: Any) -> str:
            assignment, _ = intake_services.submit_assignment(session, emit, self.firm, {
                "workspace_id": self.workspace_id, "title": title, "description": "", "period": PERIOD,
                "accepted_levels": levels, "required_skills": [], "nice_to_have_skills": [], "min_teams": 1,
                "max_teams": 1, "mode": "remote"})
            return str(assignment.id)
        return str(self.in_intake(submit))

    def submit_batch(self, assignment_ids: list[str], floors: list[dict[str, Any]] | None = None) -> str:
        body = self.ok("intake", "POST", "/batches", {
            "workspace_id": self.workspace_id, "period": PERIOD, "policy": "max_fit",
            "assignment_ids": assignment_ids, "fairness_floors": floors or []}, status=201)
        return str(body["id"])

    def batch(self, batch_id: str) -> dict[str, Any]:
        return dict(self.ok("intake", "GET", f"/batches/{batch_id}"))

    def batch_when(self, batch_id: str, status: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            batch = self.batch(batch_id)
            return batch if batch["status"] == status else None
        return dict(wait_until(reached, TIMEOUT, f"batch {batch_id} {status}"))

    def assignment_status(self, assignment_id: str) -> str:
        return str(self.ok("intake", "GET", f"/assignments/{assignment_id}")["status"])

    def respond(self, match: dict[str, Any], batch_id: str, response: str) -> None:
        """What scheduling sends when the firm answers through its notice's link."""
        envelope = make_envelope("match.responded", 1, {
            "match_id": match["match_id"], "run_id": match["run_id"], "batch_id": batch_id,
            "assignment_id": match["assignment_id"], "team_id": match["team_id"],
            "firm_id": self.firm.organisation_id, "response": response, "responded_at": utcnow().isoformat()})
        with self.intake.connection() as conn:
            Publisher(conn, self.intake.topology, "scheduling").publish_raw(
                envelope.to_json(), message_type=envelope.type, message_id=envelope.message_id)


def _start(loops: list[Loop], stop: threading.Event) -> list[threading.Thread]:
    threads = [threading.Thread(target=loop.run, args=(stop,), name=loop.name, daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    return threads


@pytest.fixture(params=["local", "production"])
def system(request: pytest.FixtureRequest, tmp_path: Path, namespace: str) -> Iterator[System]:
    if request.param == "production":
        broker_url = str(request.getfixturevalue("rabbitmq_url"))
        make_db = request.getfixturevalue("make_postgres_db")
        urls = {service: make_db(service) for service in ("intake", "matching")}
    else:
        broker_url = str(request.getfixturevalue("embedded_broker"))
        urls = {service: f"sqlite:///{tmp_path}/{service}.sqlite3" for service in ("intake", "matching")}
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def settings(service: str) -> Settings:
        return Settings.from_env(service, {
            "WERKPLAATS_DATABASE_URL": urls[service], "WERKPLAATS_DATA_DIR": str(tmp_path),
            "WERKPLAATS_BROKER_URL": broker_url, "WERKPLAATS_NAMESPACE": namespace,
            "WERKPLAATS_POLL_INTERVAL": "0.1", "WERKPLAATS_VISIBILITY_TIMEOUT": "5",
            "WERKPLAATS_SOLVER_TIME_LIMIT": "30"})

    intake = intake_bootstrap.bootstrap(settings("intake"))
    matching = matching_bootstrap.bootstrap(settings("matching"))
    broker.declare_topology(intake.settings)
    loops = [relay_loop(intake), consumer_loop(intake, INTAKE_HANDLERS), relay_loop(matching),
             consumer_loop(matching, MATCHING_HANDLERS), solver_loop(matching)]
    stop = threading.Event()
    threads = _start(loops, stop)
    try:
        with intake.session_factory.begin() as s:
            def emit(env: Any) -> None:
                intake.emit(s, env)

            coordinator, key = intake_services.create_organisation(s, emit, name="Werkplaats", role="coordinator")
            institution, _ = intake_services.create_organisation(s, emit, name="ROC", role="institution",
                                                                 levels=["MBO", "HBO"])
            firm, _ = intake_services.create_organisation(s, emit, name="Firm", role="entrepreneur")
            principals = [Principal(o.id, o.role, "k") for o in (coordinator, institution, firm)]
            ws = intake_services.create_workspace(s, principals[0], {
                "name": "Werkplaats", "municipalities": ["GM0193"],
                "periods": [{"code": PERIOD, "starts_on": date(2027, 2, 1), "ends_on": date(2027, 6, 30)}]})
            s.flush()
            intake_services.register_firm(s, principals[2], {"kvk_number": "87654321", "sector": "retail",
                                                             "size_class": "small", "municipality": "GM0193"},
                                          create=True)
            workspace_id = ws.id
        coordinator_principal, institution_principal, firm_principal = principals
        system = System(intake, matching, create_intake_app(intake).test_client(),
                        create_matching_app(matching).test_client(), key, coordinator_principal,
                        institution_principal, firm_principal, workspace_id)
        # the coordinator's key reaches matching through apikey.issued
        wait_until(lambda: system.call("matching", "GET", "/runs").status_code == 200, TIMEOUT,
                   "the coordinator's key in matching")
        yield system
    finally:
        stop.set()
        for loop in loops:
            if loop.stop is not None:
                loop.stop()
        for thread in threads:
            thread.join(15)
        intake.engine.dispose()
        matching.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def placed(system: System, *batch_ids: str) -> list[str]:
    """The teams of the batches' current matches in intake, once per match."""
    return [m["team_id"] for batch_id in batch_ids for m in system.batch(batch_id)["matches"]]


def test_batches_of_one_round_place_a_team_once_and_a_decline_frees_it(system: System) -> None:
    team = system.team("WO-02", "HBO")
    first_assignment, second_assignment = system.assignment("Webshop", ["HBO"]), system.assignment("Dashboard", ["HBO"])
    first = system.submit_batch([first_assignment])
    second = system.submit_batch([second_assignment])  # back to back: both runs are queued at once
    system.batch_when(first, "matched")
    system.batch_when(second, "matched")
    assert placed(system, first, second) == [team]  # one team, placed once in the round
    holder, other = (first, second) if system.batch(first)["matches"] else (second, first)
    other_assignment = second_assignment if other == second else first_assignment
    assert system.assignment_status(other_assignment) == "unmatched"

    (match,) = system.batch(holder)["matches"]
    system.respond(match, holder, "declined")
    # the decline makes matching re-run the holding batch without the pair: the team is free
    wait_until(lambda: system.assignment_status(match["assignment_id"]) == "unmatched", TIMEOUT,
               "the declined assignment's re-run")
    system.ok("matching", "POST", f"/batches/{other}/runs", {}, status=202)
    wait_until(lambda: system.batch(other)["matches"], TIMEOUT, "the other batch's re-run")
    assert [(m["assignment_id"], m["team_id"]) for m in system.batch(other)["matches"]] == [(other_assignment, team)]
    assert system.assignment_status(other_assignment) == "matched"
    assert placed(system, first, second) == [team]
    with system.matching.session_factory() as session:  # matching agrees: one live match of the team
        live = session.execute(sa.select(matching_orm.Match.team_id).join(matching_orm.Run).where(
            matching_orm.Run.status == "published",
            sa.or_(matching_orm.Match.response.is_(None), matching_orm.Match.response != "declined"))).scalars()
        assert list(live) == [team]


IMPOSSIBLE = [{"dimension": "level", "value": "MBO", "min_share": 1.0}]  # two MBO teams, one assignment


def test_an_infeasible_round_shows_its_diagnosis_and_runs_again_with_another_floor(system: System) -> None:
    system.team("MBO-1", "MBO")
    system.team("MBO-2", "MBO")
    assignment = system.assignment("Website", ["MBO"])
    batch_id = system.submit_batch([assignment], IMPOSSIBLE)
    batch = system.batch_when(batch_id, "infeasible")
    last = batch["last_run"]
    assert (last["status"], last["trigger"], last["error"]) == ("infeasible", "batch.submitted", None)
    assert last["diagnosis"]["groups"] == ["fairness_floor"]
    assert "level MBO: at least 100%" in last["diagnosis"]["message"]
    assert system.assignment_status(assignment) == "in_batch"

    change = {"fairness_floors": [{"dimension": "level", "value": "MBO", "min_share": 0.5}]}
    assert system.call("intake", "PATCH", f"/batches/{batch_id}", change).status_code == 428
    stale = system.call("intake", "PATCH", f"/batches/{batch_id}", change, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    etag = system.call("intake", "GET", f"/batches/{batch_id}").headers["ETag"]
    changed = system.ok("intake", "PATCH", f"/batches/{batch_id}", change, headers={"If-Match": etag})
    assert changed["status"] == "submitted" and changed["fairness_floors"][0]["min_share"] == 0.5
    matched = system.batch_when(batch_id, "matched")
    assert [m["assignment_id"] for m in matched["matches"]] == [assignment]
    wait_until(lambda: system.batch(batch_id)["last_run"]["status"] == "published", TIMEOUT,
               "run.ended after matches.published")
    assert system.assignment_status(assignment) == "matched"
    # a batch with a published matching is changed through matching's re-runs, not here
    etag = system.call("intake", "GET", f"/batches/{batch_id}").headers["ETag"]
    refused = system.call("intake", "PATCH", f"/batches/{batch_id}", change,
                          headers={"If-Match": etag, "Accept-Language": "en"})
    assert refused.status_code == 409 and "this batch is matched" in refused.get_json()["message"]
    assert system.call("intake", "POST", f"/batches/{batch_id}/close").status_code == 409


def test_a_closed_infeasible_batch_releases_its_assignments_into_a_new_batch(system: System) -> None:
    system.team("MBO-1", "MBO")
    system.team("MBO-2", "MBO")
    assignment = system.assignment("Website", ["MBO"])
    stuck = system.submit_batch([assignment], IMPOSSIBLE)
    system.batch_when(stuck, "infeasible")
    taken = system.call("intake", "POST", "/batches", {"workspace_id": system.workspace_id, "period": PERIOD,
                                                       "assignment_ids": [assignment]})
    assert taken.status_code == 409  # still in the stuck batch

    closed = system.ok("intake", "POST", f"/batches/{stuck}/close")
    assert (closed["status"], closed["released_assignment_ids"], closed["assignments"]) == ("closed", [assignment], [])
    assert closed["closed_at"] is not None and closed["last_run"]["status"] == "infeasible"
    assert system.assignment_status(assignment) == "submitted"
    refused = system.call("intake", "POST", f"/batches/{stuck}/close")
    assert refused.status_code == 409 and "deze batch is closed" in refused.get_json()["message"]

    def closed_in_matching() -> bool:
        with system.matching.session_factory() as session:
            batch = session.get(matching_orm.Batch, stuck)
            return batch is not None and batch.closed_at is not None
    wait_until(closed_in_matching, TIMEOUT, "matching to close the batch")
    assert system.call("matching", "POST", f"/batches/{stuck}/runs", {}).status_code == 409

    fresh = system.submit_batch([assignment])
    matched = system.batch_when(fresh, "matched")
    assert [m["assignment_id"] for m in matched["matches"]] == [assignment]
    assert system.assignment_status(assignment) == "matched"
