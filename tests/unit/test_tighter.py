"""The tighter formulation of the side path (``matching.solver.tighter``): it keeps every matching of the plain
model (so the optimum and the reported gap stay true) and its LP bound lies between the optimum and the
plain model's bound, strictly below the plain bound where a firm's cap meets a two-team assignment."""

from __future__ import annotations

import itertools
import random
from typing import Any

import highspy
import numpy as np
import pytest
from matching.domain.model import Problem
from matching.solver import tighter
from matching.solver.arrays import ArrayModel, build_arrays, eligibility
from matching.solver.highs import Lp, pass_model
from matching.solver.paths import solve
from matching.solver.tighter import Tighter, pair_rows, tighten

from .test_optimiser_v2 import random_snapshot


def _model(problem: Problem) -> tuple[ArrayModel, Tighter]:
    model = build_arrays(problem, eligibility(problem))
    return model, tighten(problem, model)


def _strong(model: ArrayModel, tight: Tighter) -> Lp:
    """The plain rows, the pattern rows and "a pair only if open" for every pair of a two-team assignment."""
    n_rows = model.n_rows
    r, c, v = pair_rows(tight.needs_two, model.n_pairs + tight.assignment_of[tight.needs_two], 0)
    k = len(tight.needs_two)
    return Lp(tight.n_cols,
               np.concatenate([model.row, tight.row + n_rows, r + n_rows + tight.n_rows]),
               np.concatenate([model.col, tight.col, c]), np.concatenate([model.coef, tight.coef, v]),
               np.concatenate([model.row_lower, tight.lower, np.full(k, -np.inf)]),
               np.concatenate([model.row_upper, tight.upper, np.zeros(k)]), True)


def _holds(lp: Lp, values: Any) -> bool:
    lhs = np.bincount(lp.row, weights=lp.coef * values[lp.col], minlength=len(lp.lower))
    return bool(np.all(lhs >= lp.lower - 1e-6) and np.all(lhs <= lp.upper + 1e-6))


def _optimum(lp: Lp, costs: Any, integer: bool) -> float | None:
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("mip_rel_gap", 1e-9)
    pass_model(highs, Lp(lp.n_cols, lp.row, lp.col, lp.coef, lp.lower, lp.upper, integer), costs)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return float(highs.getInfo().objective_function_value)


def _matching(model: ArrayModel, costs: Any) -> Any:
    """A matching of the plain model: its MIP optimum for ``costs``."""
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    pass_model(highs, Lp(model.n_cols, model.row, model.col, model.coef, model.row_lower, model.row_upper, True), costs)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.round(np.asarray(highs.getSolution().col_value))


@pytest.mark.parametrize("seed", range(30))
def test_the_patterns_are_every_staffing_of_a_firm_within_its_cap(seed: int) -> None:
    rng = random.Random(seed)
    k = rng.randint(1, 4)
    minimum = [rng.randint(1, 3) for _ in range(k)]
    maximum = [m + rng.randint(0, 2) for m in minimum]
    cap = rng.randint(0, 8)
    choices = [(0, *range(lo, hi + 1)) for lo, hi in zip(minimum, maximum, strict=True)]
    expected = {p for p in itertools.product(*choices) if sum(p) <= cap}
    found = tighter._patterns(minimum, maximum, cap)
    assert found is not None and len(found) == len(set(found)) and set(found) == expected


def test_a_firm_with_too_many_patterns_keeps_its_cap_row_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tighter._patterns([1, 2, 1], [3, 3, 3], 9) is not None
    monkeypatch.setattr(tighter, "PATTERNS_AT_MOST", 5)
    assert tighter._patterns([1, 2, 1], [3, 3, 3], 9) is None


