"""The matching optimiser against brute force, and its results against the validator."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matching.domain.model import Assignment, Pair, Problem, Team, eligible_pairs, fit, violations
from matching.solver.paths import solve

LEVELS = ("MBO", "HBO", "WO")
SKILLS = ("web", "data", "ai", "security")


def random_problem(rng: random.Random, n_teams: int, n_assignments: int) -> Problem:
    teams = tuple(Team(f"t{i}", f"i{i % 2}", rng.choice(LEVELS),
                       frozenset(rng.sample(SKILLS, rng.randint(0, 3)))) for i in range(n_teams))
    assignments = []
    for j in range(n_assignments):
        lo = rng.randint(1, 2)
        assignments.append(Assignment(
            f"a{j}", f"f{j}", frozenset(rng.sample(LEVELS, rng.randint(1, 3))),
            frozenset(rng.sample(SKILLS, rng.randint(0, 1))), frozenset(rng.sample(SKILLS, rng.randint(0, 2))),
            lo, lo + rng.randint(0, 1)))
    return Problem(teams, tuple(assignments))


def brute_force_best(problem: Problem) -> float:
    pairs = eligible_pairs(problem)
    options = [[None] + [a.assignment_id for a in problem.assignments if Pair(t.team_id, a.assignment_id) in pairs]
               for t in problem.teams]
    best = 0.0
    for choice in itertools.product(*options):
        matching = [Pair(t.team_id, a) for t, a in zip(problem.teams, choice, strict=True) if a is not None]
        if not violations(problem, matching):
            best = max(best, sum(pairs[p] for p in matching))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_optimum_equals_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    problem = random_problem(rng, rng.randint(1, 6), rng.randint(1, 4))
    solution = solve(problem)
    assert solution.status == "optimal"
    assert violations(problem, solution.matches) == []
    assert solution.objective == pytest.approx(brute_force_best(problem))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12), st.integers(1, 8))
def test_every_result_satisfies_every_hard_rule(seed: int, n_teams: int, n_assignments: int) -> None:
    problem = random_problem(random.Random(seed), n_teams, n_assignments)
    solution = solve(problem)
    assert violations(problem, solution.matches) == []
    assert solution.objective == pytest.approx(sum(solution.matches.values()))


def test_both_solvers_agree() -> None:
    problem = random_problem(random.Random(7), 12, 8)
    assert solve(problem, "highs").objective == pytest.approx(solve(problem, "cbc").objective)


def test_open_or_closed_assignment_is_never_half_staffed() -> None:
    team = Team("t0", "i", "HBO", frozenset({"web"}))
    big = Assignment("a0", "f", frozenset({"HBO"}), frozenset(), frozenset({"web"}), 2, 3)
    small = Assignment("a1", "f", frozenset({"HBO"}), frozenset(), frozenset(), 1, 1)
    solution = solve(Problem((team,), (big, small)))
    assert set(solution.matches) == {Pair("t0", "a1")}


def test_validator_catches_each_broken_rule() -> None:
    t = Team("t", "i", "MBO", frozenset({"web"}))
    a = Assignment("a", "f", frozenset({"HBO"}), frozenset(), frozenset(), 1, 1)
    b = Assignment("b", "f", frozenset({"MBO"}), frozenset({"web"}), frozenset(), 1, 1)
    problem = Problem((t,), (a, b))
    assert any("ineligible" in v for v in violations(problem, [Pair("t", "a")]))
    assert violations(problem, [Pair("t", "b")]) == []
    assert fit(t, b) > 0
