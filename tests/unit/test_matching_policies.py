"""Every policy against brute force on small random instances (with pins and forbids), every result
against the validator, and the validator against the optimiser's own rows."""

from __future__ import annotations

import itertools
import os
import random
import tempfile
from collections.abc import Callable

import pulp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matching.domain.model import Assignment, Pair, Problem, Team, eligible_pairs, violations
from matching.domain.policies import POLICIES
from matching.solver.paths import solve
from matching.solver.pulp_model import export_model, objective_values

from .test_optimiser import random_problem

Score = Callable[[Problem, list[Pair]], tuple[float, ...]]


def scores(policy: str) -> Score:
    names = [o.name for o in POLICIES[policy].objectives]

    def score(problem: Problem, matching: list[Pair]) -> tuple[float, ...]:
        pairs = eligible_pairs(problem)
        values = objective_values(problem, {p: pairs[p] for p in matching})
        return tuple(values[n] for n in names)

    return score


def feasible_matchings(problem: Problem) -> list[list[Pair]]:
    pairs = eligible_pairs(problem)
    options = [[None] + [a.assignment_id for a in problem.assignments if Pair(t.team_id, a.assignment_id) in pairs]
               for t in problem.teams]
    found = []
    for choice in itertools.product(*options):
        matching = [Pair(t.team_id, a) for t, a in zip(problem.teams, choice, strict=True) if a is not None]
        if not violations(problem, matching):
            found.append(matching)
    return found


def with_controls(rng: random.Random, problem: Problem, reference: bool = False) -> Problem:
    """Random forbids, at most one pin (on an eligible pair), and for min_change a random reference."""
    pairs = sorted(eligible_pairs(problem))
    forbidden = frozenset(p for p in pairs if rng.random() < 0.15)
    allowed = [p for p in pairs if p not in forbidden]
    pinned = frozenset(rng.sample(allowed, 1)) if allowed and rng.random() < 0.4 else frozenset()
    ref = frozenset(rng.sample(pairs, min(len(pairs), rng.randint(0, 3)))) if reference else frozenset()
    return Problem(problem.teams, problem.assignments, pinned, forbidden, ref)


@pytest.mark.parametrize("policy", ["max_fit", "max_served", "min_change"])
@pytest.mark.parametrize("seed", range(30))
def test_every_policy_equals_brute_force(policy: str, seed: int) -> None:
    rng = random.Random(seed * 7919 + len(policy))
    problem = with_controls(rng, random_problem(rng, rng.randint(1, 6), rng.randint(1, 4)),
                            reference=policy == "min_change")
    candidates = feasible_matchings(problem)
    solution = solve(problem, policy=policy)
    if not candidates:
        assert solution.status == "infeasible" and solution.diagnosis is not None
        return
    assert solution.status == "optimal"
    assert violations(problem, solution.matches) == []
    score = scores(policy)
    best = max(score(problem, m) for m in candidates)
    assert score(problem, list(solution.matches)) == pytest.approx(best)


def test_max_served_serves_more_assignments_than_max_fit_at_a_lower_fit() -> None:
    teams = (Team("t0", "i", "HBO", frozenset({"web"})), Team("t1", "i", "HBO", frozenset({"web"})))
    pair_job = Assignment("a0", "f0", frozenset({"HBO"}), frozenset(), frozenset({"web"}), 2, 2)
    small = tuple(Assignment(f"a{i}", f"f{i}", frozenset({"HBO"}), frozenset(), frozenset(), 1, 1) for i in (1, 2))
    problem = Problem(teams, (pair_job, *small))
    by_fit, by_served = solve(problem, policy="max_fit"), solve(problem, policy="max_served")
    assert {p.assignment_id for p in by_fit.matches} == {"a0"}
    assert {p.assignment_id for p in by_served.matches} == {"a1", "a2"}
    assert by_served.objective_values["served"] == 2 > by_fit.objective_values["served"]
    assert by_served.objective < by_fit.objective


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12), st.integers(1, 8),
       st.sampled_from(["max_fit", "max_served", "min_change"]))
