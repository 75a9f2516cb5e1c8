"""Firm profiles, working-area routing, referral to support schemes, and handover between workspaces."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from intake.adapters import orm
from intake.entrypoints import cli
from intake.entrypoints.handlers import HANDLERS
from werkplaats_shared.contracts import make_envelope, parse_envelope

from . import test_intake_api
from .test_intake_api import World, assert_error, assignment_body, batch_body, firm_body, workspace_body

world = test_intake_api.world  # two coordinators (ws_a, ws_b over GM0363/GM0384), institutions, two firms


def _outbox(world: World, message_type: str) -> list[dict[str, object]]:
    return [json.loads(r.body)["payload"] for r in world.outbox_rows() if r.type == message_type]


def test_firm_profile_validates_kvk_and_places_the_firm(world: World) -> None:
    profile = world.get("firm_1", "/firm")
    assert profile.status_code == 200
    assert profile.get_json()["workspace_id"] == world.ids["ws_a"]  # the oldest workspace covering GM0363
    before = world.snapshot()
    assert_error(world.post("firm_1", "/firm", firm_body(kvk_number="99999999")), 409, "kvk_number")
    world.add_org("firm_3", "Drukkerij Derde", "entrepreneur", [])
    for bad in ("1234567a", "00000000", "1234567", "١٢٣٤٥٦٧٨"):
        assert_error(world.post("firm_3", "/firm", firm_body(kvk_number=bad)), 422, "kvk_number")
    assert_error(world.post("firm_3", "/firm", firm_body(kvk_number="12345671")), 409, "kvk_number")
    assert_error(world.post("firm_3", "/firm", firm_body(kvk_number="12345679", municipality="0363")), 422,
                 "municipality")
    assert_error(world.get("firm_3", "/firm"), 404)
    assert_error(world.get("coord_a", "/firm"), 403)
    grown = {name: before["counts"][name] + 1 for name in ("organisations", "api_keys", "outbox")}  # firm_3's key
    assert world.snapshot()["counts"] == {**before["counts"], **grown}


def test_moving_the_firm_needs_the_etag_and_changes_its_workspace(world: World) -> None:
    ws_c = world.created("coord_b", "/workspaces", workspace_body(name="Werkplaats Zwolle", municipalities=["GM0193"]))
    etag = world.get("firm_1", "/firm").headers["ETag"]
    assert_error(world.call("firm_1", "PATCH", "/firm", {"municipality": "GM0193"}), 428)
    moved = world.call("firm_1", "PATCH", "/firm", {"municipality": "GM0193"}, headers={"If-Match": etag})
    assert moved.status_code == 200 and moved.get_json()["workspace_id"] == ws_c["id"]


def test_an_assignment_for_a_workspace_that_does_not_serve_the_firm_is_routed(world: World) -> None:
    ws_c = world.created("coord_b", "/workspaces", workspace_body(name="Werkplaats Zwolle", municipalities=["GM0193"]))
    resp = world.post("firm_1", "/assignments", assignment_body(ws_c["id"], theme="webshop"))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["routing"]["outcome"] == "routed"
    assert body["workspace_id"] == body["routing"]["workspace_id"] == world.ids["ws_a"]
    assert body["routed_from_workspace_id"] == ws_c["id"] and body["status"] == "submitted"
    event = _outbox(world, "assignment.submitted")[-1]
    assert event["assignment_id"] == body["id"] and event["routed_from_workspace_id"] == ws_c["id"]
    assert "title" not in event  # ids and attributes only


def test_a_firm_no_workspace_serves_is_referred_and_notified_never_dropped(world: World) -> None:
    scheme = {"name_nl": "Landelijk loket digitalisering (voorbeeld)", "name_en": "National digital desk (example)",
              "url": "https://example.org/loket", "themes": []}
    cyber = {"name_nl": "Regeling cyberweerbaarheid (voorbeeld)", "name_en": "Cyber resilience scheme (example)",
             "url": "https://example.org/cyber", "themes": ["cyber_security"]}
    own = f"/workspaces/{world.ids['ws_a']}/referral-schemes"
    assert world.call("coord_a", "PUT", f"{own}/loket", scheme).status_code == 200
    assert world.call("coord_a", "PUT", f"{own}/cyber", cyber).status_code == 200
    etag = world.get("firm_2", "/firm").headers["ETag"]
    moved = world.call("firm_2", "PATCH", "/firm", {"municipality": "GM0014"}, headers={"If-Match": etag})
    assert moved.status_code == 200
    assert world.get("firm_2", "/firm").get_json()["workspace_id"] is None
    resp = world.post("firm_2", "/assignments", assignment_body(world.ids["ws_a"], theme="webshop"))
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["status"] == "referred" and body["routing"]["outcome"] == "referred"
    referrals = world.get("firm_2", "/referrals").get_json()
    assert len(referrals) == 1 and referrals[0]["assignment_id"] == body["id"]
    assert referrals[0]["scheme_codes"] == ["loket"]  # the cyber scheme does not help with a webshop
    assert [r["id"] for r in world.get("coord_a", "/referrals").get_json()] == [referrals[0]["id"]]
    assert world.get("coord_b", "/referrals").get_json() == []
    assert world.get("firm_1", "/referrals").get_json() == []
    event = _outbox(world, "firm.referred")[-1]
    assert event == {"referral_id": referrals[0]["id"], "firm_id": world.org["firm_2"], "assignment_id": body["id"],
                     "from_workspace_id": world.ids["ws_a"], "coordinator_id": world.org["coord_a"],
                     "scheme_codes": ["loket"], "schemes": [{"code": "loket", "label_nl": scheme["name_nl"],
                                                             "label_en": scheme["name_en"], "url": scheme["url"]}],
                     "reason": "outside_working_area"}
    # a referred assignment cannot be put in a batch
    assert_error(world.post("coord_a", "/batches", batch_body(world.ids["ws_a"], [body["id"]])), 409)


def test_a_workspaces_referrals_are_listed_a_page_at_a_time_newest_first(world: World) -> None:
    etag = world.get("firm_2", "/firm").headers["ETag"]
    assert world.call("firm_2", "PATCH", "/firm", {"municipality": "GM0014"},
                      headers={"If-Match": etag}).status_code == 200
    made = [world.post("firm_2", "/assignments", assignment_body(world.ids["ws_a"], title=f"Webshop {n}"))
            .get_json()["id"] for n in range(3)]
    resp = world.get("coord_a", f"/referrals?workspace_id={world.ids['ws_a']}&newest_first=true&page_size=2")
    assert resp.status_code == 200
    assert json.loads(resp.headers["X-Pagination"])["total"] == 3
    second = world.get("coord_a", f"/referrals?workspace_id={world.ids['ws_a']}&newest_first=true&page_size=2"
                                  "&page=2").get_json()
    assert [r["assignment_id"] for r in [*resp.get_json(), *second]] == list(reversed(made))
    assert [r["assignment_id"] for r in world.get("coord_a", "/referrals").get_json()] == made  # oldest first
    assert world.get("coord_a", f"/referrals?workspace_id={world.ids['ws_b']}").get_json() == []
    assert world.get("coord_b", f"/referrals?workspace_id={world.ids['ws_a']}").get_json() == []
    assert_error(world.get("coord_a", "/referrals?workspace_id="), 422, "query.workspace_id")
    assert_error(world.get("coord_a", "/referrals?newest_first=perhaps"), 422, "query.newest_first")


def test_a_workspace_scheme_is_kept_by_its_own_coordinator(world: World) -> None:
    good = {"name_nl": "Loket", "name_en": "Desk", "url": "https://example.org/", "themes": ["ai"]}
    own = f"/workspaces/{world.ids['ws_a']}/referral-schemes"
    assert_error(world.call("firm_1", "PUT", f"{own}/loket", good), 403)
    assert_error(world.call("coord_a", "PUT", f"{own}/loket", {**good, "url": "http://example.org/"}), 422, "url")
    assert_error(world.call("coord_a", "PUT", f"{own}/Bad Code", good), 422, "code")
    assert_error(world.call("coord_a", "PUT", f"{own}/loket", {**good, "themes": ["gardening"]}), 422, "themes.0")
    assert world.get("coord_a", "/referral-schemes").get_json() == []
    saved = world.call("coord_a", "PUT", f"{own}/loket", good)
    assert saved.status_code == 200
    assert saved.get_json() == {**good, "active": True, "code": "loket", "workspace_id": world.ids["ws_a"],
                                "national": False}
    assert [s["code"] for s in world.get("coord_a", "/referral-schemes").get_json()] == ["loket"]
    # not another coordinator's, nor a firm's the workspace never referred
    assert world.get("coord_b", "/referral-schemes").get_json() == []
    assert world.get("firm_1", "/referral-schemes").get_json() == []


def test_submitting_needs_a_firm_profile(world: World) -> None:
    world.add_org("firm_3", "Drukkerij Derde", "entrepreneur", [])
    before = world.snapshot()
    assert_error(world.post("firm_3", "/assignments", assignment_body(world.ids["ws_a"])), 422, "firm")
    assert world.snapshot() == before


def test_handover_moves_exactly_the_open_work_and_is_audited(world: World) -> None:
    ws_c = world.created("coord_b", "/workspaces", workspace_body(name="Werkplaats Opvolger"))
    world.created("coord_a", "/batches", batch_body(world.ids["ws_a"], [world.ids["a2"]]))
    resp = world.post("coord_a", "/handovers", {"from_workspace_id": world.ids["ws_a"], "to_workspace_id": ws_c["id"],
                                                "reason": "regionaal programma stopt"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    handover = resp.get_json()
    assert sorted(handover["firm_ids"]) == sorted([world.org["firm_1"], world.org["firm_2"]])
    # a1 and a1_q2 were open in ws_a; a2 is in a batch and a1_ws_b belongs to another workspace
    assert sorted(handover["assignment_ids"]) == sorted([world.ids["a1"], world.ids["a1_q2"]])
    workspaces = {a["id"]: a["workspace_id"] for a in world.get("firm_1", "/assignments").get_json()}
    assert workspaces[world.ids["a1"]] == workspaces[world.ids["a1_q2"]] == ws_c["id"]
    assert workspaces[world.ids["a1_ws_b"]] == world.ids["ws_b"]
    assert world.get("firm_2", f"/assignments/{world.ids['a2']}").get_json()["workspace_id"] == world.ids["ws_a"]
    assert world.get("firm_1", "/firm").get_json()["workspace_id"] == ws_c["id"]
    assert [h["id"] for h in world.get("coord_b", "/handovers").get_json()] == [handover["id"]]
    assert [h["id"] for h in world.get("coord_a", "/handovers").get_json()] == [handover["id"]]
    with world.infra.engine.connect() as conn:
        entries = conn.execute(sa.select(orm.AuditEntry).where(orm.AuditEntry.action == "handover")).all()
    assert len(entries) == 1
    assert entries[0].actor_organisation_id == world.org["coord_a"]
    assert entries[0].details == {"from_workspace_id": world.ids["ws_a"], "to_workspace_id": ws_c["id"],
                                  "firms": 2, "assignments": 2, "assignments_rerun_pending": 0}


def test_a_handover_that_cannot_be_done_moves_nothing(world: World) -> None:
    other_periods = workspace_body(name="Ander rooster", periods=[
        {"code": "2026-S1", "starts_on": "2026-02-01", "ends_on": "2026-06-30"}])
    ws_c = world.created("coord_b", "/workspaces", other_periods)
    before = world.snapshot()
    cases = [
        ({"from_workspace_id": world.ids["ws_b"], "to_workspace_id": ws_c["id"]}, "from_workspace_id"),
        ({"from_workspace_id": world.ids["ws_a"], "to_workspace_id": world.ids["ws_a"]}, "to_workspace_id"),
        ({"from_workspace_id": world.ids["ws_a"], "to_workspace_id": "nope"}, "to_workspace_id"),
        ({"from_workspace_id": world.ids["ws_a"], "to_workspace_id": world.ids["ws_b"], "firm_ids": ["x"]},
         "firm_ids.0"),
        ({"from_workspace_id": world.ids["ws_a"], "to_workspace_id": ws_c["id"]}, "to_workspace_id"),  # periods
    ]
    for body, field in cases:
        assert_error(world.post("coord_a", "/handovers", {**body, "reason": "test"}), 422, field)
    assert_error(world.post("firm_1", "/handovers", {"from_workspace_id": world.ids["ws_a"],
                                                     "to_workspace_id": world.ids["ws_b"], "reason": "x"}), 403)
    assert world.snapshot() == before
    assert world.get("coord_a", "/handovers").get_json() == []


def _handover(world: World, who: str, body: dict[str, object]) -> dict[str, Any]:
    resp = world.post(who, "/handovers", {"reason": "regionaal programma stopt", **body})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    created: dict[str, Any] = resp.get_json()
    return created


def _deliver(world: World, message_type: str, payload: dict[str, Any]) -> None:
    """An event from matching or scheduling, applied as intake's consumer applies it."""
    envelope = parse_envelope(json.loads(make_envelope(message_type, 1, payload).to_json()))
    with world.infra.session_factory.begin() as session:
        HANDLERS[message_type](session, envelope)


