"""Retried creations, optimistic concurrency on updates, withdrawal and list filters in intake."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from intake.adapters import orm
from werkplaats_shared.db import utcnow

from . import test_intake_api
from .test_intake_api import World, assert_error, assignment_body, batch_body

world = test_intake_api.world  # the same fixture: two coordinators, institutions and firms


def test_a_retried_post_with_the_same_idempotency_key_creates_once(world: World) -> None:
    body = assignment_body(world.ids["ws_a"], title="Nieuwe huisstijl")
    first = world.post("firm_1", "/assignments", body, headers={"Idempotency-Key": "k-1"})
    again = world.post("firm_1", "/assignments", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    with world.infra.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(orm.Assignment.__table__)
                         .where(orm.Assignment.title == "Nieuwe huisstijl")).scalar_one()
    assert n == 1
    # another organisation may use the same key for its own request
    other = world.post("firm_2", "/assignments", body, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]


def test_reusing_a_key_for_another_request_is_refused_and_stores_nothing(world: World) -> None:
    world.post("firm_1", "/assignments", assignment_body(world.ids["ws_a"]), headers={"Idempotency-Key": "k-2"})
    before = world.snapshot()
    resp = world.post("firm_1", "/assignments", assignment_body(world.ids["ws_a"], title="Anders"),
                      headers={"Idempotency-Key": "k-2"})
    assert_error(resp, 422, "headers.Idempotency-Key")
    assert world.snapshot() == before


def test_a_failed_request_releases_its_key(world: World) -> None:
    bad = world.post("firm_1", "/assignments", assignment_body(world.ids["ws_a"], period="1999-Q9"),
                     headers={"Idempotency-Key": "k-3"})
    assert bad.status_code == 422
    good = world.post("firm_1", "/assignments", assignment_body(world.ids["ws_a"]),
                      headers={"Idempotency-Key": "k-3"})
    assert good.status_code == 201


def test_a_request_still_in_progress_answers_409(world: World) -> None:
    import hashlib
    import json

    body = assignment_body(world.ids["ws_a"])
    raw = json.dumps(body).encode()
    fingerprint = hashlib.sha256(b"POST /assignments\n" + raw).hexdigest()
    with world.infra.engine.begin() as conn:
        conn.execute(orm.idempotency.insert().values(organisation_id=world.org["firm_1"], key="k-4",
                                                     fingerprint=fingerprint, created_at=utcnow()))
    resp = world.client.post("/assignments", data=raw, headers={
        "Authorization": f"Bearer {world.keys['firm_1']}", "Content-Type": "application/json",
        "Idempotency-Key": "k-4"})
    assert_error(resp, 409, "headers.Idempotency-Key")


def test_old_keys_expire(world: World) -> None:
    body = assignment_body(world.ids["ws_a"])
    first = world.post("firm_1", "/assignments", body, headers={"Idempotency-Key": "k-5"})
    with world.infra.engine.begin() as conn:
        conn.execute(orm.idempotency.update().values(created_at=utcnow() - timedelta(days=3)))
    later = world.post("firm_1", "/assignments", body, headers={"Idempotency-Key": "k-5"})
    assert later.status_code == 201 and later.get_json()["id"] != first.get_json()["id"]


def test_updates_need_the_current_etag(world: World) -> None:
    path = f"/assignments/{world.ids['a1']}"
    got = world.get("firm_1", path)
    etag = got.headers["ETag"]
    assert_error(world.call("firm_1", "PATCH", path, {"title": "Zonder If-Match"}), 428)
    stale = world.call("firm_1", "PATCH", path, {"title": "Oud"}, headers={"If-Match": '"0000"'})
    assert_error(stale, 412)
    assert world.get("firm_1", path).get_json()["title"] == got.get_json()["title"]
    ok = world.call("firm_1", "PATCH", path, {"title": "Nieuwe titel", "max_teams": 3},
                    headers={"If-Match": etag})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert ok.get_json()["title"] == "Nieuwe titel" and ok.get_json()["max_teams"] == 3
    assert ok.headers["ETag"] != etag
    # the old ETag no longer matches: a concurrent editor cannot overwrite the change
    assert_error(world.call("firm_1", "PATCH", path, {"title": "Verloren update"}, headers={"If-Match": etag}),
                 412)


def test_update_rules_apply_and_others_get_404(world: World) -> None:
    path = f"/assignments/{world.ids['a1']}"
    etag = world.get("firm_1", path).headers["ETag"]
    before = world.snapshot()
    assert_error(world.call("firm_1", "PATCH", path, {"min_teams": 5}, headers={"If-Match": etag}), 422,
                 "min_teams")
    assert_error(world.call("firm_1", "PATCH", path, {"period": "2031-Q1"}, headers={"If-Match": etag}), 422,
                 "period")
    assert_error(world.call("firm_1", "PATCH", path, {"status": "matched"}, headers={"If-Match": etag}), 422,
                 "status")
    assert_error(world.call("firm_2", "PATCH", path, {"title": "X"}, headers={"If-Match": etag}), 404)
    assert world.snapshot() == before
    world.created("coord_a", "/batches", batch_body(world.ids["ws_a"], [world.ids["a1"]]))
    etag = world.get("firm_1", path).headers["ETag"]
    assert_error(world.call("firm_1", "PATCH", path, {"title": "Te laat"}, headers={"If-Match": etag}), 409,
                 "status")


def test_team_updates_use_etags_too(world: World) -> None:
    path = f"/teams/{world.ids['t1']}"
    etag = world.get("inst_1", path).headers["ETag"]
    ok = world.call("inst_1", "PATCH", path, {"skills": ["ux", "python", "ux", "data"]}, headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.get_json()["skills"] == ["data", "python", "ux"]
    assert_error(world.call("inst_2", "PATCH", path, {"size": 2}, headers={"If-Match": etag}), 404)


def test_withdrawal_follows_the_lifecycle(world: World) -> None:
    path = f"/assignments/{world.ids['a2']}/withdraw"
    resp = world.post("firm_2", path)
    assert resp.status_code == 200 and resp.get_json()["status"] == "withdrawn"
    assert_error(world.post("firm_2", path), 409, "status")
    assert_error(world.post("firm_1", path), 404)
    assert_error(world.post("inst_1", path), 403)


def test_lists_filter_by_status_period_and_level(world: World) -> None:
    world.post("firm_1", f"/assignments/{world.ids['a1_q2']}/withdraw")
    mine = world.get("firm_1", "/assignments?status=withdrawn").get_json()
    assert [a["id"] for a in mine] == [world.ids["a1_q2"]]
    q1 = world.get("firm_1", "/assignments?period=2025-Q1").get_json()
    assert {a["id"] for a in q1} == {world.ids["a1"], world.ids["a1_ws_b"]}
    assert world.get("coord_a", "/teams?level=WO").get_json()[0]["id"] == world.ids["t2"]
    assert_error(world.get("firm_1", "/assignments?status=lost"), 422, "query.status")


def test_a_change_keeps_every_preferred_level_among_the_accepted_ones(world: World) -> None:
    path = f"/assignments/{world.ids['a1']}"  # accepts HBO and WO
    wishes = {"preferred_levels": ["WO", "HBO", "WO"], "preferred_institutions": [world.org["inst_2"]]}
    ok = world.call("firm_1", "PATCH", path, wishes, headers={"If-Match": world.get("firm_1", path).headers["ETag"]})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert (ok.get_json()["preferred_levels"], ok.get_json()["preferred_institutions"]) == (
        ["WO", "HBO"], [world.org["inst_2"]])
    etag, stored = ok.headers["ETag"], ok.get_json()
    before = world.snapshot()

    narrowed = world.call("firm_1", "PATCH", path, {"accepted_levels": ["HBO"]}, headers={"If-Match": etag})
    assert assert_error(narrowed, 422, "accepted_levels")["errors"] == [
        {"field": "accepted_levels", "reason": "Een voorkeursniveau moet ook een geaccepteerd niveau zijn."}]
    english = world.call("firm_1", "PATCH", path, {"accepted_levels": ["HBO"]},
                         headers={"If-Match": etag, "Accept-Language": "en"})
    assert assert_error(english, 422)["errors"] == [
        {"field": "accepted_levels", "reason": "a preferred level must be an accepted level"}]
    for bad, field in [({"preferred_levels": ["MBO"]}, "preferred_levels.0"),
                       ({"accepted_levels": ["WO"], "preferred_levels": ["WO", "HBO"]}, "preferred_levels.1"),
                       ({"preferred_levels": ["PhD"]}, "preferred_levels.0"),
                       ({"preferred_levels": "WO"}, "preferred_levels"),
                       ({"preferred_institutions": [world.org["firm_2"]]}, "preferred_institutions.0"),
                       ({"preferred_institutions": [world.org["inst_1"]] * 11}, "preferred_institutions")]:
        assert_error(world.call("firm_1", "PATCH", path, bad, headers={"If-Match": etag}), 422, field)
    assert world.snapshot() == before
    assert world.get("firm_1", path).get_json() == stored

    both = world.call("firm_1", "PATCH", path, {"accepted_levels": ["HBO"], "preferred_levels": ["HBO"]},
                      headers={"If-Match": etag})
    assert both.status_code == 200, both.get_data(as_text=True)
    assert (both.get_json()["accepted_levels"], both.get_json()["preferred_levels"]) == (["HBO"], ["HBO"])


def test_a_firm_changes_theme_kind_and_where_the_team_works_and_bad_values_are_refused(world: World) -> None:
    path = f"/assignments/{world.ids['a1']}"
    etag = world.get("firm_1", path).headers["ETag"]
    before = world.snapshot()
    assert_error(world.call("firm_1", "PATCH", path, {"mode": "on_the_moon"}, headers={"If-Match": etag}), 422,
                 "mode")
    assert_error(world.call("firm_1", "PATCH", path, {"theme": "gardening"}, headers={"If-Match": etag}), 422,
                 "theme")
    assert world.snapshot() == before
    ok = world.call("firm_1", "PATCH", path, {"theme": "webshop", "kind": "short_job", "mode": "remote"},
                    headers={"If-Match": etag})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert (ok.get_json()["theme"], ok.get_json()["kind"], ok.get_json()["mode"]) == ("webshop", "short_job", "remote")
    assert world.get("firm_1", path).get_json()["mode"] == "remote"
