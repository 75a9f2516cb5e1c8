"""A bound on the fit of every stable matching, tighter than the best fit under the hard rules alone.

The stable policy's cutting-plane path (``solver.stable``) reports its gap against a bound on the fit
of the matchings without blocking pairs. The best fit under the hard rules alone is one; this module
lowers it by what keeping the blocking pairs away must cost, proved from the LP's duals:

1. The LP over the pairs with the rows every matching keeps (a team at most once per period, an
   assignment at most its maximum, each institution capacity's teams), solved by pricing, gives duals
   y >= 0 of its rows (or the max_fit solve of a round with those rows only gives them: it solved the
   same LP, ``network.lp_duals_of``). For every matching M (every hard rule held) and any such y:
       fit(M) = D - loss(M),  D = y.b + sum_p z_p,
       loss(M) = sum_rows y_r * slack_r(M) + sum_{p in M} rc_p + sum_{p not in M} z_p,
   with rc_p = (the duals of p's rows) + z_p - fit_p >= 0 and z_p = max(0, fit_p - duals of p's rows)
   (so D >= the LP's optimum: weak duality, whatever y is; every y >= 0 gives a valid bound, an optimal
   one the LP's value, and the pairs' costs below depend on which optimal y a solve ends at). Every term
   of the loss is >= 0.
2. A pair (t, a) ranked on both sides does not block a stable M (``domain.model.blocking_pairs``) in
   one of three ways, each paying loss terms of its own:
   - t holds, in a's period, a or an assignment it ranks above a: M holds one of those pairs (t, a'),
     paying its rc (at least the least rc of those pairs);
   - t is free in that period and a capacity of its cell is full: t's row has slack 1, paying its dual;
   - a holds its maximum of teams, none ranked below t by the firm: M holds m_a of a's pairs with a
     team the firm ranks no lower than t, paying their rc (at least the m_a least).
   (Supervision hours or a firm cap may keep a pair from blocking at no cost in these terms: a pair
   where one of them can do so gets no bound.) So M's loss on the terms of the pair's ways is at least
   the least of the three (``pair_bounds``).
3. Pairs whose ways' terms are disjoint add up: the loss of every stable matching is at least the sum
   over a packing of them (chosen greedily, largest first), so the fit of every stable matching is at
   most D minus that sum. This holds only for matchings without blocking pairs: the caller uses it when
   its incumbent has none (then the optimum has none either).

tests/unit/test_matching_stable_bound.py checks the bound against the best stable fit found by
enumeration on small random rounds (with its own duals and with those of the max_fit solve), and that a pair
a firm cap or hours can keep from blocking is left out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..domain.model import Problem, firm_rank
from .arrays import Eligibility
from .network import LpDuals

# Pricing: start from each team's and each assignment's best pairs, add the pairs of negative reduced cost.
START_PAIRS = 4
ENTERING_PAIRS = 4
PRICE_TOLERANCE = 1e-9
# A pair's bound counts in the packing from this amount of fit.
LEAST_BOUND = 1e-6


@dataclass(frozen=True)
class StableBound:
    """``dual``: D, the LP's dual bound on every matching's fit; ``cost``: the packed pairs' sum, a lower
    bound on what every stable matching loses from D; ``bound``: D - cost; ``pairs``: how many packed."""

    dual: float
    cost: float
    pairs: int
    seconds: float

    @property
    def bound(self) -> float:
        return self.dual - self.cost


@dataclass
class _Rows:
    """The LP's rows over the eligible pairs: each pair's team-period row, assignment row and capacity
    rows (padded with the index ``n_rows``, a row of dual 0), each row's right-hand side."""

    team_row: Any
    job_row: Any
    cap_rows: Any  # (k, pairs)
    rhs: Any
    n_team_rows: int

    @property
    def n_rows(self) -> int:
        return len(self.rhs)

    def dual_sum(self, y: Any) -> Any:
        """Each pair's sum of its rows' duals ``y``."""
        y = np.append(y, 0.0)
        total = y[self.team_row] + y[self.job_row]
        for rows in self.cap_rows:
            total = total + y[rows]
        return total


