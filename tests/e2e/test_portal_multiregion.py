"""A coordinator with two workspaces starts one round over both in the portal (a real browser, axe-core on every
page, against the real services): the form offers the period the two share, lists the waiting assignments of
both, and the batch it submits names both workspaces, so a team of one is placed on an assignment of the other."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from werkplaats_shared.devstack.demo import MUNICIPALITIES, PERIOD, PERIODS, Api, setup_demo_data, wait_for
from werkplaats_shared.devstack.stack import PORTAL, SERVICES, LocalStack, StackConfig

from ..conftest import free_port
from .conftest import FAST
from .test_portal_browser import World, _accepted_invitation, _wait_for_text, browser, chromium

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
__all__ = ["browser", "chromium"]  # fixtures, used by name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ports = {s: free_port() for s in SERVICES}
    ports[PORTAL] = free_port()
    stack = LocalStack(StackConfig(data_dir=str(tmp_path_factory.mktemp("multiregion")), ports=ports,
                                   smtp_port=free_port(), extra_env=dict(FAST), portal=True))
    try:
        stack.start(timeout=300)
        yield World(stack, setup_demo_data(stack, say=lambda _line: None))
    finally:
        stack.stop()


def test_a_coordinator_with_two_workspaces_starts_one_round_over_both(world: World, browser: Any) -> None:
    intake = Api(world.stack.url("intake"), world.data.coordinator_key)
    # a second workspace of the demo's coordinator: one team, and one job only the first workspace's teams can do
    second = intake.post("/workspaces", {"name": "Werkplaats Tweede Regio", "municipalities": MUNICIPALITIES,
                                         "periods": PERIODS})
    institution = Api(world.stack.url("intake"), world.data.institution_keys[0])
    lonely = institution.post("/teams", {"workspace_id": second["id"], "code": "TWEEDE-01", "level": "MBO",
                                         "size": 4, "skills": ["ux-research"], "period": PERIOD})
    job = Api(world.stack.url("intake"), world.data.firm_keys[0]).post("/assignments", {
        "workspace_id": second["id"], "title": "Klus in de tweede regio", "period": PERIOD, "mode": "remote",
        "accepted_levels": ["MBO", "HBO", "WO"], "required_skills": ["webshop"], "min_teams": 1, "max_teams": 1})
    assert job["workspace_id"] == second["id"]

    me = _accepted_invitation(world, browser, world.data.coordinator_key, "coordinator-regio@ijssel.example.org")
    try:
        me.goto("/coordinator/rounds/new")
        options = me.page.locator("#period option").all_inner_texts()
        both = [o for o in options if o.startswith("Al uw werkplaatsen met deze periode (2)")]
        assert len(both) == 1, options
        me.page.select_option("#period", label=both[0])
        me.submit("Opdrachten tonen")
        listed = me.main_text()
        assert "Klus in de tweede regio" in listed  # the second workspace's job
        for title in ("Webshop voor taarten",):  # and the first workspace's waiting ones
            assert title in listed, listed[:800]
        me.page.check("#policy-0")
        me.page.check("#auto_publish")
        me.submit("Ronde starten")
        _wait_for_text(me, "Passendheid")
        (batch,) = [b for b in intake.get("/batches") if second["id"] in b["workspace_ids"]]
        assert batch["workspace_ids"] == [world.data.workspace_id, second["id"]]
        found = wait_for("the round published",
                         lambda: (b := intake.get(f"/batches/{batch['id']}"))["status"] == "matched" and b,
                         timeout=180.0)
        placed = {m["assignment_id"]: m["team_id"] for m in found["matches"]}
        assert placed.get(job["id"]) not in (None, lonely["id"])  # a team of the first workspace took the job
        # the search for a team of the round takes every workspace of the round: the second one's team is offered
        me.goto(f"/coordinator/rounds/{batch['id']}")
        me.page.fill("#find_team", "TWEEDE-01")
        me.submit("Zoeken")
        offered = me.page.locator("#found-team option").all_inner_texts()
        assert any(o.startswith("TWEEDE-01 ") for o in offered), offered
    finally:
        me.close()
