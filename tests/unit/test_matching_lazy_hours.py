"""Supervision hours left out of a round that is a network without them, and added back where a matching
found breaks them (``matching.solver.stages``, LAZY_GROUPS; issue 20). The hours rule is read here from
its definition (a capacity's institution, level and period: the hours of the assignments its teams hold
at most its registered hours), not from the row builders; small rounds are enumerated (every matching
the plain checker of test_optimiser_v2 accepts), so the optimum compared with is exact."""

from __future__ import annotations

import dataclasses
import random

import pytest
from matching.domain.model import Pair, Problem
from matching.solver import stages
from matching.solver.arrays import eligibility
from matching.solver.paths import solve
from matching.solver.redundant import hours_cannot_bind

from benchmarks.generator import generate

from .test_optimiser_v2 import all_feasible, plain_feasible, random_problem, score
from .test_redundant_rows import side_round


def hours_kept(problem: Problem, matching: frozenset[Pair] | set[Pair]) -> bool:
    """Every capacity's supervision hours at least the hours of the assignments its teams hold."""
    teams, jobs = problem.teams_by_id, problem.assignments_by_id
    for c in problem.capacities:
        used = sum(jobs[p.assignment_id].supervision_hours for p in matching
                   if teams[p.team_id].institution_id == c.institution_id and teams[p.team_id].level == c.level
                   and jobs[p.assignment_id].period == c.period)
        if used > c.supervision_hours:
            return False
    return True


def without_hours(problem: Problem) -> Problem:
    return dataclasses.replace(problem, assignments=tuple(
        dataclasses.replace(a, supervision_hours=0) for a in problem.assignments))


def test_the_optimum_with_hours_added_where_broken_is_the_enumerated_one() -> None:
    bound = rounds = re_solved = 0
    for seed in range(60):
        problem = side_round(seed, 6, 4, 0.4)
        feasible = all_feasible(problem)
        best = max(score(problem, "max_fit", m)[0] for m in feasible)
        free = max(score(problem, "max_fit", m)[0] for m in all_feasible(without_hours(problem)))
        found = solve(problem, policy="max_fit", arrays=True)
        if "hours rows" not in found.steps:
            continue  # not a network without its hours (a firm cap over a two-team assignment, say)
        rounds += 1
        bound += free > best + 1e-9  # the hours bind: without them the best fit is higher
        re_solved += found.steps["hours re-solves"] > 0
        assert found.status == "optimal", seed
        assert found.objective == pytest.approx(best, abs=1e-6), seed
        assert found.bound is not None and found.bound >= best - 1e-6, seed  # the LP's, by pricing on the side path
        assert hours_kept(problem, set(found.matches)) and plain_feasible(problem, frozenset(found.matches)), seed
    assert rounds >= 30 and bound >= 20 and re_solved >= 20, (rounds, bound, re_solved)


@pytest.mark.parametrize("policy", ["max_fit", "rank_maximal"])
def test_a_generated_round_whose_hours_bind_keeps_the_full_models_optimum(
        policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's hours flavour at 300 teams, 14 hours per team of a capacity: the best fit without the
    hours is higher (they bind), and the answer is the optimum of the model with every hours row (the side
    path, as before)."""
    problem = Problem.from_snapshot(generate(300, flavour="hours", seed=2, hours_per_team=14))
    lazy = solve(problem, policy=policy, arrays=True)
    assert lazy.steps["hours rows added"] >= 1 and lazy.status == "optimal"
    assert hours_kept(problem, set(lazy.matches))
    free = solve(without_hours(problem), policy="max_fit", arrays=True)
    monkeypatch.setattr(stages, "LAZY_GROUPS", ())
    full = solve(problem, policy=policy, arrays=True)
    assert full.path == "side" and "hours rows" not in full.steps
    assert free.objective > full.objective_values["fit"] + 1e-6  # the hours bind
    for name, value in full.objective_values.items():
        assert lazy.objective_values[name] == pytest.approx(value, abs=1e-6), name


def test_hours_that_can_bind_but_that_the_best_matching_keeps_stay_on_the_network_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20's case: an assignment may need 24 hours and a capacity has 20 per team, so the rows are not
    redundant; the best matching without them keeps them, so it is the answer, from the network path,
    and the side path (every hours row) finds the same fit."""
    problem = Problem.from_snapshot(generate(300, flavour="hours", seed=2))
    most = max(a.supervision_hours for a in problem.assignments)
    assert most == 24 and all(c.supervision_hours == round(20 * c.teams) for c in problem.capacities)
    assert not hours_cannot_bind(problem, eligibility(problem))
    lazy = solve(problem, policy="max_fit", arrays=True)
    assert (lazy.path, lazy.status, lazy.steps["hours rows added"]) == ("network", "optimal", 0)
    assert lazy.steps["hours rows"] > 0 and hours_kept(problem, set(lazy.matches))
    monkeypatch.setattr(stages, "LAZY_GROUPS", ())
    full = solve(problem, policy="max_fit", arrays=True)
    assert full.path == "side" and full.objective == pytest.approx(lazy.objective, abs=1e-6)


def test_the_side_lp_by_pricing_keeps_the_enumerated_optimum_with_floors_and_hours() -> None:
    """The side path's LP by pricing (no two-team assignment) with floors, hours and firm caps: rounds of
    test_optimiser_v2 with every minimum at most one, enumerated: the optimum, and "infeasible" exactly
    where no matching keeps the rules."""
    checked = 0
    for seed in range(150):
        problem = random_problem(random.Random(seed), 6, 4)
        problem = dataclasses.replace(problem, assignments=tuple(
            dataclasses.replace(a, min_teams=min(a.min_teams, 1)) for a in problem.assignments))
        if not problem.floors:
            continue
        feasible = all_feasible(problem)
        found = solve(problem, policy="max_fit", arrays=True)
        if not feasible:
            assert found.status == "infeasible", seed
            continue
        checked += 1
        assert found.status == "optimal", seed
        assert found.objective == pytest.approx(max(score(problem, "max_fit", m)[0] for m in feasible), abs=1e-6), seed
    assert checked >= 30, checked
