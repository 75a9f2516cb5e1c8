"""The matching model in PuLP: variables only for eligible pairs, the hard rules from the domain's
constraint families, objectives as pure functions, policies solved lexicographically, the solver
passed in. When the rules cannot all hold, an elastic copy of the model names the group that breaks."""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import pulp

from .domain.model import GROUPS, Key, Opened, Pair, Problem, Row, eligible_pairs, hard_rows, ineligibility
from .domain.policies import POLICIES, Policy

SolverFactory = Callable[[float, int], pulp.LpSolver]
StageCallback = Callable[[str], None]
LEVEL_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Solution:
    status: str  # optimal, feasible (time limit reached), infeasible, not_solved, interrupted
    objective: float  # total fit of the matches
    matches: dict[Pair, float]
    solver: str
    solver_version: str
    model_hash: str
    build_seconds: float
    solve_seconds: float
    policy: str = "max_fit"
    objective_values: dict[str, float] = field(default_factory=dict)
    gap: float | None = None
    time_limit_reached: bool = False
    seed: int = 0
    diagnosis: dict[str, Any] | None = None


@dataclass
class Progress:
    """Shared by the solving thread and a watcher: the objective being solved, the best value found so
    far and its gap (HiGHS reports them while it solves), and a flag that asks the solver to stop."""

    objective: str | None = None
    step: int = 0
    steps: int = 0
    best: float | None = None
    gap: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def as_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "step": self.step, "of": self.steps, "best": self.best,
                "gap": self.gap}


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def watch(solver: pulp.LpSolver, progress: Progress, sense: int) -> None:
    """Let HiGHS report improving solutions into ``progress`` and stop when it is asked to."""
    import highspy

    kinds = highspy.cb.HighsCallbackType

    def callback(kind: Any, _message: str, data_out: Any, data_in: Any, _user_data: Any) -> None:
        if kind == kinds.kCallbackMipImprovingSolution:
            value = _finite(data_out.objective_function_value)
            # PuLP hands HiGHS a maximisation as the minimisation of the negated objective
            progress.best = None if value is None else (-value if sense == pulp.LpMaximize else value)
            progress.gap = _finite(data_out.mip_gap)
        elif kind == kinds.kCallbackMipInterrupt and progress.stop.is_set():
            data_in.user_interrupt = True

    solver.callbackTuple = (callback, None)
    solver.callbacksToActivate = [kinds.kCallbackMipImprovingSolution, kinds.kCallbackMipInterrupt]


def make_solver(name: str, time_limit: float, seed: int = 0) -> pulp.LpSolver:
    if name == "cbc":
        import cbcbox

        return pulp.COIN_CMD(path=cbcbox.cbc_bin_path(), msg=False, timeLimit=time_limit,
                             options=[f"randomCbcSeed {seed + 1}"])
    return pulp.HiGHS(msg=False, timeLimit=time_limit, random_seed=seed)


def solver_version(name: str) -> str:
    if name == "highs":
        import highspy

        h = highspy.Highs()
        return f"HiGHS {h.version()}"
    return f"CBC (cbcbox {importlib.metadata.version('cbcbox')})"


