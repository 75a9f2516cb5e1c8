"""The v2 rules one at a time, on instances small enough to reason about by hand: v1 and v2 snapshots,
the eligibility filters, the fit terms, the rank-maximal and stable policies, diagnoses naming the new
groups, explanations with counts per filter and binding capacities, figures and the pre-check."""

from __future__ import annotations

from typing import Any

import pytest
from matching.domain.explain import explain, figures, precheck
from matching.domain.model import (
    DISTANCE_WEIGHT,
    FIRM_PREFERENCE_FIRST,
    PRIORITY_WEIGHT,
    TEAM_PREFERENCE_FIRST,
    TEAM_PREFERENCE_STEP,
    Assignment,
    Capacity,
    FairnessFloor,
    FirmCap,
    Pair,
    Problem,
    SnapshotError,
    Team,
    blocking_pairs,
    eligible_pairs,
    fit_breakdown,
    ineligibility,
    violations,
)
from matching.solver.paths import solve

UTRECHT = {"municipality": "GM0344", "latitude": 52.09, "longitude": 5.12, "region": "Utrecht"}
AMSTERDAM = {"municipality": "GM0363", "latitude": 52.37, "longitude": 4.89, "region": "Noord-Holland"}
GRONINGEN = {"municipality": "GM0014", "latitude": 53.22, "longitude": 6.57, "region": "Groningen"}  # 159 km


def team(team_id: str, level: str = "HBO", institution: str = "inst-a", *, skills: tuple[str, ...] = (),
         periods: tuple[str, ...] = ("P1",), where: dict[str, Any] | None = None, limit: float | None = None,
         remote: bool = True, prefs: tuple[str, ...] = ()) -> Team:
    return Team(team_id, institution, level, frozenset(skills), periods, **(where or {}), travel_limit_km=limit,
                remote_allowed=remote, preferences=prefs)


def job(assignment_id: str, *, levels: tuple[str, ...] = ("HBO",), required: tuple[str, ...] = (), lo: int = 1,
        hi: int = 1, period: str = "P1", mode: str = "remote", where: dict[str, Any] | None = None,
        firm: str | None = None, priority: int = 0, hours: float = 0, institutions: tuple[str, ...] = (),
        ranked_levels: tuple[str, ...] = ()) -> Assignment:
    return Assignment(assignment_id, firm or f"f-{assignment_id}", frozenset(levels), frozenset(required),
                      frozenset(), lo, hi, period, mode, **(where or {}), priority=priority, supervision_hours=hours,
                      preferred_institutions=institutions, preferred_levels=ranked_levels)


def diagnosis(solution: Any) -> dict[str, Any]:
    assert solution.status == "infeasible" and solution.matches == {}
    assert solution.diagnosis is not None
    return dict(solution.diagnosis)


def groups(solution: Any) -> list[str]:
    return [g["group"] for g in diagnosis(solution)["groups"]]


# ---- snapshots ------------------------------------------------------------------------------

V1: dict[str, Any] = {
      "batch_id": "b", "workspace_id": "w", "coordinator_id": "c", "period": "2026-Q1", "policy": "max_fit",
      "auto_publish": True,
      "assignments": [{"assignment_id": "a", "firm_id": "f", "accepted_levels": ["HBO"], "required_skills": [],
                       "nice_to_have_skills": [], "min_teams": 1, "max_teams": 1}],
      "teams": [{"team_id": "t", "institution_id": "i", "level": "HBO", "skills": []}]}


def v2(**changes: Any) -> dict[str, Any]:
    snapshot: dict[str, Any] = {
        **V1, "policy": "stable", "working_area": ["GM0344"],
        "assignments": [{**V1["assignments"][0], "period": "2026-Q2", "mode": "on_site", **UTRECHT, "priority": 3,
                         "supervision_hours": 4, "preferred_institutions": ["i"], "preferred_levels": ["HBO"]}],
        "teams": [{**V1["teams"][0], "periods": ["2026-Q2"], **AMSTERDAM, "travel_limit_km": 50,
                   "remote_allowed": False, "preferences": ["a"]}],
        "capacities": [{"institution_id": "i", "period": "2026-Q2", "level": "HBO", "teams": 1,
                        "supervision_hours": 8}],
        "firm_caps": [{"firm_id": "f", "max_teams": 1}],
        "fairness_floors": [{"dimension": "level", "value": "HBO", "min_share": 0.5}]}
    snapshot.update(changes)
    return snapshot