@pytest.mark.parametrize("seed", range(40))
def test_every_matching_of_the_plain_model_is_a_solution_of_the_tighter_one(seed: int) -> None:
    """Matchings of the plain model (its optima for random objectives), extended with their firms'
    patterns, meet every row of the tighter model, "a pair only if open" included."""
    rng = random.Random(seed)
    problem = Problem.from_snapshot(random_snapshot(rng, rng.randint(4, 12), rng.randint(2, 8)))
    model, tight = _model(problem)
    strong = _strong(model, tight)
    generator = np.random.default_rng(seed)
    seen = 0
    for _ in range(6):
        costs = generator.uniform(-1.0, 3.0, model.n_cols)
        values = _matching(model, costs)
        if values is None:
            break
        seen += 1
        assert _holds(strong, tight.extend(values))
    assert seen or _optimum(Lp(model.n_cols, model.row, model.col, model.coef, model.row_lower,
                                model.row_upper, True), np.zeros(model.n_cols), True) is None


@pytest.mark.parametrize(("teams", "seed"), [(150, 3), (150, 5), (200, 4), (200, 7)])
def test_the_tighter_bound_lies_between_the_optimum_and_the_plain_bound(teams: int, seed: int) -> None:
    from benchmarks.generator import generate

    problem = Problem.from_snapshot(generate(teams, flavour="side", seed=seed))
    model, tight = _model(problem)
    assert tight.firms and len(tight.needs_two)
    plain = Lp(model.n_cols, model.row, model.col, model.coef, model.row_lower, model.row_upper, False)
    fit = model.objectives["fit"]
    costs = np.concatenate([fit, np.zeros(tight.n_cols - model.n_cols)])
    plain_bound = _optimum(plain, fit, False)
    strong_bound = _optimum(_strong(model, tight), costs, False)
    optimum = _optimum(_strong(model, tight), costs, True)
    assert plain_bound is not None and strong_bound is not None and optimum is not None
    assert optimum == pytest.approx(_optimum(plain, fit, True), abs=1e-6)
    assert optimum - 1e-6 <= strong_bound <= plain_bound + 1e-6


def test_a_cap_that_leaves_room_for_one_team_closes_a_two_team_assignment_in_the_bound() -> None:
    """The plain LP half-opens the two-team assignment (two half teams fit a cap of one); the patterns
    know it can never open, so the tighter bound is the optimum: the one-team assignment."""
    snapshot: dict[str, Any] = {
        "batch_id": "b", "workspace_id": "w", "coordinator_id": "c", "period": "2027-S1", "policy": "max_fit",
        "auto_publish": False, "working_area": [],
        "assignments": [
            {"assignment_id": aid, "firm_id": "f", "accepted_levels": ["HBO"], "required_skills": ["web"],
             "nice_to_have_skills": [], "min_teams": lo, "max_teams": lo, "period": "2027-S1", "mode": "remote",
             "municipality": "GM0363", "latitude": 52.37, "longitude": 4.89, "region": "Noord-Holland",
             "priority": priority, "supervision_hours": 0, "preferred_institutions": [], "preferred_levels": []}
            for aid, lo, priority in (("two", 2, 10), ("one", 1, 0))],
        "teams": [
            {"team_id": tid, "institution_id": "i", "level": "HBO", "skills": ["web"], "periods": ["2027-S1"],
             "municipality": "GM0363", "latitude": 52.37, "longitude": 4.89, "travel_limit_km": 50,
             "remote": True, "preferences": []} for tid in ("t1", "t2")],
        "capacities": [], "firm_caps": [{"firm_id": "f", "max_teams": 1}], "fairness_floors": [],
    }
    problem = Problem.from_snapshot(snapshot)
    model, tight = _model(problem)
    fit = model.objectives["fit"]
    costs = np.concatenate([fit, np.zeros(tight.n_cols - model.n_cols)])
    plain = Lp(model.n_cols, model.row, model.col, model.coef, model.row_lower, model.row_upper, False)
    optimum = _optimum(_strong(model, tight), costs, True)
    assert optimum is not None
    assert _optimum(plain, fit, False) > optimum + 1e-3  # type: ignore[operator]
    assert _optimum(_strong(model, tight), costs, False) == pytest.approx(optimum, abs=1e-6)
    solution = solve(problem, arrays=True)
    assert solution.status == "optimal" and solution.objective == pytest.approx(optimum, abs=1e-6)
    assert {p.assignment_id for p in solution.matches} == {"one"}