def library_versions() -> dict[str, str]:
    versions = {"pulp": pulp.__version__}
    for package in ("highspy", "cbcbox"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


# ---- variables, constraints, objectives -----------------------------------------------------


@dataclass
class Model:
    lp: pulp.LpProblem
    problem: Problem
    policy: Policy
    pairs: dict[Pair, float]
    x: dict[Pair, pulp.LpVariable]
    opened: dict[str, pulp.LpVariable]
    rows: list[Row]
    objectives: dict[str, pulp.LpAffineExpression]

    def value_of(self, key: Key) -> pulp.LpVariable:
        return self.x[key] if isinstance(key, Pair) else self.opened[key.assignment_id]

    def matches(self) -> dict[Pair, float]:
        return {p: self.pairs[p] for p, v in self.x.items() if (v.value() or 0) > 0.5}


def make_variables(lp: pulp.LpProblem, pairs: Mapping[Pair, float], problem: Problem
                   ) -> tuple[dict[Pair, pulp.LpVariable], dict[str, pulp.LpVariable]]:
    """x[pair]: the team works on the assignment; opened[assignment]: the assignment is staffed."""
    x = {p: lp.add_variable(f"x_{i}", 0, 1, cat=pulp.LpBinary) for i, p in enumerate(sorted(pairs))}
    opened = {a.assignment_id: lp.add_variable(f"open_{i}", 0, 1, cat=pulp.LpBinary)
              for i, a in enumerate(problem.assignments)}
    return x, opened


def expression(row: Row, model: Model) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression([(model.value_of(key), coef) for key, coef in row.terms])


def as_constraint(lhs: pulp.LpAffineExpression, sense: str, rhs: float) -> pulp.LpConstraint:
    return lhs <= rhs if sense == "<=" else lhs >= rhs


def total_fit(pairs: Mapping[Pair, float], x: Mapping[Pair, pulp.LpVariable]) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression([(x[p], pairs[p]) for p in sorted(x)])


def assignments_served(opened: Mapping[str, pulp.LpVariable]) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression([(v, 1) for _, v in sorted(opened.items())])


def pairs_kept(reference: Iterable[Pair], x: Mapping[Pair, pulp.LpVariable]) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression([(x[p], 1) for p in sorted(reference) if p in x])


def objective_values(problem: Problem, matches: Mapping[Pair, float]) -> dict[str, float]:
    """The policy objectives of a matching, computed directly from its pairs."""
    return {"fit": float(sum(matches.values())),
            "served": float(len({p.assignment_id for p in matches})),
            "kept": float(len(problem.reference & set(matches)))}


def _constraint_name(i: int, row: Row) -> str:
    return f"{row.group}_{i}"


def build_model(problem: Problem, policy: str = "max_fit", levels: Mapping[str, float] | None = None
                ) -> Model:
    """The model of a policy's first objective, or, with ``levels`` for earlier objectives, of the
    stage after them (each earlier objective held at its optimum as a constraint)."""
    chosen = POLICIES[policy]
    pairs = eligible_pairs(problem)
    lp = pulp.LpProblem("matching", pulp.LpMaximize)
    x, opened = make_variables(lp, pairs, problem)
    model = Model(lp, problem, chosen, pairs, x, opened, list(hard_rows(problem, pairs)), {})
    model.objectives = {"fit": total_fit(pairs, x), "served": assignments_served(opened),
                        "kept": pairs_kept(problem.reference, x)}
    for i, row in enumerate(model.rows):
        lp.addConstraint(as_constraint(expression(row, model), row.sense, row.rhs), _constraint_name(i, row))
    stage = 0
    for objective in chosen.objectives[:-1]:
        if levels is None or objective.name not in levels:
            break
        hold_level(model, objective.name, levels[objective.name])
        stage += 1
    lp.setObjective(model.objectives[chosen.objectives[stage].name])
    return model


def hold_level(model: Model, objective: str, level: float) -> None:
    model.lp.addConstraint(model.objectives[objective] >= level - LEVEL_TOLERANCE, f"level_{objective}")


def model_hash(model: Model) -> str:
    digest = hashlib.sha256(model.policy.name.encode())
    for objective in model.policy.objectives:
        digest.update(f"\n{objective.name}:{model.objectives[objective.name]}".encode())
    for i, row in enumerate(model.rows):
        digest.update(f"\n{_constraint_name(i, row)}:{expression(row, model)} {row.sense} {row.rhs}".encode())
    return digest.hexdigest()


def export_model(problem: Problem, policy: str, levels: Mapping[str, float] | None, fmt: str) -> bytes:
    """The model as an LP or MPS file (PuLP writes to a file; a temporary one here)."""
    model = build_model(problem, policy, levels)
    fd, path = tempfile.mkstemp(suffix=f".{fmt}")
    os.close(fd)
    try:
        if fmt == "lp":
            model.lp.writeLP(path)
        else:
            model.lp.writeMPS(path)
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        os.unlink(path)


# ---- solving --------------------------------------------------------------------------------


def _gap(lp: pulp.LpProblem) -> float | None:
    highs = getattr(lp, "solverModel", None)
    if highs is None or not hasattr(highs, "getInfo"):
        return None
    gap = float(highs.getInfo().mip_gap)
    return gap if math.isfinite(gap) else None


def solve(problem: Problem, solver_name: str = "highs", time_limit: float = 60.0, *, policy: str = "max_fit",
          seed: int = 0, make: SolverFactory | None = None, on_stage: StageCallback | None = None,
          progress: Progress | None = None) -> Solution:
    """Solve the policy's objectives in order, each earlier one held at its optimum in the next solve.

    When the time limit stops a solve, the best matching found so far is kept and marked. With
    ``progress``, HiGHS reports as it goes, and setting ``progress.stop`` interrupts it."""
    def factory(limit: float, s: int) -> pulp.LpSolver:
        return make(limit, s) if make is not None else make_solver(solver_name, limit, s)

    started = time.perf_counter()
    model = build_model(problem, policy)
    digest = model_hash(model)
    built = time.perf_counter()
    if on_stage:
        on_stage("solving")
    deadline = built + time_limit
    matches: dict[Pair, float] | None = None
    status, gap, limited = "optimal", None, False
    for i, objective in enumerate(model.policy.objectives):
        remaining = deadline - time.perf_counter()
        if i > 0:
            if remaining <= 0.05:
                limited = True
                break
            hold_level(model, model.policy.objectives[i - 1].name,
                       float(model.objectives[model.policy.objectives[i - 1].name].value() or 0.0))
            model.lp.setObjective(model.objectives[objective.name])
        solver = factory(max(remaining, 0.05), seed)
        if progress is not None:
            if progress.stop.is_set():
                status = "interrupted"
                break
            progress.objective, progress.step, progress.steps = objective.name, i + 1, len(model.policy.objectives)
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
    diagnosis = diagnose(problem, factory) if status == "infeasible" else None
    if matches is None:
        matches = {}
    elif limited and status == "optimal":
        status = "feasible"
    return Solution(
        status=status, objective=float(sum(matches.values())), matches=matches, solver=solver_name,
        solver_version=solver_version(solver_name), model_hash=digest, build_seconds=built - started,
        solve_seconds=solved - built, policy=policy, objective_values=objective_values(problem, matches),
        gap=gap, time_limit_reached=limited, seed=seed, diagnosis=diagnosis,
    )


# ---- infeasibility diagnosis ----------------------------------------------------------------

# Giving up a pin costs the elastic model most, so the diagnosis names the rule the pins collide with,
# and a pin itself only when it can never hold. Over-staffing is dearer than under-staffing, so pins
# that leave an assignment short of its minimum are reported as that, not as an over-full assignment.
SLACK_WEIGHT = {"pins": 10.0, "assignment_max_teams": 1.5}


def diagnose(problem: Problem, factory: SolverFactory, time_limit: float = 30.0) -> dict[str, Any]:
    """Solve an elastic copy (a slack per constraint, weighted per group) and name what must give."""
    pairs = eligible_pairs(problem)
    lp = pulp.LpProblem("diagnosis", pulp.LpMinimize)
    x, opened = make_variables(lp, pairs, problem)
    model = Model(lp, problem, POLICIES["max_fit"], pairs, x, opened, list(hard_rows(problem, pairs)), {})
    slacks: list[tuple[Row, pulp.LpVariable]] = []
    for i, row in enumerate(model.rows):
        s = lp.add_variable(f"slack_{i}", 0, None)
        sign = -1.0 if row.sense == "<=" else 1.0
        lhs = expression(row, model) + sign * s
        lp.addConstraint(as_constraint(lhs, row.sense, row.rhs), _constraint_name(i, row))
        slacks.append((row, s))
    lp.setObjective(pulp.LpAffineExpression([(s, SLACK_WEIGHT.get(r.group, 1.0)) for r, s in slacks]))
    lp.solve(factory(time_limit, 0))
    broken: dict[str, list[dict[str, Any]]] = {}
    pins_involved: set[Pair] = set()
    for row, s in slacks:
        amount = float(s.value() or 0.0)
        if amount <= 1e-6:
            continue
        item: dict[str, Any] = {"label": row.label, "short_by": round(amount, 6)}
        if row.group == "pins":
            pin = row.pin
            if pin is not None:
                pins_involved.add(pin)
                item["reason"] = ineligibility(problem, pin) or "cannot hold together with the other pins"
        else:
            keys = {k for k, _ in row.terms}
            touched = {p for p in problem.pinned if p in keys or Opened(p.assignment_id) in keys}
            pins_involved |= touched
        broken.setdefault(row.group, []).append(item)
    groups: list[dict[str, Any]] = [{"group": g, "en": GROUPS[g]["en"], "nl": GROUPS[g]["nl"],
                                      "constraints": items} for g, items in broken.items()]

    def told(language: str) -> str:
        return "; ".join(f"{g[language]} ({', '.join(c['label'] for c in g['constraints'])})" for g in groups)

    return {
        "message": f"infeasible: {told('en') or 'no single group found'}",
        "message_nl": f"onoplosbaar: {told('nl') or 'geen afzonderlijke groep gevonden'}",
        "groups": groups,
        "pins_involved": [{"team_id": p.team_id, "assignment_id": p.assignment_id} for p in sorted(pins_involved)],
    }