def test_a_v1_snapshot_gets_the_v2_defaults() -> None:
    problem = Problem.from_snapshot(V1)
    (t,), (a,) = problem.teams, problem.assignments
    assert (t.periods, t.travel_limit_km, t.remote_allowed, t.preferences, t.municipality) == (
        ("2026-Q1",), None, True, (), None)
    assert (a.period, a.mode, a.priority, a.supervision_hours, a.preferred_institutions, a.municipality) == (
        "2026-Q1", "remote", 0, 0, (), None)
    assert (problem.capacities, problem.firm_caps, problem.floors, problem.working_area) == ((), (), (), frozenset())
    assert set(eligible_pairs(problem)) == {Pair("t", "a")}


def test_a_v2_snapshot_carries_every_field() -> None:
    problem = Problem.from_snapshot(v2())
    (t,), (a,) = problem.teams, problem.assignments
    assert (t.periods, t.region, t.travel_limit_km, t.remote_allowed, t.preferences) == (
        ("2026-Q2",), "Noord-Holland", 50, False, ("a",))
    assert (a.period, a.mode, a.municipality, a.priority, a.supervision_hours) == ("2026-Q2", "on_site", "GM0344", 3, 4)
    assert problem.capacities == (Capacity("i", "2026-Q2", "HBO", 1, 8),)
    assert problem.firm_caps == (FirmCap("f", 1),) and problem.floors == (FairnessFloor("level", "HBO", 0.5),)
    assert problem.working_area == frozenset({"GM0344"})
    assert set(solve(problem, policy="stable").matches) == {Pair("t", "a")}


def test_a_preference_list_longer_than_ten_is_refused_with_its_field() -> None:
    snapshot = v2()
    snapshot["teams"][0]["preferences"] = [f"a{i}" for i in range(11)]
    with pytest.raises(SnapshotError) as raised:
        Problem.from_snapshot(snapshot)
    assert raised.value.field == "teams[0].preferences" and "at most 10" in raised.value.reason
    snapshot = v2()
    snapshot["assignments"][0]["min_teams"] = 2
    with pytest.raises(SnapshotError, match="max_teams"):
        Problem.from_snapshot(snapshot)


# ---- eligibility ----------------------------------------------------------------------------


def test_each_filter_removes_a_pair_and_says_why() -> None:
    far = job("far", mode="on_site", where=GRONINGEN)
    problem = Problem(
        (team("utrecht", where=UTRECHT, limit=80, remote=False), team("p2-only", periods=("P2",)),
         team("no-limit", where=UTRECHT), team("remote-ok", where=UTRECHT, limit=80, remote=True)),
        (far, job("far-hybrid", mode="hybrid", where=GRONINGEN), job("near", mode="on_site", where=AMSTERDAM),
         job("unknown-place", mode="on_site"), job("remote-far", where=GRONINGEN)))
    eligible = set(eligible_pairs(problem))
    assert Pair("utrecht", "far") not in eligible and Pair("no-limit", "far") in eligible
    assert Pair("utrecht", "far-hybrid") not in eligible and Pair("remote-ok", "far-hybrid") in eligible
    assert Pair("remote-ok", "far") not in eligible  # on-site work: remote permission does not help
    assert {Pair("utrecht", "near"), Pair("utrecht", "unknown-place"), Pair("utrecht", "remote-far")} <= eligible
    assert not {p for p in eligible if p.team_id == "p2-only"}
    assert ineligibility(problem, Pair("utrecht", "far")) == (
        "the firm's municipality is 159 km from the campus, beyond the team's travel limit of 80 km")
    assert ineligibility(problem, Pair("p2-only", "near")) == (
        "the assignment's period P1 is not one of the team's periods")

    in_area = Problem(problem.teams, problem.assignments, working_area=frozenset({"GM0363"}))
    eligible = set(eligible_pairs(in_area))
    assert Pair("no-limit", "near") in eligible and Pair("no-limit", "far") not in eligible
    assert Pair("no-limit", "unknown-place") not in eligible  # no municipality: not in the area
    assert Pair("no-limit", "remote-far") in eligible  # remote work is exempt
    assert ineligibility(in_area, Pair("no-limit", "far")) == (
        "the firm's municipality GM0014 is outside the working area")


