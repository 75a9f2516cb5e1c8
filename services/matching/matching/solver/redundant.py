"""Rows that cannot bind: found before a round's path is chosen, and left out of the model solved.

A row is redundant when every solution of the other rows kept (with every column in [0, 1], as
``highs.pass_model`` bounds them) meets it: dropping it changes neither the feasible matchings nor,
at any stage of a policy, the optimum. The model's hash and the check of a matching
(``ArrayModel.holds``) keep every row; only the model handed to HiGHS loses the redundant ones (in
``stages``, when a side row is among them: network rows alone change no path). When
the rows left are all network rows, the round takes the network path (``network.is_network``): the
supervision hours the registrations always carry no longer send every real round to the side path
(issue 20).

The proof, one family at a time (``redundant_rows``); each uses only rows that are never dropped or
are themselves implied by rows never dropped, so no row is dropped on the strength of another
dropped row's absence:

- ``institution_capacity`` (sum of a cell's pairs <= teams): each pair lies in exactly one
  ``team_at_most_one`` row (a team's one assignment per period, coefficient 1, bound 1). The row's
  sum is at most the number of distinct team rows among its pairs, since each such row lets at most
  1 through (also in the LP relaxation: the sum over a team row's pairs is at most 1). When that
  number is within the bound, the row is redundant.
- ``supervision_hours`` (sum of hours x pair <= registered hours): its pairs are grouped by team
  row; a group contributes at most its largest positive hours (its pairs sum to at most 1, each
  weight at most the largest). When one ``institution_capacity`` row holds every pair of the hours
  row, at most ``k`` (its bound) groups are used: the sum is at most the ``k`` largest group maxima
  (a laminar matroid: the greedy choice is the maximum over its polytope, so it bounds the LP too).
  The institution row used may itself be dropped: it is then implied by the team rows, so the bound
  still holds. Where the pairs meet several institution rows (two capacities naming one cell) the
  ``k`` is not used (a weaker, still sound bound).
- ``firm_cap`` (sum of a firm's pairs <= cap): each pair lies in exactly one ``assignment_max_teams``
  row, ``sum of the assignment's pairs - max_teams x open <= 0`` with ``open`` in [0, 1]: the
  assignment's pairs sum to at most ``max_teams`` (upper + the largest the other columns can give).
  A group contributes at most min(that, its number of pairs); when the sum over the row's
  assignments is within the cap, the row is redundant.
In each case a row whose lower bound could bind (above the least its pairs can sum to: 0 for
non-negative weights) is kept. tests/unit/test_redundant_rows.py solves random rounds with and
without the rows against the plain path and checks the path chosen.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..domain.model import Problem
from .arrays import ArrayModel, Eligibility

# Families whose rows may be dropped here; every other row is kept as it is.
DROPPABLE = ("institution_capacity", "supervision_hours", "firm_cap")
# Those of them that are side rows (not of ``network.is_network``'s families).
SIDE_DROPPABLE = ("supervision_hours",)
_TOLERANCE = 1e-9


def _blocks(model: ArrayModel) -> dict[str, list[slice]]:
    """Each family's entries, as slices of the model's triplets (a block is one family's rows)."""
    out: dict[str, list[slice]] = {}
    end = 0
    for n in model.blocks:
        if n:
            out.setdefault(model.group[int(model.row[end])], []).append(slice(end, end + n))
        end += n
    return out


def _entries(model: ArrayModel, parts: list[slice]) -> tuple[Any, Any, Any]:
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    return (np.concatenate([model.row[s] for s in parts]).astype(np.int64),
            np.concatenate([model.col[s] for s in parts]).astype(np.int64),
            np.concatenate([model.coef[s] for s in parts]))


def _row_of_pair(model: ArrayModel, parts: list[slice]) -> Any:
    """The family's row of each pair (coefficient 1), -1 for none; None when a pair is in two of its
    rows or with another coefficient (then the family does not partition the pairs as assumed)."""
    row, col, coef = _entries(model, parts)
    on_pair = col < model.n_pairs
    if not np.all(coef[on_pair] == 1.0):
        return None
    of = np.full(model.n_pairs, -1, dtype=np.int64)
    of[col[on_pair]] = row[on_pair]
    if np.count_nonzero(of >= 0) != np.count_nonzero(on_pair):
        return None
    return of


def _largest(row: Any, group: Any, weight: Any, per_group: Any, per_row: Any, n_rows: int) -> Any:
    """Per row, the largest sum of ``weight`` over its entries taking at most ``per_group`` (given per
    entry, the same for the entries of one group) entries of each (row, group) and at most
    ``per_row[row]`` in all, only positive weights: the greedy choice, largest first (the groups and
    the row form a laminar family of limits, on whose polytope the greedy choice is the maximum)."""
    keep = weight > 0
    row, group, weight, per_group = row[keep], group[keep], weight[keep], per_group[keep]
    if not len(row):
        return np.zeros(n_rows)
    order = np.lexsort((-weight, group, row))
    row, group, weight, cap = row[order], group[order], weight[order], per_group[order]
    new = np.r_[True, (row[1:] != row[:-1]) | (group[1:] != group[:-1])]
    starts = np.flatnonzero(new)
    rank = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
    taken = rank < np.floor(cap + _TOLERANCE)
    row, weight = row[taken], weight[taken]
    order = np.lexsort((-weight, row))
    row, weight = row[order], weight[order]
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    rank = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
    taken = rank < np.floor(per_row[row] + _TOLERANCE)
    return np.bincount(row[taken], weights=weight[taken], minlength=n_rows)


def _most(row: Any, team: Any, coef: Any, upper: Any, per_row: Any, n_rows: int) -> Any:
    """``_largest`` with the entries grouped by their team row (``team``, bounded by ``upper``). Where
    each team row's entries lie in one row and every team row's bound is at most 1 (a team's one
    assignment per period within one cell, as the domain builds them), a team row adds at most its
    largest positive coefficient: reduced to one entry per team row without sorting the entries."""
    owner = np.full(n_rows, -1, dtype=np.int64)
    owner[team] = row
    used = np.flatnonzero(owner >= 0)
    if not np.all(owner[team] == row) or not np.all(upper[used] <= 1.0):
        return _largest(row, team, coef, upper[team], per_row, n_rows)
    best = np.zeros(n_rows)
    np.maximum.at(best, team, coef)
    if np.all(np.isinf(per_row[owner[used]])):
        return np.bincount(owner[used], weights=best[used], minlength=n_rows)
    return _largest(owner[used], used, best[used], np.ones(len(used)), per_row, n_rows)


def redundant_rows(model: ArrayModel) -> Any:
    """A mask of the model's rows that cannot bind (see the module's docstring for each proof)."""
    drop = np.zeros(model.n_rows, dtype=np.bool_)
    blocks = _blocks(model)
    if not any(blocks.get(name) for name in DROPPABLE):
        return drop
    upper, lower = model.row_upper, model.row_lower
    team_parts = blocks.get("team_at_most_one", [])
    team_row = _row_of_pair(model, team_parts)
    if team_row is not None and not all(np.all(model.col[s] < model.n_pairs) for s in team_parts):
        team_row = None  # a team row with another column: its bound is not on its pairs alone
    unlimited = np.full(model.n_rows, np.inf)

    inst_row = None
    if team_row is not None and blocks.get("institution_capacity"):
        row, col, coef = _entries(model, blocks["institution_capacity"])
        if np.all(col < model.n_pairs) and np.all(coef == 1.0) and np.all(team_row[col] >= 0):
            most = _most(row, team_row[col], coef, upper, unlimited, model.n_rows)
            rows = np.flatnonzero(np.bincount(row, minlength=model.n_rows))
            drop[rows] = (most[rows] <= upper[rows] + _TOLERANCE) & (lower[rows] <= 0)
            inst_row = _row_of_pair(model, blocks["institution_capacity"])

    if team_row is not None and blocks.get("supervision_hours"):
        row, col, coef = _entries(model, blocks["supervision_hours"])
        if np.all(col < model.n_pairs) and np.all(team_row[col] >= 0):
            per_row = unlimited.copy()
            rows = np.flatnonzero(np.bincount(row, minlength=model.n_rows))
            if inst_row is not None:  # one institution row holding every pair of the hours row: its bound
                cover = inst_row[col]
                first = np.full(model.n_rows, -2, dtype=np.int64)
                first[row] = cover  # one of the row's cover rows: all must be it
                differs = np.bincount(row, weights=cover != first[row], minlength=model.n_rows) > 0
                held = rows[~differs[rows] & (first[rows] >= 0)]
                per_row[held] = upper[first[held]]
            most = _most(row, team_row[col], coef, upper, per_row, model.n_rows)
            least = np.bincount(row, weights=np.minimum(coef, 0.0), minlength=model.n_rows)
            drop[rows] = (most[rows] <= upper[rows] + _TOLERANCE) & (lower[rows] <= least[rows] + _TOLERANCE)

    if blocks.get("firm_cap") and blocks.get("assignment_max_teams"):
        max_row = _row_of_pair(model, blocks["assignment_max_teams"])
        row, col, coef = _entries(model, blocks["firm_cap"])
        if max_row is not None and np.all(col < model.n_pairs) and np.all(coef == 1.0) and np.all(max_row[col] >= 0):
            m_row, m_col, m_coef = _entries(model, blocks["assignment_max_teams"])
            other = m_col >= model.n_pairs  # open (and any column not a pair), each in [0, 1]
            most_pairs = upper + np.bincount(m_row[other], weights=np.maximum(-m_coef[other], 0.0),
                                             minlength=model.n_rows)
            most = _largest(row, max_row[col], coef, most_pairs[max_row[col]], unlimited, model.n_rows)
            rows = np.unique(row)
            drop[rows] = (most[rows] <= upper[rows] + _TOLERANCE) & (lower[rows] <= 0)
    return drop


def without_rows(model: ArrayModel, drop: Any) -> ArrayModel:
    """The model with the rows in ``drop`` left out (rows renumbered, families' blocks kept in order);
    the model itself when none is dropped."""
    if not drop.any():
        return model
    keep_entry = ~drop[model.row]
    renumber = (np.cumsum(~drop) - 1).astype(model.row.dtype)
    ends = np.cumsum(model.blocks)
    blocks = [int(np.count_nonzero(keep_entry[e - n:e])) for n, e in zip(model.blocks, ends.tolist(), strict=True)]
    keep_row = ~drop
    return replace(model, row=renumber[model.row[keep_entry]], col=model.col[keep_entry],
                   coef=model.coef[keep_entry], row_lower=model.row_lower[keep_row],
                   row_upper=model.row_upper[keep_row],
                   group=[g for g, k in zip(model.group, keep_row.tolist(), strict=True) if k], blocks=blocks)


def hours_cannot_bind(problem: Problem, elig: Eligibility) -> bool:
    """Whether every supervision-hours row of the round is redundant by the proof above (a team's one
    assignment per period, and the cell's capacity when one capacity names the cell), read from the
    round and its eligible pairs without building the model (``served.applies`` asks before the split
    round's model is built). True when no row has hours."""
    teams, assignments = problem.teams, problem.assignments
    need = np.array([float(a.supervision_hours) for a in assignments], dtype=np.float64)
    if not problem.capacities or not len(elig) or not need[elig.assignment].any():
        return True
    codes: dict[tuple[str, str, str], int] = {}
    t_inst = np.array([codes.setdefault(("i", t.institution_id, ""), len(codes)) for t in teams], dtype=np.int64)
    t_level = np.array([codes.setdefault(("l", t.level, ""), len(codes)) for t in teams], dtype=np.int64)
    a_period = np.array([codes.setdefault(("p", a.period, ""), len(codes)) for a in assignments], dtype=np.int64)
    n = len(codes)
    ti, ai = elig.team.astype(np.int64), elig.assignment.astype(np.int64)
    hours = need[ai]
    timed = hours != 0
    cell = ((t_inst[ti] * n + a_period[ai]) * n + t_level[ti])[timed]
    named: dict[int, list[int]] = {}
    for k, c in enumerate(problem.capacities):
        parts = [codes.get(("i", c.institution_id, "")), codes.get(("p", c.period, "")), codes.get(("l", c.level, ""))]
        if None not in parts:
            i, p, lv = (int(x) for x in parts if x is not None)
            named.setdefault((i * n + p) * n + lv, []).append(k)
    order = np.argsort(cell, kind="stable")
    cell, team, weight = cell[order], ti[timed][order], hours[timed][order]
    for code, ks in named.items():
        lo, hi = np.searchsorted(cell, code, "left"), np.searchsorted(cell, code, "right")
        if lo == hi:
            continue
        most = _largest(np.zeros(hi - lo, dtype=np.int64), team[lo:hi], weight[lo:hi], np.ones(hi - lo),
                        np.array([float(problem.capacities[ks[0]].teams) if len(ks) == 1 else np.inf]), 1)
        if any(most[0] > problem.capacities[k].supervision_hours + _TOLERANCE for k in ks):
            return False
    return True
