"""Intake's batch lookups for pages that show a page of a big round: teams and assignments by a list of ids,
assignments by text in their title or their firm's name, one batch without its lists; all scoped to the
caller's organisation, as every list is. Flask's test client on SQLite (the world of test_intake_api)."""

from __future__ import annotations

import uuid

from werkzeug.test import TestResponse

from .test_intake_api import World, assert_error, batch_body, world

__all__ = ["world"]  # the fixture, used by name


def _ids(resp: TestResponse) -> list[str]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return sorted(x["id"] for x in resp.get_json())


def test_teams_and_assignments_are_looked_up_by_their_ids_within_the_callers_scope(world: World) -> None:
    ids = world.ids
    assert _ids(world.get("coord_a", f"/teams?id={ids['t1']}&id={ids['t2']}")) == sorted([ids["t1"], ids["t2"]])
    assert _ids(world.get("coord_a", f"/teams?id={ids['t2']}")) == [ids["t2"]]
    assert _ids(world.get("inst_1", f"/teams?id={ids['t1']}&id={ids['t2']}")) == [ids["t1"]]  # not another's team
    assert _ids(world.get("coord_b", f"/teams?id={ids['t1']}")) == []
    assert _ids(world.get("coord_a", f"/assignments?id={ids['a1']}&id={ids['a1_ws_b']}")) == [ids["a1"]]
    assert _ids(world.get("coord_a", f"/assignments?id={uuid.uuid4()}")) == []
    too_many = "&".join(f"id={uuid.uuid4()}" for _ in range(101))
    assert_error(world.get("coord_a", f"/teams?{too_many}"), 422, "query.id")
    assert_error(world.get("coord_a", f"/assignments?id={'x' * 37}"), 422, "query.id.0")


def test_assignments_are_found_by_text_in_their_title_or_their_firms_name(world: World) -> None:
    ids = world.ids
    assert _ids(world.get("coord_a", "/assignments?q=PLANNING")) == [ids["a2"]]  # the title, any case
    assert _ids(world.get("coord_a", "/assignments?q=garage de")) == [ids["a2"]]  # the firm's name
    assert _ids(world.get("coord_a", "/assignments?q=webwinkel&period=2025-Q1")) == [ids["a1"]]
    assert _ids(world.get("coord_b", "/assignments?q=webwinkel")) == [ids["a1_ws_b"]]
    assert _ids(world.get("coord_a", "/assignments?q=100%")) == []  # % and _ are text, not wildcards
    assert _ids(world.get("coord_a", "/assignments?q=_")) == []
    assert_error(world.get("coord_a", "/assignments?q="), 422, "query.q")
    assert_error(world.get("coord_a", f"/assignments?q={'x' * 101}"), 422, "query.q")


def test_one_batch_is_read_without_its_lists(world: World) -> None:
    batch = world.created("coord_a", "/batches", batch_body(world.ids["ws_a"], [world.ids["a1"]]))
    (found,) = world.get("coord_a", f"/batches?id={batch['id']}").get_json()
    assert (found["id"], found["period"], found["status"]) == (batch["id"], "2025-Q1", "submitted")
    assert "assignments" not in found
    assert world.get("coord_b", f"/batches?id={batch['id']}").get_json() == []


def test_teams_are_found_by_text_in_their_code_or_their_institutions_name(world: World) -> None:
    ids = world.ids
    assert _ids(world.get("coord_a", "/teams?q=ut-t0")) == [ids["t2"]]  # the code, any case
    assert _ids(world.get("coord_a", "/teams?q=eenhoorn")) == [ids["t1"]]  # the institution's name
    assert _ids(world.get("coord_a", "/teams?q=T0&period=2025-Q1")) == sorted([ids["t1"], ids["t2"]])
    assert _ids(world.get("coord_b", "/teams?q=eenhoorn")) == []  # another workspace's teams stay unseen
    assert _ids(world.get("coord_a", "/teams?q=%25")) == []  # % is text, not a wildcard
    assert_error(world.get("coord_a", "/teams?q="), 422, "query.q")


def test_a_coordinator_looks_up_the_names_of_the_firms_its_workspaces_work_with(world: World) -> None:
    firm_1, firm_2 = world.org["firm_1"], world.org["firm_2"]
    found = world.get("coord_a", f"/firms?id={firm_1}&id={firm_2}&id={uuid.uuid4()}").get_json()
    assert [(f["id"], f["name"]) for f in found] == [(firm_1, "Bakkerij Jansen BV"), (firm_2, "Garage De Vries")]
    # coord_b's workspace has an assignment of firm_1 only; an institution or a firm cannot look firms up
    assert [f["id"] for f in world.get("coord_b", f"/firms?id={firm_1}&id={firm_2}").get_json()] == [firm_1]
    assert world.get("coord_a", f"/firms?id={world.org['inst_1']}").get_json() == []  # firms only
    assert world.get("inst_1", f"/firms?id={firm_1}").status_code == 403
    assert world.get("firm_1", f"/firms?id={firm_2}").status_code == 403
    assert_error(world.get("coord_a", "/firms"), 422, "query.id")
    too_many = "&".join(f"id={uuid.uuid4()}" for _ in range(101))
    assert_error(world.get("coord_a", f"/firms?{too_many}"), 422, "query.id")