def test_a_team_works_once_per_period_and_may_work_in_two_periods() -> None:
    both = team("both", periods=("P1", "P2"))
    problem = Problem((both,), (job("a1"), job("b1"), job("a2", period="P2")))
    solution = solve(problem)
    assert len(solution.matches) == 2 and {p.assignment_id for p in solution.matches} > {"a2"}
    assert violations(problem, [Pair("both", "a1"), Pair("both", "b1")]) == [
        "team_at_most_one: team both in period P1 (2 <= 1 broken)"]


# ---- fit ------------------------------------------------------------------------------------


def test_fit_shows_both_sides_preferences_distance_and_priority() -> None:
    t = team("t", institution="inst-b", where=UTRECHT, prefs=("other", "a"))
    a = job("a", mode="on_site", where=AMSTERDAM, priority=4, institutions=("inst-b",), ranked_levels=("HBO",))
    b = fit_breakdown(t, a)
    assert (b.team_preference_rank, b.team_preference) == (2, TEAM_PREFERENCE_FIRST - TEAM_PREFERENCE_STEP)
    assert (b.firm_preference_rank, b.firm_preference) == (1, FIRM_PREFERENCE_FIRST)
    assert b.distance_km == 34.9 and b.distance == pytest.approx(DISTANCE_WEIGHT * (1 - 34.853 / 100), abs=0.01)
    assert b.priority == 4 * PRIORITY_WEIGHT
    assert b.total == pytest.approx(b.base + b.team_preference + b.firm_preference + b.distance + b.priority)
    remote = fit_breakdown(t, job("a", where=AMSTERDAM))
    assert (remote.distance_km, remote.distance, remote.firm_preference_rank) == (None, 0.0, None)
    # the firm ranks by level only when the team's institution is not on its list; institutions first
    by_level = fit_breakdown(t, job("a", institutions=("inst-x",), ranked_levels=("WO", "HBO")))
    assert by_level.firm_preference_rank == 3


# ---- policies -------------------------------------------------------------------------------


def test_rank_maximal_gives_more_first_choices_than_max_fit() -> None:
    # max_fit puts t1 on b (its second choice, where its skills fit best), which t2 wanted first;
    # rank-maximal gives b to t2, so two teams get their first choice, and t1 stays without.
    teams = (team("t0", skills=("web",), prefs=("a",)), team("t1", skills=("web", "data"), prefs=("c", "b")),
             team("t2", prefs=("b",)))
    jobs = (job("a"), Assignment("b", "f-b", frozenset({"HBO"}), frozenset(), frozenset({"web", "data"}), 1, 1, "P1"),
            job("c", levels=("WO",)))
    problem = Problem(teams, jobs)
    by_fit, by_rank = solve(problem, policy="max_fit"), solve(problem, policy="rank_maximal")
    assert Pair("t1", "b") in by_fit.matches and by_fit.objective_values["rank_1"] == 1
    assert set(by_rank.matches) == {Pair("t0", "a"), Pair("t2", "b")}
    assert by_rank.objective_values["rank_1"] == 2 and by_rank.objective < by_fit.objective
    assert figures(problem, by_rank.matches)["preference_profile"] == {"1": 2, "2": 0, "unranked": 0, "unmatched": 1}


def test_stable_removes_the_blocking_pair_max_fit_leaves() -> None:
    # both rank each other: t-first wants x first, x ranks inst-a (t-first's) first. max_fit puts the
    # high-skill t-other on x, so (t-first, x) blocks; the stable policy gives x to t-first.
    t_first = team("t-first", prefs=("x",))
    t_other = team("t-other", institution="inst-b", skills=("web", "data"), prefs=("y", "x"))
    x = Assignment("x", "f-x", frozenset({"HBO"}), frozenset(), frozenset({"web", "data"}), 1, 1, "P1",
                   preferred_institutions=("inst-a", "inst-b"))
    y = job("y", institutions=("inst-b",))
    problem = Problem((t_first, t_other), (x,))
    by_fit = solve(problem)
    assert set(by_fit.matches) == {Pair("t-other", "x")}
    assert blocking_pairs(problem, by_fit.matches) == [Pair("t-first", "x")]
    assert figures(problem, by_fit.matches)["blocking_pairs"] == {
        "count": 1, "first": [{"team_id": "t-first", "assignment_id": "x"}]}
    stable = solve(problem, policy="stable")
    assert set(stable.matches) == {Pair("t-first", "x")} and blocking_pairs(problem, stable.matches) == []
    assert violations(problem, by_fit.matches, stable=True) == [
        "stability: team t-first and assignment x would both rather be together"]
    # with y for t-other (its first choice), the stable matching serves both
    both = solve(Problem((t_first, t_other), (x, y)), policy="stable")
    assert set(both.matches) == {Pair("t-first", "x"), Pair("t-other", "y")}


