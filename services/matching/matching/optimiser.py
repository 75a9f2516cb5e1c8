"""The matching model in PuLP: variables only for eligible pairs, the hard rules from the domain's
constraint families, objectives as pure functions, policies solved lexicographically, the solver
passed in. When the rules cannot all hold, an elastic copy of the model names the group that breaks."""

from __future__ import annotations

import importlib.metadata
import math
import os
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import pulp

from .domain.model import (
    GROUPS,
    Blocks,
    Key,
    Opened,
    Pair,
    Placed,
    Problem,
    Row,
    blocking_pairs,
    eligible_pairs,
    floor_members,
    hard_rows,
    ineligibility,
    pair_key,
    stability_columns,
    team_rank,
)
from .domain.policies import POLICIES, Objective, Policy
from .fastpath import ArrayModel, Eligibility, build_arrays, eligibility
from .memory import cycles_paused
from .tighter import Tighter, pair_rows, tighten

SolverFactory = Callable[[float, int], pulp.LpSolver]
SOLVED = ("optimal", "feasible")  # statuses with a matching (its blocking pairs are counted)
StageCallback = Callable[[str], None]
LEVEL_TOLERANCE = 1e-4
# Distinct fits differ by 0.01 at least; on small models the solver closes the gap below that, so the
# optimum is exact. On large ones proving that costs far more than it is worth: HiGHS's default gap.
EXACT_GAP = 1e-7
DEFAULT_GAP = 1e-4
EXACT_UP_TO_PAIRS = 5000
ARRAYS_FROM_PAIRS = 5000


def mip_gap(pairs: int) -> float:
    return EXACT_GAP if pairs <= EXACT_UP_TO_PAIRS else DEFAULT_GAP


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
    # seconds per stage: eligibility, build, hash, handoff, solve, extract (and, when some stage's
    # network relaxation was not integral, the MIP that followed is part of solve)
    timings: dict[str, float] = field(default_factory=dict)
    peak_memory_mib: float | None = None
    path: str = "plain"  # plain (PuLP model, solver via PuLP), arrays (HiGHS in bulk), network (LP first)
    # or cutting-plane (the stable policy at scale, see matching.stable: its rounds counted in ``steps``)
    steps: dict[str, int] = field(default_factory=dict)


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
    minimise: bool = False  # the objective is minimised: ``best`` holds minus its value, as solved

    def as_dict(self) -> dict[str, Any]:
        best = -self.best if self.minimise and self.best is not None else self.best
        return {"objective": self.objective, "step": self.step, "of": self.steps, "best": best, "gap": self.gap}


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


def make_solver(name: str, time_limit: float, seed: int = 0, gap: float = DEFAULT_GAP) -> pulp.LpSolver:
    if name == "cbc":
        import cbcbox

        return pulp.COIN_CMD(path=cbcbox.cbc_bin_path(), msg=False, timeLimit=time_limit, gapRel=gap,
                             options=[f"randomCbcSeed {seed + 1}"])
    return pulp.HiGHS(msg=False, timeLimit=time_limit, random_seed=seed, gapRel=gap)


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
    placed: dict[str, pulp.LpVariable] = field(default_factory=dict)
    extra: dict[Key, pulp.LpVariable] = field(default_factory=dict)  # the stable policy's Blocks, AtLimit

    def value_of(self, key: Key) -> pulp.LpVariable:
        if isinstance(key, Pair):
            return self.x[key]
        if isinstance(key, Opened):
            return self.opened[key.assignment_id]
        if isinstance(key, Placed):
            return self.placed[key.team_id]
        return self.extra[key]

    def matches(self) -> dict[Pair, float]:
        return {p: self.pairs[p] for p, v in self.x.items() if (v.value() or 0) > 0.5}

    def stages(self) -> list[Objective]:
        """The policy's objectives that can matter here: one with no terms (a rank nobody listed) is
        skipped, except the last."""
        chosen = self.policy.objectives
        return [o for o in chosen[:-1] if len(self.objectives[o.name])] + [chosen[-1]]


def make_variables(lp: pulp.LpProblem, pairs: Mapping[Pair, float], problem: Problem
                   ) -> tuple[dict[Pair, pulp.LpVariable], dict[str, pulp.LpVariable], dict[str, pulp.LpVariable]]:
    """x[pair]: the team works on the assignment; opened[assignment]: the assignment is staffed;
    placed[team]: the team works somewhere (only for teams a fairness floor is about)."""
    x = {p: lp.add_variable(f"x_{i}", 0, 1, cat=pulp.LpBinary) for i, p in enumerate(sorted(pairs, key=pair_key))}
    opened = {a.assignment_id: lp.add_variable(f"open_{i}", 0, 1, cat=pulp.LpBinary)
              for i, a in enumerate(problem.assignments)}
    floored = sorted({m.team_id for f in problem.floors for m in floor_members(problem, f) if isinstance(m, Placed)})
    placed = {t: lp.add_variable(f"placed_{i}", 0, 1, cat=pulp.LpBinary) for i, t in enumerate(floored)}
    return x, opened, placed


def expression(row: Row, model: Model) -> pulp.LpAffineExpression:
    """The row's terms, a key that appears twice summed (PuLP's expression from a list would keep only
    the last coefficient of a variable)."""
    return pulp.LpAffineExpression([(model.value_of(key), coef) for key, coef in row.summed()])


def as_constraint(lhs: pulp.LpAffineExpression, sense: str, rhs: float) -> pulp.LpConstraint:
    return lhs <= rhs if sense == "<=" else lhs >= rhs


def total_fit(pairs: Mapping[Pair, float], x: Mapping[Pair, pulp.LpVariable]) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression([(x[p], pairs[p]) for p in sorted(x, key=pair_key)])


def assignments_served(opened: Mapping[str, pulp.LpVariable]) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression([(v, 1) for _, v in sorted(opened.items())])


def pairs_kept(reference: Iterable[Pair], x: Mapping[Pair, pulp.LpVariable]) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression([(x[p], 1) for p in sorted(reference) if p in x])


def ranks_of(problem: Problem, pairs: Iterable[Pair]) -> dict[int, list[Pair]]:
    """The pairs by the team's rank of the assignment (unranked pairs are left out)."""
    by_rank: dict[int, list[Pair]] = {}
    for p in sorted(pairs, key=pair_key):
        team = problem.team(p.team_id)
        rank = team_rank(team, p.assignment_id) if team is not None else None
        if rank is not None:
            by_rank.setdefault(rank, []).append(p)
    return by_rank


def rank_counts(problem: Problem, x: Mapping[Pair, pulp.LpVariable]) -> dict[str, pulp.LpAffineExpression]:
    by_rank = ranks_of(problem, x)
    return {f"rank_{r}": pulp.LpAffineExpression([(x[p], 1) for p in by_rank.get(r, [])])
            for r in range(1, problem.max_rank + 1)}


def objective_values(problem: Problem, matches: Mapping[Pair, float], stable: bool = False) -> dict[str, float]:
    """The policy objectives of a matching, computed directly from its pairs (with ``stable``, its number
    of blocking pairs too)."""
    by_rank = ranks_of(problem, matches)
    values = {"fit": float(sum(matches.values())),
              "served": float(len({p.assignment_id for p in matches})),
              "kept": float(len(problem.reference & set(matches))),
              **{f"rank_{r}": float(len(by_rank.get(r, []))) for r in range(1, problem.max_rank + 1)}}
    if stable:
        values["blocking"] = float(len(blocking_pairs(problem, matches)))
    return values


def _objective_values(problem: Problem, elig: Eligibility, chosen: Any, matches: Mapping[Pair, float],
                      stable: bool = False, candidates: Iterable[Pair] | None = None) -> dict[str, float]:
    """``objective_values`` of the matching of the eligible pairs at positions ``chosen`` (``matches``);
    ``candidates``: the eligible pairs that may block (every eligible pair when None)."""
    import numpy as np

    ranks = np.bincount(elig.team_rank[chosen], minlength=problem.max_rank + 1)
    values = {"fit": float(sum(matches.values())),
              "served": float(len(np.unique(elig.assignment[chosen]))),
              "kept": float(len(problem.reference & set(matches))) if problem.reference else 0.0,
              **{f"rank_{r}": float(ranks[r]) for r in range(1, problem.max_rank + 1)}}
    if stable:
        values["blocking"] = float(len(blocking_pairs(problem, matches, elig.pairs if candidates is None
                                                      else candidates)))
    return values


