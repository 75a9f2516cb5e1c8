"""A round over several workspaces shows and counts under every workspace it covers, once (issue 20's leftovers),
in SQLite and PostgreSQL, through intake's and matching's APIs:

- ``GET /batches?workspace_id=`` lists the round under each of its workspaces, a one-workspace batch under its own;
- matching's ``GET /reach`` counts an assignment served under the workspace it belongs to and a team placed under
  the one it is registered in; intake's ``students_placed`` the students of the workspace's own teams: each
  workspace sees its part of the round, and the workspaces' figures added up count each match once;
- ``GET /teams`` takes several workspaces (the coordinator's search for a team of the round, in the portal).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from intake import bootstrap as intake_bootstrap
from intake.entrypoints.api import create_intake_app
from intake.entrypoints.handlers import HANDLERS
from matching import bootstrap as matching_bootstrap
from matching.adapters import orm as matching_orm
from matching.entrypoints.api import create_matching_app
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import parse_envelope

from .test_batch_rounds import NAMES, PERIOD, Round, assignment, team, work
from .test_intake_api import World, workspace_body
from .test_matching_api import Matching


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def both(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Round, Matching]]:
    """Intake (its API) and matching (its API and handlers) on the same kind of database."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level

    def url(name: str) -> str:
        if request.param == "postgresql":
            return str(request.getfixturevalue("make_postgres_db")(name))
        return f"sqlite:///{tmp_path}/{name}.sqlite3"

    infra = intake_bootstrap.bootstrap(Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": url("intake"), "WERKPLAATS_DATA_DIR": str(tmp_path)}))
    app = create_intake_app(infra)
    w = World(infra, app, app.test_client())
    r = Round(w, tmp_path)
    m_infra = matching_bootstrap.bootstrap(Settings.from_env("matching", {
        "WERKPLAATS_DATABASE_URL": url("matching"), "WERKPLAATS_DATA_DIR": str(tmp_path)}))
    r.matchings.append(m_infra)
    m = Matching(m_infra, create_matching_app(m_infra).test_client(), {})
    try:
        for who, (name, role, levels) in NAMES.items():
            w.add_org(who, name, role, levels)
        m.add_key("coord", w.org["coord"], "coordinator")
        w.ids["ws_n"] = w.created("coord", "/workspaces", workspace_body(name="Werkplaats Noord"))["id"]
        w.ids["ws_z"] = w.created("coord", "/workspaces", workspace_body(
            name="Werkplaats Zuid", municipalities=["GM0344"],
            periods=[{"code": PERIOD, "starts_on": "2025-01-06", "ends_on": "2025-03-28"}]))["id"]
        w.created("firm_n", "/firm", {"kvk_number": "12345671", "sector": "bakkerij", "size_class": "micro",
                                      "municipality": "GM0363", "language": "nl"})
        w.created("firm_z", "/firm", {"kvk_number": "12345672", "sector": "garage", "size_class": "micro",
                                      "municipality": "GM0344", "language": "nl"})
        yield r, m
    finally:
        m_infra.engine.dispose()
        infra.engine.dispose()
        root.handlers[:] = saved
        root.setLevel(level)


def back_to_intake(r: Round, m: Matching) -> None:
    """What intake's consumer does with matching's matches.published (the batch's current matching)."""
    with m.infra.engine.connect() as conn:
        bodies = conn.execute(sa.select(matching_orm.outbox.c.body).order_by(matching_orm.outbox.c.created_at)
                              ).scalars().all()
    for envelope in (parse_envelope(json.loads(b)) for b in bodies):
        if envelope.type == "matches.published":
            with r.intake.session_factory.begin() as session:
                HANDLERS[envelope.type](session, envelope)


def _total(answer: dict[str, Any], name: str) -> int:
    (found,) = [f for f in answer["figures"] if f["figure"] == name]
    return int(found["total"])


def _breakdown(answer: dict[str, Any], name: str, dimension: str) -> dict[str, int]:
    (found,) = [f for f in answer["figures"] if f["figure"] == name]
    return {b["value"]: b["count"] for b in found["breakdowns"] if b["dimension"] == dimension}


def test_a_round_over_two_workspaces_is_listed_and_counted_under_each_once(both: tuple[Round, Matching]) -> None:
    r, m = both
    w = r.world
    n, z = w.ids["ws_n"], w.ids["ws_z"]
    team_n, team_z = team(r, "ws_n", "N-1", ["python"]), team(r, "ws_z", "Z-1", ["ux"])
    a_n = assignment(r, "firm_n", "ws_n", ["ux"])  # only Zuid's team can do it
    a_z = assignment(r, "firm_z", "ws_z", ["python"])  # only Noord's team can do it
    national = w.created("coord", "/batches", {"workspace_ids": [n, z], "period": PERIOD,
                                               "assignment_ids": [a_n, a_z]})
    regional = w.created("coord", "/batches", {"workspace_id": z, "period": PERIOD, "assignment_ids": [
        assignment(r, "firm_z", "ws_z", ["cobol"])]})  # nobody can do it: served nowhere
    r.deliver(r.matchings[0])
    work(r.matchings[0])
    back_to_intake(r, m)

    def listed(workspace_id: str) -> list[str]:
        resp = w.get("coord", f"/batches?workspace_id={workspace_id}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert json.loads(resp.headers["X-Pagination"])["total"] == len(resp.get_json())
        return sorted(b["id"] for b in resp.get_json())

    assert listed(n) == [national["id"]]
    assert listed(z) == sorted([national["id"], regional["id"]])
    assert listed(str(uuid.uuid4())) == []

    today = datetime.now(UTC).date()
    served, placed, students = {}, {}, {}
    for ws in (n, z):
        found = m.ok("coord", "GET", f"/reach?workspace_id={ws}&from={today}&to={today}")
        served[ws], placed[ws] = _total(found, "assignments_served"), _total(found, "teams_placed")
        assert sum(_breakdown(found, "assignments_served", "period").values()) == served[ws]
        resp = w.get("coord", f"/reach?workspace_id={ws}&from={today}&to={today}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        students[ws] = _total(resp.get_json(), "students_placed")
    # the round placed Zuid's team on Noord's assignment and Noord's team on Zuid's: each workspace served its one
    # assignment and placed its one team (4 students); added up, the two matches count once each
    assert served == {n: 1, z: 1} and placed == {n: 1, z: 1}
    assert students == {n: 4, z: 4}
    # the region split follows the assignment's own firm: Noord's in Utrecht, Zuid's in Utrecht too (GM0344)
    found = m.ok("coord", "GET", f"/reach?workspace_id={n}&from={today}&to={today}")
    assert sum(_breakdown(found, "assignments_served", "region").values()) == 1

    # the coordinator's search for a team of the round takes every workspace of the round
    resp = w.get("coord", f"/teams?workspace_id={n}&workspace_id={z}&period={PERIOD}")
    assert sorted(t["id"] for t in resp.get_json()) == sorted([team_n, team_z])
    resp = w.get("coord", f"/teams?workspace_id={z}&period={PERIOD}")
    assert [t["id"] for t in resp.get_json()] == [team_z]


def test_a_workspace_of_another_coordinator_in_no_round_of_theirs_stays_refused(both: tuple[Round, Matching]) -> None:
    r, m = both
    w = r.world
    n, z = w.ids["ws_n"], w.ids["ws_z"]
    a_n, a_z = assignment(r, "firm_n", "ws_n", []), assignment(r, "firm_z", "ws_z", [])
    w.created("coord", "/batches", {"workspace_ids": [n, z], "period": PERIOD, "assignment_ids": [a_n, a_z]})
    r.deliver(r.matchings[0])
    m.add_key("coord_other", w.org["coord_other"], "coordinator")
    today = datetime.now(UTC).date()
    # the second workspace of someone else's round is not the other coordinator's to see
    assert m.call("coord_other", "GET", f"/reach?workspace_id={z}&from={today}&to={today}").status_code == 403
    assert m.call("coord", "GET", f"/reach?workspace_id={z}&from={today}&to={today}").status_code == 200
