"""``max_served`` on the network path: each assignment split into its first team and the rest.

"Assignments served" counts the open/closed decisions, so the policy's model is not a network (see
``network.is_network``) and took the side path. Where every minimum is at most one (and no pin, no
fairness floor and no supervision hours that can bind make side rows), an assignment is served exactly
when it has a team, and the round is a flow again once each assignment ``a`` becomes two: ``a`` first (at most one
team) and ``a`` rest (at most ``max_teams - 1``), of the same firm, period, place and fit. The maximum
row of ``a`` is then implied; a team's one assignment per period, its institution's capacity and the
firm's cap hold the two copies together. "Served" is the number of pairs on a first copy: it counts
pairs only, so both stages (served, then fit over the served optimum's face) are LPs whose optimal
vertices are integral, solved with pricing as ``max_fit``. The matching maps back by dropping the copy.
tests/unit/test_matching_served.py compares it with the side path and a brute force on random rounds.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..domain.model import Assignment, Problem
from .arrays import Eligibility
from .common import Progress, Solution, StageCallback
from .redundant import hours_cannot_bind
from .stages import array_objective_values, solve_stages

FIRST, REST = "\x00first", "\x00rest"  # suffixes of the copies' ids (no id in a snapshot holds a NUL)


def applies(problem: Problem, elig: Eligibility | None = None) -> bool:
    """The split keeps the round a network: every minimum at most one, no pin, no fairness floor, and no
    supervision hours that a capacity would count, or (given the eligible pairs) none that can bind
    (``redundant.hours_cannot_bind``: the split round's model then leaves their rows out)."""
    return (not problem.pinned and not problem.floors and all(a.min_teams <= 1 for a in problem.assignments)
            and (not problem.capacities or not any(a.supervision_hours for a in problem.assignments)
                 or (elig is not None and hours_cannot_bind(problem, elig))))


def split(problem: Problem, elig: Eligibility) -> tuple[Problem, Eligibility, np.ndarray]:
    """The round with every assignment as its first copy and (taking two teams or more) its rest; the
    eligible pairs of the copies (each pair's first copy, then its rest) and which of them are on a
    first copy."""
    assignments = problem.assignments
    firsts = [replace(a, assignment_id=a.assignment_id + FIRST, max_teams=min(a.max_teams, 1)) for a in assignments]
    rest_of = np.full(len(assignments), -1, dtype=np.int64)
    rests: list[Assignment] = []
    for j, a in enumerate(assignments):
        if a.max_teams >= 2:
            rest_of[j] = len(assignments) + len(rests)
            rests.append(replace(a, assignment_id=a.assignment_id + REST, min_teams=0, max_teams=a.max_teams - 1))
    copy = Problem(problem.teams, (*firsts, *rests), capacities=problem.capacities, firm_caps=problem.firm_caps,
                   working_area=problem.working_area)
    n = len(elig)
    has_rest = rest_of[elig.assignment] >= 0
    counts = 1 + has_rest.astype(np.int64)
    origin = np.repeat(np.arange(n, dtype=np.int64), counts)
    first = np.ones(len(origin), dtype=np.bool_)
    starts = np.cumsum(counts) - counts
    first[starts[has_rest] + 1] = False
    assignment = np.where(first, elig.assignment[origin], rest_of[elig.assignment[origin]])
    copied = Eligibility(copy, elig.team[origin], assignment, elig.fit[origin], elig.team_rank[origin])
    return copy, copied, first


def solve_served(problem: Problem, time_limit: float = 60.0, *, seed: int = 0,
                 on_stage: StageCallback | None = None, progress: Progress | None = None,
                 eligible: Eligibility, eligibility_seconds: float = 0.0) -> Solution:
    """``max_served`` solved on the split round (see the module's text), its matching mapped back."""
    copy, copied, first = split(problem, eligible)
    solution = solve_stages(copy, time_limit, policy="max_served", seed=seed, on_stage=on_stage, progress=progress,
                             eligible=copied, eligibility_seconds=eligibility_seconds, served_pairs=first)
    teams = {t.team_id: i for i, t in enumerate(problem.teams)}
    n_a = max(1, len(problem.assignments))
    position = {a.assignment_id: j for j, a in enumerate(copy.assignments)}
    copy_of = np.array([j if j < len(problem.assignments) else -1 for j in range(len(copy.assignments))])
    copy_of[len(problem.assignments):] = [j for j, a in enumerate(problem.assignments) if a.max_teams >= 2]
    wanted = np.array([teams[p.team_id] * n_a + copy_of[position[p.assignment_id]] for p in solution.matches],
                      dtype=np.int64)
    keys = eligible.team.astype(np.int64) * n_a + eligible.assignment
    order = np.argsort(keys, kind="stable")
    chosen = np.sort(order[np.searchsorted(keys, wanted, sorter=order)])
    matches = {eligible.pair(i): f for i, f in zip(chosen.tolist(), eligible.fit[chosen].tolist(), strict=True)}
    return replace(solution, matches=matches, objective=float(sum(matches.values())),
                   objective_values=array_objective_values(problem, eligible, chosen, matches))