def test_handover_takes_the_work_a_firm_sent_to_a_second_workspace_covering_it(world: World) -> None:
    # ws_b covers firm_1 too; firm_1 is placed with ws_a (the oldest) but sent a1_ws_b to ws_b
    ws_c = world.created("coord_b", "/workspaces", workspace_body(name="Werkplaats Opvolger"))
    handover = _handover(world, "coord_b", {"from_workspace_id": world.ids["ws_b"], "to_workspace_id": ws_c["id"],
                                            "firm_ids": [world.org["firm_1"]]})
    assert (handover["firm_ids"], handover["assignment_ids"], handover["rerun_pending_assignment_ids"]) == (
        [world.org["firm_1"]], [world.ids["a1_ws_b"]], [])
    workspaces = {a["id"]: a["workspace_id"] for a in world.get("firm_1", "/assignments").get_json()}
    assert workspaces == {world.ids["a1"]: world.ids["ws_a"], world.ids["a1_q2"]: world.ids["ws_a"],
                          world.ids["a1_ws_b"]: ws_c["id"]}
    assert world.get("firm_1", "/firm").get_json()["workspace_id"] == world.ids["ws_a"]
    assert [a["id"] for a in world.get("coord_b", f"/assignments?workspace_id={ws_c['id']}").get_json()] == [
        world.ids["a1_ws_b"]]


