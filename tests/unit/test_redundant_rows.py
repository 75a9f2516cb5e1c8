"""Side rows that cannot bind are left out of the model solved (``matching.solver.redundant``): the
supervision hours, institution capacities and firm caps whose bound the other rows already keep. On
small random rounds, with binding and non-binding hours and caps and assignments taking up to three
teams: the rows found redundant are those a plain-Python reading of the rule finds, no matching of
the other rows breaks them (every matching enumerated), the optimum is the plain path's at every
stage, and the round goes the network path exactly when every side row is redundant."""

from __future__ import annotations

import dataclasses
import itertools
import random
from typing import Any

import pytest
from matching.domain.model import Problem, eligible_pairs, hard_rows, values_of
from matching.domain.policies import POLICIES
from matching.solver.arrays import build_arrays, eligibility
from matching.solver.common import make_solver
from matching.solver.paths import solve
from matching.solver.redundant import hours_cannot_bind, redundant_rows, without_rows

from .test_optimiser_v2 import INSTITUTIONS, LEVELS, PERIODS, random_snapshot

DROPPABLE = ("institution_capacity", "supervision_hours", "firm_cap")


def side_round(seed: int, n_teams: int, n_assignments: int, generous: float) -> Problem:
    """A round whose only side rows are supervision hours: minimums of at most one, maximums up to
    three, no floor, no pin; a capacity for most cells, its hours ``generous`` x its teams x the
    largest need (above 1: the hours cannot bind; below: they may), some of them set anew at random."""
    rng = random.Random(seed)
    snapshot = random_snapshot(rng, n_teams, n_assignments)
    for a in snapshot["assignments"]:
        a["min_teams"] = rng.choice((0, 1, 1))
        a["max_teams"] = rng.choice((1, 1, 2, 3))
        a["supervision_hours"] = rng.choice((0, 2, 4, 8))
    snapshot["fairness_floors"] = []
    periods = sorted({a["period"] for a in snapshot["assignments"]} | {p for t in snapshot["teams"]
                                                                        for p in t["periods"]})
    snapshot["capacities"] = [
        {"institution_id": inst, "period": p, "level": lv, "teams": (teams := rng.randint(1, 4)),
         "supervision_hours": round(generous * teams * 8) if rng.random() < 0.8 else rng.choice((0, 4, 8, 40))}
        for inst in INSTITUTIONS for p in periods if p in PERIODS for lv in LEVELS if rng.random() < 0.7]
    firms = sorted({a["firm_id"] for a in snapshot["assignments"]})
    snapshot["firm_caps"] = [{"firm_id": f, "max_teams": rng.randint(1, 5)} for f in firms if rng.random() < 0.4]
    return Problem.from_snapshot(snapshot)


def expected_redundant(problem: Problem) -> dict[str, tuple[int, int]]:
    """Per family, (rows, rows that cannot bind) as the rule reads in plain Python: a cell's teams at
    most its capacity; a cell's hours at most the sum over its teams of the largest need each is
    eligible for, over the ``teams`` of them needing most (when one capacity names the cell); a firm's
    teams at most the sum over its assignments of the maximum or the eligible teams, if fewer."""
    pairs = eligible_pairs(problem)
    team = {t.team_id: t for t in problem.teams}
    need = {a.assignment_id: float(a.supervision_hours) for a in problem.assignments}
    period = {a.assignment_id: a.period for a in problem.assignments}
    out = {name: (0, 0) for name in DROPPABLE}

    def count(name: str, redundant: bool) -> None:
        rows, dropped = out[name]
        out[name] = (rows + 1, dropped + redundant)

    named = [(c.institution_id, c.period, c.level) for c in problem.capacities]
    for c in problem.capacities:
        cell = [p for p in pairs if (team[p.team_id].institution_id, period[p.assignment_id],
                                     team[p.team_id].level) == (c.institution_id, c.period, c.level)]
        if not cell:
            continue
        teams = {p.team_id for p in cell}
        count("institution_capacity", len(teams) <= c.teams)
        if any(need[p.assignment_id] for p in cell):
            largest = sorted((max(need[p.assignment_id] for p in cell if p.team_id == t) for t in teams), reverse=True)
            if named.count((c.institution_id, c.period, c.level)) == 1:
                largest = largest[:c.teams]
            count("supervision_hours", sum(largest) <= c.supervision_hours)
    for cap in problem.firm_caps:
        mine = [a for a in problem.assignments if a.firm_id == cap.firm_id]
        eligible_teams = [sum(1 for p in pairs if p.assignment_id == a.assignment_id) for a in mine]
        if any(eligible_teams):
            most = sum(min(a.max_teams, n) for a, n in zip(mine, eligible_teams, strict=True))
            count("firm_cap", most <= cap.max_teams)
    return out


