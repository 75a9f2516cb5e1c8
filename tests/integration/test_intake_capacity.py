"""Institutions: their programmes and campuses, capacity registrations, and team attributes."""

from __future__ import annotations

import json

from . import test_intake_api
from .test_intake_api import World, assert_error, assignment_body, team_body

world = test_intake_api.world

PROFILE = {"programmes": ["HBO-ICT", "Communicatie"],
           "campuses": [{"name": "Campus Noord", "municipality": "GM0363"}]}


def capacity_body(workspace_id: str, **over: object) -> dict[str, object]:
    body: dict[str, object] = {"workspace_id": workspace_id, "programme": "HBO-ICT", "period": "2025-Q1",
                               "level": "HBO", "teams": 6, "team_size_min": 3, "team_size_max": 5,
                               "skills": ["python", "ux", "python"], "supervision_hours": 120}
    body.update(over)
    return body


def _set_profile(world: World) -> None:
    etag = world.get("inst_1", "/institution").headers["ETag"]
    resp = world.call("inst_1", "PATCH", "/institution", PROFILE, headers={"If-Match": etag})
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_institution_profile_needs_the_etag_and_validates(world: World) -> None:
    got = world.get("inst_1", "/institution")
    assert got.get_json()["levels"] == ["HBO", "MBO"] and got.get_json()["programmes"] == []
    assert_error(world.call("inst_1", "PATCH", "/institution", PROFILE), 428)
    etag = got.headers["ETag"]
    twice = {"campuses": [{"name": "A", "municipality": "GM0363"}, {"name": "A", "municipality": "GM0384"}]}
    assert_error(world.call("inst_1", "PATCH", "/institution", twice, headers={"If-Match": etag}), 422, "campuses")
    bad = {"campuses": [{"name": "A", "municipality": "Amsterdam"}]}
    assert_error(world.call("inst_1", "PATCH", "/institution", bad, headers={"If-Match": etag}), 422,
                 "campuses.0.municipality")
    assert_error(world.call("inst_1", "PATCH", "/institution", {"levels": ["WO"]}, headers={"If-Match": etag}),
                 422, "levels")
    _set_profile(world)
    assert world.get("inst_1", "/institution").get_json()["programmes"] == ["Communicatie", "HBO-ICT"]
    assert_error(world.get("firm_1", "/institution"), 403)


def test_capacity_is_registered_checked_and_announced(world: World) -> None:
    _set_profile(world)
    before = world.snapshot()
    for body, field in [
        (capacity_body(world.ids["ws_a"], programme="Rechten"), "programme"),
        (capacity_body(world.ids["ws_a"], period="2030-Q9"), "period"),
        (capacity_body(world.ids["ws_a"], level="WO"), "level"),
        (capacity_body(world.ids["ws_a"], team_size_min=6), "team_size_min"),
        (capacity_body(world.ids["ws_a"], teams=0), "teams"),
        (capacity_body(world.ids["ws_a"], supervision_hours="veel"), "supervision_hours"),
        ({**capacity_body(world.ids["ws_a"]), "approved": True}, "approved"),
    ]:
        assert_error(world.post("inst_1", "/capacity", body), 422, field)
    assert world.snapshot() == before
    resp = world.post("inst_1", "/capacity", capacity_body(world.ids["ws_a"]))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    cap = resp.get_json()
    assert cap["skills"] == ["python", "ux"] and cap["institution_id"] == world.org["inst_1"]
    assert world.get("inst_1", resp.headers["Location"]).get_json() == cap
    assert [c["id"] for c in world.get("coord_a", "/capacity").get_json()] == [cap["id"]]
    assert world.get("coord_b", "/capacity").get_json() == []
    assert world.get("inst_2", "/capacity").get_json() == []
    assert_error(world.get("inst_2", f"/capacity/{cap['id']}"), 404)
    assert_error(world.post("firm_1", "/capacity", capacity_body(world.ids["ws_a"])), 403)
    event = [json.loads(r.body)["payload"] for r in world.outbox_rows() if r.type == "capacity.registered"]
    assert event == [{"capacity_id": cap["id"], "institution_id": world.org["inst_1"],
                      "workspace_id": world.ids["ws_a"], "period": "2025-Q1", "level": "HBO", "teams": 6,
                      "team_size_min": 3, "team_size_max": 5, "skills": ["python", "ux"],
                      "supervision_hours": 120}]


