"""The plain model in PuLP, the definition every other path must agree with: variables only for
eligible pairs (x per pair, opened per assignment, placed per team a fairness floor is about), every
hard rule from the domain's constraint families (``domain.model.hard_rows``), the objectives as pure
functions of the variables, and the model's hash and LP/MPS export. ``solver.plain`` solves it."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import pulp

from ..domain.model import (
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
    pair_key,
    stability_columns,
    team_rank,
)
from ..domain.policies import POLICIES, Objective, Policy
from .arrays import build_arrays, eligibility
from .common import LEVEL_TOLERANCE


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



def blocking_count(keys: Iterable[Key], variable: Callable[[Key], Any]) -> pulp.LpAffineExpression:
    """The "blocking" objective, maximised as every objective is: minus the pairs that may block."""
    return pulp.LpAffineExpression([(variable(k), -1.0) for k in keys if isinstance(k, Blocks)])


def constraint_name(i: int, row: Row) -> str:
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
        lp.addConstraint(as_constraint(expression(row, model), row.sense, row.rhs), constraint_name(i, row))
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
