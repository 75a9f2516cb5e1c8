"""What the optimiser is measured against, on the same instance and the same eligible pairs.

- ``optimiser_pairs``: the eligible pairs and their fit, computed by the optimiser's own functions
  (``Problem.from_snapshot``, then ``matching.solver.arrays.eligibility`` or ``eligible_pairs``), so every
  solver sees exactly the same variables.
- ``solve_pulp_cbc``: a straightforward PuLP model of the whole instance, written from the snapshot's
  fields (one ``lpSum`` per row over pre-grouped pairs), solved by CBC (cbcbox's binary).
- ``solve_min_cost_flow``: the instance's network core as an OR-Tools min-cost flow::

      source -> (institution, period, level) -> (team, period) -> assignment [-> firm] -> sink
                 capacity: registered teams     1 each            1, cost -fit   max_teams   firm cap

  plus an arc source -> sink of cost 0. The flow sends one unit per possible team placement; a unit
  goes through a team only when that lowers the cost, so the cheapest flow is the matching of
  maximum total fit (not the largest matching). Costs are fits scaled by ``COST_SCALE`` and rounded.
  Minimum teams above one, supervision hours and fairness floors are not network rows: on the
  ``side`` flavour the flow solves a relaxation and its objective is an upper bound.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pulp

PairKey = tuple[str, str]  # (team_id, assignment_id)
CapacityKey = tuple[str, str, str]  # (institution_id, period, level)
COST_SCALE = 1_000_000


@dataclass(frozen=True)
class Result:
    solver: str
    status: str  # optimal, feasible (a time limit stopped it), infeasible, not_solved
    objective: float  # the total fit of the matched pairs
    matches: tuple[PairKey, ...]
    build_seconds: float
    solve_seconds: float
    exact: bool = True  # False: solved a relaxation of the instance (objective is an upper bound)

    @property
    def total_seconds(self) -> float:
        return self.build_seconds + self.solve_seconds


def optimiser_pairs(snapshot: Mapping[str, Any]) -> dict[PairKey, float]:
    """The optimiser's eligible pairs and fits, keyed by (team_id, assignment_id): from the array
    eligibility its HiGHS path uses where that exists, else from the domain's ``eligible_pairs``."""
    from matching.domain.model import Pair, Problem, eligible_pairs

    problem = Problem.from_snapshot(snapshot)
    pairs: dict[Pair, float]
    try:
        from matching.solver.arrays import eligibility
    except ImportError:
        pairs = eligible_pairs(problem)
    else:
        pairs = eligibility(problem).pairs
    return {(p.team_id, p.assignment_id): fit for p, fit in pairs.items()}


def objective_of(pairs: Mapping[PairKey, float], matches: tuple[PairKey, ...]) -> float:
    return float(sum(pairs[m] for m in matches))


def is_network(snapshot: Mapping[str, Any]) -> bool:
    """True when the snapshot has only the rules a min-cost flow expresses."""
    return (all(a["min_teams"] <= 1 for a in snapshot["assignments"])
            and not any(a["supervision_hours"] for a in snapshot["assignments"])
            and not snapshot["fairness_floors"])


@dataclass
class _Index:
    teams: dict[str, Mapping[str, Any]]
    assignments: dict[str, Mapping[str, Any]]
    capacities: dict[CapacityKey, Mapping[str, Any]]
    firm_caps: dict[str, int]


def _index(snapshot: Mapping[str, Any]) -> _Index:
    return _Index(
        teams={t["team_id"]: t for t in snapshot["teams"]},
        assignments={a["assignment_id"]: a for a in snapshot["assignments"]},
        capacities={(c["institution_id"], c["period"], c["level"]): c for c in snapshot["capacities"]},
        firm_caps={f["firm_id"]: f["max_teams"] for f in snapshot["firm_caps"]},
    )


def _capacity_key(ix: _Index, pair: PairKey) -> CapacityKey:
    team, assignment = ix.teams[pair[0]], ix.assignments[pair[1]]
    return team["institution_id"], assignment["period"], team["level"]


# ---- PuLP + CBC ---------------------------------------------------------------------------------


