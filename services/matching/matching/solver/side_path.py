"""The side path: a stage of a round with side constraints (minimum team counts above one, supervision
hours, fairness floors, "served" counted by open/closed decisions) solved to the gap wanted on the
tighter model of ``solver.tighter``: the LP bound (with "a pair only if open" cuts), a MIP over the
pairs near the LP optimum, then reduced-cost fixing against the matching found (``side_stage``)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from .arrays import ArrayModel
from .common import LEVEL_TOLERANCE, Progress, finite
from .highs import Lp, pass_model, set_start, watch_highs
from .tighter import Tighter, pair_rows

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
class SideStage:
    values: Any  # the full model's column values, None when no matching was found
    result: str  # optimal, feasible (stopped early), infeasible, not_solved
    gap: float | None
    bound: float | None = None  # the LP bound over all pairs (every matching of the stage is worth at most that)


def with_levels(model: ArrayModel, levels: list[tuple[Any, float]]) -> Lp:
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
    return Lp(model.n_cols, np.concatenate(rows), np.concatenate(cols), np.concatenate(coefs),
               np.concatenate(lower), np.concatenate(upper), True)


def subset(lp: Lp, keep: Any) -> tuple[Lp, Any]:
    """The model over the columns in ``keep`` (sorted positions), and those positions."""
    import numpy as np

    new = np.full(lp.n_cols, -1, dtype=np.int64)
    new[keep] = np.arange(len(keep))
    on = new[lp.col] >= 0
    return Lp(len(keep), lp.row[on], new[lp.col[on]], lp.coef[on], lp.lower, lp.upper, True), keep


def with_rows(lp: Lp, row: Any, col: Any, coef: Any, lower: Any, upper: Any) -> Lp:
    import numpy as np

    return Lp(lp.n_cols, np.concatenate([lp.row, row + len(lp.lower)]), np.concatenate([lp.col, col]),
               np.concatenate([lp.coef, coef]), np.concatenate([lp.lower, lower]),
               np.concatenate([lp.upper, upper]), lp.integer)


def restricted(strong: Lp, keep: Any, tight: Tighter, has_row: Any) -> tuple[Lp, Any]:
    """The tighter model over the columns in ``keep``, with "a pair only if its assignment is open" for
    every kept pair of a two-team assignment (the LP holds the rows it needed already)."""
    import numpy as np

    sub, held = subset(strong, keep)
    position = np.full(strong.n_cols, -1, dtype=np.int64)
    position[keep] = np.arange(len(keep))
    pairs = tight.needs_two[~has_row[tight.needs_two]]
    pairs = pairs[position[pairs] >= 0]
    r, c, v = pair_rows(position[pairs], position[opened_columns(tight, pairs)], 0)
    return with_rows(sub, r, c, v, np.full(len(pairs), -np.inf), np.zeros(len(pairs))), held


def opened_columns(tight: Tighter, pairs: Any) -> Any:
    """The open/closed column of each pair's assignment."""
    return len(tight.assignment_of) + tight.assignment_of[pairs]