def blocking_count(keys: Iterable[Key], variable: Callable[[Key], Any]) -> pulp.LpAffineExpression:
    """The "blocking" objective, maximised as every objective is: minus the pairs that may block."""
    return pulp.LpAffineExpression([(variable(k), -1.0) for k in keys if isinstance(k, Blocks)])


def _constraint_name(i: int, row: Row) -> str:
    return f"{row.group}_{i}"


def new_model(problem: Problem, policy: str, name: str, sense: int) -> Model:
    chosen = POLICIES[policy]
    pairs = eligible_pairs(problem)
    lp = pulp.LpProblem(name, sense)
    x, opened, placed = make_variables(lp, pairs, problem)
    rows = list(hard_rows(problem, pairs, stable=chosen.stable))
    extra = {key: lp.add_variable(f"{'block' if isinstance(key, Blocks) else 'limit'}_{i}", 0, 1, cat=pulp.LpBinary)
             for i, key in enumerate(stability_columns(rows))}
    return Model(lp, problem, chosen, pairs, x, opened, rows, {}, placed, extra)


def build_model(problem: Problem, policy: str = "max_fit", levels: Mapping[str, float] | None = None
                ) -> Model:
    """The model of a policy's first objective, or, with ``levels`` for earlier objectives, of the
    stage after them (each earlier objective held at its optimum as a constraint)."""
    model = new_model(problem, policy, "matching", pulp.LpMaximize)
    lp, x = model.lp, model.x
    model.objectives = {"fit": total_fit(model.pairs, x), "served": assignments_served(model.opened),
                        "kept": pairs_kept(problem.reference, x), **rank_counts(problem, x),
                        "blocking": blocking_count(model.extra, model.extra.__getitem__)}
    for objective in model.policy.objectives:  # ranks beyond every list: nothing to count
        model.objectives.setdefault(objective.name, pulp.LpAffineExpression())
    for i, row in enumerate(model.rows):
        lp.addConstraint(as_constraint(expression(row, model), row.sense, row.rhs), _constraint_name(i, row))
    stages = model.stages()
    stage = 0
    for objective in stages[:-1]:
        if levels is None or objective.name not in levels:
            break
        # a minimised objective (blocking pairs) is recorded as its count, held as minus that
        level = levels[objective.name]
        hold_level(model, objective.name, -level if objective.minimise else level)
        stage += 1
    lp.setObjective(model.objectives[stages[stage].name])
    return model


def hold_level(model: Model, objective: str, level: float) -> None:
    model.lp.addConstraint(model.objectives[objective] >= level - LEVEL_TOLERANCE, f"level_{objective}")


def model_hash(model: Model) -> str:
    """The hash of the model's arrays (the same on both paths, see ``ArrayModel.digest``)."""
    problem = model.problem
    return build_arrays(problem, eligibility(problem), stable=model.policy.stable,
                        objectives=[o.name for o in model.policy.objectives]).digest(model.policy.name)


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
          progress: Progress | None = None, eligible: Eligibility | None = None, arrays: bool | None = None
          ) -> Solution:
    """Solve the policy's objectives in order, each earlier one held at its optimum in the next solve.

    When the time limit stops a solve, the best matching found so far is kept and marked. With
    ``progress``, HiGHS reports as it goes, and setting ``progress.stop`` interrupts it.

    With HiGHS and no solver factory, a model of more than ARRAYS_FROM_PAIRS pairs (or any, with
    ``arrays=True``) goes to HiGHS as arrays (``solve_arrays``); otherwise the PuLP model is solved
    through PuLP (small models keep the plain path's choice among equal optima). ``eligible``: the
    run's eligibility, when already computed."""
    took = time.perf_counter()
    if make is None and solver_name == "highs" and arrays is not False:
        with cycles_paused():
            eligible = eligible or eligibility(problem)
            if arrays or len(eligible) > ARRAYS_FROM_PAIRS:
                return solve_arrays(problem, time_limit, policy=policy, seed=seed, on_stage=on_stage,
                                    progress=progress, eligible=eligible,
                                    eligibility_seconds=time.perf_counter() - took)
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


# ---- infeasibility diagnosis ----------------------------------------------------------------

# Giving up a pin costs the elastic model most, so the diagnosis names the rule the pins collide with,
# and a pin itself only when it can never hold. Over-staffing is dearer than under-staffing, so pins
# that leave an assignment short of its minimum are reported as that, not as an over-full assignment.
# A team counts as placed only by definition: that row never gives.
SLACK_WEIGHT = {"pins": 10.0, "assignment_max_teams": 1.5}
FIRM_GROUPS = ("team_placed",)


def elastic(problem: Problem, policy: str, factory: SolverFactory, time_limit: float, give: Iterable[str] | None
            ) -> list[tuple[Row, float]]:
    """Solve a copy of the model where each row of the groups in ``give`` (all but definitions when None)
    may break at a weighted cost; the rows that had to break and by how much."""
    model = new_model(problem, policy, "diagnosis", pulp.LpMinimize)
    lp = model.lp
    slacks: list[tuple[Row, pulp.LpVariable]] = []
    allowed = None if give is None else set(give)
    for i, row in enumerate(model.rows):
        lhs = expression(row, model)
        if row.group not in FIRM_GROUPS and (allowed is None or row.group in allowed):
            s = lp.add_variable(f"slack_{i}", 0, None)
            lhs = lhs + (-1.0 if row.sense == "<=" else 1.0) * s
            slacks.append((row, s))
        lp.addConstraint(as_constraint(lhs, row.sense, row.rhs), _constraint_name(i, row))
    lp.setObjective(pulp.LpAffineExpression([(s, SLACK_WEIGHT.get(r.group, 1.0)) for r, s in slacks]))
    lp.solve(factory(time_limit, 0))
    if lp.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        return []
    return [(row, float(s.value() or 0.0)) for row, s in slacks if float(s.value() or 0.0) > 1e-6]


def diagnose(problem: Problem, factory: SolverFactory, time_limit: float = 30.0, *, policy: str = "max_fit"
             ) -> dict[str, Any]:
    """Solve an elastic copy (a slack per constraint, weighted per group) and name what must give. (The
    stable policy's rows always hold: it counts blocking pairs rather than forbidding them.)"""
    broken_rows = elastic(problem, "max_fit", factory, time_limit, None)
    broken: dict[str, list[dict[str, Any]]] = {}
    pins_involved: set[Pair] = set()
    for row, amount in broken_rows:
        item: dict[str, Any] = {"label": row.label, "short_by": round(amount, 6)}
        if row.group == "pins":
            pin = row.pin
            if pin is not None:
                pins_involved.add(pin)
                item["reason"] = ineligibility(problem, pin) or "cannot hold together with the other pins"
        else:
            keys = {k for k, _ in row.terms}
            touched = {p for p in problem.pinned if p in keys or Opened(p.assignment_id) in keys
                       or Placed(p.team_id) in keys}
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


# ---- the array path: the same model handed to HiGHS in bulk ---------------------------------


def is_network(problem: Problem, model: ArrayModel, objectives: Iterable[str]) -> bool:
    """The rules left are a team's one assignment per period, an assignment's maximum, institution
    capacity, firm caps and pins (two laminar families of rows over the pairs, so the matrix is totally
    unimodular), every assignment's minimum is at most one (its open/closed decision follows from its
    pairs) and the objectives count pairs only: the LP relaxation without open/closed decisions has an
    integral optimal vertex."""
    network_groups = {"team_at_most_one", "assignment_max_teams", "assignment_min_teams", "institution_capacity",
                      "firm_cap", "pins"}
    return (set(model.group) <= network_groups and all(a.min_teams <= 1 for a in problem.assignments)
            and not model.placed_teams and all(not model.objectives[o][model.n_pairs:].any() for o in objectives))


