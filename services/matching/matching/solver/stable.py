"""The stable policy at scale: cutting planes over the stability rows, started from deferred acceptance.

The full stable model (``domain.model.stability``) has rows for every pair ranked on both sides and a
0/1 decision per limit; at 10,000 teams it takes seconds to build and HiGHS finds no good matching in it
within minutes. Few of those rows ever matter: a pair's rows only bind where the pair would block. So:

1. The best fit under the hard rules alone (the ``max_fit`` model, on the network path where it is
   one) bounds the fit of every matching: the bound is its proved one (``Solution.bound``: the network
   LP's optimum, the side path's LP bound or HiGHS's dual bound), not its fit, which is none where the
   time limit stopped it. When it has no blocking pair and was solved to optimality it is the answer.
2. Start matchings: deferred acceptance proposed by the teams, keeping the hard rules (``deferred``),
   and the ``max_fit`` matching, each improved by enacting blocking pairs one at a time (``improve``).
   The better of them (fewest blocking pairs, then fit) is the incumbent: the answer is never worse.
   Where it has no blocking pair, the optimum has none either, so the bound of step 1 is lowered to
   ``stable_bound``'s: the network LP's dual bound less what keeping the ranked pairs from blocking costs
   every stable matching (a sum over pairs whose costs come from disjoint terms of the LP's duals; where
   step 1 solved that very LP, the network LP of a round without firm caps or pins, its duals are
   taken from there instead of solving it again). It
   holds for stable matchings only, and is used only where the answer is one. (The 50k network round:
   130 below the bound of step 1, so the stable matching that ended 0.112% below that is within 0.081%.)
3. Where the incumbent has no blocking pair: the best fit under the hard rules with each pair that
   blocked so far kept from blocking the way the incumbent keeps it, by leaving pairs out only, so the
   round stays a network LP (``restrict``): where the incumbent gives the pair's team something it
   ranks no lower, the team's pairs in that period it ranks lower are left out; where it fills the
   pair's assignment with teams the firm ranks no lower, the assignment's pairs with teams ranked lower
   are left out. A pair kept by a limit only (a capacity, hours, the firm's cap), or that blocks again
   (its team left free, its assignment short), is held as the incumbent has it (``freeze``: its team's
   pair in that period and its assignment's pairs pinned, their other pairs left out). The incumbent is
   a matching of every such round, so each round's best fit is at least its fit. That matching, or the
   one enacting its blocking pairs ends in, replaces the incumbent when stable and better; the pairs
   that block it are kept too, and it is solved again while it gains (once at least, then up to
   FREEZE_SHARE of the time limit, or the whole of it from LAZY_STABLE_FROM_PAIRS pairs). Within the
   run's gap of the bound (step 1's, or the lowered one) that is the optimum; within ENOUGH_GAP it is kept, its gap
   reported. (Holding every cut pair's team and assignment as the incumbent has them, as before, ended
   0.19% below the bound at 10k; keeping them by bounds, within 0.1% after three re-solves.)
4. Cutting planes: the stable model with the stability rows of a set P of pairs only, solved
   lexicographically from the incumbent (``stages.Relaxation``). It is a relaxation: a matching's
   count of blocking pairs in it is at most its true count, so its optimum bounds the full model's.
   When the incumbent has no blocking pair, the first stage is known (0) and only the fit is solved.
   The blocking pairs of the matching found are counted by the plain definition
   (``domain.model.blocking_pairs``); when none is outside P and the solve was optimal, that matching
   is optimal for the full model; otherwise those pairs join P and the model is solved again.
The time limit stops the rounds with the best matching found; its gap is against the bound of step 1, or
the lowered one of step 2 (or the last relaxation's, when that was solved to optimality).
tests/unit/test_matching_stable.py runs every small exhaustive round through this path too
(``solve_arrays(..., lazy=True)``).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import replace
from typing import Any, Iterable, Mapping

import numpy as np

from ..domain.model import (
    Assignment,
    AtLimit,
    Blocks,
    Grouped,
    Pair,
    Problem,
    Team,
    blocking_pairs,
    firm_rank,
    limit_indices,
    team_rank,
)
from .arrays import ArrayModel, Eligibility
from .common import SOLVED, Progress, Solution, StageCallback, mip_gap
from .network import LpDuals
from .stable_bound import StableBound, network_lp_bound, stable_bound
from .stages import Relaxation, array_objective_values, solve_stages

# From this many eligible pairs the stable policy is solved by cutting planes (this module) on every
# call (``paths.solve_arrays``): the model with a row per ranked pair takes seconds to build and HiGHS
# finds no good matching in it in time.
LAZY_STABLE_FROM_PAIRS = 20_000

# Enacting blocking pairs one at a time from a start matching: at most this many moves, and at most
# this share of the time limit.
IMPROVE_MOVES = 400
IMPROVE_SHARE = 0.1
# ... and from the max_fit matching (the start that fits best), at most this share of the time left.
START_SHARE = 0.3
# The best fit with the cut pairs kept from blocking (step 3 of the module's text) runs until this share of the
# time limit in a round of fewer than LAZY_STABLE_FROM_PAIRS pairs; in a larger one until the time limit (the
# cutting planes of step 4 do not finish a round there: the 10k network round's first took the minute left).
FREEZE_SHARE = 0.85
# In a round of LAZY_STABLE_FROM_PAIRS pairs or more, a stable matching within this share of the bound of
# step 1 is kept without the cutting planes (the solution says "feasible" with its gap unless that is
# within the run's own MIP gap).
ENOUGH_GAP = 1e-3


def ranked_pairs(problem: Problem, elig: Eligibility) -> list[Pair]:
    """The eligible pairs both sides rank: the only ones that can block."""
    teams, assignments = problem.teams, problem.assignments
    found = []
    for i in np.flatnonzero(elig.team_rank > 0).tolist():
        t, a = teams[int(elig.team[i])], assignments[int(elig.assignment[i])]
        if firm_rank(a, t) is not None:
            found.append(Pair(t.team_id, a.assignment_id))
    return found


class _Matching:
    """A matching with the counts the hard rules need: teams per capacity cell and their hours, teams
    per firm, the teams of each assignment and the assignment each team holds per period."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.teams, self.jobs = problem.teams_by_id, problem.assignments_by_id
        self.cells, self.firm_caps_of = limit_indices(problem)
        self.used = [0] * len(problem.capacities)
        self.hours = [0.0] * len(problem.capacities)
        self.per_firm: Counter[str] = Counter()
        self.staff: dict[str, list[str]] = {}
        self.held: dict[tuple[str, str], str] = {}
        self.fit = 0.0  # of the pairs, where ``fits`` was given
        self.fits: Mapping[Pair, float] = {}
        self._ranks: list[tuple[Pair, Team, Assignment, int | None, int | None]] | None = None

    def cell(self, team_id: str, assignment_id: str) -> list[int]:
        t, a = self.teams[team_id], self.jobs[assignment_id]
        return self.cells.get((t.institution_id, a.period, t.level), [])

    def room(self, team_id: str, assignment_id: str, *, firm: bool, freed: str | None = None) -> bool:
        """The team can take the assignment within its cell's capacities and hours (leaving ``freed``,
        an assignment it holds in that period: its capacity stays, its hours change by the difference)
        and, with ``firm``, the firm's cap."""
        a = self.jobs[assignment_id]
        caps = self.problem.capacities
        back = 0.0 if freed is None else self.jobs[freed].supervision_hours
        for c in self.cell(team_id, assignment_id):
            if freed is None and self.used[c] >= caps[c].teams:
                return False
            if self.hours[c] + a.supervision_hours - back > caps[c].supervision_hours + 1e-9:
                return False
        if firm and not (freed is not None and self.jobs[freed].firm_id == a.firm_id):
            return all(self.per_firm[a.firm_id] < self.problem.firm_caps[f].max_teams
                       for f in self.firm_caps_of.get(a.firm_id, []))
        return True

    def add(self, team_id: str, assignment_id: str) -> None:
        a = self.jobs[assignment_id]
        for c in self.cell(team_id, assignment_id):
            self.used[c] += 1
            self.hours[c] += a.supervision_hours
        self.per_firm[a.firm_id] += 1
        self.staff.setdefault(assignment_id, []).append(team_id)
        self.held[(team_id, a.period)] = assignment_id
        self.fit += self.fits.get(Pair(team_id, assignment_id), 0.0)

    def remove(self, team_id: str, assignment_id: str) -> None:
        a = self.jobs[assignment_id]
        for c in self.cell(team_id, assignment_id):
            self.used[c] -= 1
            self.hours[c] -= a.supervision_hours
        self.per_firm[a.firm_id] -= 1
        self.staff[assignment_id].remove(team_id)
        del self.held[(team_id, a.period)]
        self.fit -= self.fits.get(Pair(team_id, assignment_id), 0.0)

    def pairs(self) -> set[Pair]:
        return {Pair(t, a) for a, ts in self.staff.items() for t in ts}

    def blocking(self, candidates: list[Pair]) -> list[Pair]:
        """``domain.model.blocking_pairs`` of this matching among ``candidates`` (sorted pairs both sides
        rank), read from the counts kept here rather than recounted: the same test, pair by pair."""
        caps, firm_caps = self.problem.capacities, self.problem.firm_caps
        found = []
        if self._ranks is None or len(self._ranks) != len(candidates):
            self._ranks = [(pair, self.teams[pair.team_id], self.jobs[pair.assignment_id],
                            team_rank(self.teams[pair.team_id], pair.assignment_id),
                            firm_rank(self.jobs[pair.assignment_id], self.teams[pair.team_id])) for pair in candidates]
        for pair, t, a, t_rank, f_rank in self._ranks:
            current = self.held.get((t.team_id, a.period))
            if current == a.assignment_id:
                continue
            if t_rank is None or f_rank is None:
                continue
            current_rank = None if current is None else team_rank(t, current)
            if current_rank is not None and current_rank <= t_rank:
                continue
            hold = None if current is None else self.jobs[current]
            others = self.staff.get(a.assignment_id, [])
            worse = any((r := firm_rank(a, self.teams[o])) is None or f_rank < r for o in others)
            cell = self.cells.get((t.institution_id, a.period, t.level), [])
            freed = 0.0 if hold is None else hold.supervision_hours
            if not ((hold is not None or all(self.used[c] < caps[c].teams for c in cell)) and all(
                    self.hours[c] + a.supervision_hours - freed <= caps[c].supervision_hours + 1e-9 for c in cell)):
                continue
            firm_kept = (hold is not None and hold.firm_id == a.firm_id) or all(
                self.per_firm[a.firm_id] < firm_caps[f].max_teams for f in self.firm_caps_of.get(a.firm_id, []))
            if worse or (len(others) < a.max_teams and firm_kept):
                found.append(pair)
        return found

    @classmethod
    def of(cls, problem: Problem, pairs: Iterable[Pair], fits: Mapping[Pair, float] | None = None) -> _Matching:
        m = cls(problem)
        m.fits = fits or {}
        for p in sorted(pairs):
            m.add(p.team_id, p.assignment_id)
        return m


