"""A run's result a page at a time (big rounds): matching filters, sorts and pages the matches and the
unmatched assignments and teams itself, with the firms' answers; and a comparison of two runs says why each
pair changed. SQLite and Flask's test client, as in test_matching_api."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from matching import bootstrap
from matching.entrypoints.api import create_matching_app
from werkplaats_shared.config import Settings

from .test_matching_api import ROLES, TEAMS, Matching, assignment, error, m, respond, runs_of, submit, team

__all__ = ["m"]  # the fixture, used by name

SKILLS = ["web", "data", "seo", "css"]


def _round(m: Matching) -> tuple[str, dict[str, Any]]:
    """24 teams of two levels and three institutions, 16 assignments (some for WO only: nobody can do them)."""
    teams = [team(f"t{n:02d}", "HBO" if n % 3 else "MBO", SKILLS[: 1 + n % 4], f"inst-{n % 3}") for n in range(24)]
    assignments = [assignment(f"a{n:02d}", ["WO"] if n % 5 == 4 else ["HBO", "MBO"], nice=SKILLS[n % 4:][:2])
                   for n in range(16)]
    batch_id = submit(m, auto_publish=False, teams=teams, assignments=assignments)
    m.work()
    (run,) = runs_of(m, batch_id)
    return batch_id, run


def _all_pages(m: Matching, run_id: str, query: str, size: int = 5) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        found = m.ok("coord_1", "GET", f"/runs/{run_id}/results?page={page}&page_size={size}{query}")
        assert len(found["items"]) <= size and found["page"] == page
        items.extend(found["items"])
        if page * size >= found["total"]:
            assert len(items) == found["total"]
            return items
        page += 1


def test_pages_of_the_result_hold_every_match_once_best_fit_first_with_the_same_facts_as_the_explanations(
        m: Matching) -> None:
    _batch, run = _round(m)
    explained = m.ok("coord_1", "GET", f"/runs/{run['id']}/explanations")
    items = _all_pages(m, run["id"], "")
    assert {(i["team_id"], i["assignment_id"]) for i in items} == {
        (x["team_id"], x["assignment_id"]) for x in explained["matches"]}
    assert len(items) == len(explained["matches"]) >= 10
    fits = [i["fit"] for i in items]
    assert fits == sorted(fits, reverse=True)
    assert [i["fit"] for i in _all_pages(m, run["id"], "&sort=fit_asc")] == sorted(fits)
    first = m.ok("coord_1", "GET", f"/runs/{run['id']}/results?page_size=3")
    assert first["counts"] == {"matches": len(explained["matches"]),
                               "unmatched_assignments": len(explained["unmatched_assignments"]),
                               "unmatched_teams": len(explained["unmatched_teams"])}
    assert first["levels"] == ["HBO", "MBO"]
    assert sorted(x["institution_id"] for x in first["institutions"]) == ["inst-0", "inst-1", "inst-2"]
    assert first["answers"] == {"accepted": 0, "declined": 0, "pending": len(explained["matches"])}
    row = first["items"][0]
    assert row["answer"] == "pending" and row["firm_id"] == f"firm-{row['assignment_id']}"
    assert row["score"]["total"] == row["fit"] and "base" in row["score"]
    # past the last page: an empty page, the same total
    beyond = m.ok("coord_1", "GET", f"/runs/{run['id']}/results?page=99")
    assert beyond["items"] == [] and beyond["total"] == len(explained["matches"])


def test_filters_keep_exactly_the_matches_that_pass_each_of_them(m: Matching) -> None:
    _batch, run = _round(m)
    every = _all_pages(m, run["id"], "", size=100)
    levels = {f"t{n:02d}": "HBO" if n % 3 else "MBO" for n in range(24)}
    assert {i["level"] for i in every} == {levels[i["team_id"]] for i in every}
    mbo = _all_pages(m, run["id"], "&level=MBO")
    assert mbo and mbo == [i for i in every if levels[i["team_id"]] == "MBO"]
    inst = _all_pages(m, run["id"], "&institution_id=inst-1&level=HBO")
    assert inst == [i for i in every if i["institution_id"] == "inst-1" and i["level"] == "HBO"]
    middle = sorted(i["fit"] for i in every)[len(every) // 2]
    ranged = _all_pages(m, run["id"], f"&min_fit={middle}&max_fit={middle + 5}")
    assert ranged and ranged == [i for i in every if middle <= i["fit"] <= middle + 5]
    chosen = sorted({i["assignment_id"] for i in every})[:3]
    by_id = _all_pages(m, run["id"], "".join(f"&assignment_id={a}" for a in chosen))
    assert by_id == [i for i in every if i["assignment_id"] in chosen]
    firm = _all_pages(m, run["id"], f"&firm_id=firm-{chosen[0]}")
    assert firm == [i for i in every if i["assignment_id"] == chosen[0]]
    assert m.ok("coord_1", "GET", f"/runs/{run['id']}/results?assignment_id=none")["total"] == 0


def test_unmatched_assignments_and_teams_come_a_page_at_a_time_with_their_reasons_in_words(m: Matching) -> None:
    _batch, run = _round(m)
    explained = m.ok("coord_1", "GET", f"/runs/{run['id']}/explanations")
    open_assignments = _all_pages(m, run["id"], "&show=unmatched_assignments", size=2)
    assert [(u["assignment_id"], u["reason"], u["en"], u["nl"]) for u in open_assignments] == [
        (u["assignment_id"], u["reason"], u["en"], u["nl"]) for u in explained["unmatched_assignments"]]
    wo_only = [u for u in open_assignments if u["accepted_levels"] == ["WO"]]
    assert len(wo_only) == 3 and all(u["reason"] == "no_team_of_accepted_level" for u in wo_only)
    assert _all_pages(m, run["id"], "&show=unmatched_assignments&level=WO") == wo_only
    idle = _all_pages(m, run["id"], "&show=unmatched_teams&level=MBO", size=2)
    assert [u["team_id"] for u in idle] == [u["team_id"] for u in explained["unmatched_teams"]
                                           if int(u["team_id"][1:]) % 3 == 0]
    assert all(u["nl"] and u["en"] and u["level"] == "MBO" for u in idle)


def test_the_firms_answers_are_counted_and_can_be_filtered(m: Matching) -> None:
    batch_id = submit(m)
    m.work()
    (run,) = runs_of(m, batch_id)
    respond(m, run["id"], "a-data", "accepted")
    found = m.ok("coord_1", "GET", f"/runs/{run['id']}/results?answer=accepted")
    assert [(i["assignment_id"], i["answer"]) for i in found["items"]] == [("a-data", "accepted")]
    assert found["items"][0]["responded_at"].endswith("+00:00")
    assert found["answers"] == {"accepted": 1, "declined": 0, "pending": 2}
    pending = m.ok("coord_1", "GET", f"/runs/{run['id']}/results?answer=pending&sort=answer")
    assert sorted(i["assignment_id"] for i in pending["items"]) == ["a-plain", "a-web"]


def test_bad_result_queries_get_a_clear_error_and_other_parties_get_nothing(m: Matching) -> None:
    _batch, run = _round(m)
    path = f"/runs/{run['id']}/results"
    for query, name in [("page_size=101", "query.page_size"), ("page=0", "query.page"),
                        ("show=everything", "query.show"), ("sort=name", "query.sort"),
                        ("min_fit=-1", "query.min_fit"), ("answer=maybe", "query.answer"),
                        ("colour=red", "query.colour"), ("min_fit=lots", "query.min_fit")]:
        error(m.call("coord_1", "GET", f"{path}?{query}"), 422, name)
    error(m.call("coord_2", "GET", path), 404)
    error(m.call("inst_1", "GET", path), 403)
    error(m.call("firm_1", "GET", path), 403)
    queued = m.ok("coord_1", "POST", f"/batches/{_batch}/runs", {}, status=202)
    error(m.call("coord_1", "GET", f"/runs/{queued['id']}/results"), 409, "status")


def test_a_comparison_says_why_each_pair_changed(m: Matching) -> None:
    batch_id = submit(m, teams=[*TEAMS, team("t-spare", "HBO", [])])
    m.work()
    (first,) = runs_of(m, batch_id)
    respond(m, first["id"], "a-web", "accepted")
    m.ok("coord_1", "POST", f"/batches/{batch_id}/forbids",
         {"team_id": "t-plain", "assignment_id": "a-plain", "reason": "worked there last year"}, status=201)
    second = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {"release": [
        {"team_id": "t-web", "assignment_id": "a-web", "reason": "the firm asked for another team"}]}, status=202)
    m.work()
    compared = m.ok("coord_1", "GET", f"/runs/compare?a={first['id']}&b={second['id']}")
    why = {(p["team_id"], p["assignment_id"]): p["why"] for p in compared["removed"]}
    assert why[("t-plain", "a-plain")]["code"] == "forbidden"
    assert why[("t-plain", "a-plain")]["reason"] == "worked there last year"
    assert why[("t-plain", "a-plain")]["nl"] == "de coördinator sloot het paar uit"
    assert all("why" not in p for p in compared["kept"])
    assert {p["why"]["code"] for p in compared["added"]} <= {"freed"} and compared["added"]
    assert compared["b"]["trigger"] == "coordinator"
    released = m.ok("coord_1", "GET", f"/runs/{second['id']}")["controls"]["released"]
    assert [(r["team_id"], r["reason"]) for r in released] == [("t-web", "the firm asked for another team")]


def test_a_decline_and_a_pin_are_named_as_the_reasons_of_a_change(m: Matching) -> None:
    batch_id = submit(m, teams=[team("t-web", "HBO", ["web"]), team("t-data", "HBO", ["data"], "inst-b"),
                                team("t-plain", "HBO", []), team("t-spare", "HBO", ["web"])])
    m.work()
    (first,) = runs_of(m, batch_id)
    respond(m, first["id"], "a-web", "declined")
    (rerun,) = [r for r in runs_of(m, batch_id) if r["trigger"] == "declined"]
    m.work()
    compared = m.ok("coord_1", "GET", f"/runs/compare?a={first['id']}&b={rerun['id']}")
    why = {(p["team_id"], p["assignment_id"]): p["why"]["code"] for p in compared["removed"]}
    assert why[("t-web", "a-web")] == "declined"
    assert compared["b"]["trigger"] == "declined"
    m.ok("coord_1", "POST", f"/batches/{batch_id}/pins",
         {"team_id": "t-data", "assignment_id": "a-plain", "reason": "the firm knows this team"}, status=201)
    pinned = m.ok("coord_1", "POST", f"/batches/{batch_id}/runs", {}, status=202)
    m.work()
    compared = m.ok("coord_1", "GET", f"/runs/compare?a={rerun['id']}&b={pinned['id']}")
    added = {(p["team_id"], p["assignment_id"]): p["why"] for p in compared["added"]}
    assert added[("t-data", "a-plain")]["code"] == "pinned"
    assert added[("t-data", "a-plain")]["reason"] == "the firm knows this team"


@pytest.mark.postgres
def test_on_postgres_the_runs_list_carries_the_figures_and_a_page_of_the_result(make_postgres_db: Any,
                                                                                tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("matching", {"WERKPLAATS_DATABASE_URL": make_postgres_db("matching_results"),
                                              "WERKPLAATS_DATA_DIR": str(tmp_path)})
    infra = bootstrap.bootstrap(settings)
    svc = Matching(infra, create_matching_app(infra).test_client(), {w: str(uuid.uuid4()) for w in ROLES})
    try:
        for who, role in ROLES.items():
            svc.add_key(who, svc.org[who], role)
        batch_id = submit(svc)
        svc.work()
        (run,) = runs_of(svc, batch_id)
        explained = svc.ok("coord_1", "GET", f"/runs/{run['id']}/explanations")
        assert run["figures"] == explained["figures"] and run["figures"]["matches"] == 3
        page = svc.ok("coord_1", "GET", f"/runs/{run['id']}/results?page_size=2&institution_id=inst-a")
        assert page["total"] == 2 and {i["team_id"] for i in page["items"]} == {"t-web", "t-plain"}
    finally:
        infra.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)