@dataclass
class _Lp:
    """A model for HiGHS: rows as triplets, columns with bounds; ``integer`` marks the binaries."""

    n_cols: int
    row: Any
    col: Any
    coef: Any
    lower: Any
    upper: Any
    integer: bool
    blocks: list[int] | None = None  # entries per family in turn, where known (see _PairRows.of)
    pairs: _PairRows | None = None  # the columns' rows as lines, where built with the model (_network_pairs)


def _full_model(model: ArrayModel) -> _Lp:
    return _Lp(model.n_cols, model.row, model.col, model.coef, model.row_lower, model.row_upper, True)


def _network_relaxation(model: ArrayModel) -> _Lp:
    """The model over the pairs only: open/closed decisions and minimum rows dropped, an assignment's
    maximum bounding its pairs directly (valid when every minimum is at most one, see ``is_network``)."""
    import numpy as np

    groups = np.array(model.group, dtype=object)
    drop_row = groups == "assignment_min_teams"
    keep = (model.col < model.n_pairs) & ~drop_row[model.row]
    renumber = np.cumsum(~drop_row) - 1
    upper = model.row_upper.copy()
    is_max = groups == "assignment_max_teams"
    opened = (model.col >= model.n_pairs) & (model.col < model.n_cols - len(model.placed_teams))
    upper[model.row[opened & is_max[model.row]]] -= model.coef[opened & is_max[model.row]]  # 0 + max_teams
    ends = np.cumsum(model.blocks)
    blocks = [int(np.count_nonzero(keep[e - n:e])) for n, e in zip(model.blocks, ends.tolist(), strict=True)]
    return _Lp(model.n_pairs, renumber[model.row[keep]], model.col[keep], model.coef[keep],
               model.row_lower[~drop_row], upper[~drop_row], False, blocks if sum(blocks) == keep.sum() else None)


def _network_pairs(model: ArrayModel) -> _Lp | None:
    """``_network_relaxation`` with its columns' rows as lines (``_PairRows``), read family by family
    from the model, and no triplets; None where a family holds a pair twice or a pair's coefficient is
    not 1 (then the triplets are needed)."""
    import numpy as np

    groups = np.array(model.group, dtype=object)
    drop_row = groups == "assignment_min_teams"
    renumber = np.cumsum(~drop_row) - 1
    upper = model.row_upper.copy()
    n_rows = int(np.count_nonzero(~drop_row))
    narrow = np.int32 if n_rows < (1 << 31) - 1 else np.int64
    lines = []
    ends = np.cumsum(model.blocks).tolist()
    for n, end in zip(model.blocks, ends, strict=True):
        row, col, coef = model.row[end - n:end], model.col[end - n:end], model.coef[end - n:end]
        if not n or drop_row[int(row[0])]:  # a block is one family's rows
            continue
        pair = col < model.n_pairs
        if groups[int(row[0])] == "assignment_max_teams":  # 0 + max_teams: the bound on its pairs
            opened = ~pair & (col < model.n_cols - len(model.placed_teams))
            upper[row[opened]] -= coef[opened]
        if not np.all(coef[pair] == 1.0):
            return None
        line = np.full(model.n_pairs, n_rows, dtype=narrow)
        line[col[pair]] = renumber[row[pair]]
        if np.count_nonzero(line != n_rows) != np.count_nonzero(pair):  # a pair twice in the family
            return None
        lines.append(line)
    empty = np.zeros(0, dtype=np.int64)
    pairs = _PairRows(np.stack(lines) if lines else np.zeros((0, model.n_pairs), dtype=narrow), None, n_rows)
    return _Lp(model.n_pairs, empty, empty, np.zeros(0), model.row_lower[~drop_row], upper[~drop_row], False,
               pairs=pairs)


def _pass(highs: Any, lp: _Lp, costs: Any) -> None:
    import highspy
    import numpy as np

    order = np.argsort(lp.row, kind="stable")
    n_rows = len(lp.lower)
    starts = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(lp.row, minlength=n_rows), out=starts[1:])
    inf = highspy.kHighsInf
    integrality = np.full(lp.n_cols, 1 if lp.integer else 0, dtype=np.int32)
    highs.passModel(lp.n_cols, n_rows, len(lp.row), int(highspy.MatrixFormat.kRowwise),
                    int(highspy.ObjSense.kMaximize), 0.0, np.ascontiguousarray(costs[:lp.n_cols], dtype=np.float64),
                    np.zeros(lp.n_cols), np.ones(lp.n_cols),
                    np.clip(lp.lower, -inf, inf), np.clip(lp.upper, -inf, inf),
                    starts[:-1], lp.col[order].astype(np.int32), lp.coef[order].astype(np.float64), integrality)


# Pricing: the network LP starts from each team's and each assignment's best few pairs; a pair left out
# whose reduced cost (fit minus the duals of its rows) is positive enters, the best few per team per round,
# until none is left, so the LP optimum is the full LP's (HiGHS's own dual tolerance).
START_PAIRS = 3
ENTERING_PAIRS = 3
PRICE_TOLERANCE = 1e-7
# A later stage of a lexicographic policy keeps the pairs and rows whose reduced cost or dual is further
# from zero than this as the earlier stage's optimum has them (see _Columns.hold_face): the costs of
# every stage but the last are counts (0/1 per pair), so these are integral or half-integral.
FACE_TOLERANCE = 1e-6


def _floored(pairs: _PairRows, lower: Any) -> Any:
    """The pairs in a row with a positive lower bound (a pin): the pricing LP starts with all of them,
    else its first LP may be infeasible where the full one is not (a pin no start pair covers)."""
    import numpy as np

    floor = np.append(np.asarray(lower) > 0, False)  # the padding row has none
    wanted = np.zeros(len(pairs), dtype=np.bool_)
    for rows in pairs.row:
        wanted |= floor[rows]
    return wanted


def _best_per(group: Any, score: Any, k: int, among: Any = None) -> Any:
    """Positions of the ``k`` highest scores per group value (among the positions in ``among``), ordered
    by group, score (highest first) and position: k rounds of a per-group maximum, no full sort."""
    import numpy as np

    idx = np.arange(len(score)) if among is None else np.flatnonzero(among)
    g = group[idx]
    if len(g) > 1 and np.any(g[1:] < g[:-1]):
        small = g.max() < 1 << 16 and g.min() >= 0  # a radix sort then
        by_group = np.argsort(g.astype(np.uint16) if small else g, kind="stable")
        idx, g = idx[by_group], g[by_group]
    if not len(idx) or k < 1:
        return idx[:0]
    s = score[idx]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    segment = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(idx)]))
    alive = np.ones(len(idx), dtype=np.bool_)
    chosen = []
    for _ in range(k):
        masked = np.where(alive, s, -np.inf)
        hit = np.flatnonzero(alive & (masked == np.maximum.reduceat(masked, starts)[segment]))
        if not len(hit):
            break
        first = hit[np.r_[True, segment[hit[1:]] != segment[hit[:-1]]]]  # the lowest position per group
        alive[first] = False
        chosen.append(first)
    picked = np.concatenate(chosen)
    return idx[picked[np.lexsort((picked, -s[picked], g[picked]))]]


