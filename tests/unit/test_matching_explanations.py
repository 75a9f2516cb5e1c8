"""Why assignments and teams stay unmatched (with counts), the score of each match taken apart, and
the figures of a run."""

from __future__ import annotations

import random

import pytest
from matching.domain.explain import EligibleByTeam, explain, precheck
from matching.domain.model import (
    BASE_FIT,
    EXTRA_SKILL_WEIGHT,
    NICE_TO_HAVE_WEIGHT,
    Assignment,
    Capacity,
    Pair,
    Problem,
    Team,
    eligible_pairs,
)
from matching.solver.arrays import eligibility, precheck_supply
from matching.solver.paths import solve


def test_each_unmatched_assignment_and_team_gets_its_reason_with_counts() -> None:
    teams = (
        Team("hbo-web", "inst-a", "HBO", frozenset({"web", "data", "ai", "security"})),
        Team("hbo-plain", "inst-a", "HBO", frozenset()),
        Team("mbo-web", "inst-b", "MBO", frozenset({"web"})),
        Team("wo-ai", "inst-b", "WO", frozenset({"ai"})),
    )
    assignments = (
        Assignment("webshop", "f1", frozenset({"HBO"}), frozenset({"web"}), frozenset({"data"}), 1, 1),
        Assignment("roadmap", "f2", frozenset({"HBO"}), frozenset({"web"}), frozenset(), 1, 1),
        Assignment("needs-wo-data", "f3", frozenset({"WO"}), frozenset({"data"}), frozenset(), 1, 1),
        Assignment("only-mbo-level", "f4", frozenset({"MBO"}), frozenset(), frozenset(), 2, 2),
        Assignment("forbidden-one", "f5", frozenset({"WO"}), frozenset({"ai"}), frozenset(), 1, 1),
    )
    problem = Problem(teams, assignments, forbidden=frozenset({Pair("wo-ai", "forbidden-one")}))
    solution = solve(problem)
    assert set(solution.matches) == {Pair("hbo-web", "webshop")}
    result = explain(problem, solution.matches)
    why = {u["assignment_id"]: u for u in result["unmatched_assignments"]}
    assert why["roadmap"]["reason"] == "eligible_teams_went_elsewhere"
    assert why["roadmap"]["counts"]["eligible"] == 1 and why["roadmap"]["counts"]["eligible_matched_elsewhere"] == 1
    assert why["needs-wo-data"]["reason"] == "no_team_with_required_skills"
    assert why["needs-wo-data"]["counts"]["of_accepted_level"] == 1
    assert why["only-mbo-level"]["reason"] == "too_few_eligible_teams"
    assert (why["only-mbo-level"]["counts"]["eligible"], why["only-mbo-level"]["counts"]["min_teams"]) == (1, 2)
    assert why["forbidden-one"]["reason"] == "all_eligible_teams_forbidden"
    assert why["forbidden-one"]["counts"]["forbidden"] == 1
    assert why["roadmap"]["en"] and why["roadmap"]["nl"]
    none_of_level = explain(Problem(teams, (Assignment("x", "f", frozenset({"MBO"}), frozenset({"ai"}),
                                                       frozenset(), 1, 1),)), [])
    assert none_of_level["unmatched_assignments"][0]["reason"] == "no_team_with_required_skills"
    assert explain(Problem(teams[:2], assignments[2:3]), [])["unmatched_assignments"][0]["reason"] == \
        "no_team_of_accepted_level"

    teams_why = {u["team_id"]: u for u in result["unmatched_teams"]}
    assert set(teams_why) == {"hbo-plain", "mbo-web", "wo-ai"}
    assert teams_why["hbo-plain"]["reason"] == "no_assignment_with_covered_skills"
    assert teams_why["hbo-plain"]["counts"]["accepting_level"] == 2
    assert teams_why["mbo-web"]["reason"] == "eligible_assignments_went_to_other_teams"
    assert teams_why["mbo-web"]["counts"]["eligible_closed"] == 1
    assert teams_why["wo-ai"]["reason"] == "all_eligible_assignments_forbidden"
    lone = explain(Problem((teams[1],), (assignments[2],)), [])
    assert lone["unmatched_teams"][0]["reason"] == "no_assignment_accepts_level"


