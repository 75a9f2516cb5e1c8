"""rank_maximal on a network round (issue 15, item 4): a sequence of linear programs, each over the
optimal face of the one before (bounds only, so every vertex stays integral), never a MIP. Its profile
(first choices, then second choices, ..., then the fit) equals the lexicographic optimum found by
enumerating every feasible matching of small random network rounds (capacities and firm caps binding,
minimum one team)."""

from __future__ import annotations

import random

import pytest
from matching.domain.model import Problem
from matching.solver.paths import solve

from .test_optimiser_v2 import all_feasible, random_snapshot, score


def network_round(seed: int, n_teams: int, n_assignments: int) -> Problem:
    rng = random.Random(seed)
    snapshot = random_snapshot(rng, n_teams, n_assignments)
    ids = [a["assignment_id"] for a in snapshot["assignments"]]
    for a in snapshot["assignments"]:
        a["min_teams"], a["max_teams"] = 1, rng.choice((1, 1, 2))
        a["supervision_hours"] = 0
        a["mode"] = "remote"  # reach does not thin the pairs out: more ranked pairs compete
        a["required_skills"] = []
    for t in snapshot["teams"]:
        t["preferences"] = rng.sample(ids, rng.randint(0, min(4, len(ids))))
    snapshot["fairness_floors"] = []
    return Problem.from_snapshot(snapshot)


@pytest.mark.parametrize("seed", range(30))
def test_the_rank_maximal_profile_equals_the_brute_force_lexicographic_optimum(seed: int) -> None:
    problem = network_round(seed, 6, 4)
    solution = solve(problem, policy="rank_maximal", arrays=True)
    assert (solution.path, solution.status, solution.gap) == ("network", "optimal", 0.0)
    best = max(score(problem, "rank_maximal", m) for m in all_feasible(problem))
    assert score(problem, "rank_maximal", solution.matches) == best


def test_the_random_rounds_have_ranks_that_compete() -> None:
    """The instances are not trivial: in many, max_fit gives fewer first (or second) choices than the
    rank-maximal optimum, so the rank stages decide."""
    differ = 0
    for seed in range(30):
        problem = network_round(seed, 6, 4)
        ranked = score(problem, "rank_maximal", solve(problem, policy="rank_maximal", arrays=True).matches)
        by_fit = score(problem, "rank_maximal", solve(problem, policy="max_fit", arrays=True).matches)
        differ += ranked[:-1] != by_fit[:-1]
    assert differ >= 5


def test_a_generated_network_round_is_solved_rank_maximally_by_linear_programs_only() -> None:
    from benchmarks.generator import generate

    problem = Problem.from_snapshot(generate(400, flavour="network", seed=3))
    ranked = solve(problem, policy="rank_maximal", arrays=True)
    by_fit = solve(problem, policy="max_fit", arrays=True)
    assert (ranked.path, ranked.status, ranked.gap) == ("network", "optimal", 0.0)
    profile = [ranked.objective_values.get(f"rank_{r}", 0.0) for r in range(1, 11)]
    assert profile >= [by_fit.objective_values.get(f"rank_{r}", 0.0) for r in range(1, 11)]
    assert ranked.objective_values["rank_1"] > by_fit.objective_values["rank_1"]


@pytest.mark.parametrize("teams", [300, 1000])
def test_a_decline_rerun_with_many_accepted_pairs_pinned_stays_on_the_network_path(teams: int) -> None:
    """Pins (a coordinator's, or pairs firms accepted) the pricing LP's start pairs do not cover: the
    LP starts with every pinned pair, so it is not called infeasible, and min_change keeps every other
    pair of the published matching."""
    from benchmarks.generator import generate

    snapshot = generate(teams, flavour="network", seed=1)
    first = solve(Problem.from_snapshot(snapshot), arrays=True)
    published = sorted(first.matches)
    declined, rest = published[0], published[1:]
    accepted = random.Random(1).sample(rest, len(rest) // 3)
    problem = Problem.from_snapshot(snapshot, pinned=accepted, forbidden=[declined], reference=rest)
    rerun = solve(problem, policy="min_change", arrays=True)
    assert (rerun.path, rerun.status, rerun.gap) == ("network", "optimal", 0.0)
    assert set(accepted) <= set(rerun.matches) and declined not in rerun.matches
    assert rerun.objective_values["kept"] == len(rest)