@dataclass
class _PairRows:
    """A network LP's columns (pairs) by their rows, as fixed-width matrices, one line per slot:
    ``row[k, j]`` the k-th row of column j, padded with ``n_rows`` (a row that is not there, dual 0), and
    ``coef[k, j]`` its coefficient (0 in the padding; None: every coefficient is 1). Every pair has a few
    rows only (its team's, its assignment's, a capacity, a cap), so this is small, and the pairs of a
    part are a gather."""

    row: Any
    coef: Any
    n_rows: int

    @classmethod
    def of(cls, lp: _Lp) -> _PairRows:
        """Where each family holds a pair at most once (so each family is one line) and every
        coefficient is 1, line by line from the families' entries; otherwise by sorting the entries
        by column."""
        import numpy as np

        if lp.pairs is not None:
            return lp.pairs
        n_rows = len(lp.lower)
        narrow = np.int32 if n_rows < (1 << 31) - 1 else np.int64
        if lp.blocks is not None and bool(np.all(lp.coef == 1.0)):
            ends = np.cumsum(lp.blocks).tolist()
            spans = [(end - n, end) for n, end in zip(lp.blocks, ends, strict=True) if n]
            row = np.full((len(spans), lp.n_cols), n_rows, dtype=narrow)
            for line, (start, end) in enumerate(spans):
                row[line, lp.col[start:end]] = lp.row[start:end]
            if np.count_nonzero(row != n_rows) == len(lp.col):  # no pair twice in a family
                return cls(row, None, n_rows)
        order = np.argsort(lp.col, kind="stable")
        counts_per_col = np.bincount(lp.col, minlength=lp.n_cols)
        width = int(counts_per_col.max(initial=0))
        full = np.full((width, lp.n_cols), n_rows, dtype=narrow)
        coef = np.zeros((width, lp.n_cols))
        cols = lp.col[order]
        slot = np.arange(len(cols)) - (np.cumsum(counts_per_col) - counts_per_col)[cols]
        full[slot, cols], coef[slot, cols] = lp.row[order], lp.coef[order]
        return cls(full, coef, n_rows)

    def __getitem__(self, cols: Any) -> _PairRows:
        return _PairRows(self.row[:, cols], None if self.coef is None else self.coef[:, cols], self.n_rows)

    def __len__(self) -> int:
        return int(self.row.shape[1])

    def entries(self, cols: Any) -> tuple[Any, Any, Any]:
        """The columns' entries, column after column: the start of each column, rows, coefficients."""
        import numpy as np

        rows = self.row[:, cols].T
        there = rows < self.n_rows
        starts = np.zeros(len(cols) + 1, dtype=np.int64)
        np.cumsum(there.sum(axis=1), out=starts[1:])
        coefs = np.ones(int(starts[-1])) if self.coef is None else self.coef[:, cols].T[there]
        return starts, rows[there], coefs

    def reduced(self, costs: Any, row_dual: Any) -> Any:
        """Each column's cost less the duals of its rows."""
        import numpy as np

        dual = np.append(row_dual, 0.0)  # the padding row
        out = np.array(costs[:len(self)], dtype=np.float64)
        for k, rows in enumerate(self.row):
            out -= dual[rows] if self.coef is None else self.coef[k] * dual[rows]
        return out


class _Columns:
    """The pairs HiGHS holds, in the order they were added, with their entries from the full rows."""

    def __init__(self, highs: Any, pairs: _PairRows) -> None:
        import numpy as np

        self.highs, self.pairs = highs, pairs
        self.held = np.zeros(len(pairs), dtype=np.bool_)
        self.barred = np.zeros(len(pairs), dtype=np.bool_)  # 0 in every optimum of an earlier stage
        self.fixed = np.zeros(len(pairs), dtype=np.bool_)  # held, its bounds set to 0 or 1 by an earlier stage
        self.order = np.zeros(0, dtype=np.int64)

    def add(self, cols: Any, costs: Any) -> None:
        import numpy as np

        cols = cols[~self.held[cols] & ~self.barred[cols]]
        if not len(cols):
            return
        starts, rows, coefs = self.pairs.entries(cols)
        self.highs.addCols(len(cols), np.ascontiguousarray(costs[cols], dtype=np.float64), np.zeros(len(cols)),
                           np.ones(len(cols)), int(starts[-1]), starts[:-1].astype(np.int32),
                           rows.astype(np.int32), coefs.astype(np.float64))
        self.held[cols] = True
        self.order = np.concatenate([self.order, cols])

    def hold_face(self, costs: Any) -> None:
        """Restrict the LP to the optimal face of the stage just solved (objective ``costs``), by
        complementary slackness with its duals: a pair whose reduced cost is negative is 0 in every
        optimum (barred, or bounded to 0 where held), one whose reduced cost is positive is 1, and a row
        whose dual is not 0 is tight (its bounds set to its activity). Only bounds change, so the matrix
        stays a network matrix with integral bounds: the next stage's LP vertex is integral too, and
        its optimum is the lexicographic one (no level row, which would break total unimodularity)."""
        import numpy as np

        solution = self.highs.getSolution()
        row_dual = np.asarray(solution.row_dual)
        reduced = self.pairs.reduced(costs, row_dual)
        free = ~self.barred & ~self.fixed  # a pair fixed before may have any reduced cost now
        self.barred |= free & ~self.held & (reduced < -FACE_TOLERANCE)
        at = np.empty(len(self.pairs), dtype=np.int64)
        at[self.order] = np.arange(len(self.order))
        for bound, chosen in ((0.0, reduced < -FACE_TOLERANCE), (1.0, reduced > FACE_TOLERANCE)):
            fix = free & self.held & chosen
            self.fixed |= fix
            cols = at[np.flatnonzero(fix)]
            if len(cols):
                n = len(cols)
                self.highs.changeColsBounds(n, cols.astype(np.int32), np.full(n, bound), np.full(n, bound))
        tight = np.flatnonzero(np.abs(row_dual) > FACE_TOLERANCE)
        if len(tight):
            activity = np.round(np.asarray(solution.row_value)[tight])
            self.highs.changeRowsBounds(len(tight), tight.astype(np.int32), activity, activity)

    def values(self, col_value: Any) -> Any:
        import numpy as np

        x = np.zeros(len(self.pairs))
        x[self.order] = col_value[:len(self.order)]
        return x

    def entering(self, costs: Any, row_dual: Any, teams: Any) -> Any:
        """Pairs not held (nor barred by an earlier stage) whose reduced cost is positive, the best few
        per team."""

        reduced = self.pairs.reduced(costs, row_dual)
        wanted = ~self.held & ~self.barred & (reduced > PRICE_TOLERANCE)
        if not wanted.any():
            return wanted.nonzero()[0]
        return _best_per(teams, reduced, ENTERING_PAIRS, wanted)


def _watch_highs(highs: Any, progress: Progress) -> None:
    import highspy

    kinds = highspy.cb.HighsCallbackType

    def callback(kind: Any, _message: str, data_out: Any, data_in: Any, _user_data: Any) -> None:
        if kind == kinds.kCallbackMipImprovingSolution:
            progress.best = _finite(data_out.objective_function_value)  # maximised as it is
            progress.gap = _finite(data_out.mip_gap)
        elif kind == kinds.kCallbackMipInterrupt and progress.stop.is_set():
            data_in.user_interrupt = True

    highs.setCallback(callback, None)
    highs.startCallback(kinds.kCallbackMipImprovingSolution)
    highs.startCallback(kinds.kCallbackMipInterrupt)


def solve_arrays(problem: Problem, time_limit: float = 60.0, *, policy: str = "max_fit", seed: int = 0,
                 on_stage: StageCallback | None = None, progress: Progress | None = None,
                 eligible: Eligibility | None = None, eligibility_seconds: float = 0.0,
                 lazy: bool | None = None, split_served: bool | None = None) -> Solution:
    """``_solve_arrays`` with the cyclic garbage collector paused (see ``cycles_paused``). The stable
    policy from LAZY_STABLE_FROM_PAIRS pairs (or with ``lazy=True``) goes to ``stable.solve_lazily``:
    stability rows added only for pairs that block a matching found. ``max_served`` where
    ``served.applies`` (or with ``split_served=True``; never with False) goes to ``served.solve_served``:
    each assignment split into its first team and the rest, a network again."""
    with cycles_paused():
        elig = eligible if eligible is not None else eligibility(problem)
        if POLICIES[policy].stable and (lazy if lazy is not None else len(elig) >= LAZY_STABLE_FROM_PAIRS):
            from .stable import solve_lazily

            return solve_lazily(problem, time_limit, seed=seed, on_stage=on_stage, progress=progress,
                                eligible=elig, eligibility_seconds=eligibility_seconds)
        if policy == "max_served" and split_served is not False:
            from . import served

            if split_served or served.applies(problem):
                return served.solve_served(problem, time_limit, seed=seed, on_stage=on_stage, progress=progress,
                                           eligible=elig, eligibility_seconds=eligibility_seconds)
        return _solve_arrays(problem, time_limit, policy=policy, seed=seed, on_stage=on_stage, progress=progress,
                             eligible=elig, eligibility_seconds=eligibility_seconds)


