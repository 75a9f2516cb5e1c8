"""The array path (vectorised eligibility, rows as arrays, HiGHS loaded in bulk, the network LP with
pricing) against the plain path (domain eligibility, the PuLP model solved through PuLP): the same
pairs and fits, the same rows over the same columns, the same optimum at every policy stage."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import numpy as np
import pytest
from matching.domain.model import Pair, Problem, eligible_pairs
from matching.domain.policies import POLICIES
from matching.solver.arrays import build_arrays, eligibility
from matching.solver.common import make_solver
from matching.solver.paths import solve
from matching.solver.pulp_model import build_model

from .test_optimiser_v2 import PERIODS, POLICY_NAMES, random_snapshot

RowKey = tuple[tuple[tuple[int, float], ...], float, float]


def plain(problem: Problem, policy: str) -> Any:
    """Solved through PuLP, exactly (a solver factory keeps solve on the plain path)."""
    return solve(problem, policy=policy, make=lambda limit, seed: make_solver("highs", limit, seed, 1e-9))


def instance(seed: int, n_teams: int = 7, n_assignments: int = 5, **changes: Any) -> Problem:
    rng = random.Random(seed)
    snapshot = random_snapshot(rng, n_teams, n_assignments)
    snapshot.update(changes)
    return Problem.from_snapshot(snapshot)


def network_instance(seed: int, n_teams: int, n_assignments: int) -> Problem:
    """Only network rows: minimum one team, no supervision hours, no floors (capacities and caps stay)."""
    rng = random.Random(seed)
    snapshot = random_snapshot(rng, n_teams, n_assignments)
    for a in snapshot["assignments"]:
        a["min_teams"], a["max_teams"] = 1, max(1, a["max_teams"])
        a["supervision_hours"] = 0
    snapshot["fairness_floors"] = []
    return Problem.from_snapshot(snapshot)


def pulp_rows(problem: Problem, policy: str) -> set[RowKey]:
    """The PuLP model's rows over column numbers in the array order (pairs, opened, placed, then the
    stable policy's blocking and limit decisions)."""
    model = build_model(problem, policy)
    order = [*model.x.values(), *model.opened.values(), *model.placed.values(), *model.extra.values()]
    number = {v.name: k for k, v in enumerate(order)}
    rows = set()
    for constraint in model.lp.constraints():
        terms = tuple(sorted((number[v.name], float(c)) for v, c in constraint.items() if c != 0))
        lower, upper = constraint.getLb(), constraint.getUb()
        rows.add((terms, -np.inf if lower is None else float(lower), np.inf if upper is None else float(upper)))
    return rows


def array_rows(problem: Problem, policy: str) -> set[RowKey]:
    model = build_arrays(problem, eligibility(problem), stable=POLICIES[policy].stable)
    terms: dict[int, list[tuple[int, float]]] = {r: [] for r in range(model.n_rows)}
    for r, c, v in zip(model.row.tolist(), model.col.tolist(), model.coef.tolist(), strict=True):
        terms[r].append((c, v))
    return {(tuple(sorted(terms[r])), float(model.row_lower[r]), float(model.row_upper[r]))
            for r in range(model.n_rows)}


@pytest.mark.parametrize("seed", range(60))
def test_vectorised_eligibility_gives_the_domains_pairs_and_fits_to_the_last_bit(seed: int) -> None:
    problem = instance(seed, 9, 7)
    fast = eligibility(problem).pairs
    assert fast == eligible_pairs(problem)
    assert list(fast) == sorted(fast)  # the column order of the plain model


def test_vectorised_eligibility_on_a_generated_round() -> None:
    from benchmarks.generator import generate

    problem = Problem.from_snapshot(generate(400, flavour="side", seed=3))
    fast = eligibility(problem).pairs
    assert len(fast) > 1000 and fast == eligible_pairs(problem)