def _worse(problem: Problem, assignment_id: str, team_id: str, than: int | None) -> int | None:
    """The firm's rank of a team when it is below ``than`` (unranked: below every rank), else None."""
    r = firm_rank(problem.assignments_by_id[assignment_id], problem.teams_by_id[team_id])
    if than is None:
        return None
    rank = 1 << 30 if r is None else r
    return rank if rank > than else None


def deferred(problem: Problem, eligible: dict[Pair, int] | dict[Pair, float]) -> set[Pair]:
    """Deferred acceptance proposed by the teams along their rankings (eligible pairs only), per period,
    keeping the hard rules: an assignment holds at most its maximum, the firm's best-ranked first (a
    team of the same rank does not displace another); a team is held only within its cell's capacity
    and hours and the firm's cap. Pins are placed first and never displaced. An assignment left with
    fewer teams than its minimum is closed and the round run again."""
    closed: set[str] = set()
    pinned = {p for p in problem.pinned if p in eligible}
    for _ in range(10):
        m = _Matching(problem)
        for p in sorted(pinned):
            m.add(p.team_id, p.assignment_id)
        options: dict[tuple[str, str], list[str]] = {}
        for t in problem.teams:
            for aid in t.preferences:
                a = problem.assignment(aid)
                if a is None or aid in closed or Pair(t.team_id, aid) not in eligible or a.max_teams < 1:
                    continue
                if a.period in t.periods and (t.team_id, a.period) not in m.held:
                    options.setdefault((t.team_id, a.period), []).append(aid)
        queue = list(reversed(sorted(options)))
        pointer = dict.fromkeys(options, 0)
        while queue:
            key = queue.pop()
            team_id, _period = key
            listed = options[key]
            while pointer[key] < len(listed):
                aid = listed[pointer[key]]
                pointer[key] += 1
                a = m.jobs[aid]
                held = m.staff.get(aid, [])
                if len(held) < a.max_teams and m.room(team_id, aid, firm=True):
                    m.add(team_id, aid)
                    break
                mine = firm_rank(a, m.teams[team_id])
                worse = [(r, w) for w in held if Pair(w, aid) not in pinned
                         and (r := _worse(problem, aid, w, mine)) is not None]
                if worse and m.room(team_id, aid, firm=False):
                    _, out = max(worse)
                    m.remove(out, aid)
                    m.add(team_id, aid)
                    if pointer.get((out, a.period), 0) < len(options.get((out, a.period), [])):
                        queue.append((out, a.period))
                    break
        short = {aid for aid, ts in m.staff.items()
                 if 0 < len(ts) < m.jobs[aid].min_teams and not any(Pair(t, aid) in pinned for t in ts)}
        if not short:
            return m.pairs()
        closed |= short
    return {p for p in m.pairs() if p.assignment_id not in closed or p in pinned}