# From this many eligible pairs the stable policy is solved by cutting planes (``matching.stable``): the
# model with a row per ranked pair takes seconds to build and HiGHS finds no good matching in it in time.
LAZY_STABLE_FROM_PAIRS = 20_000


@dataclass
class Relaxation:
    """The stable policy's model with the stability rows of ``pairs`` only; ``start(model)`` gives the
    column values of a matching to start from (None: none fits); ``first_proven``: that matching has no
    blocking pair, so the first stage (fewest blocking pairs) is known to be 0 and is not solved."""

    pairs: frozenset[Pair]
    grouped: Any = None
    start: Callable[[ArrayModel], Any] | None = None
    first_proven: bool = False
    candidates: Any = None  # the eligible pairs that may block (ranked on both sides), when known


def _solve_arrays(problem: Problem, time_limit: float = 60.0, *, policy: str = "max_fit", seed: int = 0,
                  on_stage: StageCallback | None = None, progress: Progress | None = None,
                  eligible: Eligibility | None = None, eligibility_seconds: float = 0.0,
                  relaxed: Relaxation | None = None, served_pairs: Any = None) -> Solution:
    """``solve`` with HiGHS, the model built as arrays from the same constraint families and passed in
    one call. Where ``is_network`` holds, each stage first solves the LP relaxation over the pairs; its
    (integral) vertex, completed with the open/closed decisions, is checked against every row of the
    full model and kept, else the stage is solved as the MIP, started from the previous stage's matching.
    Otherwise (side constraints) each stage is ``_side_stage``. ``eligibility_seconds``: the time the
    caller spent computing ``eligible``, reported with the run's timings. ``relaxed``: the stable
    policy's stability rows for some pairs only, and a matching to start from (``matching.stable``).
    ``served_pairs``: "served" counted as the pairs marked (on an assignment's first copy, ``matching.served``)."""
    import highspy
    import numpy as np

    clock = time.perf_counter
    timings: dict[str, float] = {}
    started = clock()
    elig = eligible if eligible is not None else eligibility(problem)
    timings["eligibility"] = clock() - started + eligibility_seconds
    mark = clock()
    chosen = POLICIES[policy]
    model = build_arrays(problem, elig, stable=chosen.stable, objectives=[o.name for o in chosen.objectives],
                         stability_pairs=None if relaxed is None else relaxed.pairs,
                         grouped=None if relaxed is None else relaxed.grouped)
    for objective in chosen.objectives:
        model.objectives.setdefault(objective.name, np.zeros(model.n_cols))
    if served_pairs is not None:
        model.objectives["served"] = np.zeros(model.n_cols)
        model.objectives["served"][:model.n_pairs][served_pairs] = 1.0
    stages = [o for o in chosen.objectives[:-1] if model.objectives[o.name].any()] + [chosen.objectives[-1]]
    network = is_network(problem, model, [o.name for o in stages])
    lp = (_network_pairs(model) or _network_relaxation(model)) if network else _full_model(model)
    timings["build"] = clock() - mark
    # the hash (numpy and hashlib release the GIL) is computed while HiGHS solves; "hash" is the wait.
    # When the round is split, it waits for the first part to finish: until then both cores solve.
    hashing = ThreadPoolExecutor(max_workers=1)
    digest_future: Future[str] | None = None

    def start_digest() -> None:
        nonlocal digest_future
        if digest_future is None:
            digest_future = hashing.submit(model.digest, policy)

    built = clock()
    if on_stage:
        on_stage("solving")
    deadline = built + time_limit
    n_p = model.n_pairs
    gap_wanted = mip_gap(n_p)

    columns: _Columns | None = None

    def fresh(candidate: _Lp, costs: Any) -> Any:
        nonlocal columns
        mark = clock()
        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("random_seed", seed)
        highs.setOptionValue("mip_rel_gap", gap_wanted)
        if candidate.integer:
            _pass(highs, candidate, costs)
            columns = None
            if progress is not None:
                _watch_highs(highs, progress)
        else:
            highs.setOptionValue("presolve", "off")  # pricing re-solves from the last basis
            _pass(highs, _Lp(0, candidate.row[:0], candidate.col[:0], candidate.coef[:0], candidate.lower,
                             candidate.upper, False), costs)
            columns = _Columns(highs, _PairRows.of(candidate))
            fits = model.objectives["fit"][:n_p]
            start = np.zeros(n_p, dtype=np.bool_)
            start[_best_per(elig.team, fits, START_PAIRS)] = True
            start[_best_per(elig.assignment, fits, START_PAIRS)] = True
            start |= _floored(columns.pairs, candidate.lower)
            columns.add(np.flatnonzero(start), costs)
        timings["handoff"] = timings.get("handoff", 0.0) + clock() - mark
        return highs

    def completed(x: Any) -> Any:
        """The full model's column values for a matching: its pairs, staffed assignments, placed teams."""
        values = np.zeros(model.n_cols)
        values[:n_p] = x
        values[n_p:n_p + len(problem.assignments)] = np.bincount(
            elig.assignment, weights=x, minlength=len(problem.assignments)) > 0.5
        return values

    def add_level(highs: Any, c: Any, level: float) -> None:
        held = columns.order if columns is not None else np.arange(lp.n_cols)
        on = c[held]
        nz = np.flatnonzero(on)
        highs.addRow(level - LEVEL_TOLERANCE, highspy.kHighsInf, len(nz), nz.astype(np.int32),
                     on[nz].astype(np.float64))

    def run(highs: Any, until: float | None = None) -> Any:
        nonlocal mark
        # HiGHS's time limit counts all runs of the instance together
        left = max((deadline if until is None else until) - clock(), 0.05)
        highs.setOptionValue("time_limit", highs.getRunTime() + left)
        mark = clock()
        highs.run()
        timings["solve"] = timings.get("solve", 0.0) + clock() - mark
        mark = clock()
        return highs.getModelStatus()

    def new_highs() -> Any:
        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("random_seed", seed)
        highs.setOptionValue("mip_rel_gap", gap_wanted)
        return highs

    def handoff(seconds: float) -> None:
        timings["handoff"] = timings.get("handoff", 0.0) + seconds

    infeasible = (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible)
    side = not network and n_p > 0  # side constraints: see _side_stage
    split: Any = None
    if network and len(stages) == 1 and n_p >= SPLIT_FROM_PAIRS and (os.cpu_count() or 1) > 1:
        split = _split_network(problem, model, lp, model.objectives[stages[0].name], seed, deadline, timings,
                               start_digest)
        if split is not None:
            split = completed(split)
            if not model.holds(split):
                split = None
    start_digest()
    highs = None if side or split is not None else fresh(lp, model.objectives[stages[0].name])
    tight = tighten(problem, model) if side else None
    levels: list[tuple[Any, float]] = []
    values: Any = None if relaxed is None or relaxed.start is None else relaxed.start(model)
    status, gap, limited, path = "optimal", None, False, "network" if network else "side" if side else "arrays"
    for i, objective in enumerate(stages):
        costs = model.objectives[objective.name]
        if i == 0 and len(stages) > 1 and relaxed is not None and relaxed.first_proven and values is not None:
            continue  # the start attains the first objective's optimum (no blocking pair): held as its level
        if i > 0:
            if deadline - clock() <= 0.05:
                limited = True
                break
            previous = model.objectives[stages[i - 1].name]
            levels.append((previous, float(previous @ values)))
        if split is not None:  # the one stage, solved per independent part
            values, gap = split, 0.0
            if progress is not None:
                progress.best, progress.gap = float(costs @ values), gap
            continue
        if side:
            if progress is not None:
                if progress.stop.is_set():
                    status = "interrupted"
                    break
                progress.objective, progress.step, progress.steps = objective.name, i + 1, len(stages)
                progress.minimise = objective.minimise
                progress.best = progress.gap = None
            assert tight is not None
            stage = _side_stage(model, tight, costs, levels, values, deadline, gap_wanted, new_highs, run, handoff,
                                progress)
            if progress is not None and progress.stop.is_set():
                status = "interrupted"
                break
            if stage.values is None or not (model.holds(stage.values) and all(
                    c @ stage.values >= level - LEVEL_TOLERANCE for c, level in levels)):
                if i == 0:
                    status = "infeasible" if stage.result == "infeasible" else "not_solved"
                limited = limited or stage.result != "infeasible"
                break
            values, gap = stage.values, stage.gap
            limited = limited or stage.result != "optimal"
            if progress is not None:
                progress.best, progress.gap = float(costs @ values), gap
            timings["extract"] = timings.get("extract", 0.0) + clock() - mark
            continue
        assert highs is not None
        if i > 0:
            if columns is not None:  # the network LP: the next stage optimises over the last one's optimal face
                columns.hold_face(previous)
            else:
                add_level(highs, previous, levels[-1][1])
            held = columns.order if columns is not None else np.arange(lp.n_cols)
            highs.changeColsCost(len(held), np.arange(len(held), dtype=np.int32),
                                 np.ascontiguousarray(costs[held], dtype=np.float64))
        if progress is not None:
            if progress.stop.is_set():
                status = "interrupted"
                break
            progress.objective, progress.step, progress.steps = objective.name, i + 1, len(stages)
            progress.minimise = objective.minimise
            progress.best = progress.gap = None
        result = run(highs)
        while columns is not None and result == highspy.HighsModelStatus.kOptimal:
            entering = columns.entering(costs, np.asarray(highs.getSolution().row_dual), elig.team)
            if not len(entering):
                break
            columns.add(entering, costs)
            result = run(highs)
        if progress is not None and progress.stop.is_set():
            status = "interrupted"
            break
        if result in infeasible:
            if i == 0:
                status = "infeasible"
            break
        empty = result == highspy.HighsModelStatus.kModelEmpty  # no column: nothing to decide
        if empty:
            result = highspy.HighsModelStatus.kOptimal
        elif highs.getInfo().primal_solution_status != 2:
            if i == 0:
                status = "not_solved"
            limited = True
            break
        column_values = np.zeros(highs.getNumCol()) if empty else np.asarray(highs.getSolution().col_value)
        if columns is not None:
            x_relaxed = columns.values(column_values)
            x = np.round(x_relaxed)
            candidate = completed(x)
            if result == highspy.HighsModelStatus.kOptimal and np.abs(x_relaxed - x).max(initial=0.0) <= 1e-6 \
                    and model.holds(candidate) and all(c @ candidate >= level - LEVEL_TOLERANCE for c, level in levels):
                values, gap = candidate, 0.0
            else:
                # not integral after all (or stopped early): the full model as a MIP, started from the
                # previous stage's matching
                lp, path = _full_model(model), "arrays"
                highs = fresh(lp, costs)
                for c, level in levels:
                    add_level(highs, c, level)
                if values is not None:
                    start = highspy.HighsSolution()
                    start.col_value = values.tolist()
                    start.value_valid = True
                    highs.setSolution(start)
                result = run(highs)
                if result in infeasible:
                    if i == 0:
                        status = "infeasible"
                    break
                if highs.getInfo().primal_solution_status != 2:
                    if i == 0:
                        status = "not_solved"
                    limited = True
                    break
                values = np.asarray(highs.getSolution().col_value)
                limited = limited or result != highspy.HighsModelStatus.kOptimal
                gap = _finite(highs.getInfo().mip_gap)
        else:
            values = column_values
            limited = limited or result != highspy.HighsModelStatus.kOptimal
            gap = _finite(highs.getInfo().mip_gap)
        if progress is not None:
            progress.best = float(costs @ values)
            progress.gap = gap
        timings["extract"] = timings.get("extract", 0.0) + clock() - mark
    mark = clock()
    matches: dict[Pair, float] = {}
    chosen_pairs = np.zeros(0, dtype=np.int64)
    if values is not None and status not in ("interrupted", "infeasible", "not_solved"):
        chosen_pairs = np.flatnonzero(values[:n_p] > 0.5)
        team_ids = [t.team_id for t in problem.teams]
        assignment_ids = [a.assignment_id for a in problem.assignments]
        matches = {Pair(team_ids[t], assignment_ids[a]): f for t, a, f in zip(
            elig.team[chosen_pairs].tolist(), elig.assignment[chosen_pairs].tolist(),
            elig.fit[chosen_pairs].tolist(), strict=True)}
    timings["extract"] = timings.get("extract", 0.0) + clock() - mark
    mark = clock()
    assert digest_future is not None
    digest = digest_future.result()
    hashing.shutdown()
    timings["hash"] = clock() - mark
    solved = clock()
    diagnosis = None
    if status == "infeasible":
        diagnosis = diagnose(problem, lambda limit, s: make_solver("highs", limit, s, gap_wanted), policy=policy)
    if status == "optimal" and limited:
        status = "feasible"
    import resource

    return Solution(
        status=status, objective=float(sum(matches.values())), matches=matches, solver="highs",
        solver_version=solver_version("highs"), model_hash=digest, build_seconds=built - started,
        solve_seconds=solved - built, policy=policy,
        objective_values=_objective_values(problem, elig, chosen_pairs, matches, chosen.stable and status in SOLVED,
                                           None if relaxed is None else relaxed.candidates),
        gap=gap, time_limit_reached=limited, seed=seed, diagnosis=diagnosis, timings=timings,
        peak_memory_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, path=path,
    )