def test_score_breakdown_adds_up_to_the_match_score() -> None:
    team = Team("t", "i", "HBO", frozenset({"web", "data", "ai", "security", "ux"}))
    assignment = Assignment("a", "f", frozenset({"HBO"}), frozenset({"web"}), frozenset({"data", "seo"}), 1, 1)
    problem = Problem((team,), (assignment,))
    solution = solve(problem)
    (match,) = explain(problem, solution.matches)["matches"]
    score = match["score"]
    assert score["base"] == BASE_FIT
    assert score["nice_to_have_skills"] == ("data",) and score["nice_to_have"] == NICE_TO_HAVE_WEIGHT
    assert score["extra_skills"] == ("ai", "security", "ux") and score["extra"] == 2 * EXTRA_SKILL_WEIGHT
    assert score["total"] == solution.matches[Pair("t", "a")] == solution.objective


def test_figures_give_served_shares_by_level_and_institution_and_unused_teams() -> None:
    teams = (Team("t1", "inst-a", "HBO", frozenset()), Team("t2", "inst-a", "HBO", frozenset()),
             Team("t3", "inst-b", "MBO", frozenset()))
    assignments = (Assignment("a1", "f", frozenset({"HBO"}), frozenset(), frozenset(), 1, 1),
                   Assignment("a2", "f", frozenset({"MBO", "HBO"}), frozenset(), frozenset(), 1, 1),
                   Assignment("a3", "f", frozenset({"WO"}), frozenset(), frozenset(), 1, 1))
    figures = explain(Problem(teams, assignments), [Pair("t1", "a1"), Pair("t3", "a2")])["figures"]
    assert figures["assignments"] == {"served": 2, "total": 3, "share": 0.6667}
    assert figures["assignments_by_accepted_level"]["WO"] == {"served": 0, "total": 1, "share": 0.0}
    assert figures["assignments_by_accepted_level"]["HBO"]["served"] == 2
    assert figures["teams_by_level"]["HBO"] == {"served": 1, "total": 2, "share": 0.5}
    assert figures["teams_by_level"]["WO"] == {"served": 0, "total": 0, "share": None}
    assert figures["teams_by_institution"] == {"inst-a": {"served": 1, "total": 2, "share": 0.5},
                                               "inst-b": {"served": 1, "total": 1, "share": 1.0}}
    assert figures["unused_teams"] == ["t2"]


@pytest.mark.parametrize("seed", range(25))
def test_rows_over_the_pairs_asked_about_explain_exactly_as_rows_over_every_eligible_pair(seed: int) -> None:
    """The explanation builds its capacity rows over the matching and the pairs it asks about; the plain
    version builds them over every eligible pair. Random rounds (capacities with hours, firm caps, two
    periods, ranked preferences), matched under several policies and by a part of such a matching."""
    from benchmarks.generator import generate

    rng = random.Random(seed)
    problem = Problem.from_snapshot(generate(rng.randint(20, 60), flavour=rng.choice(("network", "side")),
                                             seed=seed))
    pairs = eligible_pairs(problem)
    by_team = eligibility(problem).by_team()  # what the worker passes: the pairs per team, from the arrays
    assert precheck(problem, by_team) == precheck(problem, pairs) == precheck(
        problem, supply_counts=precheck_supply(problem, eligibility(problem)))
    for policy in ("max_fit", "stable", "max_served"):
        matching = sorted(solve(problem, policy=policy).matches)
        for chosen in (matching, matching[::2]):
            plain = explain(problem, chosen, pairs, every_row=True)
            assert explain(problem, chosen, pairs) == plain
            assert explain(problem, chosen, by_team) == plain == explain(problem, chosen, by_team, every_row=True)
            assert explain(problem, chosen) == explain(problem, chosen, every_row=True)


