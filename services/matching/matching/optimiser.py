"""The matching model in PuLP: variables only for eligible pairs, one generator per constraint
family, the objective as a pure function, the solver passed in."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Iterator

import pulp

from .domain.model import Pair, Problem, eligible_pairs


@dataclass(frozen=True)
class Solution:
    status: str
    objective: float
    matches: dict[Pair, float]
    solver: str
    solver_version: str
    model_hash: str
    build_seconds: float
    solve_seconds: float


def make_solver(name: str, time_limit: float) -> pulp.LpSolver:
    if name == "cbc":
        import cbcbox

        return pulp.COIN_CMD(path=cbcbox.cbc_bin_path(), msg=False, timeLimit=time_limit)
    return pulp.HiGHS(msg=False, timeLimit=time_limit)


def solver_version(name: str) -> str:
    if name == "highs":
        import highspy

        h = highspy.Highs()
        return f"HiGHS {h.version()}"
    import importlib.metadata

    return f"CBC (cbcbox {importlib.metadata.version('cbcbox')})"


def _variables(model: pulp.LpProblem, pairs: dict[Pair, float], problem: Problem
               ) -> tuple[dict[Pair, pulp.LpVariable], dict[str, pulp.LpVariable]]:
    """x[pair]: the team works on the assignment; open[assignment]: the assignment is staffed."""
    ordered = sorted(pairs, key=lambda p: (p.assignment_id, p.team_id))
    x = {p: model.add_variable(f"x_{i}", 0, 1, cat=pulp.LpBinary) for i, p in enumerate(ordered)}
    served = {a.assignment_id: model.add_variable(f"open_{i}", 0, 1, cat=pulp.LpBinary)
              for i, a in enumerate(problem.assignments)}
    return x, served


def _team_at_most_one(x: dict[Pair, pulp.LpVariable]) -> Iterator[tuple[str, pulp.LpConstraint]]:
    by_team: dict[str, list[pulp.LpVariable]] = {}
    for pair, var in x.items():
        by_team.setdefault(pair.team_id, []).append(var)
    for team_id, vars_ in sorted(by_team.items()):
        yield f"team_{team_id}", pulp.LpAffineExpression([(v, 1) for v in vars_]) <= 1


def _assignment_team_range(problem: Problem, x: dict[Pair, pulp.LpVariable],
                           served: dict[str, pulp.LpVariable]) -> Iterator[tuple[str, pulp.LpConstraint]]:
    by_assignment: dict[str, list[pulp.LpVariable]] = {}
    for pair, var in x.items():
        by_assignment.setdefault(pair.assignment_id, []).append(var)
    for a in problem.assignments:
        vars_ = by_assignment.get(a.assignment_id, [])
        y = served[a.assignment_id]
        terms = [(v, 1) for v in vars_]
        yield f"max_{a.assignment_id}", pulp.LpAffineExpression([*terms, (y, -a.max_teams)]) <= 0
        yield f"min_{a.assignment_id}", pulp.LpAffineExpression([*terms, (y, -a.min_teams)]) >= 0


def total_fit(pairs: dict[Pair, float], x: dict[Pair, pulp.LpVariable]) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression([(x[p], pairs[p]) for p in x])


def solve(problem: Problem, solver_name: str = "highs", time_limit: float = 60.0) -> Solution:
    started = time.perf_counter()
    pairs = eligible_pairs(problem)
    model = pulp.LpProblem("matching", pulp.LpMaximize)
    x, served = _variables(model, pairs, problem)
    objective = total_fit(pairs, x)
    model.setObjective(objective)
    digest = hashlib.sha256(str(objective).encode())
    for i, (_label, constraint) in enumerate([*_team_at_most_one(x),
                                              *_assignment_team_range(problem, x, served)]):
        model.addConstraint(constraint, f"c{i}")
        digest.update(f"\nc{i}:{constraint}".encode())
    model_hash = digest.hexdigest()
    built = time.perf_counter()
    model.solve(make_solver(solver_name, time_limit))
    solved = time.perf_counter()
    status = pulp.LpStatus[model.status]
    matches = {p: pairs[p] for p, v in x.items() if (v.value() or 0) > 0.5}
    return Solution(
        status=status.lower(), objective=float(sum(matches.values())), matches=matches,
        solver=solver_name, solver_version=solver_version(solver_name), model_hash=model_hash,
        build_seconds=built - started, solve_seconds=solved - built,
    )
