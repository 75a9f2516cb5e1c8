"""``POST /assignments/bulk``: many assignments of one firm in one request, all or none, under the rules of
``POST /assignments``; every bad item named by its position, field and reason; safe to retry with an
Idempotency-Key."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from intake.adapters import orm
from intake.service_layer import assignments_bulk

from . import test_intake_api
from .test_intake_api import World, assignment_body, firm_body

world = test_intake_api.world  # coordinators, institutions, firms with profiles, workspaces ws_a and ws_b

COMPARED = ("workspace_id", "title", "description", "period", "accepted_levels", "required_skills",
            "nice_to_have_skills", "min_teams", "max_teams", "theme", "kind", "mode", "preferred_institutions",
            "preferred_levels", "status", "firm_id", "batch_id", "routed_from_workspace_id")


def items(w: World, n: int, **over: Any) -> list[dict[str, Any]]:
    return [assignment_body(w.ids["ws_a"], title=f"Opdracht {i}", **over) for i in range(n)]


def outbox_types(w: World) -> list[str]:
    return [row.type for row in w.outbox_rows()]


def test_every_item_is_stored_as_a_single_post_would_store_it(world: World) -> None:
    before = outbox_types(world)
    body = items(world, 3, theme="webshop", mode="hybrid", preferred_levels=["WO"],
                 preferred_institutions=[world.org["inst_2"], world.org["inst_2"]])
    resp = world.post("firm_1", "/assignments/bulk", {"assignments": body})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    out = resp.get_json()
    assert out["count"] == 3 and [a["row"] for a in out["assignments"]] == [0, 1, 2]
    assert all(a["status"] == "submitted" and a["routing"]["outcome"] == "accepted" for a in out["assignments"])
    single = world.created("firm_1", "/assignments", body[0])
    for item, made in zip(body, out["assignments"], strict=True):
        stored = world.get("firm_1", f"/assignments/{made['id']}").get_json()
        assert stored["title"] == item["title"]
        assert {k: stored[k] for k in COMPARED} == {k: single[k] for k in COMPARED} | {"title": item["title"]}
    assert stored["preferred_institutions"] == [world.org["inst_2"]]  # each wish once
    # one assignment.submitted per item, in the same transaction (then one more for the single POST)
    assert outbox_types(world)[len(before):] == ["assignment.submitted"] * 4


def test_a_firm_outside_every_working_area_is_referred_per_item(world: World) -> None:
    world.add_org("firm_far", "Fotostudio Verweg", "entrepreneur", [])
    world.created("firm_far", "/firm", firm_body(kvk_number="87654321", municipality="GM0402"))
    resp = world.post("firm_far", "/assignments/bulk", {"assignments": items(world, 2)})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert [a["status"] for a in resp.get_json()["assignments"]] == ["referred", "referred"]
    assert [a["routing"]["outcome"] for a in resp.get_json()["assignments"]] == ["referred", "referred"]
    assert outbox_types(world).count("firm.referred") == 2


def test_the_messages_leave_in_the_items_order_each_naming_its_assignment(world: World) -> None:
    before = len(world.outbox_rows())
    resp = world.post("firm_1", "/assignments/bulk", {"assignments": items(world, 5)})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    made = [a["id"] for a in resp.get_json()["assignments"]]
    sent = world.outbox_rows()[before:]
    assert [row.type for row in sent] == ["assignment.submitted"] * 5
    assert [json.loads(row.body)["payload"]["assignment_id"] for row in sent] == made


def test_an_organisation_that_is_not_an_institution_is_no_wish(world: World) -> None:
    for other in (world.org["firm_1"], world.org["coord_a"]):  # the firm itself, a coordinator
        resp = world.post("firm_1", "/assignments/bulk",
                          {"assignments": items(world, 1, preferred_institutions=[world.org["inst_2"], other])})
        assert resp.status_code == 422, resp.get_data(as_text=True)
        assert [(e["row"], e["field"]) for e in resp.get_json()["errors"]] == [
            (0, "assignments.0.preferred_institutions.1")]


BAD_ITEMS = [
    # (what is wrong, the item's changes, the field named)
    ("a required field missing", {"title": None}, "title"),
    ("a schema rule", {"accepted_levels": ["PhD"]}, "accepted_levels.0"),
    ("an unknown field", {"colour": "blue"}, "colour"),
    ("not an object", "text", "_schema"),
    ("an unknown workspace", {"workspace_id": str(uuid.uuid4())}, "workspace_id"),
    ("a period outside the calendar", {"period": "2031-Q9"}, "period"),
    ("fewer teams at most than at least", {"min_teams": 3, "max_teams": 2}, "min_teams"),
    ("a preferred level not accepted", {"accepted_levels": ["HBO"], "preferred_levels": ["WO"]},
     "preferred_levels.0"),
    ("an unknown institution wished", {"preferred_institutions": [str(uuid.uuid4())]}, "preferred_institutions.0"),
]


@pytest.mark.parametrize(("what", "change", "field"), BAD_ITEMS, ids=[b[0] for b in BAD_ITEMS])
def test_one_bad_item_stores_nothing_and_is_named(world: World, what: str, change: Any, field: str) -> None:
    body: list[Any] = items(world, 4)
    if isinstance(change, dict):
        body[2] = {k: v for k, v in {**body[2], **change}.items() if v is not None}
    else:
        body[2] = change
    before = world.snapshot()
    resp = world.post("firm_1", "/assignments/bulk", {"assignments": body}, headers={"Accept-Language": "en"})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    errors = resp.get_json()["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(2, f"assignments.2.{field}")], errors
    assert all(e["reason"] for e in errors)
    assert world.snapshot() == before


def test_every_bad_item_is_named_in_dutch_by_default(world: World) -> None:
    body = items(world, 5)
    body[1]["min_teams"] = 0
    body[3]["period"] = "2031-Q9"
    body[4].pop("title")
    before = world.snapshot()
    resp = world.post("firm_1", "/assignments/bulk", {"assignments": body})
    assert resp.status_code == 422
    out = resp.get_json()
    assert [(e["row"], e["field"]) for e in out["errors"]] == [
        (1, "assignments.1.min_teams"), (3, "assignments.3.period"), (4, "assignments.4.title")]
    assert out["message"] == "3 problemen in 3 opdrachten; er is niets opgeslagen."
    assert "Verplicht veld; het ontbreekt." in [e["reason"] for e in out["errors"]]
    assert world.snapshot() == before


@pytest.mark.parametrize(("body", "field"), [
    ({"assignments": []}, "assignments"),
    ({"assignments": "all of them"}, "assignments"),
    ({}, "assignments"),
    ({"assignments": [{}] * (assignments_bulk.MAX_ITEMS + 1)}, "assignments"),
], ids=["empty", "not a list", "missing", "too many"])
def test_a_bad_request_as_a_whole_stores_nothing(world: World, body: dict[str, Any], field: str) -> None:
    before = world.snapshot()
    resp = world.post("firm_1", "/assignments/bulk", body)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert field in [e["field"] for e in resp.get_json()["errors"]]
    assert world.snapshot() == before


def test_a_firm_without_a_profile_is_told_to_register_first(world: World) -> None:
    world.add_org("firm_new", "Nieuwe Zaak", "entrepreneur", [])
    before = world.snapshot()
    resp = world.post("firm_new", "/assignments/bulk", {"assignments": items(world, 2)})
    assert resp.status_code == 422
    assert [e["field"] for e in resp.get_json()["errors"]] == ["firm"]
    assert world.snapshot() == before


@pytest.mark.parametrize("who", ["inst_1", "coord_a", None])
def test_only_a_firm_submits_in_bulk(world: World, who: str | None) -> None:
    before = world.snapshot()
    resp = world.post(who, "/assignments/bulk", {"assignments": items(world, 1)})
    assert resp.status_code == (401 if who is None else 403)
    assert world.snapshot() == before


def test_a_retry_with_the_same_idempotency_key_stores_nothing_twice(world: World) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"assignments": items(world, 3)}
    first = world.post("firm_1", "/assignments/bulk", body, headers=headers)
    assert first.status_code == 201
    after_first = world.snapshot()
    again = world.post("firm_1", "/assignments/bulk", body, headers=headers)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert world.snapshot() == after_first
    other = world.post("firm_1", "/assignments/bulk", {"assignments": items(world, 2)}, headers=headers)
    assert other.status_code == 422  # the key reused for another request
    assert world.snapshot() == after_first


def test_a_large_request_is_accepted_beyond_the_usual_body_cap(world: World) -> None:
    body = {"assignments": items(world, 2000, description="x" * 500)}
    assert len(json.dumps(body)) > 1024 * 1024
    resp = world.post("firm_1", "/assignments/bulk", body)
    assert resp.status_code == 201, resp.get_data(as_text=True)[:500]
    with world.infra.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(orm.Assignment.__table__).where(
            orm.Assignment.title.like("Opdracht %"))).scalar_one()
    assert stored == 2000