def test_teams_carry_campus_travel_and_ranked_preferences(world: World) -> None:
    _set_profile(world)
    a3 = world.created("firm_2", "/assignments", assignment_body(world.ids["ws_a"], title="Tweede"))["id"]
    body = team_body(world.ids["ws_a"], code="HE-T09", campus="Campus Noord", travel_limit_km=25,
                     remote_allowed=False, preferences=[a3, world.ids["a1"], a3])
    resp = world.post("inst_1", "/teams", body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    team = resp.get_json()
    assert team["preferences"] == [a3, world.ids["a1"]] and team["campus"] == "Campus Noord"
    assert team["travel_limit_km"] == 25 and team["remote_allowed"] is False
    before = world.snapshot()
    assert_error(world.post("inst_1", "/teams", team_body(world.ids["ws_a"], campus="Elders")), 422, "campus")
    assert_error(world.post("inst_1", "/teams", team_body(world.ids["ws_a"], preferences=[world.ids["a1_q2"]])),
                 422, "preferences.0")  # another period
    assert_error(world.post("inst_1", "/teams", team_body(world.ids["ws_a"], travel_limit_km=-1)), 422,
                 "travel_limit_km")
    assert world.snapshot() == before
    registered = [json.loads(r.body)["payload"] for r in world.outbox_rows() if r.type == "team.registered"]
    assert registered[-1]["team_id"] == team["id"] and "code" not in registered[-1]


def test_institution_blocks_map_onto_workspace_periods(world: World) -> None:
    etag = world.get("inst_1", "/institution").headers["ETag"]
    ws_a = world.ids["ws_a"]
    cases = [
        ({"blocks": [{"code": "B3", "workspace_id": "nope", "period": "2025-Q1"}]}, "blocks.0.workspace_id"),
        ({"blocks": [{"code": "B3", "workspace_id": ws_a, "period": "2031-Q1"}]}, "blocks.0.period"),
        ({"blocks": [{"code": "B3", "workspace_id": ws_a, "period": "2025-Q1"},
                     {"code": "B3", "workspace_id": ws_a, "period": "2025-Q2"}]}, "blocks.1.code"),
    ]
    for body, field in cases:
        assert_error(world.call("inst_1", "PATCH", "/institution", body, headers={"If-Match": etag}), 422, field)
    blocks = [{"code": "B3", "workspace_id": ws_a, "period": "2025-Q1"},
              {"code": "B4", "workspace_id": ws_a, "period": "2025-Q2"}]
    ok = world.call("inst_1", "PATCH", "/institution", {"blocks": blocks}, headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.get_json()["blocks"] == blocks


def test_assignments_rank_institutions_and_levels(world: World) -> None:
    body = assignment_body(world.ids["ws_a"], preferred_institutions=[world.org["inst_2"], world.org["inst_1"]],
                           preferred_levels=["WO", "HBO", "WO"])
    created = world.created("firm_1", "/assignments", body)
    assert created["preferred_institutions"] == [world.org["inst_2"], world.org["inst_1"]]
    assert created["preferred_levels"] == ["WO", "HBO"]
    before = world.snapshot()
    assert_error(world.post("firm_1", "/assignments", assignment_body(
        world.ids["ws_a"], preferred_levels=["MBO"])), 422, "preferred_levels.0")  # not an accepted level
    assert_error(world.post("firm_1", "/assignments", assignment_body(
        world.ids["ws_a"], preferred_institutions=[world.org["firm_2"]])), 422, "preferred_institutions.0")
    assert world.snapshot() == before