def _enact(m: _Matching, pair: Pair) -> bool:
    """Move the team of a blocking pair to its assignment (leaving the one it holds in that period; the
    assignment taking it besides its teams when it has room within the firm's cap, else in place of its
    worst team ranked below it). False, changing nothing, where that would break a pin or leave an
    assignment between none and its minimum."""
    problem = m.problem
    a = m.jobs[pair.assignment_id]
    held = m.staff.get(pair.assignment_id, [])
    current = m.held.get((pair.team_id, a.period))
    if current is not None and Pair(pair.team_id, current) in problem.pinned:
        return False
    if current is not None and 0 < len(m.staff[current]) - 1 < m.jobs[current].min_teams:
        return False
    if len(held) + 1 < a.min_teams:
        return False
    out = None
    if not (len(held) < a.max_teams and m.room(pair.team_id, pair.assignment_id, firm=True, freed=current)):
        mine = firm_rank(a, m.teams[pair.team_id])
        worse = [(r, w) for w in held if Pair(w, pair.assignment_id) not in problem.pinned
                 and (r := _worse(problem, pair.assignment_id, w, mine)) is not None]
        if not worse or not m.room(pair.team_id, pair.assignment_id, firm=False, freed=current):
            return False
        out = max(worse)[1]
    if current is not None:
        m.remove(pair.team_id, current)
    if out is not None:
        m.remove(out, pair.assignment_id)
    m.add(pair.team_id, pair.assignment_id)
    return True