def _rows(problem: Problem, elig: Eligibility) -> _Rows:
    """The LP's rows: one per team and period it has pairs in, one per assignment, one per capacity."""
    periods: dict[str, int] = {}
    period = np.array([periods.setdefault(a.period, len(periods)) for a in problem.assignments], dtype=np.int64)
    n_per = max(1, len(periods))
    key = elig.team.astype(np.int64) * n_per + period[elig.assignment]
    team_keys, team_row = np.unique(key, return_inverse=True)
    n_t = len(team_keys)
    job_row = n_t + elig.assignment.astype(np.int64)
    rhs = [np.ones(n_t), np.array([float(a.max_teams) for a in problem.assignments])]
    n_rows = n_t + len(problem.assignments)
    cells: dict[tuple[str, str, str], list[int]] = {}
    for k, c in enumerate(problem.capacities):
        cells.setdefault((c.institution_id, c.period, c.level), []).append(k)
    depth = max((len(v) for v in cells.values()), default=0)
    codes: dict[tuple[str, str], int] = {}
    group = np.array([codes.setdefault((t.institution_id, t.level), len(codes)) for t in problem.teams],
                     dtype=np.int64)
    names = list(periods)
    pair_cell = group[elig.team] * n_per + period[elig.assignment]
    cap_rows = []
    for level in range(depth):
        per_cell = np.full(max(1, len(codes)) * n_per, n_rows + len(problem.capacities), dtype=np.int64)
        for (inst, lvl), code in codes.items():
            for p, name in enumerate(names):
                ks = cells.get((inst, name, lvl), [])
                if len(ks) > level:
                    per_cell[code * n_per + p] = n_rows + ks[level]
        cap_rows.append(per_cell[pair_cell])
    if depth:
        rhs.append(np.array([float(c.teams) for c in problem.capacities]))
        n_rows += len(problem.capacities)
    cap = np.stack(cap_rows) if cap_rows else np.zeros((0, len(elig)), dtype=np.int64)
    return _Rows(team_row.astype(np.int64), job_row, cap, np.concatenate(rhs), n_t)