# ---- a network stage split into independent parts (by period), their LPs solved in parallel ----

# From this many pairs a one-stage network model whose periods share no row is solved as one LP per
# part, each in its own thread (HiGHS releases the GIL while it solves), on at most SPLIT_THREADS cores.
SPLIT_FROM_PAIRS = 20_000
SPLIT_THREADS = 2
# Families whose rows hold pairs of one period only, by how build_arrays makes them: a team's one
# assignment per period, an assignment's own rows, an institution's capacity per period and level, a pin.
PER_PERIOD_GROUPS = {"team_at_most_one", "assignment_max_teams", "assignment_min_teams", "institution_capacity",
                     "pins"}


def _parts(problem: Problem, model: ArrayModel, lp: _Lp) -> list[Any] | None:
    """The pairs (positions) of each part: the periods split into up to SPLIT_THREADS groups of about
    equal size; None when a row holds pairs of two periods (a firm's cap over both, say) or there is
    one period only."""
    import numpy as np

    periods: dict[str, int] = {}
    a_period = np.array([periods.setdefault(a.period, len(periods)) for a in problem.assignments], dtype=np.int64)
    if len(periods) < 2:
        return None
    pair_period = a_period[model.eligibility.assignment]
    if not set(model.group) <= PER_PERIOD_GROUPS:  # rows that may hold pairs of two periods: look
        pairs = _PairRows.of(lp)
        row_period = np.full(len(lp.lower) + 1, -1, dtype=np.int64)  # + the padding row
        for rows in pairs.row:
            row_period[rows] = pair_period  # one of each row's periods; a row with two has a pair unlike it
        for rows in pairs.row:
            there = rows < pairs.n_rows
            if np.any(row_period[rows[there]] != pair_period[there]):
                return None
    sizes = np.bincount(pair_period, minlength=len(periods))
    k = min(SPLIT_THREADS, os.cpu_count() or 1, int(np.count_nonzero(sizes)))
    if k < 2:
        return None
    load = np.zeros(k, dtype=np.int64)
    group = np.zeros(len(periods), dtype=np.int64)
    for period in np.argsort(-sizes, kind="stable"):  # largest first into the lightest group
        group[period] = int(np.argmin(load))
        load[group[period]] += sizes[period]
    pair_group = group[pair_period]
    return [np.flatnonzero(pair_group == g) for g in range(k)]


