"""Why a round has no matching: an elastic copy of the PuLP model (a weighted slack per row) names the
constraint groups that must give, and the pins involved, in English and Dutch."""

from __future__ import annotations

from typing import Any, Iterable

import pulp

from ..domain.model import GROUPS, Opened, Pair, Placed, Problem, Row, ineligibility
from .common import SolverFactory
from .pulp_model import as_constraint, constraint_name, expression, new_model

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
        lp.addConstraint(as_constraint(lhs, row.sense, row.rhs), constraint_name(i, row))
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

