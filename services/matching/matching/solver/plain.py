"""The plain path: the PuLP model of ``solver.pulp_model`` solved stage by stage through PuLP (HiGHS or
CBC), each earlier objective held at its optimum as a constraint. Small rounds and every CBC run take it;
its choice among equal optima is the one the tests' small cases were written against."""

from __future__ import annotations

import time
from typing import Any

import pulp

from ..domain.model import Pair, Problem
from .common import (
    SOLVED,
    Progress,
    Solution,
    SolverFactory,
    StageCallback,
    finite,
    make_solver,
    mip_gap,
    solver_version,
)
from .diagnosis import diagnose
from .pulp_model import build_model, hold_level, model_hash, objective_values


def watch(solver: pulp.LpSolver, progress: Progress, sense: int) -> None:
    """Let HiGHS report improving solutions into ``progress`` and stop when it is asked to."""
    import highspy

    kinds = highspy.cb.HighsCallbackType

    def callback(kind: Any, _message: str, data_out: Any, data_in: Any, _user_data: Any) -> None:
        if kind == kinds.kCallbackMipImprovingSolution:
            value = finite(data_out.objective_function_value)
            # PuLP hands HiGHS a maximisation as the minimisation of the negated objective
            progress.best = None if value is None else (-value if sense == pulp.LpMaximize else value)
            progress.gap = finite(data_out.mip_gap)
        elif kind == kinds.kCallbackMipInterrupt and progress.stop.is_set():
            data_in.user_interrupt = True

    solver.callbackTuple = (callback, None)
    solver.callbacksToActivate = [kinds.kCallbackMipImprovingSolution, kinds.kCallbackMipInterrupt]


def _gap(lp: pulp.LpProblem) -> float | None:
    highs = getattr(lp, "solverModel", None)
    if highs is None or not hasattr(highs, "getInfo"):
        return None
    return finite(highs.getInfo().mip_gap)


def solve_plain(problem: Problem, solver_name: str = "highs", time_limit: float = 60.0, *, policy: str = "max_fit",
                seed: int = 0, make: SolverFactory | None = None, on_stage: StageCallback | None = None,
                progress: Progress | None = None) -> Solution:
    """Solve the policy's objectives in order, each earlier one held at its optimum in the next solve.

    When the time limit stops a solve, the best matching found so far is kept and marked. With
    ``progress``, HiGHS reports as it goes, and setting ``progress.stop`` interrupts it. ``make``: the
    solver factory (by default ``make_solver(solver_name, ...)`` at the gap ``mip_gap`` wants)."""
    started = time.perf_counter()
    model = build_model(problem, policy)
    gap_wanted = mip_gap(len(model.pairs))

    def factory(limit: float, s: int) -> pulp.LpSolver:
        return make(limit, s) if make is not None else make_solver(solver_name, limit, s, gap_wanted)

    digest = model_hash(model)
    built = time.perf_counter()
    if on_stage:
        on_stage("solving")
    deadline = built + time_limit
    matches: dict[Pair, float] | None = None
    status, gap, limited = "optimal", None, False
    stages = model.stages()
    for i, objective in enumerate(stages):
        remaining = deadline - time.perf_counter()
        if i > 0:
            if remaining <= 0.05:
                limited = True
                break
            hold_level(model, stages[i - 1].name, float(model.objectives[stages[i - 1].name].value() or 0.0))
            model.lp.setObjective(model.objectives[objective.name])
        solver = factory(max(remaining, 0.05), seed)
        if progress is not None:
            if progress.stop.is_set():
                status = "interrupted"
                break
            progress.objective, progress.step, progress.steps = objective.name, i + 1, len(stages)
            progress.minimise = objective.minimise
            progress.best = progress.gap = None
            if isinstance(solver, pulp.HiGHS):
                watch(solver, progress, model.lp.sense)
        model.lp.solve(solver)
        if progress is not None and progress.stop.is_set():
            status = "interrupted"
            break
        if model.lp.sol_status == pulp.LpSolutionInfeasible or model.lp.status == pulp.LpStatusInfeasible:
            if i == 0:
                status = "infeasible"
            break
        if model.lp.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            if i == 0:
                status = "not_solved"
            limited = True
            break
        limited = limited or model.lp.sol_status == pulp.LpSolutionIntegerFeasible
        gap = _gap(model.lp)
        matches = model.matches()
        if progress is not None:
            progress.best = float(model.objectives[objective.name].value() or 0.0)
            progress.gap = gap
    solved = time.perf_counter()
    diagnosis = diagnose(problem, factory, policy=policy) if status == "infeasible" else None
    if matches is None:
        matches = {}
    elif limited and status == "optimal":
        status = "feasible"
    return Solution(
        status=status, objective=float(sum(matches.values())), matches=matches, solver=solver_name,
        solver_version=solver_version(solver_name), model_hash=digest, build_seconds=built - started,
        solve_seconds=solved - built, policy=policy,
        objective_values=objective_values(problem, matches, model.policy.stable and status in SOLVED),
        gap=gap, time_limit_reached=limited, seed=seed, diagnosis=diagnosis,
    )

