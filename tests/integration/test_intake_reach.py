"""``GET /reach`` in intake: a workspace's firms reached, assignments submitted, teams and students registered,
students placed and referrals in a date range, split by region (the firm's province), level, period, theme and
month; each firm, assignment and team counted once; counts only; another's workspace 403; a bad range 422."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from intake.service_layer import services
from werkplaats_shared.contracts import make_envelope

from .test_intake_api import World, assert_error, assignment_body, firm_body, team_body, workspace_body
from .test_intake_api import world as world

TODAY = datetime.now(UTC).date()
# Amsterdam (Noord-Holland) and Utrecht (Utrecht) in the working area; Zwolle (Overijssel) outside every one
AREA = {"GM0363": "Noord-Holland", "GM0344": "Utrecht"}
OUTSIDE = "GM0193"


@pytest.fixture
def reach_world(world: World) -> Iterator[World]:
    w = world
    w.add_org("coord", "Werkplaats Midden", "coordinator", [])
    for who, name in (("f_ams", "Bakkerij Amstel"), ("f_utr", "Garage Domstad"), ("f_utr2", "Drukkerij Vaart"),
                      ("f_out", "Hoeve Zwolle")):
        w.add_org(who, name, "entrepreneur", [])
    w.add_org("school", "ROC Midden", "institution", ["MBO", "HBO", "WO"])
    ws = w.created("coord", "/workspaces", workspace_body(name="Werkplaats Midden", municipalities=list(AREA)))["id"]
    w.ids["ws"] = ws
    for i, (who, code) in enumerate((("f_ams", "GM0363"), ("f_utr", "GM0344"), ("f_utr2", "GM0344"),
                                     ("f_out", OUTSIDE)), start=1):
        w.created(who, "/firm", firm_body(kvk_number=f"8800000{i}", municipality=code))
    a1 = w.created("f_ams", "/assignments", assignment_body(ws, accepted_levels=["HBO", "WO"], theme="webshop"))
    w.created("f_ams", "/assignments", assignment_body(ws, accepted_levels=["HBO", "WO"], theme="ai",
                                                       period="2025-Q2"))
    a2 = w.created("f_utr", "/assignments", assignment_body(ws, accepted_levels=["MBO"], theme="website"))
    w.created("f_out", "/assignments", assignment_body(ws, accepted_levels=["MBO"], theme="webshop"))  # referred
    teams = {level: w.created("school", "/teams", team_body(ws, code=f"T-{level}", level=level, size=size))
             for level, size in (("MBO", 3), ("HBO", 4), ("WO", 5))}
    batch = w.created("coord", "/batches", {"workspace_id": ws, "period": "2025-Q1",
                                            "assignment_ids": [a1["id"], a2["id"]]})
    w.ids.update(batch=batch["id"], a1=a1["id"], a2=a2["id"], **{f"t_{k}": t["id"] for k, t in teams.items()})
    yield w


def publish(w: World, run_id: str, pairs: list[tuple[str, str]]) -> None:
    payload = {"run_id": run_id, "batch_id": w.ids["batch"], "workspace_id": w.ids["ws"],
               "coordinator_id": w.org["coord"], "period": "2025-Q1",
               "matches": [{"match_id": f"{run_id}-{i}", "assignment_id": w.ids[a], "team_id": w.ids[t],
                            "firm_id": "x", "institution_id": w.org["school"], "score": 1.0}
                           for i, (a, t) in enumerate(pairs)],
               "unmatched_assignment_ids": [w.ids[a] for a in ("a1", "a2") if a not in {a for a, _t in pairs}]}
    with w.infra.session_factory.begin() as session:
        services.on_matches_published(session, make_envelope("matches.published", 1, payload))


def reach(w: World, who: str = "coord", first: date = TODAY, last: date = TODAY, **over: str) -> dict[str, Any]:
    params = {"workspace_id": w.ids["ws"], "from": first.isoformat(), "to": last.isoformat(), **over}
    resp = w.get(who, "/reach?" + "&".join(f"{k}={v}" for k, v in params.items()))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return dict(resp.get_json())


def counts(answer: dict[str, Any], name: str) -> tuple[int, dict[tuple[str, str], int]]:
    (found,) = [f for f in answer["figures"] if f["figure"] == name]
    return found["total"], {(b["dimension"], b["value"]): b["count"] for b in found["breakdowns"]}


def by(dimension: str, table: dict[tuple[str, str], int]) -> dict[str, int]:
    return {value: n for (d, value), n in table.items() if d == dimension}


def test_each_figure_counts_each_thing_once_split_by_region_level_period_and_theme(reach_world: World) -> None:
    w = reach_world
    publish(w, "run-1", [("a1", "t_HBO"), ("a2", "t_MBO")])
    answer = reach(w)
    month = TODAY.strftime("%Y-%m")

    total, table = counts(answer, "firms_reached")
    # the Amsterdam firm with two assignments is one firm; the Utrecht firm without one is reached by its profile;
    # the Zwolle firm outside the working area is reached by its referral
    assert total == 4
    assert by("region", table) == {"Noord-Holland": 1, "Utrecht": 2, "Overijssel": 1}
    assert by("month", table) == {month: 4}

    total, table = counts(answer, "assignments_submitted")
    assert total == 4
    assert by("level", table) == {"HBO": 2, "WO": 2, "MBO": 2}  # one assignment counts under each level it accepts
    assert by("region", table) == {"Noord-Holland": 2, "Utrecht": 1, "Overijssel": 1}
    assert by("period", table) == {"2025-Q1": 3, "2025-Q2": 1}
    assert by("theme", table) == {"webshop": 2, "ai": 1, "website": 1}
    (figure,) = [f for f in answer["figures"] if f["figure"] == "assignments_submitted"]
    assert figure["multi_valued"] == ["level"]

    assert counts(answer, "teams_registered")[0] == 3
    total, table = counts(answer, "students_registered")
    assert total == 12 and by("level", table) == {"MBO": 3, "HBO": 4, "WO": 5}

    total, table = counts(answer, "students_placed")
    assert total == 7
    assert by("level", table) == {"HBO": 4, "MBO": 3}
    assert by("region", table) == {"Noord-Holland": 4, "Utrecht": 3}

    total, table = counts(answer, "referrals")
    assert total == 1 and by("region", table) == {"Overijssel": 1} and by("theme", table) == {"webshop": 1}

    text = json.dumps(answer)
    for name in ("Bakkerij", "Garage", "Hoeve", "ROC", "@", w.ids["a1"], w.org["f_ams"], w.ids["t_HBO"]):
        assert name not in text  # counts only: no name, address or id of what was counted


def test_a_re_run_replaces_the_placed_teams_and_a_team_counts_once(reach_world: World) -> None:
    w = reach_world
    publish(w, "run-1", [("a1", "t_HBO"), ("a2", "t_MBO")])
    publish(w, "run-2", [("a1", "t_WO")])  # the re-run keeps only a1, with another team
    total, table = counts(reach(w), "students_placed")
    assert total == 5 and by("level", table) == {"WO": 5}


def test_the_range_selects_what_happened_in_it(reach_world: World) -> None:
    w = reach_world
    answer = reach(w, first=TODAY + timedelta(days=1), last=TODAY + timedelta(days=30))
    assert all(f["total"] == 0 and f["breakdowns"] == [] for f in answer["figures"])
    assert answer["from"] == (TODAY + timedelta(days=1)).isoformat()


def test_only_the_workspaces_coordinator_may_count_it(reach_world: World) -> None:
    w = reach_world
    query = f"/reach?workspace_id={w.ids['ws']}&from={TODAY}&to={TODAY}"
    assert_error(w.get("coord_a", query), 403)  # another coordinator
    assert_error(w.get("coord", f"/reach?workspace_id=nope&from={TODAY}&to={TODAY}"), 403)
    for other in ("f_ams", "school"):
        assert w.get(other, query).status_code == 403


@pytest.mark.parametrize(("query", "field"), [
    ("from=2026-05-01&to=2026-04-30", "query.to"),
    ("from=2026-13-01&to=2026-12-31", "query.from"),
    ("from=gisteren&to=2026-12-31", "query.from"),
    ("to=2026-12-31", "query.from"),
    ("from=2026-01-01", "query.to"),
])
def test_a_bad_range_is_refused_with_its_field(reach_world: World, query: str, field: str) -> None:
    body = assert_error(reach_world.get("coord", f"/reach?workspace_id={reach_world.ids['ws']}&{query}"), 422)
    assert field in {e["field"] for e in body["errors"]}