def test_every_policy_result_passes_the_validator(seed: int, n_teams: int, n_assignments: int, policy: str) -> None:
    rng = random.Random(seed)
    problem = with_controls(rng, random_problem(rng, n_teams, n_assignments), reference=policy == "min_change")
    solution = solve(problem, policy=policy)
    if solution.status == "infeasible":
        assert solution.diagnosis and solution.diagnosis["groups"] and solution.matches == {}
        return
    assert violations(problem, solution.matches) == []
    assert problem.pinned <= set(solution.matches)
    assert not problem.forbidden & set(solution.matches)


def test_validator_names_each_broken_group() -> None:
    t0, t1 = Team("t0", "i", "HBO", frozenset({"web"})), Team("t1", "i", "HBO", frozenset())
    a = Assignment("a", "f", frozenset({"HBO"}), frozenset(), frozenset(), 2, 2)
    b = Assignment("b", "f", frozenset({"HBO"}), frozenset(), frozenset(), 1, 1)
    problem = Problem((t0, t1), (a, b), pinned=frozenset({Pair("t1", "b")}), forbidden=frozenset({Pair("t0", "b")}))
    assert violations(problem, [Pair("t0", "a"), Pair("t1", "a")]) == [
        "pins: pin team t1 on assignment b (0 >= 1 broken)"]
    assert violations(problem, [Pair("t0", "a"), Pair("t1", "b")]) == [
        "assignment_min_teams: assignment a (-1 >= 0 broken)"]
    assert violations(problem, [Pair("t1", "a"), Pair("t1", "b")]) == [
        "team_at_most_one: team t1 (2 <= 1 broken)", "assignment_min_teams: assignment a (-1 >= 0 broken)"]
    assert violations(problem, [Pair("t0", "b"), Pair("t1", "b")]) == [
        "ineligible pair t0/b: pair is forbidden", "assignment_max_teams: assignment b (1 <= 0 broken)"]
    assert violations(problem, [Pair("t1", "b")]) == []


def test_exported_models_solve_to_the_runs_objective() -> None:
    problem = random_problem(random.Random(3), 8, 5)
    solution = solve(problem, policy="max_served")
    levels = {"served": solution.objective_values["served"]}
    lp_text = export_model(problem, "max_served", levels, "lp").decode()
    assert lp_text.startswith("\\* matching *\\") and "level_served" in lp_text and "team_at_most_one" in lp_text
    mps = export_model(problem, "max_served", levels, "mps")
    fd, path = tempfile.mkstemp(suffix=".mps")
    with os.fdopen(fd, "wb") as handle:
        handle.write(mps)
    try:
        _, reread = pulp.LpProblem.fromMPS(path, sense=pulp.LpMaximize)
    finally:
        os.unlink(path)
    reread.solve(pulp.HiGHS(msg=False))
    assert pulp.value(reread.objective) == pytest.approx(solution.objective)


@pytest.mark.parametrize("seed", range(25))
def test_rerun_after_one_decline_changes_no_more_pairs_than_needed(seed: int) -> None:
    rng = random.Random(1000 + seed)
    base = random_problem(rng, rng.randint(2, 6), rng.randint(1, 4))
    published = solve(base)
    if not published.matches:
        return
    declined = rng.choice(sorted(published.matches))
    others = frozenset(published.matches) - {declined}
    problem = Problem(base.teams, base.assignments, forbidden=frozenset({declined}), reference=others)
    rerun = solve(problem, policy="min_change")
    assert rerun.status == "optimal" and declined not in rerun.matches
    assert violations(problem, rerun.matches) == []
    fewest_dropped = min(len(others - set(m)) for m in feasible_matchings(problem))
    assert len(others - set(rerun.matches)) == fewest_dropped
