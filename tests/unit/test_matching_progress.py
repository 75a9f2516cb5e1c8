"""While HiGHS solves, the best value found and its gap reach a shared progress record; asking it to
stop interrupts the solve, and a stopped solve never passes for a result."""

from __future__ import annotations

import random

import highspy
import pulp
import pytest
from matching.solver.common import Progress, make_solver
from matching.solver.paths import solve
from matching.solver.plain import watch
from matching.solver.pulp_model import build_model

from .test_optimiser import random_problem


def test_highs_reports_its_best_value_while_solving() -> None:
    model = build_model(random_problem(random.Random(1), 60, 30), "max_fit")
    progress = Progress()
    solver = pulp.HiGHS(msg=False)
    watch(solver, progress, model.lp.sense)
    model.lp.solve(solver)
    assert progress.best == pytest.approx(pulp.value(model.lp.objective))
    assert progress.gap is not None and progress.gap >= 0.0  # the gap when that value was found


def test_stop_interrupts_highs() -> None:
    model = build_model(random_problem(random.Random(1), 60, 30), "max_fit")
    progress = Progress()
    progress.stop.set()
    solver = pulp.HiGHS(msg=False)
    watch(solver, progress, model.lp.sense)
    model.lp.solve(solver)
    assert model.lp.solverModel.getModelStatus() == highspy.HighsModelStatus.kInterrupt


def test_progress_names_each_lexicographic_step_and_a_stopped_solve_is_no_result() -> None:
    problem = random_problem(random.Random(2), 12, 6)
    progress = Progress()
    solution = solve(problem, policy="max_served", progress=progress)
    assert progress.as_dict() == {"objective": "fit", "step": 2, "of": 2, "best": solution.objective, "gap": 0.0}
    stopped = Progress()
    stopped.stop.set()
    interrupted = solve(problem, policy="max_served", progress=stopped)
    assert (interrupted.status, interrupted.matches) == ("interrupted", {})


def test_the_runs_seed_reaches_the_solver() -> None:
    seeds: list[int] = []

    def recording(limit: float, seed: int) -> pulp.LpSolver:
        seeds.append(seed)
        return make_solver("highs", limit, seed)

    solution = solve(random_problem(random.Random(3), 6, 3), policy="max_served", seed=7, make=recording)
    assert seeds == [7, 7] and solution.seed == 7
    assert make_solver("highs", 1, 7).optionsDict == {"random_seed": 7}
    assert make_solver("cbc", 1, 7).options == ["randomCbcSeed 8"]  # CBC's seed 0 means "from the clock"