@pytest.mark.parametrize("seed", range(4))
def test_free_teams_read_by_flags_per_position_are_explained_as_pair_by_pair_with_many_periods_and_hours(
        seed: int) -> None:
    """A free team's eligible assignments are read as flags per position, made per period and hours of
    the assignment (more than 32 such kinds take another way to the same flags): side rounds whose
    assignments each have their own hours, so the institutions' hours rows bind for some and not others,
    explain their free teams (counts, reasons, the rows named) exactly as the plain version, pair by pair."""
    from benchmarks.generator import generate

    snapshot = generate(200, flavour="side", seed=seed)
    assert len(snapshot["assignments"]) > 64
    rng = random.Random(seed)
    for j, a in enumerate(snapshot["assignments"]):
        a["supervision_hours"] = 4 + j % 70 + rng.choice((0, 0.5))
    for cap in snapshot.get("capacities", []):
        cap["supervision_hours"] = rng.choice((20, 60, 200))
    problem = Problem.from_snapshot(snapshot)
    by_team = eligibility(problem).by_team()
    matching = sorted(solve(problem, policy="max_fit").matches)
    for chosen in (matching, matching[::3]):
        fast = explain(problem, chosen, by_team)
        assert fast == explain(problem, chosen, by_team, every_row=True)
        teams = fast["unmatched_teams"]
        kinds = {row["group"] for t in teams for row in t["binding"]}
        assert {t["reason"] for t in teams} >= {"capacity_ran_out", "eligible_assignments_went_to_other_teams"}
        assert "supervision_hours" in kinds
    small = Problem.from_snapshot(generate(40, flavour="side", seed=seed))  # a few kinds: the flags by translate
    chosen = sorted(solve(small).matches)[::2]
    assert explain(small, chosen, eligibility(small).by_team()) == explain(small, chosen, every_row=True)


def test_the_random_rounds_above_ask_about_pairs_a_capacity_stops() -> None:
    from benchmarks.generator import generate

    binding = 0
    for seed in range(25):
        rng = random.Random(seed)
        problem = Problem.from_snapshot(generate(rng.randint(20, 60), flavour=rng.choice(("network", "side")),
                                                 seed=seed))
        result = explain(problem, sorted(solve(problem).matches)[::2])
        binding += sum(1 for r in (*result["unmatched_teams"], *result["unmatched_assignments"]) if r["binding"])
    assert binding >= 10