def found_redundant(problem: Problem) -> dict[str, tuple[int, int]]:
    model = build_arrays(problem, eligibility(problem), objectives=["fit"])
    drop = redundant_rows(model)
    flags = list(zip(model.group, drop.tolist(), strict=True))
    return {name: (sum(g == name for g, _ in flags), sum(g == name and d for g, d in flags)) for name in DROPPABLE}


def matchings(problem: Problem) -> Any:
    """Every set of eligible pairs giving each team at most one assignment per period."""
    pairs = sorted(eligible_pairs(problem))
    period = {a.assignment_id: a.period for a in problem.assignments}
    choices = []
    for t in problem.teams:
        for p in t.periods:
            mine = [pair for pair in pairs if pair.team_id == t.team_id and period[pair.assignment_id] == p]
            if mine:
                choices.append([None, *mine])
    for pick in itertools.product(*choices):
        yield [pair for pair in pick if pair is not None]


def plain(problem: Problem, policy: str) -> Any:
    return solve(problem, policy=policy, make=lambda limit, seed: make_solver("highs", limit, seed, 1e-9))


@pytest.mark.parametrize("seed", range(40))
def test_the_rows_found_redundant_are_the_rules_plain_reading(seed: int) -> None:
    problem = side_round(seed, 9, 6, random.Random(seed).choice((0.5, 0.9, 1.0, 1.5)))
    assert found_redundant(problem) == expected_redundant(problem)


@pytest.mark.parametrize("seed", range(12))
def test_no_matching_of_the_other_rows_breaks_a_row_found_redundant(seed: int) -> None:
    """Every matching of a tiny round enumerated: a row found redundant holds in each that meets the
    rows kept (so leaving it out loses no matching's rule)."""
    problem = side_round(seed, 5, 4, random.Random(seed).choice((0.4, 1.0, 1.5)))
    pairs = list(eligible_pairs(problem))
    model = build_arrays(problem, eligibility(problem), objectives=["fit"])
    drop = redundant_rows(model)
    rows = list(hard_rows(problem, pairs))
    # the domain's rows in the arrays' order: families in turn, each family's rows in order
    by_family = {name: [r for r in rows if r.group == name] for name in DROPPABLE}
    dropped = {name: [r for r, d in zip(by_family[name], [d for g, d in zip(model.group, drop, strict=True)
                                                          if g == name], strict=True) if d]
               for name in DROPPABLE}
    gone = {id(r) for family in dropped.values() for r in family}
    kept = [r for r in rows if id(r) not in gone]
    for matching in matchings(problem):
        values = values_of(matching)
        if all(r.holds(values) for r in kept):
            for family in dropped.values():
                for r in family:
                    assert r.holds(values), (r.label, matching)


@pytest.mark.parametrize("policy", ("max_fit", "rank_maximal", "min_change", "max_served"))
@pytest.mark.parametrize("seed", range(10))
def test_the_optimum_is_the_plain_paths_with_the_redundant_rows_left_out(policy: str, seed: int) -> None:
    """Hours that cannot bind and hours that can: the array path (rows left out) reaches the plain
    path's optimum (every row) at every stage, with the plain model's hash (but for the split round);
    it goes the network path when every supervision-hours row is redundant (max_served: on the round
    split into each assignment's first team and the rest, ``solver.served``), or when the others are
    left out and the network path's matching breaks none of them."""
    rng = random.Random(seed)
    problem = side_round(seed, 14, 9, rng.choice((0.5, 1.0, 2.0)))
    if policy == "max_served":  # an assignment with minimum 0 may count as served with no team: one each
        problem = dataclasses.replace(problem, assignments=tuple(
            dataclasses.replace(a, min_teams=1) for a in problem.assignments))
    if policy == "min_change":
        pairs = sorted(eligible_pairs(problem))
        problem = dataclasses.replace(problem, reference=frozenset(rng.sample(pairs, min(4, len(pairs)))))
    fast, slow = solve(problem, policy=policy, arrays=True), plain(problem, policy)
    assert fast.status == slow.status == "optimal"
    for objective in POLICIES[policy].objectives:
        assert fast.objective_values.get(objective.name, 0.0) == pytest.approx(
            slow.objective_values.get(objective.name, 0.0), abs=1e-6)
    if policy != "max_served":  # the split round's model is hashed as it is (``solver.served``)
        assert fast.model_hash == slow.model_hash
    rows, redundant = expected_redundant(problem)["supervision_hours"]
    # hours rows that can bind are left out first where the round is a network without them, and the network
    # path's matching is kept where it breaks none of them (``stages.LAZY_GROUPS``)
    assert (fast.path == "network") == (rows == redundant or fast.steps.get("hours rows added") == 0)
    assert ("hours rows" in fast.steps) == (rows != redundant and policy != "max_served")