@pytest.mark.parametrize("seed", range(20))
def test_eligibility_without_tables_and_in_small_chunks_gives_the_domains_pairs(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many places (no distance table, distances per pair; preference ranks by search), a skills test
    split into chunks of one group and candidates tested a few at a time: the domain's pairs and fits."""
    from matching.solver import arrays

    monkeypatch.setattr(arrays, "TABLE_CELLS", 0)
    monkeypatch.setattr(arrays, "ABLE_CELLS", 1)
    monkeypatch.setattr(arrays, "CANDIDATES", 3)
    problem = instance(seed, 9, 7)
    assert eligibility(problem).pairs == eligible_pairs(problem)


def test_eligibility_with_distance_tables_on_a_generated_round_matches_the_one_without(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from matching.solver import arrays

    from benchmarks.generator import generate

    problem = Problem.from_snapshot(generate(600, flavour="network", seed=4))
    with_tables = eligibility(problem)  # reach per team class and assignment, pairs listed per class
    monkeypatch.setattr(arrays, "REACH_CELLS", 0)
    per_candidate = eligibility(problem)  # the reach table asked for each candidate pair
    monkeypatch.setattr(arrays, "TABLE_CELLS", 0)
    without = eligibility(problem)
    assert len(with_tables) > 1000
    assert with_tables.pairs == per_candidate.pairs == without.pairs == eligible_pairs(problem)
    assert np.array_equal(with_tables.team_rank, without.team_rank)


@pytest.mark.parametrize("tables", [True, False])
def test_a_travel_limit_on_the_distance_itself_is_decided_as_the_domain_decides(
        tables: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits at, just under and just over the exact distance, on-site and hybrid, a team that may work
    remotely and one that may not, and places not known: the domain's pairs, by the reach table (per
    team class and assignment place) and without it (per pair)."""
    from matching.domain.model import Assignment, Team, haversine_km
    from matching.solver import arrays

    if not tables:
        monkeypatch.setattr(arrays, "TABLE_CELLS", 0)
    utrecht, groningen = (52.09, 5.12), (53.22, 6.57)
    exact = haversine_km(*utrecht, *groningen)
    limits = [exact, float(np.nextafter(exact, 0.0)), float(np.nextafter(exact, np.inf)), exact - 1e-7, None, 10.0]
    teams = [Team(f"t{k}-{remote}-{known}", "inst", "HBO", frozenset(), ("P1",),
                  latitude=utrecht[0] if known else None, longitude=utrecht[1] if known else None,
                  travel_limit_km=limit, remote_allowed=remote)
             for k, limit in enumerate(limits) for remote in (False, True) for known in (True, False)]
    assignments = [Assignment(f"a-{mode}-{known}", "firm", frozenset({"HBO"}), frozenset(), frozenset(), 0, 99,
                              "P1", mode, latitude=groningen[0] if known else None,
                              longitude=groningen[1] if known else None)
                   for mode in ("on_site", "hybrid", "remote") for known in (True, False)]
    problem = Problem(tuple(teams), tuple(assignments), frozenset(), frozenset(), frozenset())
    expected = eligible_pairs(problem)
    assert eligibility(problem).pairs == expected
    reached = {p.team_id for p in expected if p.assignment_id == "a-on_site-True"}
    assert {"t0-False-True", "t2-False-True", "t4-False-True"} <= reached  # limit at, over or none
    assert not {"t1-False-True", "t3-False-True", "t5-False-True"} & reached  # one step, 1e-7 km, far under


@pytest.mark.parametrize("seed", range(10))
def test_best_per_group_picks_the_k_highest_scores_lowest_position_first_on_ties(seed: int) -> None:
    from matching.solver.network import best_per

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    group = rng.integers(0, 12, n)
    if seed % 2:
        group = np.sort(group)
    score = rng.integers(0, 4, n).astype(np.float64)  # many ties
    among = rng.random(n) < 0.6 if seed % 3 else None
    for k in (1, 2, 3):
        allowed = range(n) if among is None else np.flatnonzero(among).tolist()
        expected = [i for g in sorted(set(group[allowed].tolist()))
                    for i in sorted((i for i in allowed if group[i] == g), key=lambda i: (-score[i], i))[:k]]
        assert best_per(group, score, k, among).tolist() == expected


@pytest.mark.parametrize("policy", POLICY_NAMES)
@pytest.mark.parametrize("seed", range(15))
def test_the_arrays_hold_exactly_the_rows_of_the_pulp_model(policy: str, seed: int) -> None:
    rng = random.Random(seed)
    problem = instance(seed, rng.randint(3, 8), rng.randint(2, 6))
    assert array_rows(problem, policy) == pulp_rows(problem, policy)


@pytest.mark.parametrize("seed", range(10))
def test_two_capacities_for_one_cell_each_get_their_rows(seed: int) -> None:
    """A cell (institution, period, level) named by two capacities: two capacity rows (and supervision
    rows) over the same pairs, as the PuLP model has them."""
    rng = random.Random(seed)
    snapshot = random_snapshot(rng, 9, 7)
    while not snapshot["capacities"]:
        snapshot = random_snapshot(rng, 9, 7)
    capacities = snapshot["capacities"]
    snapshot["capacities"] = [*capacities, {**capacities[0], "teams": 1, "supervision_hours": 3}]
    problem = Problem.from_snapshot(snapshot)
    assert array_rows(problem, "max_fit") == pulp_rows(problem, "max_fit")


@pytest.mark.parametrize("policy", POLICY_NAMES)
@pytest.mark.parametrize("seed", range(25))
def test_array_path_equals_the_plain_path_at_every_stage(policy: str, seed: int) -> None:
    rng = random.Random(seed)
    problem = instance(seed, rng.randint(4, 12), rng.randint(2, 8))
    fast, slow = solve(problem, policy=policy, arrays=True), plain(problem, policy)
    assert fast.status == slow.status
    assert fast.path in ("side", "network", "arrays")  # arrays: a network stage whose LP was fractional
    for objective in POLICIES[policy].objectives:
        assert fast.objective_values.get(objective.name, 0.0) == pytest.approx(
            slow.objective_values.get(objective.name, 0.0), abs=1e-6)


@pytest.mark.parametrize("policy", POLICY_NAMES)
@pytest.mark.parametrize("seed", range(8))
def test_the_array_paths_objective_values_are_the_domains_for_its_matching(policy: str, seed: int) -> None:
    from matching.solver.pulp_model import objective_values

    from .test_optimiser_v2 import random_problem

    problem = random_problem(random.Random(seed), 10, 6, reference=True)
    solution = solve(problem, policy=policy, arrays=True)
    assert solution.status in ("optimal", "infeasible")
    counted = POLICIES[policy].stable and solution.status == "optimal"  # blocking pairs of a matching found
    assert solution.objective_values == objective_values(problem, solution.matches, counted)


@pytest.mark.parametrize("policy", ("max_fit", "rank_maximal", "min_change"))
@pytest.mark.parametrize("seed", range(12))
def test_network_lp_with_pricing_equals_the_mip_on_larger_instances(policy: str, seed: int) -> None:
    problem = network_instance(seed, 60, 30)
    fast, slow = solve(problem, policy=policy, arrays=True), plain(problem, policy)
    # every stage an LP over the last stage's optimal face (bounds only, no level row): integral, no MIP
    assert fast.path == "network" and fast.gap == 0.0
    assert (fast.status, slow.status) == ("optimal", "optimal")
    for objective in POLICIES[policy].objectives:
        assert fast.objective_values.get(objective.name, 0.0) == pytest.approx(
            slow.objective_values.get(objective.name, 0.0), abs=1e-6)


def test_side_constraints_take_the_side_mip_and_a_network_round_the_lp() -> None:
    from benchmarks.generator import generate

    for flavour, path in (("network", "network"), ("side", "side")):
        problem = Problem.from_snapshot(generate(150, flavour=flavour, seed=2))
        fast, slow = solve(problem, arrays=True), plain(problem, "max_fit")
        assert fast.path == path and fast.status == slow.status == "optimal"
        assert fast.objective == pytest.approx(slow.objective, abs=1e-6)


@pytest.mark.parametrize("policy", ("max_fit", "max_served", "rank_maximal"))
@pytest.mark.parametrize(("teams", "seed"), [(150, 3), (150, 5), (200, 4), (200, 7)])
def test_the_side_mip_keeps_the_plain_optimum_with_side_constraints(policy: str, teams: int, seed: int) -> None:
    """Two-team assignments, supervision hours, floors and firm caps: the LP bound, the MIP near the
    LP optimum and the reduced-cost-fixed MIP reach the plain model's optimum at every stage."""
    from benchmarks.generator import generate

    problem = Problem.from_snapshot(generate(teams, flavour="side", seed=seed))
    fast, slow = solve(problem, policy=policy, arrays=True), plain(problem, policy)
    assert (fast.path, fast.status, slow.status) == ("side", "optimal", "optimal")
    assert fast.gap is not None and fast.gap <= 1e-6
    for objective in POLICIES[policy].objectives:
        assert fast.objective_values.get(objective.name, 0.0) == pytest.approx(
            slow.objective_values.get(objective.name, 0.0), abs=1e-6)


def test_the_solution_reports_its_time_split_and_memory() -> None:
    solution = solve(network_instance(1, 30, 15), arrays=True)
    assert set(solution.timings) == {"eligibility", "build", "hash", "handoff", "solve", "extract"}
    assert all(seconds >= 0 for seconds in solution.timings.values())
    assert solution.peak_memory_mib is not None and solution.peak_memory_mib > 0


def test_the_model_hash_changes_with_the_model_and_not_between_runs() -> None:
    problem = instance(4, 8, 5)
    assert solve(problem, arrays=True).model_hash == solve(problem, arrays=True).model_hash
    assert solve(problem, arrays=True).model_hash != solve(problem, policy="max_served", arrays=True).model_hash
    fewer = Problem(problem.teams[:-1], problem.assignments)
    assert solve(fewer, arrays=True).model_hash != solve(problem, arrays=True).model_hash


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_rests_during_a_run_and_is_as_it_was_after(enabled: bool) -> None:
    import gc

    seen: list[bool] = []
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        solution = solve(network_instance(3, 30, 12), arrays=True, on_stage=lambda _: seen.append(gc.isenabled()))
        assert solution.status == "optimal" and seen == [False]
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_an_empty_round_is_solved_as_nothing_to_match() -> None:
    problem = Problem((), ())
    solution = solve(problem, arrays=True)
    assert (solution.status, solution.matches, solution.objective) == ("optimal", {}, 0.0)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_both_paths_give_the_same_model_hash(policy: str) -> None:
    problem = instance(5, 8, 6)
    assert solve(problem, policy=policy, arrays=True).model_hash == plain(problem, policy).model_hash


def two_period_network(seed: int, n_teams: int, n_assignments: int) -> Problem:
    """A network round over two periods: assignments alternate, teams are in one period or both, firm
    caps only over firms whose assignments are all in one period."""
    rng = random.Random(seed)
    snapshot = random_snapshot(rng, n_teams, n_assignments)
    for j, a in enumerate(snapshot["assignments"]):
        a["period"] = PERIODS[j % 2]
        a["min_teams"], a["max_teams"], a["supervision_hours"] = 1, max(1, a["max_teams"]), 0
    for k, t in enumerate(snapshot["teams"]):
        t["periods"] = [PERIODS[k % 2]] if k % 3 else list(PERIODS[:2])
    snapshot["fairness_floors"] = []
    periods_of: dict[str, set[str]] = {}
    for a in snapshot["assignments"]:
        periods_of.setdefault(a["firm_id"], set()).add(a["period"])
    snapshot["firm_caps"] = [c for c in snapshot["firm_caps"] if len(periods_of.get(c["firm_id"], ())) == 1]
    return Problem.from_snapshot(snapshot)


@pytest.mark.parametrize("seed", range(16))
def test_a_network_round_split_by_period_and_solved_in_parallel_keeps_the_optimum(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Periods that share no row (no firm cap over both) are solved as separate LPs in threads; the
    matching is the plain model's optimum, also with teams registered for both periods."""
    import matching.solver.network as network

    monkeypatch.setattr(network, "SPLIT_FROM_PAIRS", 0)
    monkeypatch.setattr("matching.solver.network.os.cpu_count", lambda: 2)
    problem = two_period_network(seed, 60, 30)
    model = build_arrays(problem, eligibility(problem))
    parts = network.period_parts(problem, model, network.network_relaxation(model))
    assert parts is not None and len(parts) == 2
    assert sorted(np.concatenate(parts).tolist()) == list(range(model.n_pairs))
    for cols in parts:  # a part holds whole periods
        assert len({problem.assignments[a].period for a in model.eligibility.assignment[cols].tolist()}) == 1
    split: list[Any] = []
    whole = network.split_network

    def recorded(*args: Any, **kwargs: Any) -> Any:
        split.append(whole(*args, **kwargs))
        return split[-1]

    monkeypatch.setattr(network, "split_network", recorded)
    fast, slow = solve(problem, arrays=True), plain(problem, "max_fit")
    assert len(split) == 1 and split[0] is not None  # solved in parts, not whole
    assert (fast.path, fast.status, slow.status) == ("network", "optimal", "optimal")
    assert fast.objective == pytest.approx(slow.objective, abs=1e-6)
    assert fast.model_hash == slow.model_hash  # hashed while the second part solved


@pytest.mark.parametrize("seed", range(8))
def test_the_pairs_rows_matrices_hold_the_network_lps_entries_and_price_as_they_do(seed: int) -> None:
    """Pairs with different numbers of rows (capacities for some institutions only) are padded; the
    entries are the relaxation's, and reduced costs equal costs less the duals summed per column."""
    from benchmarks.generator import generate

    problem = two_period_network(seed, 40, 20) if seed < 6 else Problem.from_snapshot(
        generate(200, flavour="network", seed=seed))  # every pair with as many rows: no padding
    check_pair_rows(problem, seed)


def test_the_network_lines_are_not_read_from_a_model_with_a_pair_twice_in_a_family() -> None:
    import matching.solver.network as network

    problem = two_period_network(1, 40, 20)
    assert problem.capacities
    twice = dataclasses.replace(problem, capacities=(*problem.capacities, problem.capacities[0]))
    assert network.network_pairs(build_arrays(problem, eligibility(problem))) is not None
    assert network.network_pairs(build_arrays(twice, eligibility(twice))) is None
    assert solve(twice, arrays=True).objective == pytest.approx(plain(twice, "max_fit").objective, abs=1e-6)


def test_a_family_holding_a_pair_twice_is_read_by_sorting() -> None:
    """Two rows of one family over the same pair (two capacities for one institution, say) do not fit
    one line per family: the entries are then sorted by column, and none is lost."""
    from matching.solver.highs import Lp
    from matching.solver.network import PairRows

    lp = Lp(3, np.array([0, 1, 2, 3, 3, 4]), np.array([0, 1, 2, 0, 0, 2]), np.ones(6),
            np.zeros(5), np.ones(5), False, [3, 3])
    pairs = PairRows.of(lp)
    starts, rows, _ = pairs.entries(np.arange(3))
    assert starts.tolist() == [0, 3, 4, 6] and rows.tolist() == [0, 3, 3, 1, 2, 4]
    assert pairs.reduced(np.full(3, 10.0), np.arange(5.0)).tolist() == [4.0, 9.0, 4.0]


def check_pair_rows(problem: Problem, seed: int) -> None:
    import matching.solver.network as network

    model = build_arrays(problem, eligibility(problem))
    lp = network.network_relaxation(model)
    from_model = network.network_pairs(model)  # lines read from the model, no triplets
    assert from_model is not None and from_model.pairs is not None
    assert np.array_equal(from_model.lower, lp.lower) and np.array_equal(from_model.upper, lp.upper)
    pairs = network.PairRows.of(lp)
    entries = sorted(zip(lp.row.tolist(), lp.col.tolist(), lp.coef.tolist(), strict=True))
    for lines in (pairs, from_model.pairs):
        starts, rows, coefs = lines.entries(np.arange(len(lines)))
        cols = np.repeat(np.arange(len(lines)), np.diff(starts))
        assert sorted(zip(rows.tolist(), cols.tolist(), coefs.tolist(), strict=True)) == entries
    by_sorting = network.PairRows.of(dataclasses.replace(lp, blocks=None))
    assert by_sorting.coef is not None and pairs.coef is None  # line per family: no coefficients kept
    rng = np.random.default_rng(seed)
    costs, dual = rng.normal(size=lp.n_cols), rng.normal(size=len(lp.lower))
    expected = costs - np.bincount(lp.col, weights=lp.coef * dual[lp.row], minlength=lp.n_cols)
    assert np.allclose(pairs.reduced(costs, dual), expected)
    assert np.allclose(by_sorting.reduced(costs, dual), expected)
    part = rng.permutation(lp.n_cols)[:lp.n_cols // 2]
    assert np.allclose(pairs[part].reduced(costs[part], dual), expected[part])


@pytest.mark.parametrize("seed", range(6))
def test_the_families_said_to_stay_in_one_period_hold_pairs_of_one_period(seed: int) -> None:
    from matching.solver.network import PER_PERIOD_GROUPS

    from .test_optimiser_v2 import random_problem

    rng = random.Random(seed)
    problem = random_problem(rng, 14, 9)
    while len({a.period for a in problem.assignments}) < 2:
        problem = random_problem(rng, 14, 9)
    model = build_arrays(problem, eligibility(problem))
    period = np.array([a.period for a in problem.assignments])[model.eligibility.assignment]
    seen: dict[int, set[str]] = {}
    for r, c in zip(model.row.tolist(), model.col.tolist(), strict=True):
        if c < model.n_pairs and model.group[r] in PER_PERIOD_GROUPS:
            seen.setdefault(r, set()).add(str(period[c]))
    assert seen and all(len(periods) == 1 for periods in seen.values())


def test_a_firm_cap_over_both_periods_keeps_the_round_whole() -> None:
    import matching.solver.network as network

    rng = random.Random(5)
    snapshot = random_snapshot(rng, 30, 12)
    periods = sorted({a["period"] for a in snapshot["assignments"]})
    assert len(periods) == 2
    for a in snapshot["assignments"]:
        a["min_teams"], a["max_teams"], a["supervision_hours"] = 1, max(1, a["max_teams"]), 0
    snapshot["fairness_floors"] = []
    first = next(a for a in snapshot["assignments"] if a["period"] == periods[0])
    other = next(a for a in snapshot["assignments"] if a["period"] == periods[1])
    other["firm_id"] = first["firm_id"]
    snapshot["firm_caps"] = [{"firm_id": first["firm_id"], "max_teams": 1}]
    problem = Problem.from_snapshot(snapshot)
    model = build_arrays(problem, eligibility(problem))
    assert network.period_parts(problem, model, network.network_relaxation(model)) is None
    snapshot["firm_caps"] = []
    unlinked = Problem.from_snapshot(snapshot)
    model = build_arrays(unlinked, eligibility(unlinked))
    assert network.period_parts(unlinked, model, network.network_relaxation(model)) is not None


@pytest.mark.parametrize("seed", range(6))
def test_positions_of_a_few_pairs_are_their_places_in_the_arrays(seed: int) -> None:
    # pins, accepted and kept pairs are looked up without a Pair per eligible pair; the answer is the index's
    rng = random.Random(seed)
    problem = instance(seed, 14, 8)
    elig = eligibility(problem)
    teams = [t.team_id for t in problem.teams] + ["no-such-team"]
    jobs = [a.assignment_id for a in problem.assignments] + ["no-such-assignment"]
    asked = [Pair(rng.choice(teams), rng.choice(jobs)) for _ in range(60)] + list(elig.pairs)[:5]
    expected = [elig.index.get(p) for p in asked]
    assert any(i is None for i in expected) and any(i is not None for i in expected)
    assert eligibility(problem).positions(asked) == expected  # from the arrays (no index made yet)
    assert elig.positions(asked) == expected  # from the index, once it is made
