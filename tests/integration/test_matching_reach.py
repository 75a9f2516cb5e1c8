"""``GET /reach`` in matching: the assignments served and teams placed by a workspace's rounds (each round's
current published matching), by region (the firm's province), level (the team's), period and month; a team
placed in two rounds counts once; counts only; another coordinator's workspace 403; a bad range 422."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from werkplaats_shared.contracts import make_envelope

from .test_matching_api import AMSTERDAM, UTRECHT, Matching, assignment, team
from .test_matching_api import m as m

TODAY = datetime.now(UTC).date()
WORKSPACE = str(uuid.uuid4())


def _team(team_id: str, level: str, skill: str) -> dict[str, Any]:
    return {**team(team_id, level, [skill]), "periods": ["2026-Q1", "2026-Q2"], **UTRECHT, "travel_limit_km": 60,
            "remote_allowed": False, "preferences": []}


def _assignment(assignment_id: str, where: dict[str, Any], level: str, skill: str, period: str) -> dict[str, Any]:
    return {**assignment(assignment_id, [level], required=[skill]), "period": period, "mode": "on_site", **where,
            "priority": 0, "supervision_hours": 4, "preferred_institutions": [], "preferred_levels": []}


TEAMS = [_team("t-hbo", "HBO", "web"), _team("t-mbo", "MBO", "data"), _team("t-wo", "WO", "ai")]


def round_of(m: Matching, period: str, assignments: list[dict[str, Any]], who: str = "coord_1",
             workspace: str = WORKSPACE) -> str:
    batch_id = str(uuid.uuid4())
    m.handle(make_envelope("batch.submitted", 2, {
        "batch_id": batch_id, "workspace_id": workspace, "coordinator_id": m.org[who], "period": period,
        "policy": "max_fit", "auto_publish": True, "working_area": ["GM0344", "GM0363"], "assignments": assignments,
        "teams": TEAMS, "capacities": [], "firm_caps": [], "fairness_floors": []}))
    m.work()
    return batch_id


def reach(m: Matching, who: str = "coord_1", first: date = TODAY, last: date = TODAY) -> dict[str, Any]:
    return dict(m.ok(who, "GET", f"/reach?workspace_id={WORKSPACE}&from={first}&to={last}"))


def figure(answer: dict[str, Any], name: str) -> tuple[int, dict[str, dict[str, int]]]:
    (found,) = [f for f in answer["figures"] if f["figure"] == name]
    table: dict[str, dict[str, int]] = {}
    for b in found["breakdowns"]:
        table.setdefault(b["dimension"], {})[b["value"]] = b["count"]
    return found["total"], table


def test_served_assignments_and_placed_teams_by_region_level_and_period(m: Matching) -> None:
    round_of(m, "2026-Q1", [_assignment("u1", UTRECHT, "HBO", "web", "2026-Q1"),
                            _assignment("a1", AMSTERDAM, "MBO", "data", "2026-Q1"),
                            _assignment("u3", UTRECHT, "WO", "ai", "2026-Q1")])
    round_of(m, "2026-Q2", [_assignment("u2", UTRECHT, "HBO", "web", "2026-Q2")])  # t-hbo placed a second time
    answer = reach(m)
    total, table = figure(answer, "assignments_served")
    assert total == 4
    assert table["region"] == {"Utrecht": 3, "Noord-Holland": 1}
    assert table["level"] == {"HBO": 2, "MBO": 1, "WO": 1}
    assert table["period"] == {"2026-Q1": 3, "2026-Q2": 1}
    assert table["month"] == {TODAY.strftime("%Y-%m"): 4}
    total, table = figure(answer, "teams_placed")
    assert total == 3  # t-hbo placed in both rounds counts once
    assert table["level"] == {"HBO": 1, "MBO": 1, "WO": 1}
    assert table["period"] == {"2026-Q1": 3, "2026-Q2": 1}  # t-hbo under each period it works in
    (placed,) = [f for f in answer["figures"] if f["figure"] == "teams_placed"]
    assert placed["multi_valued"] == ["period"]
    text = json.dumps(answer)
    assert not any(x in text for x in ("t-hbo", "u1", "firm-", "inst-a"))  # counts only


def test_an_unpublished_run_and_an_unmatched_assignment_count_nothing(m: Matching) -> None:
    round_of(m, "2026-Q1", [_assignment("u1", UTRECHT, "HBO", "web", "2026-Q1"),
                            _assignment("x", UTRECHT, "HBO", "welding", "2026-Q1")])  # no team can weld
    batch_id = str(uuid.uuid4())
    m.handle(make_envelope("batch.submitted", 2, {
        "batch_id": batch_id, "workspace_id": WORKSPACE, "coordinator_id": m.org["coord_1"], "period": "2026-Q2",
        "policy": "max_fit", "auto_publish": False, "working_area": ["GM0344"],
        "assignments": [_assignment("u2", UTRECHT, "MBO", "data", "2026-Q2")], "teams": TEAMS, "capacities": [],
        "firm_caps": [], "fairness_floors": []}))
    m.work()  # solved, waiting for the coordinator to publish
    assert figure(reach(m), "assignments_served")[0] == 1
    assert figure(reach(m, first=TODAY + timedelta(days=1), last=TODAY + timedelta(days=9)),
                  "teams_placed") == (0, {})


def test_another_coordinators_workspace_is_refused_and_other_roles_too(m: Matching) -> None:
    round_of(m, "2026-Q1", [_assignment("u1", UTRECHT, "HBO", "web", "2026-Q1")])
    refused = m.call("coord_2", "GET", f"/reach?workspace_id={WORKSPACE}&from={TODAY}&to={TODAY}")
    assert refused.status_code == 403 and refused.get_json()["errors"][0]["field"] == "workspace_id"
    for who in ("inst_1", "firm_1"):
        assert m.call(who, "GET", f"/reach?workspace_id={WORKSPACE}&from={TODAY}&to={TODAY}").status_code == 403
    # a workspace matching has no round of: nothing counted, for anyone
    other = m.ok("coord_2", "GET", f"/reach?workspace_id={uuid.uuid4()}&from={TODAY}&to={TODAY}")
    assert [f["total"] for f in other["figures"]] == [0, 0]


@pytest.mark.parametrize(("query", "field"), [("from=2026-05-02&to=2026-05-01", "query.to"),
                                              ("from=2026-02-30&to=2026-05-01", "query.from"),
                                              ("from=2026-05-01", "query.to")])
def test_a_bad_range_is_refused_with_its_field(m: Matching, query: str, field: str) -> None:
    resp = m.call("coord_1", "GET", f"/reach?workspace_id={WORKSPACE}&{query}")
    assert resp.status_code == 422 and field in {e["field"] for e in resp.get_json()["errors"]}