def test_handover_takes_the_work_of_a_firm_placed_before_its_workspace_existed(world: World) -> None:
    world.add_org("firm_3", "Drukkerij Derde", "entrepreneur", [])
    world.created("firm_3", "/firm", firm_body(kvk_number="11112222", municipality="GM0014"))
    assert world.get("firm_3", "/firm").get_json()["workspace_id"] is None  # no workspace serves Groningen yet
    groningen = world.created("coord_b", "/workspaces", workspace_body(name="Werkplaats Groningen",
                                                                         municipalities=["GM0014"]))
    work = world.created("firm_3", "/assignments", assignment_body(groningen["id"]))
    ws_c = world.created("coord_b", "/workspaces", workspace_body(name="Werkplaats Opvolger"))
    handover = _handover(world, "coord_b", {"from_workspace_id": groningen["id"], "to_workspace_id": ws_c["id"]})
    assert (handover["firm_ids"], handover["assignment_ids"]) == ([world.org["firm_3"]], [work["id"]])
    assert world.get("firm_3", f"/assignments/{work['id']}").get_json()["workspace_id"] == ws_c["id"]
    assert world.get("firm_3", "/firm").get_json()["workspace_id"] is None


def test_handover_moves_unmatched_work_out_of_its_batch_and_reports_declined_work_left_for_the_re_run(
        world: World) -> None:
    batch = world.created("coord_a", "/batches", batch_body(world.ids["ws_a"], [world.ids["a1"], world.ids["a2"]]))
    run = {"run_id": "run-1", "batch_id": batch["id"], "workspace_id": world.ids["ws_a"],
           "coordinator_id": world.org["coord_a"], "period": "2025-Q1",
           "matches": [{"match_id": "m1", "assignment_id": world.ids["a2"], "team_id": world.ids["t1"],
                        "firm_id": world.org["firm_2"], "institution_id": world.org["inst_1"], "score": 0.8}],
           "unmatched_assignment_ids": [world.ids["a1"]]}
    _deliver(world, "matches.published", run)
    _deliver(world, "match.responded", {
        "match_id": "m1", "run_id": "run-1", "batch_id": batch["id"], "assignment_id": world.ids["a2"],
        "team_id": world.ids["t1"], "firm_id": world.org["firm_2"], "response": "declined",
        "responded_at": "2025-01-20T10:00:00+00:00"})
    ws_c = world.created("coord_b", "/workspaces", workspace_body(name="Werkplaats Opvolger"))

    handover = _handover(world, "coord_a", {"from_workspace_id": world.ids["ws_a"], "to_workspace_id": ws_c["id"]})

    assert sorted(handover["assignment_ids"]) == sorted([world.ids["a1"], world.ids["a1_q2"]])
    assert handover["rerun_pending_assignment_ids"] == [world.ids["a2"]]
    a1 = world.get("firm_1", f"/assignments/{world.ids['a1']}").get_json()
    assert (a1["workspace_id"], a1["batch_id"], a1["status"]) == (ws_c["id"], None, "unmatched")
    a2 = world.get("firm_2", f"/assignments/{world.ids['a2']}").get_json()
    assert (a2["workspace_id"], a2["batch_id"], a2["status"]) == (world.ids["ws_a"], batch["id"], "declined")
    assert [a["id"] for a in world.get("coord_a", f"/batches/{batch['id']}").get_json()["assignments"]] == [
        world.ids["a2"]]
    listed = world.get("coord_b", "/handovers").get_json()
    assert [(h["id"], h["rerun_pending_assignment_ids"]) for h in listed] == [(handover["id"], [world.ids["a2"]])]
    with world.infra.engine.connect() as conn:
        details = conn.execute(sa.select(orm.AuditEntry.details).where(orm.AuditEntry.action == "handover")).scalar()
    assert details == {"from_workspace_id": world.ids["ws_a"], "to_workspace_id": ws_c["id"], "firms": 2,
                       "assignments": 2, "assignments_rerun_pending": 1}
    # the receiving coordinator batches the moved work again
    again = world.created("coord_b", "/batches", batch_body(ws_c["id"], [world.ids["a1"]]))
    assert [(a["id"], a["status"]) for a in again["assignments"]] == [(world.ids["a1"], "in_batch")]


