"""The stable policy (issue 15): blocking pairs defined with respect to the hard rules, the fewest of
them (then the best fit) instead of "infeasible", on both solve paths.

The checker is ``plain_blocking`` of test_optimiser_v2: plain Python that tries every move a blocking
pair would make on the whole matching, written apart from the project's rows. Small random rounds
(assignments taking up to three teams, minimum team counts, binding capacities and supervision hours,
firm caps, ties in the firms' preferences) are enumerated exhaustively."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import numpy as np
import pulp
import pytest
from matching.domain.explain import figures, precheck
from matching.domain.model import (
    Assignment,
    AtLimit,
    Blocks,
    Capacity,
    FirmCap,
    Key,
    Opened,
    Pair,
    Problem,
    Row,
    Team,
    blocking_pairs,
    eligible_pairs,
    firm_rank,
    hard_rows,
    stability_columns,
    violations,
)
from matching.solver.arrays import add_rows, build_arrays, eligibility
from matching.solver.common import make_solver
from matching.solver.paths import solve, solve_arrays
from matching.solver.pulp_model import build_model

from .test_optimiser_v2 import all_feasible, plain_blocking, plain_feasible, score

INSTITUTIONS = ("inst-a", "inst-b")
LEVELS = ("HBO", "MBO")


def team(team_id: str, institution: str = "inst-a", level: str = "HBO", prefs: tuple[str, ...] = (),
         periods: tuple[str, ...] = ("P1",)) -> Team:
    return Team(team_id, institution, level, frozenset(), periods, preferences=prefs)


def job(assignment_id: str, lo: int = 1, hi: int = 1, firm: str | None = None, period: str = "P1",
        institutions: tuple[str, ...] = ("inst-a",), levels: tuple[str, ...] = (), hours: int = 0) -> Assignment:
    return Assignment(assignment_id, firm or f"f-{assignment_id}", frozenset(LEVELS), frozenset(), frozenset(), lo, hi,
                      period, supervision_hours=hours, preferred_institutions=institutions, preferred_levels=levels)


def every_path(problem: Problem) -> list[Any]:
    """The plain path (PuLP, exact), the array path (HiGHS in bulk, the side path's stages) and the
    cutting-plane path large rounds take (``matching.solver.stable``: stability rows only for pairs that block)."""
    return [solve(problem, policy="stable", make=lambda limit, seed: make_solver("highs", limit, seed, 1e-9)),
            solve(problem, policy="stable", arrays=True),
            solve_arrays(problem, policy="stable", lazy=True)]


# ---- the smallest cases ---------------------------------------------------------------------


def test_one_team_and_one_assignment_taking_two_each_the_others_only_choice_are_matched() -> None:
    problem = Problem((team("t", prefs=("a",)),), (job("a", 1, 2),))
    for solution in every_path(problem):
        assert solution.status == "optimal"
        assert set(solution.matches) == {Pair("t", "a")}
        assert solution.objective_values["blocking"] == 0
    assert blocking_pairs(problem, {Pair("t", "a")}) == [] and violations(problem, [Pair("t", "a")], stable=True) == []
    # left apart, they block
    assert blocking_pairs(problem, []) == [Pair("t", "a")]


def test_a_row_holding_a_variable_twice_is_summed_on_every_path() -> None:
    """The stability row of the smallest case holds t's pair twice (coefficient 2 in t's state, 1 among
    a's teams): both models have one entry 3, as the row means."""
    problem = Problem((team("t", prefs=("a",)),), (job("a", 1, 2),))
    rows = [r for r in hard_rows(problem, eligible_pairs(problem), stable=True) if r.group == "stability"]
    assert len(rows) == 1 and [k for k, _ in rows[0].terms].count(Pair("t", "a")) == 2
    model = build_model(problem, "stable")
    x = model.x[Pair("t", "a")]
    (stable_row,) = [c for c in model.lp.constraints() if c.name.startswith("stability")]
    assert stable_row[x] == 3.0
    arrays = build_arrays(problem, eligibility(problem), stable=True)
    at = [k for k, g in enumerate(arrays.group) if g == "stability"]
    entries = [(int(c), float(v)) for r, c, v in zip(arrays.row, arrays.col, arrays.coef, strict=True) if r in at]
    assert (0, 3.0) in entries and [c for c, _ in entries].count(0) == 1
    # any row: the builders sum what appears twice and drop what sums to nothing
    twice = Row("stability", "made up", ((Pair("t", "a"), 1.5), (Opened("a"), 1.0), (Pair("t", "a"), 2.0),
                                         (Opened("a"), -1.0)), ">=", 0.0)
    assert twice.summed() == [(Pair("t", "a"), 3.5)]
    from matching.solver.arrays import _Rows

    out = _Rows()
    add_rows(out, [twice], {Pair("t", "a"): 0, Opened("a"): 1})
    assert (out.cols[0].tolist(), out.coefs[0].tolist()) == ([0], [3.5])


def test_a_team_kept_out_only_by_its_institutions_capacity_is_not_blocking() -> None:
    # both inst-a teams want x (room for two, it ranks inst-a first), inst-a may supply one team
    teams = (team("t1", prefs=("x",)), team("t2", prefs=("x",)))
    capacity = (Capacity("inst-a", "P1", "HBO", 1, 100),)
    problem = Problem(teams, (job("x", 1, 2),), capacities=capacity)
    for solution in every_path(problem):
        assert solution.status == "optimal" and len(solution.matches) == 1
        assert solution.objective_values["blocking"] == 0
        assert plain_blocking(problem, frozenset(solution.matches)) == []
        assert violations(problem, solution.matches, stable=True) == []
    assert blocking_pairs(problem, {Pair("t1", "x")}) == []
    # without the capacity the free team blocks
    assert blocking_pairs(Problem(teams, (job("x", 1, 2),)), {Pair("t1", "x")}) == [Pair("t2", "x")]


def test_supervision_hours_and_a_firm_cap_keep_a_pair_from_blocking_as_capacity_does() -> None:
    teams = (team("t1", prefs=("x",)), team("t2", prefs=("x",)))
    hours = Problem(teams, (job("x", 1, 2, hours=4),), capacities=(Capacity("inst-a", "P1", "HBO", 5, 6),))
    capped = Problem(teams, (job("x", 1, 2, firm="f"),), firm_caps=(FirmCap("f", 1),))
    for problem in (hours, capped):
        assert blocking_pairs(problem, {Pair("t1", "x")}) == []
        for solution in every_path(problem):
            assert (solution.status, len(solution.matches)) == ("optimal", 1)
            assert solution.objective_values["blocking"] == 0


def test_replacing_a_worse_team_keeps_the_firms_count_so_its_cap_does_not_stop_the_pair() -> None:
    # x (one team, firm f capped at one) holds t-low of inst-b; it ranks t-high's inst-a first: the firm
    # cap is full, but replacing t-low keeps it, so (t-high, x) blocks; unless inst-a may supply no team
    teams = (team("t-high", prefs=("x",)), team("t-low", institution="inst-b", prefs=("x",)))
    x = job("x", 1, 1, firm="f", institutions=("inst-a", "inst-b"))
    capped = Problem(teams, (x,), firm_caps=(FirmCap("f", 1),))
    assert blocking_pairs(capped, {Pair("t-low", "x")}) == [Pair("t-high", "x")]
    closed = Problem(teams, (x,), firm_caps=(FirmCap("f", 1),), capacities=(Capacity("inst-a", "P1", "HBO", 0, 0),))
    assert blocking_pairs(closed, {Pair("t-low", "x")}) == []
    for problem, expected in ((capped, {Pair("t-high", "x")}), (closed, {Pair("t-low", "x")})):
        for solution in every_path(problem):
            assert set(solution.matches) == expected and solution.objective_values["blocking"] == 0


def test_a_round_without_a_stable_matching_gets_the_fewest_blocking_pairs_and_says_which() -> None:
    # t ranks x first and x ranks t; no one else can do x, but the coordinator pinned t on y: the pair
    # (t, x) blocks whatever happens. Before, "infeasible"; now the matching with that one pair.
    problem = Problem((team("t", prefs=("x", "y")),), (job("x"), job("y")), pinned=frozenset({Pair("t", "y")}))
    for solution in every_path(problem):
        assert solution.status == "optimal" and set(solution.matches) == {Pair("t", "y")}
        assert solution.objective_values["blocking"] == 1
        assert figures(problem, solution.matches)["blocking_pairs"] == {
            "count": 1, "first": [{"team_id": "t", "assignment_id": "x"}]}
    assert violations(problem, [Pair("t", "y")], stable=True) == [
        "stability: team t and assignment x would both rather be together"]


def test_a_round_with_no_stable_matching_at_all_without_pins() -> None:
    """Found by enumeration: every feasible matching has a blocking pair (minimum team counts with
    capacities), the run returns one with the fewest and the best fit among those."""
    problem = NO_STABLE_MATCHING
    counts = {m: len(plain_blocking(problem, m)) for m in all_feasible(problem)}
    fewest = min(counts.values())
    assert fewest > 0
    best = max(score(problem, "stable", m) for m, n in counts.items() if n == fewest)
    for solution in every_path(problem):
        assert solution.status == "optimal"
        assert len(plain_blocking(problem, frozenset(solution.matches))) == fewest
        assert solution.objective_values["blocking"] == fewest
        assert score(problem, "stable", solution.matches) == pytest.approx(best)


# ---- exhaustive enumeration on small random rounds ------------------------------------------


def stable_round(rng: random.Random, n_teams: int, n_assignments: int) -> Problem:
    """Assignments taking up to three teams with minimum counts, capacities (teams and hours) that bind,
    firm caps, firms ranking institutions and levels (so teams tie), one or two periods."""
    periods = ("P1", "P2")[:rng.choice((1, 1, 2))]
    ids = [f"a{j}" for j in range(n_assignments)]
    firms = [f"f{k}" for k in range(max(1, n_assignments - 1))]
    assignments = []
    for j in range(n_assignments):
        hi = rng.choice((1, 2, 2, 3))
        assignments.append(Assignment(
            ids[j], rng.choice(firms), frozenset(rng.sample(LEVELS, rng.randint(1, 2))), frozenset(), frozenset(),
            rng.choice((1, 1, min(2, hi), hi)), hi, rng.choice(periods), supervision_hours=rng.choice((0, 2, 3)),
            preferred_institutions=tuple(rng.sample(INSTITUTIONS, rng.randint(0, 2))),
            preferred_levels=tuple(rng.sample(LEVELS, rng.randint(0, 2)))))
    teams = tuple(Team(f"t{i}", rng.choice(INSTITUTIONS), rng.choice(LEVELS), frozenset(),
                       tuple(rng.sample(periods, rng.randint(1, len(periods)))),
                       preferences=tuple(rng.sample(ids, rng.randint(0, n_assignments))))
                  for i in range(n_teams))
    capacities = tuple(Capacity(i, p, lv, rng.choice((0, 1, 1, 2, 2, 3)), rng.choice((2, 4, 5, 6, 20)))
                       for i in INSTITUTIONS for p in periods for lv in LEVELS if rng.random() < 0.5)
    caps = tuple(FirmCap(f, rng.randint(1, 3)) for f in firms if rng.random() < 0.4)
    return Problem(teams, tuple(assignments), capacities=capacities, firm_caps=caps)


NO_STABLE_MATCHING = Problem(
    (team("t0", prefs=("a0",)), team("t1", prefs=("a0", "a1")), team("t2", institution="inst-b", prefs=("a1",))),
    (job("a0", 2, 2, institutions=("inst-a",)), job("a1", 1, 1, institutions=("inst-a", "inst-b"))),
    capacities=(Capacity("inst-a", "P1", "HBO", 1, 0),))


def truth(problem: Problem, matching: frozenset[Pair], keys: list[Key]) -> dict[Key, float]:
    """Each stable-policy decision as it is for the matching, computed plainly: a pair blocks by
    ``plain_blocking``; a limit is reached when its count (or hours above the threshold) says so."""
    teams, jobs = problem.teams_by_id, problem.assignments_by_id
    blocking = set(plain_blocking(problem, matching))
    per_firm = Counter(jobs[p.assignment_id].firm_id for p in matching)
    values: dict[Key, float] = {}
    for key in keys:
        if isinstance(key, Blocks):
            values[key] = float(Pair(key.team_id, key.assignment_id) in blocking)
            continue
        assert isinstance(key, AtLimit)
        if key.rule == "firm_cap":
            cap = problem.firm_caps[key.index]
            values[key] = float(per_firm[cap.firm_id] >= cap.max_teams)
            continue
        c = problem.capacities[key.index]
        mine = [p for p in matching if teams[p.team_id].institution_id == c.institution_id
                and teams[p.team_id].level == c.level and jobs[p.assignment_id].period == c.period]
        if key.rule == "capacity":
            values[key] = float(len(mine) >= c.teams)
        else:
            values[key] = float(sum(jobs[p.assignment_id].supervision_hours for p in mine) > key.threshold)
    return values


@pytest.mark.parametrize("seed", range(40))
def test_stable_has_the_fewest_blocking_pairs_then_the_best_fit_on_every_path(seed: int) -> None:
    rng = random.Random(seed)
    problem = stable_round(rng, rng.randint(4, 6), rng.randint(3, 4))
    counts = {m: len(plain_blocking(problem, m)) for m in all_feasible(problem)}
    fewest = min(counts.values())  # the empty matching is feasible: never infeasible
    best = max(score(problem, "stable", m) for m, n in counts.items() if n == fewest)
    for solution in every_path(problem):
        chosen = frozenset(solution.matches)
        assert solution.status == "optimal" and plain_feasible(problem, chosen)
        assert len(plain_blocking(problem, chosen)) == fewest == solution.objective_values["blocking"]
        assert score(problem, "stable", chosen) == pytest.approx(best, abs=1e-6)


def test_the_random_rounds_exercise_what_they_are_for() -> None:
    """Over the seeds above: multi-team assignments matched, pairs kept from blocking by a limit alone,
    ties in the firms' ranks, and rounds where no matching is stable."""
    seen: Counter[str] = Counter()
    for seed in range(40):
        rng = random.Random(seed)
        problem = stable_round(rng, rng.randint(4, 6), rng.randint(3, 4))
        loose = Problem(problem.teams, problem.assignments)
        matchings = all_feasible(problem)
        counts = [len(plain_blocking(problem, m)) for m in matchings]
        seen["no stable matching"] += min(counts) > 0
        for a in problem.assignments:  # two teams that rank a, ranked alike by a
            ranks = [firm_rank(a, t) for t in problem.teams if a.assignment_id in t.preferences]
            seen["ties"] += any(r is not None and ranks.count(r) > 1 for r in ranks)
        for m in matchings[::7]:
            per_job = Counter(p.assignment_id for p in m)
            seen["two or three teams on one"] += any(n >= 2 for n in per_job.values())
            seen["kept from blocking by a limit"] += len(plain_blocking(loose, m)) > len(plain_blocking(problem, m))
    wanted = ("no stable matching", "two or three teams on one", "kept from blocking by a limit", "ties")
    assert all(seen[k] for k in wanted), seen


@pytest.mark.parametrize("seed", range(12))
def test_the_rows_of_both_models_count_exactly_the_plain_blocking_pairs(seed: int) -> None:
    """For every feasible matching: with each pair's 0/1 set to whether it blocks (plain checker) and each
    limit to whether it is reached, every row of the PuLP model and of the arrays holds; a blocking pair
    set to 0 breaks one. So the solver's count is the plain count, on both paths."""
    rng = random.Random(1000 + seed)
    problem = stable_round(rng, rng.randint(3, 4), rng.randint(2, 3))
    model = build_model(problem, "stable")
    elig = eligibility(problem)
    arrays = build_arrays(problem, elig, stable=True)
    keys = stability_columns(hard_rows(problem, eligible_pairs(problem), stable=True))
    assert list(model.extra) == keys and arrays.n_cols == len(elig) + len(problem.assignments) + len(keys)
    n_p, n_a = len(elig), len(problem.assignments)
    constraints = list(model.lp.constraints())
    for matching in all_feasible(problem):
        values = truth(problem, matching, keys)

        def pulp_holds(decisions: dict[Key, float], m: frozenset[Pair] = matching) -> bool:
            for p, v in model.x.items():
                v.varValue = float(p in m)
            for j, v in model.opened.items():
                v.varValue = float(any(p.assignment_id == j for p in m))
            for k, v in model.extra.items():
                v.varValue = decisions[k]
            return all(c.valid(1e-9) for c in constraints)

        def arrays_hold(decisions: dict[Key, float], m: frozenset[Pair] = matching) -> bool:
            column = np.zeros(arrays.n_cols)
            for p in m:
                column[elig.index[p]] = 1.0
                column[n_p + [a.assignment_id for a in problem.assignments].index(p.assignment_id)] = 1.0
            column[n_p + n_a:] = [decisions[k] for k in keys]
            return arrays.holds(column, 1e-9)

        assert pulp_holds(values) and arrays_hold(values)
        for key, v in values.items():
            if isinstance(key, Blocks) and v:
                assert not pulp_holds({**values, key: 0.0}) and not arrays_hold({**values, key: 0.0})


@pytest.mark.parametrize("seed", range(40))
def test_blocking_pairs_of_the_domain_equal_the_plain_checker_on_every_matching(seed: int) -> None:
    rng = random.Random(2000 + seed)
    problem = stable_round(rng, rng.randint(3, 5), rng.randint(2, 3))
    for matching in all_feasible(problem)[::3]:
        assert blocking_pairs(problem, matching) == plain_blocking(problem, matching)


def test_the_stable_policy_solves_in_two_stages_with_the_count_held() -> None:
    """The blocking count first (held as a level), then the fit; an exported model holds the count as
    the run recorded it."""
    problem = NO_STABLE_MATCHING
    solution = solve(problem, policy="stable")
    levels = {"blocking": solution.objective_values["blocking"]}
    model = build_model(problem, "stable", levels)
    held = model.lp.get_constraint_by_name("level_blocking")  # minus the pairs that may block >= minus the count
    assert held.getLb() == pytest.approx(-solution.objective_values["blocking"] - 1e-4) and held.getUb() is None
    model.lp.solve(pulp.HiGHS(msg=False))
    assert pulp.value(model.lp.objective) == pytest.approx(solution.objective)


# ---- the pre-check ----------------------------------------------------------------------------


def test_the_precheck_names_a_ranked_assignment_that_is_not_in_the_batch() -> None:
    problem = Problem((team("t1", prefs=("gone", "a")), team("t0", prefs=("a",))), (job("a"),))
    check = precheck(problem)
    assert check["unknown_preferences"] == [{"team_id": "t1", "assignment_id": "gone", "rank": 1}]
    assert "team t1 choice 1 (gone)" in check["unknown_preferences_message"]
    assert "team t1 keuze 1 (gone)" in check["unknown_preferences_message_nl"]
    clean = precheck(Problem((team("t0", prefs=("a",)),), (job("a"),)))
    assert clean["unknown_preferences"] == [] and clean["unknown_preferences_message_nl"].startswith("elke")


def test_progress_shows_the_blocking_count_being_solved_as_a_count() -> None:
    """The solver maximises minus the blocking pairs; a coordinator watching the run sees the count."""
    from matching.solver.common import Progress

    class Recording(Progress):
        def __setattr__(self, name: str, value: Any) -> None:
            super().__setattr__(name, value)
            if name == "best" and value is not None:
                self.__dict__.setdefault("log", []).append(self.as_dict())

    for arrays in (False, True):
        progress = Recording()
        solution = solve(NO_STABLE_MATCHING, policy="stable", progress=progress, arrays=arrays)
        shown = [entry["best"] for entry in progress.__dict__["log"] if entry["objective"] == "blocking"]
        assert shown and shown[-1] == solution.objective_values["blocking"] > 0


def test_the_cutting_plane_path_takes_each_of_its_steps_on_the_random_rounds() -> None:
    """Over the exhaustive rounds: some answered by the max_fit matching itself, some after the held
    re-solve, some by cutting planes (every one checked against the brute force above)."""
    steps: Counter[str] = Counter()
    for seed in range(40):
        rng = random.Random(seed)
        problem = stable_round(rng, rng.randint(4, 6), rng.randint(3, 4))
        taken = solve_arrays(problem, policy="stable", lazy=True).steps
        steps["max_fit stable"] += not taken
        steps["held re-solve"] += taken.get("held re-solves", 0) > 0
        steps["cutting planes"] += taken.get("cut rounds", 0) > 0
    assert min(steps.values()) >= 3, steps


@pytest.mark.parametrize("seed", [3, 4])
def test_a_generated_round_is_as_stable_and_fits_as_well_on_the_cutting_plane_path(seed: int) -> None:
    """The benchmark's network flavour (150 teams): the cutting-plane path and the full model agree; the
    answer is never worse than deferred acceptance."""
    from matching.solver.arrays import eligibility
    from matching.solver.stable import deferred, ranked_pairs

    from benchmarks.generator import generate

    problem = Problem.from_snapshot(generate(150, flavour="network", seed=seed))
    lazy, full = solve_arrays(problem, policy="stable", lazy=True), solve_arrays(problem, policy="stable", lazy=False)
    assert lazy.status == full.status == "optimal"
    assert lazy.objective_values["blocking"] == full.objective_values["blocking"] == 0
    assert lazy.objective == pytest.approx(full.objective, abs=1e-6)
    elig = eligibility(problem)
    accepted = deferred(problem, elig.pairs)
    assert blocking_pairs(problem, accepted, ranked_pairs(problem, elig)) == []
    assert lazy.objective >= sum(elig.pairs[p] for p in accepted)


def test_the_cut_pairs_kept_by_leaving_pairs_out_block_only_where_their_team_is_free_or_assignment_short() -> None:
    """``stable.restrict`` keeps each cut pair from blocking the way a stable incumbent keeps it, by leaving
    pairs out: over every feasible matching of the small random rounds that uses only the pairs left in
    (and the pins it adds), a cut pair not held whole blocks (by the plain checker) only where its team is
    free in the assignment's period or its assignment is below its maximum; the incumbent is one of those
    matchings, and better ones remain."""
    from matching.solver.stable import ranked_pairs, restrict

    checked = better = 0
    for seed in range(40):
        rng = random.Random(seed)
        problem = stable_round(rng, rng.randint(4, 6), rng.randint(3, 4))
        feasible = all_feasible(problem)
        stable = [m for m in feasible if not plain_blocking(problem, m)]
        if not stable:
            continue
        incumbent = min(stable, key=lambda m: (score(problem, "stable", m), sorted(m)))
        elig = eligibility(problem)
        cuts = ranked_pairs(problem, elig)
        kept_problem, kept_elig, held = restrict(problem, elig, set(incumbent), cuts, set())
        left = set(kept_elig.pairs)
        assert incumbent <= left and kept_problem.pinned <= incumbent
        jobs = problem.assignments_by_id
        for m in feasible:
            if not m <= left or not kept_problem.pinned <= m:
                continue
            checked += 1
            better += score(problem, "stable", m) > score(problem, "stable", incumbent)
            staffed = Counter(p.assignment_id for p in m)
            busy = {(p.team_id, jobs[p.assignment_id].period) for p in m}
            for p in set(plain_blocking(problem, m)) & (set(cuts) - held):
                a = jobs[p.assignment_id]
                assert (p.team_id, a.period) not in busy or staffed[a.assignment_id] < a.max_teams, (seed, p)
    assert checked >= 100 and better >= 10, (checked, better)
