"""Intake's reactions to matching and scheduling events: assignment states follow the published run
and the entrepreneurs' responses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from intake import bootstrap as intake_bootstrap
from intake.adapters import orm
from intake.entrypoints.handlers import HANDLERS
from werkplaats_shared.auth import Principal
from werkplaats_shared.config import Settings
from werkplaats_shared.consumer import PermanentError
from werkplaats_shared.contracts import make_envelope
from werkplaats_shared.service import Infrastructure


class World:
    def __init__(self, infra: Infrastructure) -> None:
        self.infra = infra
        from intake.service_layer import services

        with infra.session_factory.begin() as s:
            def emit(env: Any) -> None:
                infra.emit(s, env)

            coord, _ = services.create_organisation(s, emit, name="WP", role="coordinator")
            inst, _ = services.create_organisation(s, emit, name="HBO", role="institution", levels=["HBO"])
            firm, _ = services.create_organisation(s, emit, name="Firm", role="entrepreneur")
            self.coord, self.inst, self.firm = (Principal(o.id, o.role, "k") for o in (coord, inst, firm))
            ws = services.create_workspace(s, self.coord, {"name": "WP", "municipalities": ["GM0193"], "periods": [
                {"code": "P1", "starts_on": date(2027, 2, 1), "ends_on": date(2027, 6, 30)}]})
            s.flush()
            services.register_firm(s, self.firm, {"kvk_number": "87654321", "sector": "retail",
                                                  "size_class": "small", "municipality": "GM0193"}, create=True)
            self.teams = [services.register_team(s, self.inst, {"workspace_id": ws.id, "code": f"T{i}",
                                                                "level": "HBO", "size": 3, "skills": [],
                                                                "period": "P1"}) for i in range(2)]
            self.assignments = [services.submit_assignment(s, emit, self.firm, {
                "workspace_id": ws.id, "title": f"A{i}", "description": "", "period": "P1",
                "accepted_levels": ["HBO"], "required_skills": [], "nice_to_have_skills": [],
                "min_teams": 1, "max_teams": 1})[0] for i in range(2)]
            s.flush()
            self.batch = services.submit_batch(s, emit, self.coord, {
                "workspace_id": ws.id, "period": "P1", "policy": "max_fit",
                "assignment_ids": [a.id for a in self.assignments]})

    def publish(self, pairs: list[tuple[int, int]]) -> tuple[str, list[str]]:
        run_id, match_ids = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in pairs]
        env = make_envelope("matches.published", 1, {
            "run_id": run_id, "batch_id": self.batch.id, "workspace_id": self.batch.workspace_id,
            "coordinator_id": self.coord.organisation_id, "period": "P1",
            "matches": [{"match_id": mid, "assignment_id": self.assignments[a].id, "team_id": self.teams[t].id,
                         "firm_id": self.firm.organisation_id, "institution_id": self.inst.organisation_id,
                         "score": 10.0} for mid, (a, t) in zip(match_ids, pairs, strict=True)],
            "unmatched_assignment_ids": [x.id for i, x in enumerate(self.assignments)
                                         if i not in {a for a, _ in pairs}]})
        self.handle(env)
        return run_id, match_ids

    def respond(self, match_id: str, run_id: str, a: int, t: int, response: str) -> None:
        self.handle(make_envelope("match.responded", 1, {
            "match_id": match_id, "run_id": run_id, "batch_id": self.batch.id,
            "assignment_id": self.assignments[a].id, "team_id": self.teams[t].id,
            "firm_id": self.firm.organisation_id, "response": response, "responded_at": "2027-01-10T10:00:00+00:00"}))

    def handle(self, env: Any) -> None:
        with self.infra.session_factory.begin() as s:
            HANDLERS[env.type](s, env)

    def states(self) -> list[str]:
        with self.infra.session_factory() as s:
            return [s.get(orm.Assignment, a.id).status for a in self.assignments]  # type: ignore[union-attr]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = Settings.from_env("intake", {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/i.sqlite3",
                                            "WERKPLAATS_DATA_DIR": str(tmp_path)})
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    infra = intake_bootstrap.bootstrap(settings)
    yield World(infra)
    infra.engine.dispose()
    root.handlers[:], root.level = handlers, level


def test_published_run_then_accept_and_decline(world: World) -> None:
    run_id, (m0,) = world.publish([(0, 0)])
    assert world.states() == ["matched", "unmatched"]
    world.respond(m0, run_id, 0, 0, "accepted")
    assert world.states() == ["accepted", "unmatched"]
    world.respond(m0, run_id, 0, 0, "accepted")  # repeated answer: no change, no error
    assert world.states() == ["accepted", "unmatched"]


def test_a_re_run_after_a_decline_gives_the_assignment_its_replacement(world: World) -> None:
    run_id, (m0, m1) = world.publish([(0, 0), (1, 1)])
    world.respond(m0, run_id, 0, 0, "accepted")
    world.respond(m1, run_id, 1, 1, "declined")
    assert world.states() == ["accepted", "declined"]
    world.publish([(0, 0)])  # minimum-change re-run: no replacement team for assignment 1
    assert world.states() == ["accepted", "unmatched"]
    new_run, _ = world.publish([(0, 0), (1, 1)])
    assert world.states() == ["accepted", "matched"]
    with world.infra.session_factory() as s:
        batch = s.get(orm.Batch, world.batch.id)
        assert batch is not None and batch.run_id == new_run


def test_a_response_to_a_superseded_match_changes_nothing(world: World) -> None:
    old_run, (m0,) = world.publish([(0, 0)])
    world.publish([(0, 1)])
    world.respond(m0, old_run, 0, 0, "accepted")
    assert world.states()[0] == "matched"


def test_responses_about_unknown_assignments_are_rejected_for_the_dead_letter_queue(world: World) -> None:
    env = make_envelope("match.responded", 1, {
        "match_id": "m", "run_id": "r", "batch_id": world.batch.id, "assignment_id": "nope", "team_id": "t",
        "firm_id": "f", "response": "accepted", "responded_at": "2027-01-10T10:00:00+00:00"})
    with pytest.raises(PermanentError):
        world.handle(env)