def side_stage(model: ArrayModel, tight: Tighter, costs: Any, levels: list[tuple[Any, float]], start: Any,
                deadline: float, gap_wanted: float, new_highs: Callable[[], Any], run: Callable[..., Any],
                handoff: Callable[[float], None], progress: Progress | None) -> SideStage:
    """One stage of a model with side constraints, solved to ``gap_wanted`` of the optimum, on the
    tighter model of ``solver.tighter`` (the same matchings, a bound near them):

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
    lp = with_levels(model, levels)
    strong = Lp(tight.n_cols, np.concatenate([lp.row, tight.row + len(lp.lower)]),
                 np.concatenate([lp.col, tight.col]), np.concatenate([lp.coef, tight.coef]),
                 np.concatenate([lp.lower, tight.lower]), np.concatenate([lp.upper, tight.upper]), True)
    costs = np.concatenate([costs[:n_base], np.zeros(tight.n_cols - n_base)])
    begin: Any = None if start is None else tight.extend(start)
    has_row = np.zeros(tight.n_cols, dtype=np.bool_)

    def plain(values: Any) -> Any:
        return values if values is None else values[:n_base]

    began = mark = clock()
    if PRICE_SIDE_LP and not len(tight.needs_two):  # no "pair only if open" row to add: by pricing (``priced_lp``)
        result, bound_lp, relaxed_lp, row_dual_lp = priced_lp(strong, costs, n_p, model, new_highs, run, handoff)
        if result == optimal:
            return _after_lp(model, tight, strong, costs, levels, begin, deadline, gap_wanted, new_highs, run,
                             handoff, progress, has_row, bound_lp, relaxed_lp, row_dual_lp, began)
        # infeasible over the pairs held (a floor on assignments served, whose pairs were left out, say) or
        # stopped: the LP over every pair decides
    highs = new_highs()
    pass_model(highs, Lp(strong.n_cols, strong.row, strong.col, strong.coef, strong.lower, strong.upper, False), costs)
    handoff(clock() - mark)
    result = run(highs)
    for _ in range(CUT_ROUNDS):
        if result != optimal:
            break
        relaxed = np.asarray(highs.getSolution().col_value)
        pairs = tight.needs_two[relaxed[tight.needs_two] > relaxed[opened_columns(tight, tight.needs_two)] + 1e-7]
        if not len(pairs):
            break
        r, c, v = pair_rows(pairs, opened_columns(tight, pairs), 0)
        k = len(pairs)
        highs.addRows(k, np.full(k, -highspy.kHighsInf), np.zeros(k), 2 * k,
                      np.arange(0, 2 * k, 2, dtype=np.int32),
                      np.column_stack([pairs, opened_columns(tight, pairs)]).reshape(-1).astype(np.int32),
                      np.tile([1.0, -1.0], k))
        strong = with_rows(strong, r, c, v, np.full(k, -np.inf), np.zeros(k))
        has_row[pairs] = True
        result = run(highs)
    if result in infeasible:
        return SideStage(None, "infeasible", None)
    if result != optimal:
        return SideStage(None, "not_solved", None)
    solution = highs.getSolution()
    return _after_lp(model, tight, strong, costs, levels, begin, deadline, gap_wanted, new_highs, run, handoff,
                     progress, has_row, float(highs.getInfo().objective_function_value),
                     np.asarray(solution.col_value), np.asarray(solution.row_dual), began)


def _after_lp(model: ArrayModel, tight: Tighter, strong: Lp, costs: Any, levels: list[tuple[Any, float]],
              begin: Any, deadline: float, gap_wanted: float, new_highs: Callable[[], Any], run: Callable[..., Any],
              handoff: Callable[[float], None], progress: Progress | None, has_row: Any, bound: float, relaxed: Any,
              row_dual: Any, began: float) -> SideStage:
    """Steps 2 and 3 of ``side_stage`` from the LP's optimum: its value ``bound``, column values ``relaxed``
    and row duals ``row_dual`` (over every column and row of ``strong``)."""
    import highspy
    import numpy as np

    clock = time.perf_counter
    infeasible = (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible)
    optimal = highspy.HighsModelStatus.kOptimal
    n_p, n_base = model.n_pairs, model.n_cols

    def plain(values: Any) -> Any:
        return values if values is None else values[:n_base]

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
    sub, held = restricted(strong, np.flatnonzero(near), tight, has_row)
    highs = new_highs()
    pass_model(highs, sub, costs[held])
    if progress is not None:
        watch_highs(highs, progress)
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
            set_start(highs, np.round(fixed_values))
        elif begin is not None:
            set_start(highs, begin[held])
        if fixed_values is not None and within(float(costs[held] @ np.round(fixed_values))):
            matching = np.zeros(strong.n_cols)
            matching[held] = np.round(fixed_values)
            return SideStage(plain(matching), "optimal", max(0.0, (bound - float(costs @ matching)) / scale), bound)
    elif begin is not None:
        set_start(highs, begin[held])
    result = run(highs, restricted_until)
    values: Any = None
    if highs.getInfo().primal_solution_status == 2:
        values = np.zeros(strong.n_cols)
        values[held] = np.round(np.asarray(highs.getSolution().col_value))
    if values is not None and within(float(costs @ values)):
        return SideStage(plain(values), "optimal", max(0.0, (bound - float(costs @ values)) / scale), bound)
    if clock() >= stop - 0.05:
        return SideStage(plain(values), "feasible" if values is not None else "not_solved",
                      None if values is None else (bound - float(costs @ values)) / scale, bound)

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
        return SideStage(plain(values), "feasible", (bound - float(costs @ values)) / scale, bound)
    sub, cols = restricted(strong, keep, tight, has_row)
    highs = new_highs()
    pass_model(highs, sub, costs[cols])
    if values is not None:
        set_start(highs, values[cols])
    elif begin is not None:
        set_start(highs, begin[cols])
    if progress is not None:
        watch_highs(highs, progress)
    handoff(clock() - mark)
    result = run(highs, stop)
    if highs.getInfo().primal_solution_status != 2:
        if values is None:
            return SideStage(None, "infeasible" if result in infeasible else "not_solved", None, bound)
        return SideStage(plain(values), "feasible", (bound - float(costs @ values)) / scale, bound)
    found = np.zeros(strong.n_cols)
    found[cols] = np.round(np.asarray(highs.getSolution().col_value))
    # the MIP's dual bound holds for the whole stage: a pair left out is in matchings worth less than ``values``
    dual = finite(highs.getInfo().mip_dual_bound)
    if dual is not None:
        bound = min(bound, max(dual, -math.inf if values is None else float(costs @ values)))
    if values is None or costs @ found >= costs @ values:
        values = found
    own = finite(highs.getInfo().mip_gap)
    gap = min(max(0.0, (bound - float(costs @ values)) / scale), math.inf if own is None else own)
    return SideStage(plain(values), "optimal" if result == optimal or gap <= gap_wanted else "feasible", gap,
                     max(bound, float(costs @ values)))




# The side stage's LP by pricing, where no "pair only if open" row is needed (no two-team assignment: a round
# whose side rows are supervision hours, say): it starts from each team's and assignment's best few pairs
# and adds the pairs whose reduced cost (over every row, the hours' included) is positive, until none is left.
# At 10,000 teams the LP over all 400,000 pairs took 15.6 s (load 8), most of the side stage.
PRICE_SIDE_LP = True  # False: the LP over every pair, as for rounds with two-team assignments
SIDE_START_PAIRS = 3
SIDE_ENTERING_PAIRS = 3
SIDE_PRICE_TOLERANCE = 1e-7


def priced_lp(strong: Lp, costs: Any, n_p: int, model: ArrayModel, new_highs: Callable[[], Any],
              run: Callable[..., Any], handoff: Callable[[float], None]) -> tuple[Any, float, Any, Any]:
    """The LP of ``strong`` (every column but the pairs held from the start) by pricing over the pairs:
    HiGHS's status, the optimum's value, the column values over every column (0 on pairs left out) and
    the row duals. At the end no pair left out prices in, so the optimum is the whole LP's."""
    import highspy
    import numpy as np

    from .network import best_per

    clock = time.perf_counter
    mark = clock()
    elig = model.eligibility
    order = np.argsort(strong.col, kind="stable")
    cols_sorted = strong.col[order]
    col_start = np.searchsorted(cols_sorted, np.arange(strong.n_cols + 1))
    rows_sorted, coefs_sorted = strong.row[order].astype(np.int32), strong.coef[order].astype(np.float64)
    held = np.zeros(strong.n_cols, dtype=np.bool_)
    held[n_p:] = True  # the open/closed decisions, placed teams and patterns: few, held from the start
    fit = costs[:n_p]
    held[best_per(elig.team, fit, SIDE_START_PAIRS)] = True
    held[best_per(elig.assignment, fit, SIDE_START_PAIRS)] = True
    floor = np.flatnonzero(np.asarray(strong.lower) > 0)  # rows with a floor (pins, floors): all their pairs
    if len(floor):
        with_floor = np.zeros(len(strong.lower), dtype=np.bool_)
        with_floor[floor] = True
        held[np.unique(strong.col[with_floor[strong.row] & (strong.col < n_p)])] = True
    highs = new_highs()
    highs.setOptionValue("presolve", "off")  # pricing re-solves from the last basis
    inf = highspy.kHighsInf
    n_rows = len(strong.lower)
    highs.changeObjectiveSense(highspy.ObjSense.kMaximize)
    highs.addRows(n_rows, np.clip(strong.lower, -inf, inf), np.clip(strong.upper, -inf, inf), 0,
                  np.zeros(n_rows, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
    in_highs = np.zeros(0, dtype=np.int64)

    def add(cols: Any) -> None:
        nonlocal in_highs
        lengths = col_start[cols + 1] - col_start[cols]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
        total = int(lengths.sum())
        take = np.repeat(col_start[cols] - starts, lengths) + np.arange(total)  # each column's entries in turn
        highs.addCols(len(cols), np.ascontiguousarray(costs[cols], dtype=np.float64), np.zeros(len(cols)),
                      np.ones(len(cols)), total, starts, rows_sorted[take], coefs_sorted[take])
        in_highs = np.concatenate([in_highs, cols])

    add(np.flatnonzero(held))
    handoff(clock() - mark)
    optimal = highspy.HighsModelStatus.kOptimal
    result = run(highs)
    while result == optimal:
        row_dual = np.asarray(highs.getSolution().row_dual)
        reduced = costs[:n_p] - np.bincount(strong.col, weights=strong.coef * row_dual[strong.row],
                                            minlength=strong.n_cols)[:n_p]
        wanted = ~held[:n_p] & (reduced > SIDE_PRICE_TOLERANCE)
        if not wanted.any():
            break
        entering = best_per(elig.team, reduced, SIDE_ENTERING_PAIRS, wanted)
        held[entering] = True
        mark = clock()
        add(entering)
        handoff(clock() - mark)
        result = run(highs)
    if result != optimal:
        return result, 0.0, None, None
    solution = highs.getSolution()
    values = np.zeros(strong.n_cols)
    values[in_highs] = np.asarray(solution.col_value)
    return result, float(highs.getInfo().objective_function_value), values, np.asarray(solution.row_dual)
