"""A coordinator's workspace in counts (GET /workspaces/{id}/overview): open assignments and teams per period and
level, referrals and handovers; its own workspace only, counts only."""

from __future__ import annotations

from . import test_intake_api
from .test_intake_api import World, assert_error, assignment_body, batch_body

world = test_intake_api.world  # ws_a: teams HBO and WO in 2025-Q1; assignments a1, a2 (Q1), a1_q2 (Q2); ws_b: one


def _overview(world: World, who: str = "coord_a", workspace: str = "ws_a") -> dict[str, object]:
    resp = world.get(who, f"/workspaces/{world.ids[workspace]}/overview")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return dict(resp.get_json())


def test_the_overview_counts_open_assignments_and_teams_per_period_and_level(world: World) -> None:
    assert _overview(world) == {
        "workspace_id": world.ids["ws_a"], "open_assignments": 3,
        "open_assignments_by_period_level": [  # each accepts HBO and WO: counted under both
            {"period": "2025-Q1", "level": "HBO", "count": 2}, {"period": "2025-Q1", "level": "WO", "count": 2},
            {"period": "2025-Q2", "level": "HBO", "count": 1}, {"period": "2025-Q2", "level": "WO", "count": 1}],
        "teams": 2, "teams_by_period_level": [{"period": "2025-Q1", "level": "HBO", "count": 1},
                                              {"period": "2025-Q1", "level": "WO", "count": 1}],
        "referrals": 0, "handovers": 0}
    assert _overview(world, "coord_b", "ws_b")["open_assignments"] == 1
    # an assignment in a round is still open; a referred one is not, and counts as a referral
    assert world.post("coord_a", "/batches", batch_body(world.ids["ws_a"], [world.ids["a1"]])).status_code == 201
    etag = world.get("firm_2", "/firm").headers["ETag"]
    assert world.call("firm_2", "PATCH", "/firm", {"municipality": "GM0014"},
                      headers={"If-Match": etag}).status_code == 200
    referred = world.post("firm_2", "/assignments", assignment_body(world.ids["ws_a"], accepted_levels=["MBO"]))
    assert referred.get_json()["status"] == "referred"
    after = _overview(world)
    assert after["open_assignments"] == 3 and after["referrals"] == 1
    assert {"period": "2025-Q1", "level": "MBO", "count": 1} not in after["open_assignments_by_period_level"]  # type: ignore[operator]


def test_only_the_workspaces_own_coordinator_reads_its_overview(world: World) -> None:
    path = f"/workspaces/{world.ids['ws_a']}/overview"
    assert_error(world.get("coord_b", path), 404)
    assert_error(world.get("firm_1", path), 403)
    assert_error(world.get("inst_1", path), 403)
    assert_error(world.get("coord_a", "/workspaces/00000000-0000-4000-8000-000000000000/overview"), 404)