def _priced_lp(lp: _Lp, pairs: _PairRows, costs: Any, teams: Any, assignments: Any, seed: int, deadline: float
               ) -> tuple[Any, float, float]:
    """The network LP over ``pairs`` (of ``lp``'s rows) by pricing (as the one-instance path: each team's and
    assignment's best few pairs, then pairs with a positive reduced cost), in a HiGHS of its own; the
    pairs' values at its optimum (None if it stopped otherwise), the seconds spent handing it over and
    the seconds HiGHS ran."""
    import highspy
    import numpy as np

    clock = time.perf_counter
    mark = clock()
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("random_seed", seed)
    highs.setOptionValue("presolve", "off")
    _pass(highs, _Lp(0, lp.row[:0], lp.col[:0], lp.coef[:0], lp.lower, lp.upper, False), costs)
    columns = _Columns(highs, pairs)
    start = np.zeros(len(pairs), dtype=np.bool_)
    start[_best_per(teams, costs, START_PAIRS)] = True
    start[_best_per(assignments, costs, START_PAIRS)] = True
    start |= _floored(pairs, lp.lower)
    columns.add(np.flatnonzero(start), costs)
    handoff = clock() - mark

    ran = 0.0

    def run() -> Any:
        nonlocal ran
        highs.setOptionValue("time_limit", highs.getRunTime() + max(deadline - clock(), 0.05))
        mark = clock()
        highs.run()
        ran += clock() - mark
        return highs.getModelStatus()

    optimal = highspy.HighsModelStatus.kOptimal
    result = run()
    while result == optimal:
        entering = columns.entering(costs, np.asarray(highs.getSolution().row_dual), teams)
        if not len(entering):
            break
        columns.add(entering, costs)
        result = run()
    if result != optimal:
        return None, handoff, ran
    return columns.values(np.asarray(highs.getSolution().col_value)), handoff, ran


def _split_network(problem: Problem, model: ArrayModel, lp: _Lp, costs: Any, seed: int, deadline: float,
                   timings: dict[str, float], first_done: Callable[[], None] = lambda: None) -> Any:
    """The matching (0/1 per pair) of a one-stage network model solved part by part in parallel; None
    when it does not split, a part stops early or its LP vertex is not integral (the caller then solves
    it whole). ``first_done`` is called when the first part has finished (a core is free)."""
    import numpy as np

    parts = _parts(problem, model, lp)
    if parts is None:
        return None
    elig = model.eligibility
    mark = time.perf_counter()
    pairs = _PairRows.of(lp)
    prepared = time.perf_counter() - mark
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        futures = []
        for cols in parts:
            mark = time.perf_counter()
            part = (lp, pairs[cols], costs[cols], elig.team[cols], elig.assignment[cols], seed, deadline)
            prepared += time.perf_counter() - mark
            futures.append(pool.submit(_priced_lp, *part))
        wait(futures, return_when=FIRST_COMPLETED)
        first_done()
        results = [f.result() for f in futures]
    # the parts ran side by side: the longest HiGHS run is the solve, the longest hand-off (after the
    # parts' rows were gathered here) the hand-off; the rest of the wall time (pricing between runs,
    # waiting) is left to the caller's "other"
    timings["handoff"] = timings.get("handoff", 0.0) + prepared + max(h for _, h, _ in results)
    timings["solve"] = timings.get("solve", 0.0) + max(r for _, _, r in results)
    x = np.zeros(model.n_pairs)
    for cols, (values, _, _) in zip(parts, results, strict=True):
        if values is None:
            return None
        x[cols] = values
    rounded = np.round(x)
    if np.abs(x - rounded).max(initial=0.0) > 1e-6:
        return None
    return rounded


# ---- side constraints: the LP bound, a MIP near the LP optimum, then reduced-cost fixing ----

# Share of the time left that the MIP over the pairs near the LP optimum may use before the wider MIP
# takes over; "near": a reduced cost within RC_WINDOW of zero (fits differ by 0.01, are about 10 to 30).
RESTRICTED_SHARE = 0.5
RC_WINDOW = 0.5
FIXED_SHARE = 0.5  # of step 2's time, for the MIP with the LP's whole pairs fixed
# The wider MIP of step 3 is skipped when it has this many times the columns and less time is left than
# steps 1 and 2 took.
WIDER_AT_MOST = 4
# Rounds of adding the "pair only if open" rows the LP optimum breaks (each round re-solves from the basis).
CUT_ROUNDS = 20


@dataclass
class _Stage:
    values: Any  # the full model's column values, None when no matching was found
    result: str  # optimal, feasible (stopped early), infeasible, not_solved
    gap: float | None


def _with_levels(model: ArrayModel, levels: list[tuple[Any, float]]) -> _Lp:
    """The full model, each earlier objective held at its level as one more row."""
    import numpy as np

    rows, cols, coefs = [model.row], [model.col], [model.coef]
    lower, upper = [model.row_lower], [model.row_upper]
    for k, (c, level) in enumerate(levels):
        nz = np.flatnonzero(c)
        rows.append(np.full(len(nz), model.n_rows + k, dtype=np.int64))
        cols.append(nz.astype(np.int64))
        coefs.append(c[nz].astype(np.float64))
        lower.append(np.array([level - LEVEL_TOLERANCE]))
        upper.append(np.array([np.inf]))
    return _Lp(model.n_cols, np.concatenate(rows), np.concatenate(cols), np.concatenate(coefs),
               np.concatenate(lower), np.concatenate(upper), True)


def _subset(lp: _Lp, keep: Any) -> tuple[_Lp, Any]:
    """The model over the columns in ``keep`` (sorted positions), and those positions."""
    import numpy as np

    new = np.full(lp.n_cols, -1, dtype=np.int64)
    new[keep] = np.arange(len(keep))
    on = new[lp.col] >= 0
    return _Lp(len(keep), lp.row[on], new[lp.col[on]], lp.coef[on], lp.lower, lp.upper, True), keep


def _with_rows(lp: _Lp, row: Any, col: Any, coef: Any, lower: Any, upper: Any) -> _Lp:
    import numpy as np

    return _Lp(lp.n_cols, np.concatenate([lp.row, row + len(lp.lower)]), np.concatenate([lp.col, col]),
               np.concatenate([lp.coef, coef]), np.concatenate([lp.lower, lower]),
               np.concatenate([lp.upper, upper]), lp.integer)


def _restricted(strong: _Lp, keep: Any, tight: Tighter, has_row: Any) -> tuple[_Lp, Any]:
    """The tighter model over the columns in ``keep``, with "a pair only if its assignment is open" for
    every kept pair of a two-team assignment (the LP holds the rows it needed already)."""
    import numpy as np

    sub, held = _subset(strong, keep)
    position = np.full(strong.n_cols, -1, dtype=np.int64)
    position[keep] = np.arange(len(keep))
    pairs = tight.needs_two[~has_row[tight.needs_two]]
    pairs = pairs[position[pairs] >= 0]
    r, c, v = pair_rows(position[pairs], position[_opened(tight, pairs)], 0)
    return _with_rows(sub, r, c, v, np.full(len(pairs), -np.inf), np.zeros(len(pairs))), held


def _opened(tight: Tighter, pairs: Any) -> Any:
    """The open/closed column of each pair's assignment."""
    return len(tight.assignment_of) + tight.assignment_of[pairs]


