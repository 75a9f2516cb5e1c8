"""A tighter formulation of the same matchings, for the bound and the MIPs of the side path.

The plain rows let the LP relaxation staff an assignment that needs two teams by halves: open it half,
give it one team (or two half teams), and spend the other halves elsewhere; with a firm's cap on top,
a firm whose cap leaves room for one team only can still half-open its two-team assignment. On a
national round that puts the LP bound about half a percent above every matching (issue 7). Two
families of rows close most of it; neither removes a matching of the plain model:

1. *Firm patterns*: for a firm with a cap and an assignment that needs two or more teams, every way its
   assignments can be staffed within the cap (each with no team or between its minimum and maximum)
   is one more 0/1 column, one of them chosen; each assignment's team count and its open/closed
   decision are those of the chosen pattern. A matching of the plain model uses exactly one pattern,
   so it is a solution here with the same objective; the LP over the patterns is the convex hull of
   the firm's feasible counts.
2. *A pair only if its assignment is open* (``x[t, a] <= opened[a]``), for assignments that need two or
   more teams: added to the LP where its optimum breaks it, and to the MIPs for every pair they hold.

Firms whose patterns would number more than ``PATTERNS_AT_MOST`` keep their plain cap row only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..domain.model import Problem
from .arrays import ArrayModel

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

PATTERNS_AT_MOST = 512


@dataclass
class Tighter:
    """Pattern columns numbered from ``n_base`` (the plain model's columns) to ``n_cols``; their rows
    as triplets numbered from 0; ``firms``: per firm with patterns, its assignments' positions, the
    patterns (one row of team counts per pattern) and the first pattern's column; ``needs_two``: the
    pairs (column positions) whose assignment needs two or more teams."""

    n_base: int
    n_cols: int
    row: Ints
    col: Ints
    coef: Floats
    lower: Floats
    upper: Floats
    firms: list[tuple[Ints, Ints, int]]
    needs_two: Ints
    assignment_of: Ints  # each pair's assignment
    n_assignments: int

    @property
    def n_rows(self) -> int:
        return len(self.lower)

    def extend(self, values: Any) -> Floats:
        """The plain model's column values with each firm's pattern column set: the one whose counts
        are the matching's (all zero where none is, which no solution of the tighter model has)."""
        out = np.zeros(self.n_cols)
        out[:self.n_base] = values[:self.n_base]
        if self.firms:
            n_p = len(self.assignment_of)
            counts = np.rint(np.bincount(self.assignment_of, weights=out[:n_p], minlength=self.n_assignments))
            for js, pattern, first in self.firms:
                hit = np.flatnonzero((pattern == counts[js].astype(np.int64)).all(axis=1))
                if len(hit):
                    out[first + int(hit[0])] = 1.0
        return out


def _patterns(minimum: list[int], maximum: list[int], cap: int) -> list[tuple[int, ...]] | None:
    """Every vector of team counts, each 0 or within [minimum, maximum], summing to at most ``cap``;
    None when there would be more than PATTERNS_AT_MOST."""
    found: list[tuple[int, ...]] = []

    def walk(k: int, left: int, prefix: tuple[int, ...]) -> bool:
        if k == len(minimum):
            found.append(prefix)
            return len(found) <= PATTERNS_AT_MOST
        for n in (0, *range(max(1, minimum[k]), min(maximum[k], left) + 1)):
            if not walk(k + 1, left - n, (*prefix, n)):
                return False
        return True

    return found if walk(0, cap, ()) else None


def tighten(problem: Problem, model: ArrayModel) -> Tighter:
    n_p, n_a = model.n_pairs, len(problem.assignments)
    assignment_of = model.eligibility.assignment
    minimum = np.array([a.min_teams for a in problem.assignments], dtype=np.int64)
    caps: dict[str, int] = {}
    for cap in problem.firm_caps:
        caps[cap.firm_id] = min(cap.max_teams, caps.get(cap.firm_id, cap.max_teams))
    members: dict[str, list[int]] = {}
    for j, a in enumerate(problem.assignments):
        if a.firm_id in caps:
            members.setdefault(a.firm_id, []).append(j)
    pairs_of = np.argsort(assignment_of, kind="stable")
    starts = np.zeros(n_a + 1, dtype=np.int64)
    np.cumsum(np.bincount(assignment_of, minlength=n_a), out=starts[1:])

    rows: list[Ints] = []
    cols: list[Ints] = []
    coefs: list[Floats] = []
    lower: list[float] = []
    upper: list[float] = []
    firms: list[tuple[Ints, Ints, int]] = []
    next_col, next_row = model.n_cols, 0
    for firm, js in members.items():
        assignments = [problem.assignments[j] for j in js]
        if all(a.min_teams <= 1 for a in assignments) or any(a.min_teams < 1 for a in assignments):
            continue  # without a two-team assignment the cap row is already tight
        found = _patterns([a.min_teams for a in assignments], [a.max_teams for a in assignments], caps[firm])
        if found is None:
            continue
        pattern = np.array(found, dtype=np.int64)
        lam = next_col + np.arange(len(pattern), dtype=np.int64)
        next_col += len(pattern)
        # one pattern
        rows.append(np.full(len(lam), next_row))
        cols.append(lam)
        coefs.append(np.ones(len(lam)))
        lower.append(1.0)
        upper.append(1.0)
        next_row += 1
        for k, j in enumerate(js):
            own = pairs_of[starts[j]:starts[j + 1]]
            # the assignment's teams are its pattern's count
            rows.append(np.full(len(own) + len(lam), next_row))
            cols.append(np.concatenate([own, lam]))
            coefs.append(np.concatenate([np.ones(len(own)), -pattern[:, k].astype(np.float64)]))
            lower.append(0.0)
            upper.append(0.0)
            next_row += 1
            # it is open where its pattern staffs it
            rows.append(np.full(1 + len(lam), next_row))
            cols.append(np.concatenate([[n_p + j], lam]))
            coefs.append(np.concatenate([[1.0], -(pattern[:, k] > 0).astype(np.float64)]))
            lower.append(0.0)
            upper.append(0.0)
            next_row += 1
        firms.append((np.array(js, dtype=np.int64), pattern, int(lam[0])))

    def joined(parts: list[Any], dtype: Any) -> Any:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return Tighter(model.n_cols, next_col, joined(rows, np.int64), joined(cols, np.int64),
                   joined(coefs, np.float64), np.array(lower), np.array(upper), firms,
                   np.flatnonzero(minimum[assignment_of] >= 2).astype(np.int64), assignment_of, n_a)


def pair_rows(pairs: Ints, opened_col: Ints, first_row: int) -> tuple[Ints, Ints, Floats]:
    """Rows ``x[pair] - opened[assignment] <= 0`` for ``pairs`` (columns), numbered from ``first_row``;
    ``opened_col``: each pair's open/closed column."""
    k = len(pairs)
    numbers = first_row + np.arange(k, dtype=np.int64)
    return (np.concatenate([numbers, numbers]), np.concatenate([pairs, opened_col]).astype(np.int64),
            np.concatenate([np.ones(k), -np.ones(k)]))