def improve(problem: Problem, start: set[Pair], candidates: list[Pair], fits: dict[Pair, float],
            until: float, seed: int = 0) -> tuple[set[Pair], list[Pair]]:
    """From ``start``, enact a blocking pair at a time (chosen with a seeded generator) while moves and
    time last; the matching with the fewest blocking pairs seen (then the best fit), and its pairs."""
    rng = random.Random(seed)
    candidates = sorted(candidates)
    current = _Matching.of(problem, start, fits)
    best_staff: dict[str, list[str]] | None = None
    best_blocking = blocking = current.blocking(candidates)
    best_fit = current.fit
    for _ in range(IMPROVE_MOVES):
        if not blocking or time.perf_counter() > until:
            break
        order = list(blocking)
        rng.shuffle(order)
        if not any(_enact(current, p) for p in order):
            break
        blocking = current.blocking(candidates)
        if (len(blocking), -current.fit) < (len(best_blocking), -best_fit - 1e-9):
            best_staff = {a: list(ts) for a, ts in current.staff.items() if ts}
            best_blocking, best_fit = blocking, current.fit
    best = set(start) if best_staff is None else {Pair(t, a) for a, ts in best_staff.items() for t in ts}
    return best, blocking_pairs(problem, best, candidates)


def grouped_for(problem: Problem, elig: Eligibility, pairs: Iterable[Pair]) -> Grouped:
    """The eligible pairs the stability rows of ``pairs`` read, grouped: every pair of their teams and
    of their assignments (the states and the assignment's teams), of their firms and of their teams'
    capacity cells in the assignments' periods (the limits' rows). ``stability(g, only=pairs)`` over
    this grouping is the same as over all eligible pairs."""
    teams = {t.team_id: i for i, t in enumerate(problem.teams)}
    jobs = {a.assignment_id: j for j, a in enumerate(problem.assignments)}
    codes: dict[str, int] = {}
    firm = np.array([codes.setdefault(a.firm_id, len(codes)) for a in problem.assignments], dtype=np.int64)
    period = np.array([codes.setdefault("period " + a.period, len(codes)) for a in problem.assignments],
                      dtype=np.int64)
    inst = np.array([codes.setdefault("institution " + t.institution_id, len(codes)) for t in problem.teams],
                    dtype=np.int64)
    level = np.array([codes.setdefault("level " + t.level, len(codes)) for t in problem.teams], dtype=np.int64)
    n = max(1, len(codes))
    wanted = [(teams[p.team_id], jobs[p.assignment_id]) for p in pairs]
    t_p = np.array([t for t, _ in wanted], dtype=np.int64)
    a_p = np.array([a for _, a in wanted], dtype=np.int64)
    cell = (inst[elig.team] * n + period[elig.assignment]) * n + level[elig.team]
    cells_p = (inst[t_p] * n + period[a_p]) * n + level[t_p]
    keep = (np.isin(elig.team, t_p) | np.isin(elig.assignment, a_p) | np.isin(firm[elig.assignment], firm[a_p])
            | np.isin(cell, cells_p))
    return Grouped.of(problem, [elig.pair(i) for i in np.flatnonzero(keep).tolist()])


