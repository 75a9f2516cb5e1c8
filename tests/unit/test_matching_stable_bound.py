"""The bound on the fit of every stable matching (``matching.solver.stable_bound``, issue 15): it lies at
or above the best fit of a matching without blocking pairs, found by enumerating every feasible matching
of small random rounds and checking each with the plain checker of test_optimiser_v2; at or below the
best fit under the hard rules alone; and strictly below it on some rounds (it proves something)."""

from __future__ import annotations

import random
import time
from dataclasses import replace

import pytest
from matching.domain.model import Assignment, Capacity, FirmCap, Pair, Problem, Team
from matching.solver.arrays import eligibility
from matching.solver.stable_bound import stable_bound

from .test_matching_stable import LEVELS, stable_round
from .test_optimiser_v2 import all_feasible, plain_blocking, score

INSTITUTIONS = ("inst-a", "inst-b", "inst-c")


def network_round(rng: random.Random, n_teams: int, n_assignments: int) -> Problem:
    """No supervision hours and no firm caps (every ranked pair then gets a bound): assignments taking
    up to three teams, binding institution capacities, firms ranking institutions and levels (ties),
    fits that differ by the nice-to-have skills, one or two periods."""
    periods = ("P1", "P2")[:rng.choice((1, 1, 2))]
    ids = [f"a{j}" for j in range(n_assignments)]
    skills = ("s1", "s2", "s3")
    assignments = tuple(Assignment(
        ids[j], f"f{j}", frozenset(rng.sample(LEVELS, rng.randint(1, 2))), frozenset(),
        frozenset(rng.sample(skills, rng.randint(0, 2))), 1, rng.choice((1, 1, 2, 3)), rng.choice(periods),
        preferred_institutions=tuple(rng.sample(INSTITUTIONS, rng.randint(0, 2))),
        preferred_levels=tuple(rng.sample(LEVELS, rng.randint(0, 2)))) for j in range(n_assignments))
    teams = tuple(Team(f"t{i}", rng.choice(INSTITUTIONS), rng.choice(LEVELS), frozenset(rng.sample(skills, 2)),
                       tuple(rng.sample(periods, rng.randint(1, len(periods)))),
                       preferences=tuple(rng.sample(ids, rng.randint(0, n_assignments))))
                  for i in range(n_teams))
    capacities = tuple(Capacity(i, p, lv, rng.choice((0, 1, 1, 2, 3)), 40)
                       for i in INSTITUTIONS for p in periods for lv in LEVELS if rng.random() < 0.6)
    return Problem(teams, assignments, capacities=capacities)


def best_fits(problem: Problem) -> tuple[float, float | None]:
    """The best fit of any feasible matching, and of any without a blocking pair (None: there is none)."""
    best, best_stable = 0.0, None
    for m in all_feasible(problem):
        fit = score(problem, "max_fit", m)[0]
        best = max(best, fit)
        if (best_stable is None or fit > best_stable) and not plain_blocking(problem, m):
            best_stable = fit
    return best, best_stable


@pytest.mark.parametrize("maker", [network_round, stable_round])
def test_the_bound_lies_between_the_best_stable_fit_and_the_best_fit(maker: object) -> None:
    lowered = 0
    for seed in range(200):
        rng = random.Random(seed)
        problem = maker(rng, rng.randint(4, 6), rng.randint(3, 4))  # type: ignore[operator]
        best, best_stable = best_fits(problem)
        found = stable_bound(problem, eligibility(problem), time.perf_counter() + 30)
        assert found is not None
        assert found.dual >= best - 1e-6, seed
        assert found.cost >= 0.0
        if best_stable is not None:
            assert found.bound >= best_stable - 1e-6, (seed, found, best_stable)
            lowered += found.bound < best - 1e-6
    if maker is network_round:
        assert lowered >= 4, lowered


def limit_keeps_the_pair(limit: str) -> Problem:
    """Team t ranks assignment a first and a's firm ranks t's institution, but t fits c better (two
    nice-to-have skills and the firm's priority: 17 against 16; d is the same), so the best fit puts t on
    c, and (t, a) blocks that matching unless a limit keeps it: the firm's cap (u, on the firm's other
    assignment b, fills it) or the hours of t's institution (c needs 2 of its 3, a needs 4)."""
    skills = frozenset({"s1", "s2"})
    hours = 4 if limit == "hours" else 0
    a = Assignment("a", "firm", frozenset({"HBO"}), frozenset(), frozenset(), 1, 1, "P1", supervision_hours=hours,
                   preferred_institutions=("inst-a",))
    c = Assignment("c", "other", frozenset({"HBO"}), frozenset(), skills, 1, 1, "P1", priority=2,
                   supervision_hours=2 if limit == "hours" else 0)
    d = replace(c, assignment_id="d", firm_id="third")  # so the LP's dual of t's row is t's best fit, 17
    teams = [Team("t", "inst-a", "HBO", skills, ("P1",), preferences=("a",))]
    assignments = [a, c, d]
    caps: tuple[FirmCap, ...] = ()
    capacities: tuple[Capacity, ...] = ()
    if limit == "firm_cap":
        assignments.append(Assignment("b", "firm", frozenset({"MBO"}), frozenset(), frozenset(), 1, 1, "P1"))
        teams.append(Team("u", "inst-b", "MBO", frozenset(), ("P1",)))
        caps = (FirmCap("firm", 1),)
    else:
        capacities = (Capacity("inst-a", "P1", "HBO", 5, 3),)
    return Problem(tuple(teams), tuple(assignments), capacities=capacities, firm_caps=caps)


@pytest.mark.parametrize("limit", ["firm_cap", "hours"])
def test_a_pair_a_firm_cap_or_hours_can_keep_from_blocking_lowers_nothing(limit: str) -> None:
    """The LP leaves firm caps and hours out, so the cost of keeping such a pair from blocking is not
    among its terms: the stable matching t on c is the best one, and the bound stays at or above it
    (counting the pair's least cost, 1, would put it below)."""
    problem = limit_keeps_the_pair(limit)
    _, best_stable = best_fits(problem)
    assert best_stable is not None
    stable = [m for m in all_feasible(problem) if not plain_blocking(problem, m)
              and score(problem, "max_fit", m)[0] == best_stable]
    assert any(Pair("t", "c") in m for m in stable)
    assert not plain_blocking(problem, frozenset({Pair("t", "c")}) | (
        frozenset({Pair("u", "b")}) if limit == "firm_cap" else frozenset()))
    found = stable_bound(problem, eligibility(problem), time.perf_counter() + 30)
    assert found is not None
    assert found.bound >= best_stable - 1e-6, (found, best_stable)