def cbc_solver(time_limit: float) -> pulp.LpSolver:
    import cbcbox

    return pulp.COIN_CMD(path=cbcbox.cbc_bin_path(), msg=False, timeLimit=time_limit)


def build_pulp(snapshot: Mapping[str, Any], pairs: Mapping[PairKey, float]
               ) -> tuple[pulp.LpProblem, dict[PairKey, pulp.LpVariable]]:
    """The whole instance as a plain PuLP model: one lpSum per row."""
    ix = _index(snapshot)
    lp = pulp.LpProblem("baseline", pulp.LpMaximize)
    keys = sorted(pairs)
    x = {k: lp.add_variable(f"x_{i}", 0, 1, cat=pulp.LpBinary) for i, k in enumerate(keys)}
    opened = {a_id: lp.add_variable(f"open_{i}", 0, 1, cat=pulp.LpBinary)
              for i, a_id in enumerate(ix.assignments)}
    lp.setObjective(pulp.lpSum(pairs[k] * x[k] for k in keys))

    by_team_period: dict[tuple[str, str], list[PairKey]] = defaultdict(list)
    by_assignment: dict[str, list[PairKey]] = defaultdict(list)
    by_capacity: dict[CapacityKey, list[PairKey]] = defaultdict(list)
    by_firm: dict[str, list[PairKey]] = defaultdict(list)
    by_team: dict[str, list[PairKey]] = defaultdict(list)
    for k in keys:
        assignment = ix.assignments[k[1]]
        by_team_period[(k[0], assignment["period"])].append(k)
        by_assignment[k[1]].append(k)
        by_capacity[_capacity_key(ix, k)].append(k)
        by_firm[assignment["firm_id"]].append(k)
        by_team[k[0]].append(k)

    for group in by_team_period.values():
        lp += pulp.lpSum(x[k] for k in group) <= 1
    for a_id, a in ix.assignments.items():
        group = by_assignment.get(a_id, [])
        lp += pulp.lpSum(x[k] for k in group) <= a["max_teams"] * opened[a_id]
        lp += pulp.lpSum(x[k] for k in group) >= a["min_teams"] * opened[a_id]
    for ckey, capacity in ix.capacities.items():
        group = by_capacity.get(ckey, [])
        if group:
            lp += pulp.lpSum(x[k] for k in group) <= capacity["teams"]
        hours = [(k, ix.assignments[k[1]]["supervision_hours"]) for k in group]
        if any(h for _, h in hours):
            lp += pulp.lpSum(h * x[k] for k, h in hours) <= capacity["supervision_hours"]
    for firm_id, cap in ix.firm_caps.items():
        group = by_firm.get(firm_id, [])
        if group:
            lp += pulp.lpSum(x[k] for k in group) <= cap
    placed: dict[str, pulp.LpVariable] = {}
    for floor in snapshot["fairness_floors"]:
        if floor["dimension"] == "region":
            members = [a_id for a_id, a in ix.assignments.items() if a["region"] == floor["value"]]
            if members:
                lp += pulp.lpSum(opened[a_id] for a_id in members) >= floor["min_share"] * len(members)
            continue
        attribute = "level" if floor["dimension"] == "level" else "institution_id"
        team_ids = [t_id for t_id, t in ix.teams.items() if t[attribute] == floor["value"]]
        for t_id in team_ids:
            if t_id not in placed:
                placed[t_id] = lp.add_variable(f"placed_{len(placed)}", 0, 1, cat=pulp.LpBinary)
                lp += placed[t_id] <= pulp.lpSum(x[k] for k in by_team.get(t_id, []))
        if team_ids:
            lp += pulp.lpSum(placed[t_id] for t_id in team_ids) >= floor["min_share"] * len(team_ids)
    return lp, x