def freeze(problem: Problem, elig: Eligibility, matching: set[Pair], pairs: Iterable[Pair]
           ) -> tuple[Problem, Eligibility]:
    """The round with the teams and assignments of ``pairs`` held as ``matching`` has them: each such
    team's pair in that period and each such assignment's pairs pinned, their other pairs forbidden
    (left out of the eligible pairs)."""
    keep, pins = _frozen(problem, elig, matching, pairs)
    frozen = replace(problem, pinned=problem.pinned | pins)
    return frozen, Eligibility(frozen, elig.team[keep], elig.assignment[keep], elig.fit[keep], elig.team_rank[keep])


def _frozen(problem: Problem, elig: Eligibility, matching: set[Pair], pairs: Iterable[Pair]
            ) -> tuple[Any, frozenset[Pair]]:
    """``freeze``'s eligible pairs kept (a mask over ``elig``) and the pins it adds."""
    teams = {t.team_id: i for i, t in enumerate(problem.teams)}
    jobs = {a.assignment_id: j for j, a in enumerate(problem.assignments)}
    periods: dict[str, int] = {}
    period = np.array([periods.setdefault(a.period, len(periods)) for a in problem.assignments], dtype=np.int64)
    n = max(1, len(periods))
    wanted = [(teams[p.team_id], jobs[p.assignment_id]) for p in pairs]
    team_periods = np.array([t * n + period[a] for t, a in wanted], dtype=np.int64)
    assignments = np.array([a for _, a in wanted], dtype=np.int64)
    touched = np.isin(elig.team * n + period[elig.assignment], team_periods) | np.isin(elig.assignment, assignments)
    held = np.zeros(len(elig), dtype=np.bool_)
    held[[elig.index[p] for p in matching]] = True
    return ~touched | held, frozenset(elig.pair(i) for i in np.flatnonzero(touched & held).tolist())


def _kept_by(m: _Matching, pair: Pair) -> str | None:
    """Why the pair does not block ``m`` in a way bounds can keep: "team" where its team holds, in the
    assignment's period, the assignment or one it ranks above it; "assignment" where the assignment is
    at its maximum with teams the firm ranks no lower than the pair's team; None otherwise (a limit
    keeps it: a capacity, hours or the firm's cap)."""
    t, a = m.teams[pair.team_id], m.jobs[pair.assignment_id]
    t_rank, f_rank = team_rank(t, a.assignment_id), firm_rank(a, t)
    current = m.held.get((t.team_id, a.period))
    if current is not None and t_rank is not None and (
            (r := team_rank(t, current)) is not None and r <= t_rank):
        return "team"
    others = m.staff.get(a.assignment_id, [])
    if f_rank is not None and len(others) >= a.max_teams and all(
            (r := firm_rank(a, m.teams[o])) is not None and r <= f_rank for o in others):
        return "assignment"
    return None


