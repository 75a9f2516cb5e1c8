"""batch.submitted v2: the snapshot matching gets (places, capacity, firm caps, fairness floors), and the
municipality codes intake accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkplaats_shared import geo
from werkplaats_shared.contracts import parse_envelope

from . import test_intake_api
from .test_intake_api import World, assert_error, assignment_body, batch_body, firm_body, team_body, workspace_body

world = test_intake_api.world

PROFILE = {"programmes": ["HBO-ICT", "Data Science"],
           "campuses": [{"name": "Campus Noord", "municipality": "GM0384"}]}


def patch(world: World, who: str, path: str, body: dict[str, Any]) -> Any:
    etag = world.get(who, path).headers["ETag"]
    return world.call(who, "PATCH", path, body, headers={"If-Match": etag})


def capacity(world: World, programme: str, level: str, teams: int, hours: int, period: str = "2025-Q1") -> None:
    world.created("inst_1", "/capacity", {
        "workspace_id": world.ids["ws_a"], "programme": programme, "period": period, "level": level,
        "teams": teams, "team_size_min": 3, "team_size_max": 5, "supervision_hours": hours})


def last_batch_message(world: World) -> dict[str, Any]:
    row = world.outbox_rows()[-1]
    assert (row.type, row.version) == ("batch.submitted", 3)
    payload: dict[str, Any] = parse_envelope(json.loads(row.body)).payload
    return payload


def test_the_snapshot_carries_places_capacity_caps_and_floors(world: World) -> None:
    ids, org = world.ids, world.org
    assert patch(world, "inst_1", "/institution", PROFILE).status_code == 200
    capacity(world, "HBO-ICT", "HBO", 2, 40)
    capacity(world, "Data Science", "HBO", 3, 60)
    capacity(world, "HBO-ICT", "MBO", 1, 10)
    capacity(world, "HBO-ICT", "HBO", 9, 90, period="2025-Q2")  # another period: not in this batch
    team = world.created("inst_1", "/teams", team_body(
        ids["ws_a"], code="HE-T02", campus="Campus Noord", travel_limit_km=25, remote_allowed=False,
        preferences=[ids["a2"], ids["a1"]]))
    roadmap = world.created("firm_2", "/assignments", assignment_body(
        ids["ws_a"], title="Digitale koers", kind="roadmap", mode="hybrid", accepted_levels=["HBO"],
        preferred_levels=["HBO"], preferred_institutions=[org["inst_1"]]))
    assert patch(world, "firm_1", "/firm", {"max_concurrent_teams": 2}).status_code == 200
    floors = [{"dimension": "region", "value": "Noord-Holland", "min_share": 0.5},
              {"dimension": "level", "value": "HBO", "min_share": 0.25},
              {"dimension": "institution", "value": org["inst_1"], "min_share": 0.1}]
    batch = world.created("coord_a", "/batches", batch_body(
        ids["ws_a"], [ids["a1"], roadmap["id"]], policy="stable", auto_publish=False, fairness_floors=floors))
    assert batch["fairness_floors"] == floors

    p = last_batch_message(world)
    assert (p["policy"], p["auto_publish"], p["fairness_floors"]) == ("stable", False, floors)
    assert p["capacities"] == [
        {"institution_id": org["inst_1"], "period": "2025-Q1", "level": "HBO", "teams": 5, "supervision_hours": 100},
        {"institution_id": org["inst_1"], "period": "2025-Q1", "level": "MBO", "teams": 1, "supervision_hours": 10},
    ]
    assert p["firm_caps"] == [{"firm_id": org["firm_1"], "max_teams": 2}]
    amsterdam, diemen = geo.municipality("GM0363"), geo.municipality("GM0384")
    assert amsterdam is not None and diemen is not None
    by_id = {a["assignment_id"]: a for a in p["assignments"]}
    project, scan = by_id[ids["a1"]], by_id[roadmap["id"]]
    assert (project["supervision_hours"], scan["supervision_hours"]) == (20, 8)
    assert (project["mode"], scan["mode"], scan["priority"]) == ("on_site", "hybrid", 0)
    assert (scan["preferred_institutions"], scan["preferred_levels"]) == ([org["inst_1"]], ["HBO"])
    assert (scan["municipality"], scan["latitude"], scan["longitude"], scan["region"]) == (
        "GM0363", amsterdam.latitude, amsterdam.longitude, "Noord-Holland")
    teams = {t["team_id"]: t for t in p["teams"]}
    mine = teams[team["id"]]
    assert (mine["municipality"], mine["latitude"], mine["longitude"], mine["region"]) == (
        "GM0384", diemen.latitude, diemen.longitude, "Noord-Holland")
    assert (mine["travel_limit_km"], mine["remote_allowed"], mine["preferences"], mine["periods"]) == (
        25, False, [ids["a2"], ids["a1"]], ["2025-Q1"])
    without_campus = teams[ids["t1"]]
    assert (without_campus["municipality"], without_campus["latitude"], without_campus["region"]) == (
        None, None, None)
    row_body = world.outbox_rows()[-1].body
    for secret in ("Campus Noord", "HBO-ICT", "Data Science", "Digitale koers", "HE-T02", "12345671"):
        assert secret not in row_body, secret


@pytest.mark.parametrize(("floor", "field"), [
    ({"dimension": "gender", "value": "x", "min_share": 0.5}, "fairness_floors.0.dimension"),
    ({"dimension": "region", "value": "Noord-Holland", "min_share": 1.5}, "fairness_floors.0.min_share"),
    ({"dimension": "region", "value": "Noord-Holland", "min_share": "veel"}, "fairness_floors.0.min_share"),
    ({"dimension": "region", "value": "Atlantis", "min_share": 0.5}, "fairness_floors.0.value"),
    ({"dimension": "level", "value": "PhD", "min_share": 0.5}, "fairness_floors.0.value"),
    ({"dimension": "institution", "value": "firm_1", "min_share": 0.5}, "fairness_floors.0.value"),
    ({"dimension": "level", "value": "HBO"}, "fairness_floors.0.min_share"),
    ({"dimension": "level", "value": "HBO", "min_share": 0.5, "weight": 2}, "fairness_floors.0.weight"),
])
def test_bad_fairness_floors_are_refused_and_store_nothing(world: World, floor: dict[str, Any], field: str) -> None:
    if floor.get("value") == "firm_1":
        floor = {**floor, "value": world.org["firm_1"]}  # an organisation, but not an institution
    before = world.snapshot()
    resp = world.post("coord_a", "/batches", batch_body(world.ids["ws_a"], [world.ids["a1"]], fairness_floors=[floor]))
    assert_error(resp, 422, field)
    assert world.snapshot() == before


def test_a_group_gets_one_floor(world: World) -> None:
    floor = {"dimension": "level", "value": "HBO", "min_share": 0.5}
    before = world.snapshot()
    resp = world.post("coord_a", "/batches", batch_body(world.ids["ws_a"], [world.ids["a1"]],
                                                        fairness_floors=[floor, {**floor, "min_share": 0.2}]))
    assert_error(resp, 422, "fairness_floors.1.value")
    assert world.snapshot() == before


def test_every_policy_is_accepted_and_sent(world: World) -> None:
    for policy, aid in zip(("max_fit", "max_served", "rank_maximal", "stable"),
                           ("a1", "a2", "a1_q2", "a1_ws_b"), strict=True):
        assignment = world.get("firm_1" if aid != "a2" else "firm_2", f"/assignments/{world.ids[aid]}").get_json()
        coordinator = "coord_a" if assignment["workspace_id"] == world.ids["ws_a"] else "coord_b"
        world.created(coordinator, "/batches", batch_body(assignment["workspace_id"], [world.ids[aid]],
                                                          period=assignment["period"], policy=policy))
        assert last_batch_message(world)["policy"] == policy
    assert_error(world.post("coord_a", "/batches", batch_body(world.ids["ws_a"], [world.ids["a1"]],
                                                              policy="cheapest")), 422, "policy")


def test_the_firm_sets_its_cap_on_concurrent_teams(world: World) -> None:
    assert world.get("firm_1", "/firm").get_json()["max_concurrent_teams"] is None
    for bad in (0, -1, "2", 2.5, 101):
        assert_error(patch(world, "firm_1", "/firm", {"max_concurrent_teams": bad}), 422, "max_concurrent_teams")
    assert world.get("firm_1", "/firm").get_json()["max_concurrent_teams"] is None
    assert patch(world, "firm_1", "/firm", {"max_concurrent_teams": 3}).get_json()["max_concurrent_teams"] == 3
    assert patch(world, "firm_1", "/firm", {"max_concurrent_teams": None}).get_json()["max_concurrent_teams"] is None


@pytest.mark.parametrize("code", ["GM9999", "GM0003", "GM0000", "gm0363", "GM363", "Amsterdam"])
def test_unknown_municipality_codes_are_refused_everywhere(world: World, code: str) -> None:
    """GM0003 (Appingedam) has the right form but merged into Eemsdelta in 2021."""
    world.add_org("firm_new", "Nieuwe Zaak", "entrepreneur", [])
    before = world.snapshot()
    assert_error(world.post("coord_a", "/workspaces", workspace_body(municipalities=["GM0363", code])), 422,
                 "municipalities.1")
    assert_error(world.post("firm_new", "/firm", firm_body(kvk_number="87654321", municipality=code)), 422,
                 "municipality")
    assert_error(patch(world, "firm_1", "/firm", {"municipality": code}), 422, "municipality")
    assert_error(patch(world, "inst_1", "/institution", {"campuses": [{"name": "X", "municipality": code}]}), 422,
                 "campuses.0.municipality")
    assert world.snapshot() == before
    assert world.get("firm_new", "/firm").status_code == 404
    assert world.get("firm_1", "/firm").get_json()["municipality"] == "GM0363"
    assert world.get("inst_1", "/institution").get_json()["campuses"] == []