def lp_duals(problem: Problem, elig: Eligibility, rows: _Rows, until: float, start: Any = None) -> Any:
    """The LP's row duals (>= 0) by pricing, each period's pairs apart (no row holds pairs of two periods)
    and side by side; None where HiGHS gave none before ``until``. ``start``: positions of pairs to start
    from besides each team's and assignment's best (the best matching under the hard rules, say)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    period = np.array([a.period for a in problem.assignments], dtype=object)
    codes = {p: k for k, p in enumerate(sorted(set(period.tolist())))}
    part = np.array([codes[p] for p in period.tolist()], dtype=np.int64)[elig.assignment] if len(elig) else \
        np.zeros(0, dtype=np.int64)
    parts = [np.flatnonzero(part == k) for k in range(len(codes))]
    with ThreadPoolExecutor(max_workers=max(1, min(len(parts), os.cpu_count() or 1))) as pool:
        found = list(pool.map(lambda among: _part_duals(elig, rows, until, among, start), parts))
    if any(y is None for y in found):
        return None
    return np.sum(found, axis=0) if found else np.zeros(rows.n_rows)


def _part_duals(elig: Eligibility, rows: _Rows, until: float, among: Any, start: Any) -> Any:
    """``lp_duals`` over the pairs at positions ``among``: the duals of their rows, 0 on the others."""
    import time

    import highspy

    from .network import best_per

    fit = np.asarray(elig.fit, dtype=np.float64)[among]
    team, job = elig.team[among], elig.assignment[among]
    n = len(among)
    if not n:
        return np.zeros(rows.n_rows)
    chosen = np.zeros(n, dtype=np.bool_)
    chosen[best_per(team, fit, START_PAIRS)] = True
    chosen[best_per(job, fit, START_PAIRS)] = True
    if start is not None:
        chosen[np.isin(among, start)] = True
    team_row, job_row = rows.team_row[among], rows.job_row[among]
    cap_rows = [r[among] for r in rows.cap_rows]
    mine = np.zeros(rows.n_rows + 1, dtype=np.bool_)
    mine[team_row] = mine[job_row] = True
    for r in cap_rows:
        mine[r] = True
    mine = mine[:-1]
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    highs.addRows(rows.n_rows, np.full(rows.n_rows, -inf), rows.rhs, 0, np.zeros(rows.n_rows + 1, dtype=np.int32),
                  np.zeros(0, dtype=np.int32), np.zeros(0))
    highs.changeObjectiveSense(highspy.ObjSense.kMaximize)
    held = np.zeros(n, dtype=np.bool_)
    while True:
        new = np.flatnonzero(chosen & ~held)
        if len(new):
            per = np.stack([team_row[new], job_row[new], *(r[new] for r in cap_rows)], axis=1)
            valid = per < rows.n_rows
            starts = np.concatenate([[0], np.cumsum(valid.sum(axis=1))[:-1]]).astype(np.int32)
            index = per[valid].astype(np.int32)
            # each pair at most 1 (its team's row keeps it so too; without this bound the LP took three times
            # as long at 10k, for a bound 0.8 lower): a dual on it is a term the bound leaves out (z_p)
            highs.addCols(len(new), fit[new], np.zeros(len(new)), np.ones(len(new)), int(valid.sum()), starts, index,
                          np.ones(int(valid.sum())))
            held[new] = True
        # HiGHS's time limit counts every run of the instance together
        highs.setOptionValue("time_limit", highs.getRunTime() + max(until - time.perf_counter(), 0.05))
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        # a maximised row's dual as HiGHS reports it: >= 0 where raising the row's bound raises the optimum
        y = np.where(mine, np.maximum(np.asarray(highs.getSolution().row_dual), 0.0), 0.0)
        total = y[team_row] + y[job_row]
        for r in cap_rows:
            total = total + np.append(y, 0.0)[r]
        rc = total - fit
        entering = (rc < -PRICE_TOLERANCE) & ~held
        if not entering.any():
            return y
        chosen[:] = False
        chosen[best_per(team, -rc, ENTERING_PAIRS, entering)] = True


def stable_bound(problem: Problem, elig: Eligibility, until: float, start: Any = None,
                 duals: LpDuals | None = None) -> StableBound | None:
    """The bound of the module's text; None where the LP was not solved before ``until``. ``start``: as
    for ``lp_duals``. ``duals``: the LP's duals where a solve of the same LP found them already (the
    max_fit round's network LP, ``network.lp_duals_of``); else the LP is solved here."""
    import time

    started = time.perf_counter()
    rows = _rows(problem, elig)
    if duals is None:
        duals = own_duals(problem, elig, rows, until, start)
        if duals is None:
            return None
    team_dual = np.zeros(rows.n_team_rows)
    team_dual[rows.team_row] = duals.team
    rc = np.maximum(duals.reduced, 0.0)
    costs = pair_bounds(problem, elig, rows, team_dual, rc)
    used = np.zeros(len(elig), dtype=np.bool_)
    used_rows = np.zeros(rows.n_team_rows, dtype=np.bool_)
    total, packed = 0.0, 0
    for value, own, team_row in sorted(costs, key=lambda c: -c[0]):
        if value <= LEAST_BOUND:
            break
        if used[own].any() or (team_row >= 0 and used_rows[team_row]):
            continue
        used[own] = True
        if team_row >= 0:
            used_rows[team_row] = True
        total += value
        packed += 1
    return StableBound(duals.dual, total, packed, time.perf_counter() - started)