def test_ties_are_weakly_stable() -> None:
    # the firm ranks both teams equally (same institution): whichever gets x, the other does not block
    teams = (team("t0", prefs=("x",)), team("t1", prefs=("x",)))
    problem = Problem(teams, (job("x", institutions=("inst-a",)),))
    solution = solve(problem, policy="stable")
    assert len(solution.matches) == 1 and blocking_pairs(problem, solution.matches) == []


# ---- diagnoses ------------------------------------------------------------------------------


def test_a_pin_on_a_pair_in_another_period_is_named_with_its_reason() -> None:
    problem = Problem((team("t"),), (job("a", period="P2"),), pinned=frozenset({Pair("t", "a")}))
    solution = solve(problem)
    assert groups(solution) == ["pins"]
    assert diagnosis(solution)["groups"][0]["constraints"][0]["reason"] == (
        "the assignment's period P2 is not one of the team's periods")


def test_minimum_team_counts_above_supply_with_a_pin() -> None:
    problem = Problem((team("t0"), team("t1", level="WO")), (job("a", lo=2, hi=3),),
                      pinned=frozenset({Pair("t0", "a")}))
    assert groups(solve(problem, policy="max_served")) == ["assignment_min_teams"]


def test_an_impossible_fairness_floor_is_named() -> None:
    # every WO team must be placed, but one WO team has no assignment it can do
    problem = Problem((team("w0", level="WO"), team("w1", level="WO", periods=("P2",))), (job("a", levels=("WO",)),),
                      floors=(FairnessFloor("level", "WO", 1.0),))
    solution = solve(problem)
    assert groups(solution) == ["fairness_floor"]
    assert diagnosis(solution)["groups"][0]["constraints"][0]["label"] == "level WO: at least 100%"
    assert "eerlijkheidsondergrens" in diagnosis(solution)["message_nl"]
    # a region floor: half of Utrecht's assignments served, but none can be
    region = Problem((team("t"),), (job("u", levels=("WO",), where=UTRECHT), job("v", where=AMSTERDAM)),
                     floors=(FairnessFloor("region", "Utrecht", 0.5),))
    assert groups(solve(region)) == ["fairness_floor"]
    # over an empty group the floor holds
    empty = Problem((team("t"),), (job("a"),), floors=(FairnessFloor("region", "Zeeland", 1.0),))
    assert solve(empty).status == "optimal"


def test_capacity_supervision_and_firm_cap_too_small_for_the_pins() -> None:
    teams = (team("t0"), team("t1"))
    jobs = (job("a", hours=4, firm="f"), job("b", hours=4, firm="f"))
    pins = frozenset({Pair("t0", "a"), Pair("t1", "b")})
    capacity = Problem(teams, jobs, pinned=pins, capacities=(Capacity("inst-a", "P1", "HBO", 1, 100),))
    solution = solve(capacity)
    assert groups(solution) == ["institution_capacity"]
    assert diagnosis(solution)["groups"][0]["constraints"] == [
        {"label": "institution inst-a, period P1, level HBO", "short_by": 1.0}]
    hours = Problem(teams, jobs, pinned=pins, capacities=(Capacity("inst-a", "P1", "HBO", 5, 6),))
    assert groups(solve(hours)) == ["supervision_hours"]
    capped = Problem(teams, jobs, pinned=pins, firm_caps=(FirmCap("f", 1),))
    assert groups(solve(capped)) == ["firm_cap"]
    # without the pins each limit just leaves one assignment empty
    for limited in (capacity, hours, capped):
        free = Problem(teams, jobs, capacities=limited.capacities, firm_caps=limited.firm_caps)
        assert len(solve(free).matches) == 1