def solve_pulp_cbc(snapshot: Mapping[str, Any], pairs: Mapping[PairKey, float], time_limit: float = 300.0
                   ) -> Result:
    started = time.perf_counter()
    lp, x = build_pulp(snapshot, pairs)
    built = time.perf_counter()
    lp.solve(cbc_solver(time_limit))
    solved = time.perf_counter()
    if lp.sol_status == pulp.LpSolutionOptimal:
        status = "optimal"
    elif lp.sol_status == pulp.LpSolutionIntegerFeasible:
        status = "feasible"
    elif lp.status == pulp.LpStatusInfeasible or lp.sol_status == pulp.LpSolutionInfeasible:
        status = "infeasible"
    else:
        status = "not_solved"
    matches = tuple(k for k, v in x.items() if (v.value() or 0) > 0.5) if status in ("optimal", "feasible") else ()
    return Result("PuLP + CBC", status, objective_of(pairs, matches), matches, built - started, solved - built)


# ---- OR-Tools min-cost flow ---------------------------------------------------------------------


def solve_min_cost_flow(snapshot: Mapping[str, Any], pairs: Mapping[PairKey, float]) -> Result:
    from ortools.graph.python import min_cost_flow

    started = time.perf_counter()
    ix = _index(snapshot)
    keys = sorted(pairs)
    source, sink = 0, 1
    nodes: dict[tuple[Any, ...], int] = {}

    def node(key: tuple[Any, ...]) -> int:
        if key not in nodes:
            nodes[key] = len(nodes) + 2
        return nodes[key]

    tails: list[int] = []
    heads: list[int] = []
    capacities: list[int] = []
    costs: list[int] = []

    def arc(tail: int, head: int, capacity: int, cost: int = 0) -> None:
        tails.append(tail)
        heads.append(head)
        capacities.append(capacity)
        costs.append(cost)

    team_periods: dict[tuple[str, str], CapacityKey] = {}
    for k in keys:
        team_periods.setdefault((k[0], ix.assignments[k[1]]["period"]), _capacity_key(ix, k))
    members: dict[CapacityKey, int] = defaultdict(int)
    for ckey in team_periods.values():
        members[ckey] += 1
    for ckey, count in sorted(members.items()):
        registered = ix.capacities.get(ckey)
        arc(source, node(("capacity", *ckey)), count if registered is None else min(count, registered["teams"]))
    for (team_id, period), ckey in sorted(team_periods.items()):
        arc(node(("capacity", *ckey)), node(("team", team_id, period)), 1)
    first_pair_arc = len(tails)
    for k in keys:
        arc(node(("team", k[0], ix.assignments[k[1]]["period"])), node(("assignment", k[1])), 1,
            -round(pairs[k] * COST_SCALE))
    used = {k[1] for k in keys}
    for a_id in sorted(used):
        a = ix.assignments[a_id]
        cap = ix.firm_caps.get(a["firm_id"])
        arc(node(("assignment", a_id)), sink if cap is None else node(("firm", a["firm_id"])), a["max_teams"])
    for firm_id in sorted({ix.assignments[a_id]["firm_id"] for a_id in used} & set(ix.firm_caps)):
        arc(node(("firm", firm_id)), sink, ix.firm_caps[firm_id])
    flow = len(team_periods)
    arc(source, sink, flow)

    network = min_cost_flow.SimpleMinCostFlow()
    network.add_arcs_with_capacity_and_unit_cost(
        np.array(tails, dtype=np.int32), np.array(heads, dtype=np.int32),
        np.array(capacities, dtype=np.int64), np.array(costs, dtype=np.int64))
    supplies = np.zeros(len(nodes) + 2, dtype=np.int64)
    supplies[source], supplies[sink] = flow, -flow
    network.set_nodes_supplies(np.arange(len(supplies), dtype=np.int32), supplies)
    built = time.perf_counter()
    outcome = network.solve()
    flows = network.flows(np.arange(first_pair_arc, first_pair_arc + len(keys), dtype=np.int32))
    matches = tuple(keys[int(i)] for i in np.flatnonzero(flows > 0))
    solved = time.perf_counter()
    status = "optimal" if outcome == network.OPTIMAL else "infeasible" if outcome == network.INFEASIBLE \
        else "not_solved"
    if status != "optimal":
        matches = ()
    return Result("OR-Tools min-cost flow", status, objective_of(pairs, matches), matches, built - started,
                  solved - built, exact=is_network(snapshot))


def agree(a: float, b: float, tolerance: float = 1e-6) -> bool:
    """Equal to ``tolerance`` relative (absolute near zero)."""
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