def restrict(problem: Problem, elig: Eligibility, matching: set[Pair], light: Iterable[Pair],
             frozen: Iterable[Pair]) -> tuple[Problem, Eligibility, set[Pair]]:
    """The round where each pair of ``light`` is kept from blocking the way ``matching`` keeps it, by
    leaving pairs out only (so it stays a network): where the team holds something it ranks no lower,
    its pairs in that period it ranks lower (or not at all) are left out; where the assignment is full
    of teams the firm ranks no lower, its pairs with teams the firm ranks lower are left out. The pairs
    of ``frozen``, and those of ``light`` that ``matching`` keeps from blocking by a limit only, are held
    as in ``freeze``. ``matching`` stays a matching of the round, so the round's best fit is at least
    its fit; where the best fit leaves the team free or the assignment short, the pair may block again
    (the caller then freezes it). Also returns the pairs frozen."""
    m = _Matching.of(problem, matching)
    teams = {t.team_id: i for i, t in enumerate(problem.teams)}
    jobs = {a.assignment_id: j for j, a in enumerate(problem.assignments)}
    periods: dict[str, int] = {}
    period = np.array([periods.setdefault(a.period, len(periods)) for a in problem.assignments], dtype=np.int64)
    n = max(1, len(periods))
    team_limit: dict[int, int] = {}  # team x period: the lowest rank kept
    job_limit: dict[int, int] = {}  # assignment: the lowest firm rank kept
    held_fully = set(frozen)
    for pair in light:
        if pair in held_fully:
            continue
        kind = _kept_by(m, pair)
        t, a = m.teams[pair.team_id], m.jobs[pair.assignment_id]
        if kind == "team":
            key = teams[t.team_id] * n + period[jobs[a.assignment_id]]
            rank = team_rank(t, a.assignment_id) or 0
            team_limit[key] = min(team_limit.get(key, rank), rank)
        elif kind == "assignment":
            j = jobs[a.assignment_id]
            rank = firm_rank(a, t) or 0
            job_limit[j] = min(job_limit.get(j, rank), rank)
        else:
            held_fully.add(pair)
    out = np.zeros(len(elig), dtype=np.bool_)
    if team_limit:
        keys = np.array(sorted(team_limit), dtype=np.int64)
        limits = np.array([team_limit[k] for k in keys.tolist()], dtype=np.int64)
        pair_key = elig.team * n + period[elig.assignment]
        where = np.searchsorted(keys, pair_key).clip(0, len(keys) - 1)
        mine = keys[where] == pair_key
        out |= mine & ((elig.team_rank == 0) | (elig.team_rank > limits[where]))
    if job_limit:
        for i in np.flatnonzero(np.isin(elig.assignment, np.array(sorted(job_limit), dtype=np.int64))).tolist():
            a = problem.assignments[int(elig.assignment[i])]
            ranked = firm_rank(a, problem.teams[int(elig.team[i])])
            if ranked is None or ranked > job_limit[int(elig.assignment[i])]:
                out[i] = True
    out[[k for p in problem.pinned | matching if (k := elig.index.get(p)) is not None]] = False
    keep, pins = ~out, frozenset[Pair]()
    if held_fully:  # as freeze does, over the same arrays (their Pair index is built once per run)
        frozen_keep, pins = _frozen(problem, elig, matching, held_fully)
        keep &= frozen_keep
    kept = replace(problem, pinned=problem.pinned | pins) if pins else problem
    return kept, Eligibility(kept, elig.team[keep], elig.assignment[keep], elig.fit[keep], elig.team_rank[keep]), \
        held_fully


def start_values(model: ArrayModel, chosen: Any, blocking: set[Pair]) -> Any:
    """The model's columns for the matching of the eligible pairs at positions ``chosen``: its pairs,
    staffed assignments, placed teams, its blocking pairs among the model's ``Blocks`` and every limit
    it reaches among the ``AtLimit``; None where that breaks a row (a fairness floor, say)."""
    elig = model.eligibility
    problem = elig.problem
    n_p, n_a = model.n_pairs, len(problem.assignments)
    values = np.zeros(model.n_cols)
    values[chosen] = 1.0
    values[n_p:n_p + n_a] = np.bincount(elig.assignment[chosen], minlength=n_a) > 0
    placed = {problem.teams[int(t)].team_id for t in elig.team[chosen].tolist()}
    for k, team_id in enumerate(model.placed_teams):
        values[n_p + n_a + k] = float(team_id in placed)
    base = n_p + n_a + len(model.placed_teams)
    is_limit = np.zeros(model.n_cols, dtype=np.bool_)
    for k, key in enumerate(model.extra):
        if isinstance(key, Blocks):
            values[base + k] = float(Pair(key.team_id, key.assignment_id) in blocking)
        elif isinstance(key, AtLimit):
            values[base + k] = 1.0
            is_limit[base + k] = True
    lhs = model.activity(values)
    broken = lhs < model.row_lower - 1e-6
    unreached = is_limit[model.col] & broken[model.row]
    values[model.col[unreached]] = 0.0  # a limit the matching does not reach
    return values if model.holds(values) else None


