"""The kickoff optimiser: one PuLP model over all kickoffs of a batch, solved by HiGHS in memory.

Variables exist only for feasible (kickoff, slot) pairs (``domain.kickoffs.candidates``); the rows are the
domain's constraint families. The objective is lexicographic in one weighted sum: place as many
kickoffs as possible, then keep as many at their current slot as possible, then prefer early slots.
What stays unplaced is reported with its reason, never raised; a kickoff placed in a school year whose
school holidays are not known is placed all the same and reported as a warning.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import pulp

from . import solver_watch
from .domain import kickoffs as rules_
from .domain.calendar import KICKOFF_DURATION, TZ
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


def components(kickoffs: Sequence[Kickoff]) -> list[list[Kickoff]]:
    """Kickoffs that share no firm, team or coordinator, even through others, share no row: each group
    of those that do is planned on its own (the objective is a sum over kickoffs, so the best plan of
    every group together is the best plan of all)."""
    parent: dict[str, str] = {}

    def root(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for k in kickoffs:
        for other in (f"firm:{k.firm_id}", f"team:{k.team_id}", f"coordinator:{k.coordinator_id}"):
            parent[root(f"match:{k.match_id}")] = root(other)
    groups: dict[str, list[Kickoff]] = defaultdict(list)
    for k in kickoffs:
        groups[root(f"match:{k.match_id}")].append(k)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0].match_id))


def _solve_highs(group: Sequence[Kickoff], pairs: Sequence[Pair], fixed: Sequence[Booking], rules: Rules,
                 time_limit: float) -> tuple[dict[str, datetime], bool]:
    """One group's model in HiGHS (in memory, from arrays): returns the placed kickoffs and whether the
    plan is proven optimal."""
    import highspy
    import numpy as np

    col = {p: i for i, p in enumerate(pairs)}
    starts: list[int] = [0]
    index: list[int] = []
    upper: list[float] = []
    for row in rules_.rows(group, pairs, fixed, rules):
        if len(row.pairs) > row.rhs:
            index.extend(col[p] for p in row.pairs)
            starts.append(len(index))
            upper.append(float(row.rhs))
    w = weights(group, pairs, rules)
    n, m = len(pairs), len(upper)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", max(float(time_limit), 0.5))
    h.setOptionValue("random_seed", 0)
    h.passModel(n, m, len(index), int(highspy.MatrixFormat.kRowwise), int(highspy.ObjSense.kMaximize), 0.0,
                np.asarray([float(w[p]) for p in pairs]), np.zeros(n), np.ones(n), np.full(m, -highspy.kHighsInf),
                np.asarray(upper), np.asarray(starts[:-1], dtype=np.int32), np.asarray(index, dtype=np.int32),
                np.ones(len(index)), np.zeros(n, dtype=np.int32))
    solver_watch.attach(h)
    # the LP first: without firms or teams shared across coordinators its rows nest (slot within day
    # within coordinator), a network whose vertices are whole; only a fractional answer needs the MIP
    h.run()
    solver_watch.note(h)
    values = np.asarray(h.getSolution().col_value) if h.getInfo().primal_solution_status == 2 else None
    if values is None or np.any(np.abs(values - np.round(values)) > 1e-6):
        h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.ones(n, dtype=np.int32))
        h.run()
        solver_watch.note(h)
        if h.getInfo().primal_solution_status != 2:
            return {}, False
        values = np.asarray(h.getSolution().col_value)
    return ({p[0]: p[1] for p in pairs if values[col[p]] > 0.5},
            h.getModelStatus() == highspy.HighsModelStatus.kOptimal)


def _solve_pulp(group: Sequence[Kickoff], pairs: Sequence[Pair], fixed: Sequence[Booking], rules: Rules,
                solver: SolverFactory, time_limit: float) -> tuple[dict[str, datetime], bool, str]:
    lp = pulp.LpProblem("kickoffs", pulp.LpMaximize)
    x = {p: lp.add_variable(f"x_{i}", 0, 1, cat=pulp.LpBinary) for i, p in enumerate(pairs)}
    for i, row in enumerate(rules_.rows(group, pairs, fixed, rules)):
        if len(row.pairs) > row.rhs:
            lp.addConstraint(pulp.lpSum(x[p] for p in row.pairs) <= row.rhs, f"r{i}")
    w = weights(group, pairs, rules)
    lp.setObjective(pulp.LpAffineExpression([(x[p], w[p]) for p in pairs]))
    chosen = solver(time_limit)
    lp.solve(chosen)
    if pulp.LpStatus[lp.status] == "Optimal" or lp.sol_status in (pulp.LpSolutionIntegerFeasible,
                                                                   pulp.LpSolutionOptimal):
        return ({p[0]: p[1] for p in pairs if (x[p].value() or 0) > 0.5},
                lp.sol_status == pulp.LpSolutionOptimal, type(chosen).__name__)
    return {}, False, type(chosen).__name__


def plan(kickoffs: Sequence[Kickoff], fixed: Sequence[Booking], cal: Calendars, rules: Rules,
         solver: SolverFactory = highs, time_limit: float = 30.0, decompose: bool = True) -> Plan:
    """Place the kickoffs: the most placed, then the most kept where they are, then the earliest. With
    ``decompose`` (the default) each group of kickoffs that share a firm, team or coordinator is its own
    model; with the default solver each is handed to HiGHS as arrays, with another ``solver`` (a PuLP
    solver factory) through PuLP. ``decompose=False`` makes one PuLP model of all (the plain model)."""
    started = time.perf_counter()
    deadline = started + time_limit
    found = rules_.candidates(kickoffs, cal, rules)
    pairs = [(k.match_id, s) for k in kickoffs for s in found.slots[k.match_id]]
    # pairs a fixed booking already rules out get no variable
    if fixed:
        blocked = {p for row in rules_.rows(kickoffs, pairs, fixed, rules) if row.rhs == 0 for p in row.pairs}
        pairs = [p for p in pairs if p not in blocked]
    by_kickoff: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_kickoff[p[0]].append(p)
    placed: dict[str, datetime] = {}
    names: set[str] = set()
    optimal = True
    groups = components(kickoffs) if decompose else [list(kickoffs)]
    for n, group in enumerate(groups):
        own = [p for k in group for p in by_kickoff.get(k.match_id, ())]
        if not own:
            continue
        if len(group) == 1:
            # one kickoff: every unblocked pair keeps every row, so the best weight is the optimum
            w = weights(group, own, rules)
            best = max(own, key=lambda p: (w[p], -p[1].timestamp()))
            placed[best[0]] = best[1]
            names.add("direct")
            continue
        share = max(deadline - time.perf_counter(), 0.0) / (len(groups) - n)
        if solver is highs:
            got, proven = _solve_highs(group, own, fixed, rules, share)
            names.add("HiGHS")
        else:
            got, proven, name = _solve_pulp(group, own, fixed, rules, solver, share)
            names.add(name)
        placed.update(got)
        optimal = optimal and proven
    unplaced = {k.match_id: found.reasons.get(k.match_id, rules_.DAILY_CAP)
                for k in kickoffs if k.match_id not in placed}
    name = "HiGHS" if "HiGHS" in names else (sorted(names - {"direct"}) or ["direct" if names else ""])[0]
    return Plan(placed, unplaced, name, time.perf_counter() - started,
                tuple(rules_.unknown_school_holidays(kickoffs, placed, cal)), "optimal" if optimal else "feasible")


def greedy(kickoffs: Sequence[Kickoff], fixed: Sequence[Booking], cal: Calendars, rules: Rules) -> Plan:
    """A baseline: kickoffs with the fewest feasible slots first, each at its current slot when still free,
    else its earliest free slot (no firm, team or coordinator booked then, the coordinator's day under the
    cap)."""
    started = time.perf_counter()
    found = rules_.candidates(kickoffs, cal, rules)
    busy: dict[str, list[datetime]] = defaultdict(list)
    per_day: dict[tuple[str, object], int] = defaultdict(int)
    for b in fixed:
        start = b.starts_at.astimezone(TZ)
        for who in (f"firm:{b.firm_id}", f"team:{b.team_id}", f"coordinator:{b.coordinator_id}"):
            busy[who].append(start)
        per_day[(b.coordinator_id, start.date())] += 1
    placed: dict[str, datetime] = {}
    for k in sorted(kickoffs, key=lambda k: (len(found.slots[k.match_id]), k.first_day, k.match_id)):
        slots = list(found.slots[k.match_id])
        if k.current in slots:
            slots.insert(0, k.current)
        people = (f"firm:{k.firm_id}", f"team:{k.team_id}", f"coordinator:{k.coordinator_id}")
        for s in slots:
            if per_day[(k.coordinator_id, s.date())] >= rules.daily_cap or any(
                    abs(s - other) < KICKOFF_DURATION for who in people for other in busy[who]):
                continue
            for who in people:
                busy[who].append(s)
            per_day[(k.coordinator_id, s.date())] += 1
            placed[k.match_id] = s
            break
    unplaced = {k.match_id: found.reasons.get(k.match_id, rules_.DAILY_CAP)
                for k in kickoffs if k.match_id not in placed}
    return Plan(placed, unplaced, "greedy", time.perf_counter() - started,
                tuple(rules_.unknown_school_holidays(kickoffs, placed, cal)), "heuristic")


def earliness(kickoffs: Sequence[Kickoff], placed: Mapping[str, datetime], rules: Rules) -> int:
    """The placed kickoffs' total slot positions in their windows (lower is earlier)."""
    return sum(rules_.cost(k, placed[k.match_id], rules) for k in kickoffs if k.match_id in placed)