@pytest.mark.parametrize("seed", range(40))
def test_hours_read_from_the_round_cannot_bind_exactly_when_every_hours_row_is_redundant(seed: int) -> None:
    problem = side_round(seed, 9, 6, random.Random(seed).choice((0.5, 0.9, 1.0, 1.5)))
    rows, redundant = expected_redundant(problem)["supervision_hours"]
    assert hours_cannot_bind(problem, eligibility(problem)) == (rows == redundant)


def test_a_round_with_hours_that_cannot_bind_goes_the_network_path_and_one_that_can_the_side_path() -> None:
    """The generated network round with every assignment needing supervision hours: registered as
    40 hours per team (above the largest need, 24) the rows are left out; at 10 per team they bind."""
    from benchmarks.generator import generate

    snapshot = generate(150, flavour="network", seed=2)
    rng = random.Random(2)
    for a in snapshot["assignments"]:
        a["supervision_hours"] = rng.choice((8, 12, 16, 24))
    for per_team, path in ((40, "network"), (10, "side")):
        for c in snapshot["capacities"]:
            c["supervision_hours"] = c["teams"] * per_team
        problem = Problem.from_snapshot(snapshot)
        fast, slow = solve(problem, arrays=True), plain(problem, "max_fit")
        assert (fast.path, fast.status, slow.status) == (path, "optimal", "optimal")
        assert fast.objective == pytest.approx(slow.objective, abs=1e-6)


def test_leaving_rows_out_keeps_the_other_rows_and_their_families_in_order() -> None:
    problem = side_round(3, 12, 8, 2.0)
    model = build_arrays(problem, eligibility(problem), objectives=["fit"])
    drop = redundant_rows(model)
    assert drop.any()
    smaller = without_rows(model, drop)
    assert smaller.group == [g for g, d in zip(model.group, drop, strict=True) if not d]
    assert sum(smaller.blocks) == len(smaller.row) == len(smaller.col) == len(smaller.coef)
    kept = {(int(r), int(c), float(v)) for r, c, v in zip(model.row, model.col, model.coef, strict=True) if not drop[r]}
    renumber = [i for i, d in enumerate(drop) if not d]
    assert {(renumber[int(r)], int(c), float(v)) for r, c, v in zip(smaller.row, smaller.col, smaller.coef,
                                                                     strict=True)} == kept
    assert without_rows(model, drop & False) is model


@pytest.mark.parametrize("seed", range(30))
def test_the_largest_sum_a_row_can_reach_is_the_enumerated_maximum(seed: int) -> None:
    """The bound each proof rests on, for rows whose teams may also lie in other rows (then the
    entries are sorted, not reduced per team): the largest sum of a row's weights, one entry per team
    at most and ``k`` in all, equals the maximum over every choice of entries."""
    import numpy as np
    from matching.solver.redundant import _most

    rng = random.Random(seed)
    n_rows, n_teams = 3, 4
    entries = [(rng.randrange(n_rows), n_rows + rng.randrange(n_teams), rng.choice((-1.0, 0.0, 2.0, 3.0, 5.0)))
               for _ in range(rng.randint(1, 9))]
    entries = list({(r, t): (r, t, c) for r, t, c in entries}.values())  # a pair once per row
    row, team, coef = (np.array(v) for v in zip(*entries, strict=True))
    upper = np.ones(n_rows + n_teams)
    per_row = np.array([rng.choice((1.0, 2.0, np.inf)) for _ in range(n_rows)] + [np.inf] * n_teams)
    most = _most(row.astype(np.int64), team.astype(np.int64), coef.astype(np.float64), upper, per_row,
                 n_rows + n_teams)
    for r in range(n_rows):
        mine = [(t, c) for rr, t, c in entries if rr == r]
        best = 0.0
        for k in range(len(mine) + 1):
            for chosen in itertools.combinations(mine, k):
                if len({t for t, _ in chosen}) == k and k <= per_row[r]:
                    best = max(best, sum(c for _, c in chosen))
        assert most[r] == pytest.approx(best)
