"""The kickoff optimiser: one PuLP model over all kickoffs of a batch, solved by HiGHS in memory.

Variables exist only for feasible (kickoff, slot) pairs (``domain.kickoffs.candidates``); the rows are the
domain's constraint families. The objective is lexicographic in one weighted sum: place as many
kickoffs as possible, then keep as many at their current slot as possible, then prefer early slots.
What stays unplaced is reported with its reason, never raised; a kickoff placed in a school year whose
school holidays are not known is placed all the same and reported as a warning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

import pulp

from .domain import kickoffs as rules_
from .domain.kickoffs import Booking, Calendars, Kickoff, Pair, Plan, Rules

SolverFactory = Callable[[float], pulp.LpSolver]


def highs(time_limit: float) -> pulp.LpSolver:
    return pulp.HiGHS(msg=False, timeLimit=time_limit)


def weights(kickoffs: Sequence[Kickoff], pairs: Sequence[Pair], rules: Rules) -> dict[Pair, int]:
    by_id = {k.match_id: k for k in kickoffs}
    costs = {p: rules_.cost(by_id[p[0]], p[1], rules) for p in pairs}
    worst = max(costs.values(), default=0) + 1
    keep = len(kickoffs) * worst + 1  # keeping one kickoff outweighs any earliness gain
    place = len(kickoffs) * (keep + worst) + 1  # placing one kickoff outweighs everything else
    return {p: place + (keep if by_id[p[0]].current == p[1] else 0) + worst - costs[p] for p in pairs}


def plan(kickoffs: Sequence[Kickoff], fixed: Sequence[Booking], cal: Calendars, rules: Rules,
         solver: SolverFactory = highs, time_limit: float = 30.0) -> Plan:
    started = time.perf_counter()
    found = rules_.candidates(kickoffs, cal, rules)
    pairs = [(k.match_id, s) for k in kickoffs for s in found.slots[k.match_id]]
    # pairs a fixed booking already rules out get no variable
    blocked = {p for row in rules_.rows(kickoffs, pairs, fixed, rules) if row.rhs == 0 for p in row.pairs}
    pairs = [p for p in pairs if p not in blocked]
    placed: dict[str, datetime] = {}
    name = ""
    if pairs and len(kickoffs) == 1:
        # one kickoff: every unblocked pair keeps every row, so the best weight is the optimum
        w = weights(kickoffs, pairs, rules)
        best = max(pairs, key=lambda p: (w[p], -p[1].timestamp()))
        placed, name = {best[0]: best[1]}, "direct"
    elif pairs:
        lp = pulp.LpProblem("kickoffs", pulp.LpMaximize)
        x = {p: lp.add_variable(f"x_{i}", 0, 1, cat=pulp.LpBinary) for i, p in enumerate(pairs)}
        for i, row in enumerate(rules_.rows(kickoffs, pairs, fixed, rules)):
            if len(row.pairs) > row.rhs:
                lp.addConstraint(pulp.lpSum(x[p] for p in row.pairs) <= row.rhs, f"r{i}")
        w = weights(kickoffs, pairs, rules)
        lp.setObjective(pulp.LpAffineExpression([(x[p], w[p]) for p in pairs]))
        chosen = solver(time_limit)
        lp.solve(chosen)
        name = type(chosen).__name__
        if pulp.LpStatus[lp.status] == "Optimal" or lp.sol_status in (pulp.LpSolutionIntegerFeasible,
                                                                       pulp.LpSolutionOptimal):
            placed = {p[0]: p[1] for p in pairs if (x[p].value() or 0) > 0.5}
    unplaced = {k.match_id: found.reasons.get(k.match_id, rules_.DAILY_CAP)
                for k in kickoffs if k.match_id not in placed}
    return Plan(placed, unplaced, name, time.perf_counter() - started,
                tuple(rules_.unknown_school_holidays(kickoffs, placed, cal)))