def test_one_tenant_cannot_rewrite_the_schemes_in_another_tenants_referral_mail(
        world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19, item 7: coord_b rewrote the link in coord_a's referral mail with PUT /referral-schemes/{code}."""
    own_a, own_b = (f"/workspaces/{world.ids[ws]}/referral-schemes" for ws in ("ws_a", "ws_b"))
    alfa = {"name_nl": "Digitaal loket Alfa", "name_en": "Digital desk Alfa", "url": "https://alfa.example.nl/loket"}
    outside = {"name_nl": "Loket", "name_en": "Desk", "url": "https://elders.example.com/"}
    assert world.call("coord_a", "PUT", f"{own_a}/loket", alfa).status_code == 200
    # the probe's request, and the same on A's workspace: refused, A's scheme unchanged
    assert world.call("coord_b", "PUT", "/referral-schemes/loket", outside).status_code in (404, 405)
    assert_error(world.call("coord_b", "PUT", f"{own_a}/loket", outside), 404)
    # B's own scheme of the same code is B's alone
    assert world.call("coord_b", "PUT", f"{own_b}/loket", outside).status_code == 200
    # the operator's national list, from the admin command
    monkeypatch.setenv("WERKPLAATS_DATABASE_URL", world.infra.settings.database_url)
    monkeypatch.setenv("WERKPLAATS_DATA_DIR", world.infra.settings.data_dir)
    cli.admin(["put-national-scheme", "cyberhulp", "--name-nl", "Cyberhulp voor het mkb", "--name-en",
               "Cyber help for small firms", "--url", "https://cyber.example.nl/", "--theme", "webshop"])
    assert json.loads(capsys.readouterr().out)["national"] is True
    with pytest.raises(SystemExit):
        cli.admin(["put-national-scheme", "onveilig", "--name-nl", "x", "--name-en", "x", "--url", "http://x.nl/"])
    capsys.readouterr()
    # a workspace cannot take (and so shadow) a national code
    assert_error(world.call("coord_a", "PUT", f"{own_a}/cyberhulp", outside), 409, "code")
    assert {(s["code"], s["national"], s["url"]) for s in world.get("coord_a", "/referral-schemes").get_json()} == {
        ("loket", False, alfa["url"]), ("cyberhulp", True, "https://cyber.example.nl/")}
    # a firm referred from A's workspace is sent to A's scheme and the national one, never B's link
    etag = world.get("firm_2", "/firm").headers["ETag"]
    moved = world.call("firm_2", "PATCH", "/firm", {"municipality": "GM0014"}, headers={"If-Match": etag})
    assert moved.status_code == 200
    referred = world.post("firm_2", "/assignments", assignment_body(world.ids["ws_a"], theme="webshop"))
    assert referred.get_json()["status"] == "referred"
    event = _outbox(world, "firm.referred")[-1]
    assert event["schemes"] == [
        {"code": "cyberhulp", "label_nl": "Cyberhulp voor het mkb", "label_en": "Cyber help for small firms",
         "url": "https://cyber.example.nl/"},
        {"code": "loket", "label_nl": alfa["name_nl"], "label_en": alfa["name_en"], "url": alfa["url"]}]
    assert {(s["code"], s["url"]) for s in world.get("firm_2", "/referral-schemes").get_json()} == {
        ("loket", alfa["url"]), ("cyberhulp", "https://cyber.example.nl/")}
    # every change is audited, with what changed (and nothing of the refused ones)
    assert world.call("coord_a", "PUT", f"{own_a}/loket", {**alfa, "active": False}).status_code == 200
    with world.infra.engine.connect() as conn:
        entries = conn.execute(sa.select(orm.AuditEntry).where(orm.AuditEntry.object_type == "referral_scheme")
                               .order_by(orm.AuditEntry.id)).all()
    assert [(e.action, e.actor_organisation_id, e.details["scope"], e.details["code"]) for e in entries] == [
        ("referral_scheme.created", world.org["coord_a"], world.ids["ws_a"], "loket"),
        ("referral_scheme.created", world.org["coord_b"], world.ids["ws_b"], "loket"),
        ("referral_scheme.created", "operator", "national", "cyberhulp"),
        ("referral_scheme.updated", world.org["coord_a"], world.ids["ws_a"], "loket")]
    assert entries[-1].details["changes"] == {"active": {"from": True, "to": False}}