def test_filter_counts_read_per_class_of_teams_equal_the_plain_filters_with_forbids_and_a_working_area() -> None:
    """A free team's filter counts are read per class of teams (level, skills, periods) and its eligible
    assignments from the run's pairs, checking only assignments outside the working area and its
    forbidden pairs one by one; the plain version filters every assignment. Random rounds with forbidden
    pairs (eligible ones and others) and a working area that leaves some firms out."""
    from dataclasses import replace

    from benchmarks.generator import generate

    forbidden = outside = 0
    for seed in range(12):
        rng = random.Random(seed)
        problem = Problem.from_snapshot(generate(rng.randint(20, 60), flavour=rng.choice(("network", "side")),
                                                 seed=seed))
        pairs = sorted(eligible_pairs(problem))
        places = sorted({a.municipality for a in problem.assignments if a.municipality})
        others = [Pair(t.team_id, a.assignment_id) for t in problem.teams for a in problem.assignments]
        problem = replace(problem, forbidden=frozenset(rng.sample(pairs, len(pairs) // 5) + rng.sample(others, 10)),
                          working_area=frozenset(rng.sample(places, max(1, len(places) // 2))))
        matching = sorted(solve(problem).matches)
        assert explain(problem, matching) == explain(problem, matching, every_row=True)
        assert explain(problem, matching, eligibility(problem).by_team()) == explain(problem, matching)
        # a matched pair that is not eligible (a pin, say) is left out of the matches either way
        outside_pair = next(p for p in others if p not in set(pairs))
        assert explain(problem, [*matching, outside_pair], eligibility(problem).by_team()) == explain(
            problem, [*matching, outside_pair])
        assert precheck(problem, supply_counts=precheck_supply(problem, eligibility(problem))) == precheck(problem)
        # the supply counted a few teams at a time (as in a round too big for one team x place table)
        assert precheck(problem, supply_counts=precheck_supply(problem, eligibility(problem), table_cells=50)
                        ) == precheck(problem)
        counts = explain(problem, matching[::2])
        assert counts == explain(problem, matching[::2], every_row=True)
        removed = [u["removed"] for u in counts["unmatched_teams"]]
        forbidden += sum(1 for r in removed if r["forbidden"])
        outside += sum(1 for r in removed if r["working_area"])
    assert forbidden >= 5 and outside >= 5  # the rounds exercise both counts


def _stopped(problem: Problem, matched: list[tuple[Team, Assignment]], t: Team, a: Assignment) -> bool:
    """Adding (t, a) to the matching breaks an institution capacity, its supervision hours or a firm cap."""
    for c in problem.capacities:
        if (c.institution_id, c.period, c.level) == (t.institution_id, a.period, t.level):
            cell = [y for x, y in matched if (x.institution_id, y.period, x.level) == (c.institution_id, c.period,
                                                                                       c.level)]
            if len(cell) + 1 > c.teams or (a.supervision_hours > 0 and sum(
                    y.supervision_hours for y in cell) + a.supervision_hours > c.supervision_hours):
                return True
    return any(cap.firm_id == a.firm_id and sum(1 for _, y in matched if y.firm_id == a.firm_id) + 1 > cap.max_teams
               for cap in problem.firm_caps)


def test_an_unmatched_teams_counts_and_the_total_fit_agree_with_a_plain_count() -> None:
    """Each unmatched team's eligible assignments, counted here from the plain eligibility and the matching:
    full, staffed, closed, and those an institution capacity, its supervision hours or a firm cap would stop
    taking it; the reason is "capacity_ran_out" exactly when every one is full or stopped and one is stopped.
    The figures' total fit is the sum of every match's fit. Random rounds, matched and by half a matching."""
    from benchmarks.generator import generate

    stops_seen = ran_out_seen = 0
    for seed in range(100, 112):
        rng = random.Random(seed)
        problem = Problem.from_snapshot(generate(rng.randint(20, 60), flavour=rng.choice(("network", "side")),
                                                 seed=seed))
        pairs = eligible_pairs(problem)
        matching = sorted(solve(problem).matches)
        chosen = matching[::2] if seed % 2 else matching
        result = explain(problem, chosen, eligibility(problem).by_team())
        teams, jobs = problem.teams_by_id, problem.assignments_by_id
        staffed = {a: sum(1 for p in chosen if p.assignment_id == a) for a in jobs}
        others = [(teams[p.team_id], jobs[p.assignment_id]) for p in chosen]
        for row in result["unmatched_teams"]:
            t = teams[row["team_id"]]
            eligible = [jobs[p.assignment_id] for p in pairs if p.team_id == t.team_id]
            stops = [a for a in eligible if _stopped(problem, others, t, a)]
            counts = row["counts"]
            assert (counts["eligible"], counts["eligible_full"], counts["eligible_staffed"],
                    counts["eligible_closed"], counts["eligible_blocked_by_capacity"]) == (
                len(eligible), sum(1 for a in eligible if staffed[a.assignment_id] >= a.max_teams),
                sum(1 for a in eligible if staffed[a.assignment_id]),
                sum(1 for a in eligible if not staffed[a.assignment_id]), len(stops)), (seed, row["team_id"])
            if eligible:  # (none left: the filter that emptied the list is the reason)
                ran_out = bool(stops) and all(a in stops or staffed[a.assignment_id] >= a.max_teams
                                              for a in eligible)
                assert (row["reason"] == "capacity_ran_out") == ran_out, (seed, row["team_id"])
                ran_out_seen += ran_out
            stops_seen += len(stops)
        fits = [m["score"]["total"] for m in result["matches"]]
        assert len(fits) == len(chosen) and result["figures"]["total_fit"] == pytest.approx(sum(fits))
    assert stops_seen and ran_out_seen  # the rounds hold teams a capacity stops, and teams it stops everywhere


def test_a_team_whose_assignments_are_full_or_stopped_by_capacity_is_told_capacity_ran_out() -> None:
    """t1 could take a (full: t0 has it) or b (its institution may place no team in P2): capacity ran out,
    naming the row; with room in P2 it is told its assignments went to other teams."""
    teams = (Team("t0", "inst-a", "HBO", frozenset({"web"}), ("P1", "P2")),
             Team("t1", "inst-a", "HBO", frozenset({"web"}), ("P1", "P2")))
    jobs = (Assignment("a", "f", frozenset({"HBO"}), frozenset(), frozenset({"web"}), 1, 1, "P1"),
            Assignment("b", "g", frozenset({"HBO"}), frozenset(), frozenset(), 1, 1, "P2"))
    for room, reason in ((0, "capacity_ran_out"), (1, "eligible_assignments_went_to_other_teams")):
        problem = Problem(teams, jobs, capacities=(Capacity("inst-a", "P2", "HBO", room, 10),))
        (t1,) = explain(problem, [Pair("t0", "a")])["unmatched_teams"]
        assert (t1["team_id"], t1["reason"]) == ("t1", reason)
        assert (t1["counts"]["eligible"], t1["counts"]["eligible_full"],
                t1["counts"]["eligible_blocked_by_capacity"]) == (2, 1, 1 - room)
        assert [x["label"] for x in t1["binding"]] == (["institution inst-a, period P2, level HBO"] if not room else [])


def test_a_matchs_fit_taken_apart_as_a_tuple_is_the_breakdown_and_the_figures_read_from_it_are_the_plain_ones() -> None:
    """The explanations take each match's fit apart as a tuple (``fit_parts``) and sum it (``parts_total``):
    the same fields and, to the last bit, the same total as ``FitBreakdown``, on every eligible pair of random
    rounds (distances, ranks of both sides, nice-to-have and other skills). The figures read the total fit and
    the preference profile from those tuples: the same as the figures computed pair by pair without them."""
    from dataclasses import astuple

    from matching.domain.explain import figures
    from matching.domain.model import FitBreakdown, fit_breakdown, fit_parts, parts_total

    from benchmarks.generator import generate

    ranked = totals = 0
    for seed in range(8):
        rng = random.Random(seed)
        problem = Problem.from_snapshot(generate(rng.randint(20, 60), flavour=rng.choice(("network", "side")),
                                                 seed=seed))
        teams, jobs = problem.teams_by_id, problem.assignments_by_id
        for p in eligible_pairs(problem):
            t, a = teams[p.team_id], jobs[p.assignment_id]
            parts, breakdown = fit_parts(t, a), fit_breakdown(t, a)
            assert FitBreakdown(*parts) == breakdown and parts == astuple(breakdown)
            assert parts_total(parts).hex() == breakdown.total.hex()
            ranked += parts[5] is not None
            totals += 1
        matching = sorted(solve(problem).matches)
        for chosen in (matching, matching[1::2]):
            assert explain(problem, chosen, eligibility(problem).by_team())["figures"] == figures(problem, chosen)
            assert explain(problem, chosen)["figures"] == figures(problem, chosen)
    assert ranked and ranked < totals  # ranked and unranked pairs both


TOTAL_FIT = """
from benchmarks.generator import generate
from matching.domain.explain import explain
from matching.domain.model import Problem
from matching.solver.paths import solve
problem = Problem.from_snapshot(generate(400, flavour="network", seed=7))
print(repr(explain(problem, sorted(solve(problem).matches))["figures"]["total_fit"]))
"""


def test_the_total_fit_is_the_same_in_every_process() -> None:
    """The round's total fit, shown to the coordinator and compared between runs, is one number: not a sum whose
    last digits follow the order in which a process's hash seed happens to list the matches."""
    import os
    import subprocess
    import sys

    got = {subprocess.run([sys.executable, "-c", TOTAL_FIT], env={**os.environ, "PYTHONHASHSEED": str(seed)},
                          capture_output=True, text=True, check=True).stdout.strip() for seed in range(6)}
    assert len(got) == 1, got


def test_each_assignments_eligible_teams_read_from_the_arrays_are_the_plain_ones() -> None:
    """The worker's per-assignment view (found when asked) lists each assignment's eligible teams, ascending,
    as the plain grouping of the pairs does; an assignment no team is eligible for is not in it."""
    from benchmarks.generator import generate

    for seed in range(3):
        problem = Problem.from_snapshot(generate(300, flavour=("network", "side")[seed % 2], seed=seed))
        elig = eligibility(problem)
        plain = EligibleByTeam.of_pairs(problem, list(elig.pairs))
        fast = elig.by_team()
        assert fast.assignments == plain.assignments
        assert len(fast.teams) == len(plain.teams) and set(fast.teams) == set(plain.teams)
        for a in problem.assignments:
            assert fast.teams.get(a.assignment_id) == plain.teams.get(a.assignment_id), (seed, a.assignment_id)
        assert fast.teams.get("no-such-assignment") is None
        assert len(plain.teams) < len(problem.assignments)  # the rounds hold assignments no team is eligible for
        # asked for together (as the explanations ask for the unmatched ones), in a fresh view and in one that
        # already found some of them one by one
        rng = random.Random(seed)
        asked = [a.assignment_id for a in rng.sample(problem.assignments, 60)] + ["no-such-assignment"]
        for view in (elig.by_team(), fast):
            together = view.teams_of(asked)
            assert together == {a: plain.teams[a] for a in asked if a in plain.teams}
            assert any(a not in plain.teams for a in asked) and len(together) > 20
        assert plain.teams_of(asked) == together


def test_the_precheck_counts_each_cells_demand_and_assignments_as_its_definition_says() -> None:
    """Demand per level x period x region x skill, counted plainly: an assignment adds its minimum team count
    (and one assignment) to each level it accepts, once for "*" (any skill) and once per required skill."""
    from benchmarks.generator import generate

    multi = 0
    for seed in range(8):
        rng = random.Random(seed)
        snapshot = generate(rng.randint(40, 120), flavour=rng.choice(("network", "side")), seed=seed)
        for a in snapshot["assignments"]:  # some accept several levels and need two teams
            if rng.random() < 0.3:
                a["accepted_levels"] = sorted({*a["accepted_levels"], rng.choice(("MBO", "HBO", "WO"))})
                a["min_teams"] = a["max_teams"] = max(a["min_teams"], rng.choice((1, 2)))
        problem = Problem.from_snapshot(snapshot)
        demand: dict[tuple[str, str, str | None, str], list[int]] = {}
        for a in problem.assignments:
            multi += len(a.accepted_levels) > 1 and a.min_teams > 1
            for level in a.accepted_levels:
                for skill in ["*", *a.required_skills]:
                    cell = demand.setdefault((level, a.period, a.region, skill), [0, 0])
                    cell[0] += a.min_teams
                    cell[1] += 1
        cells = precheck(problem)["cells"]
        assert {(c["level"], c["period"], c["region"], c["skill"]): [c["demand"], c["assignments"]]
                for c in cells} == demand
        assert len(cells) == len(demand) and cells == sorted(cells, key=lambda c: (
            c["level"], c["period"], c["region"] or "", c["skill"]))
    assert multi >= 8