def solve_lazily(problem: Problem, time_limit: float = 60.0, *, seed: int = 0,
                 on_stage: StageCallback | None = None, progress: Progress | None = None,
                 eligible: Eligibility, eligibility_seconds: float = 0.0) -> Solution:
    """The stable policy by cutting planes (see the module's text)."""
    clock = time.perf_counter
    started = clock()
    deadline = started + time_limit
    elig = eligible
    candidates = ranked_pairs(problem, elig)
    fits = elig.pairs

    # 1. the hard rules alone: a bound for the fit, and the first cuts
    duals: list[LpDuals] = []  # its network LP's duals, where it is the LP of stable_bound (then not solved again)
    relaxed = solve_stages(problem, time_limit, policy="max_fit", seed=seed, on_stage=on_stage,
                            progress=progress, eligible=elig, eligibility_seconds=eligibility_seconds, duals=duals)
    timings = dict(relaxed.timings)
    if relaxed.status not in SOLVED:
        return replace(relaxed, policy="stable", timings=timings, path="cutting-plane")

    def stopped() -> bool:
        return progress is not None and progress.stop.is_set()
    # a proved bound only: where max_fit stopped at the time limit its fit is not one (the stable answer was then
    # called optimal at a gap of 0 against the very matching it started from), its LP or dual bound is
    bound = relaxed.bound if relaxed.bound is not None else network_lp_bound(problem, elig, deadline)
    first = set(relaxed.matches)
    cuts = set(blocking_pairs(problem, first, candidates))
    if not cuts and relaxed.status == "optimal":
        return _answer(problem, elig, relaxed, first, [], "optimal", relaxed.gap, timings, started,
                       relaxed.build_seconds)

    # 2. the start: the max_fit matching and deferred acceptance, each improved
    mark = clock()
    accepted = deferred(problem, fits)
    begun = clock()
    # the max_fit matching first, with the larger share: deferred acceptance places only the teams that
    # ranked (a fifth in the benchmark's rounds), so where the max_fit start is not made stable in time the
    # answer has a fraction of the fit (under a loaded machine, with a tenth of the time, it was not)
    until = begun + START_SHARE * max(deadline - begun, 0.0)
    starts = []
    for begin in (first, accepted):
        cuts |= set(blocking_pairs(problem, begin, candidates))
        starts.append(improve(problem, begin, candidates, fits, until, seed))
        until = clock() + IMPROVE_SHARE * max(deadline - clock(), 0.0)
    best, best_blocking = min(starts, key=lambda s: (len(s[1]), -sum(fits[p] for p in s[0])))
    cuts |= set(best_blocking)
    timings["start"] = clock() - mark

    # the bound for a stable incumbent: step 1's lowered by what keeping the ranked pairs from blocking costs
    # every stable matching (``stable_bound``); used only where the answer has no blocking pair
    proof: StableBound | None = None
    if not best_blocking and _gap(bound, sum(fits[p] for p in best)) > mip_gap(len(elig)):
        mark = clock()
        proof = stable_bound(problem, elig, deadline,
                             np.array([k for k in elig.positions(first) if k is not None], dtype=np.int64),
                             duals[0] if duals else None)
        timings["bound"] = clock() - mark
        if proof is not None:
            bound = min(bound, proof.bound)

    # 3. the best fit with the cut pairs kept from blocking as the incumbent keeps them (a network again)
    mark = clock()
    rounds = 0
    light, frozen = set(cuts), set[Pair]()
    # in a large round the cutting planes of step 4 do not finish a round in time: the re-solves go on
    held_until = deadline if len(elig) >= LAZY_STABLE_FROM_PAIRS else started + FREEZE_SHARE * time_limit
    while not best_blocking and light and not stopped() and deadline - clock() > 1.0 and (
            rounds == 0 or clock() < held_until) and \
            _gap(bound, sum(fits[p] for p in best)) > ENOUGH_GAP:
        rounds += 1
        kept_problem, kept_elig, frozen = restrict(problem, elig, best, light, frozen)
        around = solve_stages(kept_problem, deadline - clock(), policy="max_fit", seed=seed, eligible=kept_elig)
        if around.status not in SOLVED or stopped():
            break
        found = set(around.matches)
        blocking = blocking_pairs(problem, found, candidates)
        improved = False
        if blocking:  # enacting its few blocking pairs may end in a stable matching better than the incumbent
            repaired, left = improve(problem, found, candidates, fits, clock() + IMPROVE_SHARE * time_limit, seed)
            if not left and sum(fits[p] for p in repaired) > sum(fits[p] for p in best) + 1e-9:
                best, improved = repaired, True
        elif around.objective > sum(fits[p] for p in best) + 1e-9:
            best, improved = found, True
        again = set(blocking) & light
        new_pairs = set(blocking) - light
        if not again and not new_pairs and not improved:
            break  # the best fit kept as the incumbent keeps its pairs: nothing more to gain this way
        frozen |= again  # kept from blocking by bounds that did not hold: held as the incumbent has them
        light |= new_pairs
        cuts |= set(blocking)
    timings["freeze"] = clock() - mark
    freeze_rounds = rounds
    gap_wanted = mip_gap(len(elig))

    # 4. cutting planes
    last: Solution = relaxed
    proven, gap, rounds = False, None, 0
    fit = sum(fits[p] for p in best)
    close = not best_blocking and _gap(bound, fit) <= ENOUGH_GAP and \
        len(elig) >= LAZY_STABLE_FROM_PAIRS
    if not best_blocking and _gap(bound, fit) <= gap_wanted:
        proven, gap = True, _gap(bound, fit)
    while not proven and not close and deadline - clock() > 0.5:
        rounds += 1
        chosen = np.array(sorted(elig.index[p] for p in best), dtype=np.int64)
        held_blocking = set(best_blocking)
        mark = clock()
        grouped = grouped_for(problem, elig, cuts)
        timings["group"] = timings.get("group", 0.0) + clock() - mark

        def start(model: ArrayModel, chosen: Any = chosen, held_blocking: set[Pair] = held_blocking) -> Any:
            return start_values(model, chosen, held_blocking)

        solution = solve_stages(problem, deadline - clock(), policy="stable", seed=seed, progress=progress,
                                 eligible=elig, relaxed=Relaxation(frozenset(cuts), grouped, start,
                                                                   not best_blocking, candidates))
        for k, v in solution.timings.items():
            if k != "eligibility":
                timings[k] = timings.get(k, 0.0) + v
        if solution.status not in SOLVED or stopped():
            break
        last = solution
        found = set(solution.matches)
        blocking = blocking_pairs(problem, found, candidates)
        if (len(blocking), -solution.objective) < (len(best_blocking), -sum(fits[p] for p in best)):
            best, best_blocking = found, blocking
        new = set(blocking) - cuts
        if not new and solution.status == "optimal":
            proven, gap = True, solution.gap
            if solution.bound is not None:
                bound = min(bound, max(solution.bound, solution.objective))
            break
        if not new:
            break  # stopped by the time limit
        cuts |= new
    if stopped():  # asked to stop: as the other paths, no matching
        return replace(relaxed, status="interrupted", objective=0.0, matches={}, policy="stable", objective_values={},
                       timings=timings, path="cutting-plane")
    steps = {"held re-solves": freeze_rounds, "cut rounds": rounds, "cut pairs": len(cuts),
             **({"bound pairs": proof.pairs} if proof is not None else {})}
    fit = sum(fits[p] for p in best)
    if not proven and not best_blocking:
        gap = _gap(bound, fit) if math.isfinite(bound) else None
    answer = _answer(problem, elig, last, best, best_blocking, "optimal" if proven else "feasible", gap, timings,
                     started, relaxed.build_seconds)
    return replace(answer, time_limit_reached=not proven and not close, steps=steps,
                   bound=max(bound, fit) if math.isfinite(bound) else None)


def _gap(bound: float, fit: float) -> float:
    """The share of the bound a matching of ``fit`` lies below it (infinite without a finite bound)."""
    return max(0.0, (bound - fit) / max(1.0, abs(bound))) if math.isfinite(bound) else math.inf


def _answer(problem: Problem, elig: Eligibility, last: Solution, matching: set[Pair], blocking: list[Pair],
            status: str, gap: float | None, timings: dict[str, float], started: float, build_seconds: float
            ) -> Solution:
    """The run's solution: the matching chosen, its objectives (its true count of blocking pairs), the
    last model's hash, solver and versions."""
    fits = elig.pairs
    matches = {p: fits[p] for p in sorted(matching)}
    chosen = np.array(sorted(elig.index[p] for p in matching), dtype=np.int64)
    values = array_objective_values(problem, elig, chosen, matches, False)
    values["blocking"] = float(len(blocking))
    return replace(last, status=status, objective=float(sum(matches.values())), matches=matches, policy="stable",
                   objective_values=values, gap=gap, time_limit_reached=status != "optimal",
                   solve_seconds=time.perf_counter() - started - build_seconds, build_seconds=build_seconds,
                   timings=timings, path="cutting-plane")