def test_stability_that_cannot_hold_with_a_pin_leaves_the_fewest_blocking_pairs_not_infeasible() -> None:
    # t ranks x first and x ranks t; no one else can do x, but t is pinned on y in the same period
    problem = Problem((team("t", prefs=("x", "y")),), (job("x", institutions=("inst-a",)), job("y")),
                      pinned=frozenset({Pair("t", "y")}))
    assert solve(problem).status == "optimal"
    solution = solve(problem, policy="stable")
    assert (solution.status, set(solution.matches), solution.diagnosis) == ("optimal", {Pair("t", "y")}, None)
    assert solution.objective_values["blocking"] == 1 and blocking_pairs(problem, solution.matches) == [Pair("t", "x")]


# ---- explanations, figures, pre-check -------------------------------------------------------


def test_unmatched_get_the_filter_that_removed_their_candidates_with_counts() -> None:
    problem = Problem(
        (team("near", where=UTRECHT, limit=40, remote=False), team("p2", periods=("P2",))),
        (job("groningen", mode="on_site", where=GRONINGEN), job("amsterdam", mode="on_site", where=AMSTERDAM),
         job("late", period="P3"), job("outside", mode="hybrid", where=AMSTERDAM)),
        working_area=frozenset({"GM0344", "GM0014"}))
    result = explain(problem, solve(problem).matches)
    why = {u["assignment_id"]: u for u in result["unmatched_assignments"]}
    assert why["groningen"]["reason"] == "no_team_within_reach"
    assert why["groningen"]["removed"] == {"level": 0, "skills": 0, "period": 1, "reach": 1, "working_area": 0,
                                           "forbidden": 0}
    assert why["groningen"]["counts"]["in_period"] == 1 and why["groningen"]["counts"]["within_reach"] == 0
    assert why["late"]["reason"] == "no_team_in_period" and why["late"]["removed"]["period"] == 2
    assert why["amsterdam"]["reason"] == "outside_working_area"
    assert why["outside"]["reason"] == "outside_working_area"
    teams_why = {u["team_id"]: u for u in result["unmatched_teams"]}
    assert teams_why["near"]["reason"] == "no_assignment_in_working_area"
    assert teams_why["near"]["removed"] == {"level": 0, "skills": 0, "period": 1, "reach": 1, "working_area": 2,
                                            "forbidden": 0}
    assert teams_why["p2"]["reason"] == "no_assignment_in_period"
    assert why["late"]["en"] and why["late"]["nl"] and teams_why["p2"]["nl"]


def test_capacity_that_ran_out_is_named_as_the_binding_row() -> None:
    teams = (team("t0", skills=("web",)), team("t1"), team("t2", institution="inst-b", periods=("P2",)))
    jobs = (Assignment("a", "f", frozenset({"HBO"}), frozenset(), frozenset({"web"}), 1, 1, "P1"), job("b"))
    problem = Problem(teams, jobs, capacities=(Capacity("inst-a", "P1", "HBO", 1, 10),))
    solution = solve(problem)
    assert set(solution.matches) == {Pair("t0", "a")}
    result = explain(problem, solution.matches)
    (b,) = result["unmatched_assignments"]
    assert b["reason"] == "capacity_ran_out" and b["counts"]["eligible_blocked_by_capacity"] == 1
    assert [(x["group"], x["label"]) for x in b["binding"]] == [
        ("institution_capacity", "institution inst-a, period P1, level HBO")]
    assert "institution" in b["binding"][0]["en"] and "instelling" in b["binding"][0]["nl"]
    t1 = next(u for u in result["unmatched_teams"] if u["team_id"] == "t1")
    assert t1["reason"] == "capacity_ran_out"
    assert [x["group"] for x in t1["binding"]] == ["institution_capacity"]
    unused = result["figures"]["unused_capacity"]
    assert unused == [{"institution_id": "inst-a", "period": "P1", "level": "HBO", "teams": 1, "teams_used": 1,
                       "teams_unused": 0, "supervision_hours": 10, "supervision_hours_used": 0,
                       "supervision_hours_unused": 10}]


