"""``max_served`` on the network path (each assignment split into its first team and the rest, see
matching/served.py) against the side path and an independent brute force over every feasible matching."""

from __future__ import annotations

import random

import pytest
from matching.domain.model import Problem
from matching.solver.common import Solution
from matching.solver.paths import solve, solve_arrays
from matching.solver.served import applies

from .test_fast_paths import network_instance
from .test_optimiser_v2 import all_feasible, plain_feasible, score


def split_and_side(problem: Problem) -> tuple[Solution, Solution]:
    return (solve_arrays(problem, policy="max_served", split_served=True),
            solve_arrays(problem, policy="max_served", split_served=False))


@pytest.mark.parametrize("seed", range(30))
def test_the_split_round_reaches_the_brute_force_optimum_on_small_network_rounds(seed: int) -> None:
    rng = random.Random(seed)
    problem = network_instance(seed, rng.randint(3, 6), rng.randint(2, 4))
    assert applies(problem)
    best = max(score(problem, "max_served", m) for m in all_feasible(problem))
    split, side = split_and_side(problem)
    for solution in (split, side):
        chosen = frozenset(solution.matches)
        assert solution.status == "optimal" and plain_feasible(problem, chosen)
        assert score(problem, "max_served", chosen) == pytest.approx(best, abs=1e-6)
    assert split.path == "network"
    assert split.objective_values == pytest.approx(side.objective_values)


@pytest.mark.parametrize(("teams", "seed"), [(150, 3), (200, 4), (300, 6)])
def test_the_split_round_equals_the_side_path_on_generated_network_rounds(teams: int, seed: int) -> None:
    """Rounds of the benchmark's network flavour (assignments of up to three teams, binding capacities):
    the same number served and the same fit, with no MIP."""
    from benchmarks.generator import generate

    problem = Problem.from_snapshot(generate(teams, flavour="network", seed=seed))
    assert applies(problem) and any(a.max_teams >= 2 for a in problem.assignments)
    split, side = split_and_side(problem)
    assert (split.path, split.status, side.status) == ("network", "optimal", "optimal")
    for name in ("served", "fit"):
        assert split.objective_values[name] == pytest.approx(side.objective_values[name], abs=1e-6)
    assert solve(problem, policy="max_served", arrays=True).path == "network"


def test_rounds_the_split_does_not_fit_keep_the_side_path() -> None:
    from benchmarks.generator import generate

    problem = Problem.from_snapshot(generate(150, flavour="side", seed=2))
    assert not applies(problem)
    assert solve(problem, policy="max_served", arrays=True).path == "side"
