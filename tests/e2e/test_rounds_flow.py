"""Two batches of one workspace and period, submitted back to back to the services running as separate
processes on the local default: no team is placed by both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from werkplaats_shared.devstack.demo import INSTITUTIONS, PERIOD, Api, setup_demo_data, wait_for
from werkplaats_shared.devstack.stack import LocalStack

pytestmark = pytest.mark.e2e


def test_two_batches_of_a_round_submitted_back_to_back_place_each_team_once(
        make_stack: Callable[..., LocalStack]) -> None:
    stack = make_stack()
    data = setup_demo_data(stack, say=lambda _line: None)
    intake = Api(stack.url("intake"), data.coordinator_key)
    firm = Api(stack.url("intake"), data.firm_keys[0])
    # three more jobs any team can do: on their own they would take three of the demo's teams
    extra = [firm.post("/assignments", {
        "workspace_id": data.workspace_id, "title": f"Extra klus {i}", "period": PERIOD, "mode": "remote",
        "accepted_levels": ["MBO", "HBO", "WO"], "required_skills": [], "nice_to_have_skills": [],
        "min_teams": 1, "max_teams": 1})["id"] for i in range(3)]
    batches = [intake.post("/batches", {"workspace_id": data.workspace_id, "period": PERIOD, "assignment_ids": ids})
               for ids in (data.assignment_ids, extra)]

    def matched() -> list[dict[str, Any]] | None:
        found = [intake.get(f"/batches/{b['id']}") for b in batches]
        return found if all(b["status"] == "matched" for b in found) else None

    first, second = wait_for("both batches matched", matched, timeout=180.0)
    teams = [m["team_id"] for batch in (first, second) for m in batch["matches"]]
    assert len(teams) == len(set(teams))  # every team at most once in the round
    assert len(first["matches"]) == len(data.assignment_ids)  # the demo's first batch is fully served
    all_teams = sum(len(skills) for _name, _level, skills in INSTITUTIONS)
    assert len(second["matches"]) == all_teams - len(data.assignment_ids)  # the one team left over, no more
    held = Api(stack.url("matching"), data.coordinator_key).get(f"/batches/{second['id']}/runs")[0]
    assert {h["batch_id"] for h in held["controls"]["held"]} == {first["id"]}


def test_a_batch_above_the_message_threshold_is_fetched_by_matching_from_intake_and_matched(
        make_stack: Callable[..., LocalStack]) -> None:
    """The claim-check across processes: intake keeps a snapshot above WERKPLAATS_SNAPSHOT_INLINE_BYTES, the
    message names it, matching's process fetches it from intake's over HTTP (signed) and the batch is matched."""
    stack = make_stack(service_env={"intake": {"WERKPLAATS_SNAPSHOT_INLINE_BYTES": "10000"}})
    data = setup_demo_data(stack, say=lambda _line: None)
    intake = Api(stack.url("intake"), data.coordinator_key)
    firms = [Api(stack.url("intake"), key) for key in data.firm_keys]
    for i in range(25):  # enough jobs to make the snapshot larger than 10 kB
        firms[i % len(firms)].post("/assignments", {
            "workspace_id": data.workspace_id, "title": f"Extra klus {i}", "period": PERIOD, "mode": "remote",
            "accepted_levels": ["MBO", "HBO", "WO"], "required_skills": [], "nice_to_have_skills": [],
            "min_teams": 1, "max_teams": 1})
    batch = intake.post("/batches", {"workspace_ids": [data.workspace_id], "period": PERIOD,
                                     "assignments": "all_open"})
    assert len(batch["assignments"]) == 25 + len(data.assignment_ids)

    def matched() -> dict[str, Any] | None:
        found = intake.get(f"/batches/{batch['id']}")
        return found if found["status"] == "matched" else None

    done = wait_for("the batch matched", matched, timeout=180.0)
    all_teams = sum(len(skills) for _name, _level, skills in INSTITUTIONS)
    assert len(done["matches"]) == all_teams  # more jobs than teams: every team placed, once
    assert len({m["team_id"] for m in done["matches"]}) == all_teams
    (run,) = Api(stack.url("matching"), data.coordinator_key).get(f"/batches/{batch['id']}/runs")
    assert run["status"] == "published"
    engine = sa.create_engine(f"sqlite:///{stack.data_dir}/intake.sqlite3")
    try:
        with engine.connect() as conn:
            sizes = conn.execute(sa.text("SELECT size_bytes FROM batch_snapshots WHERE batch_id = :b"),
                                 {"b": batch["id"]}).scalars().all()
    finally:
        engine.dispose()
    assert len(sizes) == 1 and sizes[0] > 10_000  # it went by reference
