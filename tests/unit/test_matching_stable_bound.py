"""The bound on the fit of every stable matching (``matching.solver.stable_bound``, issue 15): it lies at
or above the best fit of a matching without blocking pairs, found by enumerating every feasible matching
of small random rounds and checking each with the plain checker of test_optimiser_v2; at or below the
best fit under the hard rules alone; and strictly below it on some rounds (it proves something)."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from matching.domain.model import Assignment, Capacity, FirmCap, Pair, Problem, Team
from matching.solver.arrays import eligibility
from matching.solver.paths import solve_arrays
from matching.solver.stable_bound import _rows, own_duals, stable_bound
from matching.solver.stages import solve_stages

from benchmarks.generator import generate

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


@pytest.mark.parametrize("ranked", [False, True])
def test_the_stable_answer_under_a_time_limit_reports_a_gap_against_a_proved_bound(ranked: bool) -> None:
    """The cutting-plane path's first step is the best fit under the hard rules alone. Stopped by the time
    limit (the side flavour's MIP takes seconds to prove, its LP milliseconds), its matching's fit is no bound:
    the answer must report a bound at or above the best fit of any matching (found by the exact solve),
    a gap against it, and not call a matching below that best fit optimal. Without ranked wishes nothing
    can block, so the stable optimum is that best fit itself."""
    problem = Problem.from_snapshot(generate(500, flavour="side", seed=1))
    if not ranked:
        problem = replace(problem, teams=tuple(replace(t, preferences=()) for t in problem.teams))
    elig = eligibility(problem)
    exact = solve_stages(problem, 120, policy="max_fit", eligible=elig)
    assert exact.status == "optimal" and exact.gap is not None and exact.gap < 1e-6
    found = solve_arrays(problem, 0.3, policy="stable", lazy=True, eligible=elig)
    assert found.status in ("optimal", "feasible")
    assert found.objective < exact.objective - 1e-6  # the time limit stopped it (else this proves nothing)
    assert found.bound is not None and found.bound >= exact.objective - 1e-6, (found.bound, exact.objective)
    assert found.status == "feasible"
    assert found.gap == pytest.approx((found.bound - found.objective) / found.bound)
    assert found.gap is not None and found.gap >= (exact.objective - found.objective) / found.bound - 1e-9


@pytest.mark.parametrize("split", [False, True])
def test_the_bound_from_the_max_fit_solves_duals_is_the_one_its_own_lp_gives(
        split: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cutting-plane path's first step solves the network LP the bound needs (team, assignment and
    capacity rows), whole or per period in threads (``split``); the bound takes its duals from there
    instead of solving the LP again. The LP's value D is the same; where the two solves end at the same
    dual point the bound is the same too. An LP may have several optimal dual points, and the pairs'
    costs depend on the one found: the bound is the same on nine rounds in ten at least, and on every
    round it lies between the best stable fit and the best fit (enumerated)."""
    if split:
        import matching.solver.network as network

        monkeypatch.setattr(network, "SPLIT_FROM_PAIRS", 0)
        monkeypatch.setattr("matching.solver.network.os.cpu_count", lambda: 2)
    rounds = same = points = 0
    for seed in range(200):
        rng = random.Random(seed)
        problem = network_round(rng, rng.randint(4, 6), rng.randint(3, 4))
        if split and len({a.period for a in problem.assignments}) < 2:
            continue
        elig = eligibility(problem)
        found: list[Any] = []
        solved = solve_stages(problem, 30, policy="max_fit", eligible=elig, duals=found)
        assert solved.status == "optimal" and len(found) == 1, seed
        reused, own = found[0], own_duals(problem, elig, _rows(problem, elig), time.perf_counter() + 30)
        assert own is not None
        assert reused.dual == pytest.approx(own.dual, abs=1e-6) and reused.dual >= solved.objective - 1e-6
        from_step_one = stable_bound(problem, elig, time.perf_counter() + 30, duals=reused)
        recomputed = stable_bound(problem, elig, time.perf_counter() + 30)
        assert from_step_one is not None and recomputed is not None
        rounds += 1
        equal = (from_step_one.bound, from_step_one.pairs) == pytest.approx((recomputed.bound, recomputed.pairs))
        if np.allclose(reused.team, own.team, atol=1e-7) and np.allclose(reused.reduced, own.reduced, atol=1e-7):
            points += 1
            assert equal, seed
        same += equal
        best, best_stable = best_fits(problem)
        assert from_step_one.dual >= best - 1e-6
        if best_stable is not None:
            assert from_step_one.bound >= best_stable - 1e-6, seed
    assert rounds >= 40 and points >= 0.3 * rounds and same >= 0.9 * rounds, (points, same, rounds)