def own_duals(problem: Problem, elig: Eligibility, rows: _Rows, until: float, start: Any = None) -> LpDuals | None:
    """The LP's duals solved here (``lp_duals``) as ``LpDuals``; None where it was not solved before ``until``."""
    y = lp_duals(problem, elig, rows, until, start)
    if y is None:
        return None
    reduced = rows.dual_sum(y) - np.asarray(elig.fit, dtype=np.float64)
    return LpDuals(y[rows.team_row], reduced, float(y @ rows.rhs + np.maximum(-reduced, 0.0).sum()))


def network_lp_bound(problem: Problem, elig: Eligibility, until: float) -> float:
    """D of the module's text: a bound on the fit of every matching keeping the hard rules (the network LP's
    rows are among them), proved by weak duality; infinite where the LP was not solved before ``until``."""
    duals = own_duals(problem, elig, _rows(problem, elig), until)
    return math.inf if duals is None else duals.dual


def pair_bounds(problem: Problem, elig: Eligibility, rows: _Rows, y: Any, rc: Any
                ) -> list[tuple[float, Any, int]]:
    """Each ranked pair's least loss (step 2 of the module's text) with the terms it is paid from: the
    eligible positions of its ways' pairs and its team row (-1: not among them). ``y``: the team rows' duals."""
    teams, jobs = problem.teams, problem.assignments
    firm_capped = {cap.firm_id for cap in problem.firm_caps}
    capped_cells = {(c.institution_id, c.period, c.level) for c in problem.capacities}
    most_hours: dict[str, float] = {}
    for a in jobs:
        most_hours[a.period] = max(most_hours.get(a.period, 0.0), float(a.supervision_hours))
    hours_bind = {(c.institution_id, c.period, c.level) for c in problem.capacities
                  if c.teams * most_hours.get(c.period, 0.0) > c.supervision_hours + 1e-9}
    order = np.lexsort((elig.team_rank, rows.team_row))
    by_row_starts = np.searchsorted(rows.team_row[order], np.arange(rows.n_team_rows + 1))
    job_order = np.argsort(elig.assignment, kind="stable")
    job_starts = np.searchsorted(elig.assignment[job_order], np.arange(len(jobs) + 1))
    out: list[tuple[float, Any, int]] = []
    firm_ranks: dict[int, Any] = {}
    for i in np.flatnonzero(elig.team_rank > 0).tolist():
        t, a = teams[int(elig.team[i])], jobs[int(elig.assignment[i])]
        f_rank = firm_rank(a, t)
        if f_rank is None or a.max_teams < 1:
            continue
        cell = (t.institution_id, a.period, t.level)
        if a.firm_id in firm_capped or (a.supervision_hours > 0 and cell in hours_bind):
            continue  # a limit may keep the pair at no cost in these terms
        r = int(rows.team_row[i])
        mine = order[by_row_starts[r]:by_row_starts[r + 1]]
        ways = mine[(elig.team_rank[mine] > 0) & (elig.team_rank[mine] <= elig.team_rank[i])]
        best = float(rc[ways].min())
        terms = [ways]
        team_term = -1
        if cell in capped_cells:
            free = float(y[r])
            if free < best:
                best = free
            team_term = r
        j = int(elig.assignment[i])
        if j not in firm_ranks:
            at = job_order[job_starts[j]:job_starts[j + 1]]
            ranks = np.array([_rank(firm_rank(a, teams[int(k)])) for k in elig.team[at].tolist()], dtype=np.int64)
            firm_ranks[j] = (at, ranks)
        at, ranks = firm_ranks[j]
        good = at[ranks <= f_rank]
        if len(good) >= a.max_teams:
            full = float(np.sort(rc[good])[:a.max_teams].sum())
            if full < best:
                best = full
            terms.append(good)
        if best > LEAST_BOUND:
            out.append((best, np.unique(np.concatenate(terms)), team_term))
    return out


def _rank(r: int | None) -> int:
    return 1 << 30 if r is None else r
