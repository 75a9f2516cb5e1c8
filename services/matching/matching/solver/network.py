"""The network path: a round whose rules are two laminar families over the pairs (``is_network``) has
an integral LP optimum, so each stage is an LP over the pairs only (``network_relaxation``), solved by
pricing: it starts from each team's and assignment's best few pairs and adds pairs whose reduced cost is
positive until none is left (``Columns``). A later stage of a lexicographic policy keeps the earlier
stage's optimal face by bounds only (``Columns.hold_face``), so its vertex is integral too. A one-stage
round whose periods share no row is split by period and its parts solved side by side
(``split_network``). ``stages.solve_stages`` drives it, checks the vertex against every row of the full
model and falls back to the MIP when it is not integral."""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..domain.model import Problem
from .arrays import ArrayModel
from .highs import Lp, pass_model


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


def network_relaxation(model: ArrayModel) -> Lp:
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
    return Lp(model.n_pairs, renumber[model.row[keep]], model.col[keep], model.coef[keep],
               model.row_lower[~drop_row], upper[~drop_row], False, blocks if sum(blocks) == keep.sum() else None)


def network_pairs(model: ArrayModel) -> Lp | None:
    """``network_relaxation`` with its columns' rows as lines (``PairRows``), read family by family
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
    pairs = PairRows(np.stack(lines) if lines else np.zeros((0, model.n_pairs), dtype=narrow), None, n_rows)
    return Lp(model.n_pairs, empty, empty, np.zeros(0), model.row_lower[~drop_row], upper[~drop_row], False,
               pairs=pairs)


# Pricing: the network LP starts from each team's and each assignment's best few pairs; a pair left out
# whose reduced cost (fit minus the duals of its rows) is positive enters, the best few per team per round,
# until none is left, so the LP optimum is the full LP's (HiGHS's own dual tolerance).
START_PAIRS = 3
ENTERING_PAIRS = 3
PRICE_TOLERANCE = 1e-7
# A later stage of a lexicographic policy keeps the pairs and rows whose reduced cost or dual is further
# from zero than this as the earlier stage's optimum has them (see Columns.hold_face): the costs of
# every stage but the last are counts (0/1 per pair), so these are integral or half-integral.
FACE_TOLERANCE = 1e-6


def floored_pairs(pairs: PairRows, lower: Any) -> Any:
    """The pairs in a row with a positive lower bound (a pin): the pricing LP starts with all of them,
    else its first LP may be infeasible where the full one is not (a pin no start pair covers)."""
    import numpy as np

    floor = np.append(np.asarray(lower) > 0, False)  # the padding row has none
    wanted = np.zeros(len(pairs), dtype=np.bool_)
    for rows in pairs.row:
        wanted |= floor[rows]
    return wanted


def best_per(group: Any, score: Any, k: int, among: Any = None) -> Any:
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
class PairRows:
    """A network LP's columns (pairs) by their rows, as fixed-width matrices, one line per slot:
    ``row[k, j]`` the k-th row of column j, padded with ``n_rows`` (a row that is not there, dual 0), and
    ``coef[k, j]`` its coefficient (0 in the padding; None: every coefficient is 1). Every pair has a few
    rows only (its team's, its assignment's, a capacity, a cap), so this is small, and the pairs of a
    part are a gather."""

    row: Any
    coef: Any
    n_rows: int

    @classmethod
    def of(cls, lp: Lp) -> PairRows:
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

    def __getitem__(self, cols: Any) -> PairRows:
        return PairRows(self.row[:, cols], None if self.coef is None else self.coef[:, cols], self.n_rows)

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


class Columns:
    """The pairs HiGHS holds, in the order they were added, with their entries from the full rows."""

    def __init__(self, highs: Any, pairs: PairRows) -> None:
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
        return best_per(teams, reduced, ENTERING_PAIRS, wanted)


# ---- a network stage split into independent parts (by period), their LPs solved in parallel ----

# From this many pairs a one-stage network model whose periods share no row is solved as one LP per
# part, each in its own thread (HiGHS releases the GIL while it solves), on at most SPLIT_THREADS cores.
SPLIT_FROM_PAIRS = 20_000
SPLIT_THREADS = 2
# Families whose rows hold pairs of one period only, by how build_arrays makes them: a team's one
# assignment per period, an assignment's own rows, an institution's capacity per period and level, a pin.
PER_PERIOD_GROUPS = {"team_at_most_one", "assignment_max_teams", "assignment_min_teams", "institution_capacity",
                     "pins"}


def period_parts(problem: Problem, model: ArrayModel, lp: Lp) -> list[Any] | None:
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
        pairs = PairRows.of(lp)
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


def priced_lp(lp: Lp, pairs: PairRows, costs: Any, teams: Any, assignments: Any, seed: int, deadline: float
               ) -> tuple[Any, float, float, Any]:
    """The network LP over ``pairs`` (of ``lp``'s rows) by pricing (as the one-instance path: each team's and
    assignment's best few pairs, then pairs with a positive reduced cost), in a HiGHS of its own; the
    pairs' values at its optimum (None if it stopped otherwise), the seconds spent handing it over,
    the seconds HiGHS ran and the row duals at its optimum (0 on rows none of ``pairs`` is in)."""
    import highspy
    import numpy as np

    clock = time.perf_counter
    mark = clock()
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("random_seed", seed)
    highs.setOptionValue("presolve", "off")
    pass_model(highs, Lp(0, lp.row[:0], lp.col[:0], lp.coef[:0], lp.lower, lp.upper, False), costs)
    columns = Columns(highs, pairs)
    start = np.zeros(len(pairs), dtype=np.bool_)
    start[best_per(teams, costs, START_PAIRS)] = True
    start[best_per(assignments, costs, START_PAIRS)] = True
    start |= floored_pairs(pairs, lp.lower)
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
        return None, handoff, ran, None
    mine = np.zeros(pairs.n_rows + 1, dtype=np.bool_)
    for rows in pairs.row:
        mine[rows] = True
    solution = highs.getSolution()
    return columns.values(np.asarray(solution.col_value)), handoff, ran, \
        np.where(mine[:-1], np.asarray(solution.row_dual), 0.0)


def split_network(problem: Problem, model: ArrayModel, lp: Lp, costs: Any, seed: int, deadline: float,
                   timings: dict[str, float], first_done: Callable[[], None] = lambda: None,
                   duals: list[Any] | None = None) -> Any:
    """The matching (0/1 per pair) of a one-stage network model solved part by part in parallel; None
    when it does not split, a part stops early or its LP vertex is not integral (the caller then solves
    it whole). ``first_done`` is called when the first part has finished (a core is free). ``duals``: the
    LP's row duals (each part's on its rows) are appended to it."""
    import numpy as np

    parts = period_parts(problem, model, lp)
    if parts is None:
        return None
    elig = model.eligibility
    mark = time.perf_counter()
    pairs = PairRows.of(lp)
    prepared = time.perf_counter() - mark
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        futures = []
        for cols in parts:
            mark = time.perf_counter()
            part = (lp, pairs[cols], costs[cols], elig.team[cols], elig.assignment[cols], seed, deadline)
            prepared += time.perf_counter() - mark
            futures.append(pool.submit(priced_lp, *part))
        wait(futures, return_when=FIRST_COMPLETED)
        first_done()
        results = [f.result() for f in futures]
    # the parts ran side by side: the longest HiGHS run is the solve, the longest hand-off (after the
    # parts' rows were gathered here) the hand-off; the rest of the wall time (pricing between runs,
    # waiting) is left to the caller's "other"
    timings["handoff"] = timings.get("handoff", 0.0) + prepared + max(h for _, h, _, _ in results)
    timings["solve"] = timings.get("solve", 0.0) + max(r for _, _, r, _ in results)
    x = np.zeros(model.n_pairs)
    for cols, (values, _, _, _) in zip(parts, results, strict=True):
        if values is None:
            return None
        x[cols] = values
    if duals is not None:
        duals.append(np.sum([y for _, _, _, y in results], axis=0))
    rounded = np.round(x)
    if np.abs(x - rounded).max(initial=0.0) > 1e-6:
        return None
    return rounded



# ---- the network LP's duals, for the stable policy's bound (``solver.stable_bound``) ----

# The families of the LP ``stable_bound`` solves: where a max_fit round's network LP has these rows only (no
# firm cap, no pin), it is that LP, and its duals are taken from the max_fit solve instead of solving it again.
BOUND_GROUPS = {"team_at_most_one", "assignment_max_teams", "institution_capacity"}


@dataclass(frozen=True)
class LpDuals:
    """The network LP's duals y >= 0 as a solve found them, per pair: ``team`` the dual of its team row (the
    team in the assignment's period), ``reduced`` its rows' duals less its fit; ``dual`` the LP's dual
    bound D = y.b + the sum of the positive ``-reduced`` (the pairs' bounds of 1), at least every matching's fit."""

    team: Any
    reduced: Any
    dual: float


def lp_duals_of(lp: Lp, groups: Any, row_dual: Any, fit: Any) -> LpDuals | None:
    """``LpDuals`` of a network LP (``network_pairs`` or ``network_relaxation``) at row duals ``row_dual`` (each row's
    family in ``groups``); None unless its rows are of BOUND_GROUPS only and bounded above only."""
    import numpy as np

    if not set(np.asarray(groups).tolist()) <= BOUND_GROUPS or np.any(np.asarray(lp.lower) > -np.inf):
        return None
    pairs = PairRows.of(lp)
    y = np.maximum(np.asarray(row_dual, dtype=np.float64), 0.0)  # a maximised row's dual, >= 0 at an optimum
    reduced = -pairs.reduced(fit, y)
    padded = np.append(y, 0.0)
    is_team = np.append(np.asarray(groups) == "team_at_most_one", False)
    team = np.zeros(len(pairs))
    for rows in pairs.row:
        team += np.where(is_team[rows], padded[rows], 0.0)
    return LpDuals(team, reduced, float(y @ np.asarray(lp.upper) + np.maximum(-reduced, 0.0).sum()))