def test_teams_that_went_to_a_better_fit_are_said_so() -> None:
    teams = (team("t0", skills=("web",)),)
    jobs = (Assignment("a", "f", frozenset({"HBO"}), frozenset(), frozenset({"web"}), 1, 1, "P1"), job("b"))
    problem = Problem(teams, jobs)
    (b,) = explain(problem, solve(problem).matches)["unmatched_assignments"]
    assert (b["reason"], b["counts"]["eligible_matched_elsewhere"], b["binding"]) == (
        "eligible_teams_went_elsewhere", 1, [])


def test_figures_by_region_and_the_profile_of_choices() -> None:
    teams = (team("t0", prefs=("u1", "u2")), team("t1", institution="inst-b", prefs=("a1",)), team("t2", level="WO"))
    jobs = (job("u1", where=UTRECHT), job("u2", where=UTRECHT), job("a1", where=AMSTERDAM), job("x"))
    problem = Problem(teams, jobs)
    result = figures(problem, [Pair("t0", "u2"), Pair("t1", "x")])
    assert result["assignments_by_region"] == {
        "": {"served": 1, "total": 1, "share": 1.0}, "Noord-Holland": {"served": 0, "total": 1, "share": 0.0},
        "Utrecht": {"served": 1, "total": 2, "share": 0.5}}
    assert result["preference_profile"] == {"1": 0, "2": 1, "unranked": 1, "unmatched": 1}
    assert result["teams_by_level"]["WO"] == {"served": 0, "total": 1, "share": 0.0}


def test_precheck_counts_supply_against_demand_per_cell() -> None:
    teams = (team("w0", skills=("web",)), team("w1", skills=("web",), periods=("P2",)), team("m", level="MBO"))
    jobs = (job("a", required=("web",), lo=2, hi=2, where=UTRECHT), job("b", levels=("HBO", "MBO"), where=UTRECHT),
            job("c", period="P2", where=AMSTERDAM))
    check = precheck(Problem(teams, jobs))
    cells = {(c["level"], c["period"], c["region"], c["skill"]): c for c in check["cells"]}
    web = cells[("HBO", "P1", "Utrecht", "web")]
    assert (web["demand"], web["supply"], web["short_by"]) == (2, 1, 1)
    assert cells[("HBO", "P1", "Utrecht", "*")]["demand"] == 3 and cells[("HBO", "P1", "Utrecht", "*")]["supply"] == 1
    assert cells[("MBO", "P1", "Utrecht", "*")]["supply"] == 1
    assert cells[("HBO", "P2", "Noord-Holland", "*")]["short_by"] == 0
    assert check["short_cells"] == 2 and "2 of 4 cells" in check["message"] and "2 van 4 cellen" in check["message_nl"]


def test_a_snapshots_teams_and_assignments_are_made_as_their_constructors_make_them() -> None:
    """The snapshot reader sets each team's and assignment's fields directly (faster than a frozen __init__):
    every field is set, in the class's order, to what the constructor would give (a field added to the class but
    not to the reader fails here)."""
    from dataclasses import fields

    from benchmarks.generator import generate

    snapshot = generate(300, flavour="side", seed=3)
    snapshot["teams"][0].pop("periods", None)  # the batch's period, as for a v1 snapshot
    snapshot["assignments"][0].pop("mode", None)
    problem = Problem.from_snapshot(snapshot)

    def constructed(cls: type, entry: dict[str, Any]) -> Any:  # the snapshot's entry through the constructor
        given = {}
        for f in fields(cls):
            value = entry.get(f.name, (snapshot["period"],) if f.name == "periods" else
                              snapshot["period"] if f.name == "period" else None)
            if value is None:
                continue  # the field's default
            if isinstance(value, list):
                value = frozenset(value) if "frozenset" in str(f.type) else tuple(value)
            given[f.name] = value
        return cls(**given)

    for objects, entries, cls in ((problem.teams, snapshot["teams"], Team),
                                  (problem.assignments, snapshot["assignments"], Assignment)):
        names = [f.name for f in fields(cls)]
        for made, entry in zip(objects, entries, strict=True):
            assert list(vars(made)) == names
            again = constructed(cls, entry)
            assert again == made and hash(again) == hash(made) and repr(again) == repr(made)
    assert problem.teams[0].periods == (snapshot["period"],) and problem.assignments[0].mode == "remote"
    assert any(t.preferences for t in problem.teams) and any(a.supervision_hours for a in problem.assignments)