def _side_stage(model: ArrayModel, tight: Tighter, costs: Any, levels: list[tuple[Any, float]], start: Any,
                deadline: float, gap_wanted: float, new_highs: Callable[[], Any], run: Callable[..., Any],
                handoff: Callable[[float], None], progress: Progress | None) -> _Stage:
    """One stage of a model with side constraints, solved to ``gap_wanted`` of the optimum, on the
    tighter model of ``matching.tighter`` (the same matchings, a bound near them):

    1. the LP relaxation (all pairs; "a pair only if open" rows added where its optimum breaks them,
       then re-solved): its value ``z`` bounds every matching, its duals price each pair;
    2. the MIP over the pairs the LP uses or whose reduced cost is within RC_WINDOW of zero, first with
       the pairs the LP takes whole fixed, then free (started from the better of that matching and
       ``start``, the previous stage's): a matching worth ``v``; when ``z - v`` is within the gap, done;
    3. else the MIP over every pair whose reduced cost is at least ``v - z`` (a pair below can only be in
       matchings worth less than ``v``, so the optimum is among the rest), started from that matching.
    The values returned are the plain model's columns."""
    import highspy
    import numpy as np

    clock = time.perf_counter
    infeasible = (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible)
    optimal = highspy.HighsModelStatus.kOptimal
    n_p, n_base = model.n_pairs, model.n_cols
    lp = _with_levels(model, levels)
    strong = _Lp(tight.n_cols, np.concatenate([lp.row, tight.row + len(lp.lower)]),
                 np.concatenate([lp.col, tight.col]), np.concatenate([lp.coef, tight.coef]),
                 np.concatenate([lp.lower, tight.lower]), np.concatenate([lp.upper, tight.upper]), True)
    costs = np.concatenate([costs[:n_base], np.zeros(tight.n_cols - n_base)])
    begin: Any = None if start is None else tight.extend(start)
    has_row = np.zeros(tight.n_cols, dtype=np.bool_)

    def plain(values: Any) -> Any:
        return values if values is None else values[:n_base]

    began = mark = clock()
    highs = new_highs()
    _pass(highs, _Lp(strong.n_cols, strong.row, strong.col, strong.coef, strong.lower, strong.upper, False), costs)
    handoff(clock() - mark)
    result = run(highs)
    for _ in range(CUT_ROUNDS):
        if result != optimal:
            break
        relaxed = np.asarray(highs.getSolution().col_value)
        pairs = tight.needs_two[relaxed[tight.needs_two] > relaxed[_opened(tight, tight.needs_two)] + 1e-7]
        if not len(pairs):
            break
        r, c, v = pair_rows(pairs, _opened(tight, pairs), 0)
        k = len(pairs)
        highs.addRows(k, np.full(k, -highspy.kHighsInf), np.zeros(k), 2 * k,
                      np.arange(0, 2 * k, 2, dtype=np.int32),
                      np.column_stack([pairs, _opened(tight, pairs)]).reshape(-1).astype(np.int32),
                      np.tile([1.0, -1.0], k))
        strong = _with_rows(strong, r, c, v, np.full(k, -np.inf), np.zeros(k))
        has_row[pairs] = True
        result = run(highs)
    if result in infeasible:
        return _Stage(None, "infeasible", None)
    if result != optimal:
        return _Stage(None, "not_solved", None)
    bound = float(highs.getInfo().objective_function_value)
    solution = highs.getSolution()
    relaxed, row_dual = np.asarray(solution.col_value), np.asarray(solution.row_dual)
    reduced = costs - np.bincount(strong.col, weights=strong.coef * row_dual[strong.row], minlength=strong.n_cols)
    scale = max(1.0, abs(bound))

    def within(value: float) -> bool:
        return bound - value <= gap_wanted * scale

    # 2. the MIP over the pairs the LP points at
    stop = deadline
    mark = clock()
    near = (relaxed > 1e-9) | (reduced >= -RC_WINDOW)
    near[n_p:] = True
    if begin is not None:
        near |= begin > 0.5
    sub, held = _restricted(strong, np.flatnonzero(near), tight, has_row)
    highs = new_highs()
    _pass(highs, sub, costs[held])
    if progress is not None:
        _watch_highs(highs, progress)
    handoff(clock() - mark)
    restricted_until = clock() + RESTRICTED_SHARE * max(deadline - clock(), 0.0)
    # first with the pairs the LP takes whole fixed (a small MIP over the rest: HiGHS's own heuristics
    # find no good matching in the wide one in time); its matching starts the MIP without them fixed
    # (and whose assignment the LP staffs whole: a pair of a half-open two-team assignment may be alone)
    pair_held = held < n_p
    staffed = np.zeros(len(held), dtype=np.bool_)
    staffed[pair_held] = relaxed[n_p + model.eligibility.assignment[held[pair_held]]] > 1 - 1e-6
    whole = np.flatnonzero(pair_held & staffed & (relaxed[held] > 1 - 1e-6)).astype(np.int32)
    if len(whole):
        highs.changeColsBounds(len(whole), whole, np.ones(len(whole)), np.ones(len(whole)))
        run(highs, clock() + FIXED_SHARE * max(restricted_until - clock(), 0.0))
        fixed_found = highs.getInfo().primal_solution_status == 2
        fixed_values = np.asarray(highs.getSolution().col_value) if fixed_found else None
        highs.changeColsBounds(len(whole), whole, np.zeros(len(whole)), np.ones(len(whole)))
        if fixed_values is not None and (begin is None or costs[held] @ fixed_values >= costs[held] @ begin[held]):
            _start(highs, np.round(fixed_values))
        elif begin is not None:
            _start(highs, begin[held])
        if fixed_values is not None and within(float(costs[held] @ np.round(fixed_values))):
            matching = np.zeros(strong.n_cols)
            matching[held] = np.round(fixed_values)
            return _Stage(plain(matching), "optimal", max(0.0, (bound - float(costs @ matching)) / scale))
    elif begin is not None:
        _start(highs, begin[held])
    result = run(highs, restricted_until)
    values: Any = None
    if highs.getInfo().primal_solution_status == 2:
        values = np.zeros(strong.n_cols)
        values[held] = np.round(np.asarray(highs.getSolution().col_value))
    if values is not None and within(float(costs @ values)):
        return _Stage(plain(values), "optimal", max(0.0, (bound - float(costs @ values)) / scale))
    if clock() >= stop - 0.05:
        return _Stage(plain(values), "feasible" if values is not None else "not_solved",
                      None if values is None else (bound - float(costs @ values)) / scale)

    # 3. reduced-cost fixing against that matching (or, without one, the whole model)
    mark = clock()
    if values is not None:
        worth = float(costs @ values)
        keep = np.flatnonzero((reduced >= worth - bound - 1e-6 * scale) | (values > 0.5))
        keep = np.union1d(keep, np.arange(n_p, strong.n_cols))
    else:
        keep = np.arange(strong.n_cols)
    if values is not None and len(keep) > WIDER_AT_MOST * len(held) and stop - clock() < clock() - began:
        # HiGHS's presolve of a model this much wider would outlast the time left: keep the matching
        return _Stage(plain(values), "feasible", (bound - float(costs @ values)) / scale)
    sub, cols = _restricted(strong, keep, tight, has_row)
    highs = new_highs()
    _pass(highs, sub, costs[cols])
    if values is not None:
        _start(highs, values[cols])
    elif begin is not None:
        _start(highs, begin[cols])
    if progress is not None:
        _watch_highs(highs, progress)
    handoff(clock() - mark)
    result = run(highs, stop)
    if highs.getInfo().primal_solution_status != 2:
        if values is None:
            return _Stage(None, "infeasible" if result in infeasible else "not_solved", None)
        return _Stage(plain(values), "feasible", (bound - float(costs @ values)) / scale)
    found = np.zeros(strong.n_cols)
    found[cols] = np.round(np.asarray(highs.getSolution().col_value))
    if values is None or costs @ found >= costs @ values:
        values = found
    own = _finite(highs.getInfo().mip_gap)
    gap = min(max(0.0, (bound - float(costs @ values)) / scale), math.inf if own is None else own)
    return _Stage(plain(values), "optimal" if result == optimal or gap <= gap_wanted else "feasible", gap)


def _start(highs: Any, values: Any) -> None:
    import highspy

    start = highspy.HighsSolution()
    start.col_value = values.tolist()
    start.value_valid = True
    highs.setSolution(start)

