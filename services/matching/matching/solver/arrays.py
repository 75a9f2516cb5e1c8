"""The matching model as arrays: eligibility by vectorised joins, the constraint families of
domain/model.py written as (row, column, coefficient) triplets, and the whole model handed to HiGHS in
one call. The plain PuLP model (``pulp_model.build_model``) stays the definition; this module builds the
same rows over the same columns (tests compare them row by row, and the optima per policy stage).

Columns, in this order: x[pair] for each eligible pair sorted by (team_id, assignment_id), then
opened[assignment] in the problem's order, then placed[team] for the teams a fairness floor is about,
then (stable policy) the ``Blocks`` and ``AtLimit`` decisions in the order of
``domain.model.stability_columns``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Collection, Iterable

import numpy as np
import numpy.typing as npt

from ..domain.explain import EligibleByTeam
from ..domain.model import (
    BASE_FIT,
    DISTANCE_SCALE_KM,
    DISTANCE_WEIGHT,
    EXTRA_SKILL_WEIGHT,
    FIRM_PREFERENCE_FIRST,
    FIRM_PREFERENCE_STEP,
    MAX_EXTRA_SKILLS,
    NICE_TO_HAVE_WEIGHT,
    PRIORITY_WEIGHT,
    TEAM_PREFERENCE_FIRST,
    TEAM_PREFERENCE_STEP,
    Blocks,
    Grouped,
    Key,
    Opened,
    Pair,
    Placed,
    Problem,
    Row,
    floor_members,
    haversine_km,
    in_working_area,
    stability,
    stability_columns,
)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Positions = npt.NDArray[np.signedinteger[Any]]  # 32- or 64-bit positions of teams, assignments, pairs
INF = math.inf
# A computed distance this close to a travel limit is recomputed with the domain's own function, so
# the vectorised filter decides exactly as the plain rules do.
BOUNDARY_KM = 1e-6
# Distances (and preference ranks) come from a table over pairs of places (of codes) when it has at most
# this many cells; the skills test compares at most about this many cells with required skills at once.
TABLE_CELLS = 1_000_000
ABLE_CELLS = 4_000_000
CANDIDATES = 2_000_000  # (team, assignment) candidates tested for reach at once
ACTIVITY_ENTRIES = 1 << 20  # model entries summed into rows at once
REACH_CELLS = 50_000_000  # (team class, assignment of a bucket) cells looked up at once, else per pair


class _Vocabulary:
    """Strings to small integers, in order of first appearance."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        found = self.codes.get(value)
        if found is None:
            found = self.codes[value] = len(self.codes)
        return found

    @classmethod
    def of(cls, values: Iterable[str]) -> _Vocabulary:
        vocabulary = cls()
        vocabulary.codes = {v: i for i, v in enumerate(dict.fromkeys(values))}
        return vocabulary


def _masks(sets: list[frozenset[str]], skills: _Vocabulary, words: int) -> npt.NDArray[np.uint64]:
    """One bit mask (``words`` 64-bit words) per set, computed once per distinct set."""
    distinct: dict[frozenset[str], int] = {}
    which = np.array([distinct.setdefault(items, len(distinct)) for items in sets], dtype=np.int64)
    out = np.zeros((len(distinct), words), dtype=np.uint64)
    rows = np.array([i for i, items in enumerate(distinct) for _ in items], dtype=np.int64)
    bits = np.array([skills.codes[s] for items in distinct for s in items], dtype=np.int64)
    if len(bits):
        np.bitwise_or.at(out, (rows, bits >> 6), np.left_shift(np.uint64(1), (bits & 63).astype(np.uint64)))
    return out[which]


def _popcount(masks: npt.NDArray[np.uint64]) -> Ints:
    return np.bitwise_count(masks).sum(axis=1, dtype=np.int64)  # type: ignore[no-any-return]


def _haversine(lat1: Floats, lon1: Floats, lat2: Floats, lon2: Floats) -> Floats:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.minimum(1.0, np.sqrt(h)))  # type: ignore[no-any-return]


def _lookup(keys: Ints, values: Ints, wanted: Ints) -> Ints:
    """values[keys == wanted] per wanted key, 0 where the key is absent (keys unique, not negative)."""
    if len(keys) == 0:
        return np.zeros(len(wanted), dtype=np.int64)
    size = int(keys.max()) + 1
    small = 0 <= int(values.min()) and int(values.max()) < 1 << 7  # ranks: a table of bytes, 8 times as many
    if size <= max(TABLE_CELLS * (8 if small else 1), len(wanted)):
        table = np.zeros(size, dtype=np.int8 if small else np.int64)
        table[keys] = values
        inside = wanted < size
        return np.where(inside, table[np.where(inside, wanted, 0)], 0).astype(np.int64, copy=False)
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    found: Ints = np.where(keys[at] == wanted, values[at], 0).astype(np.int64)
    return found


@dataclass(frozen=True)
class Eligibility:
    """The eligible pairs as arrays, sorted by (team_id, assignment_id): the team's and the
    assignment's position in the problem, the pair's fit and the team's rank of the assignment (0:
    unranked). Computed once per run; ``pairs`` is the domain's ``eligible_pairs`` mapping."""

    problem: Problem
    team: Ints
    assignment: Ints
    fit: Floats
    team_rank: Ints

    def __len__(self) -> int:
        return len(self.team)

    @cached_property
    def pairs(self) -> dict[Pair, float]:
        teams, assignments = self.problem.teams, self.problem.assignments
        return {Pair(teams[t].team_id, assignments[a].assignment_id): f
                for t, a, f in zip(self.team.tolist(), self.assignment.tolist(), self.fit.tolist(), strict=True)}

    def pair(self, i: int) -> Pair:
        return Pair(self.problem.teams[int(self.team[i])].team_id,
                    self.problem.assignments[int(self.assignment[i])].assignment_id)

    @cached_property
    def index(self) -> dict[Pair, int]:
        return {p: i for i, p in enumerate(self.pairs)}

    @cached_property
    def _sorted_keys(self) -> tuple[Ints, Ints]:
        """Each pair's key (team position x assignments + assignment position), sorted, and its position."""
        keys = self.team.astype(np.int64) * max(1, len(self.problem.assignments)) + self.assignment
        order = np.argsort(keys, kind="stable")
        return keys[order], order

    def positions(self, pairs: Iterable[Pair]) -> list[int | None]:
        """Each pair's position in the arrays, None where it is not eligible: ``index.get`` for a few pairs
        (pins, accepted or kept pairs) without a ``Pair`` per eligible pair (400,000 at 10k teams)."""
        wanted = list(pairs)
        if "index" in self.__dict__ or not wanted:
            return [self.index.get(p) for p in wanted]
        teams = {t.team_id: i for i, t in enumerate(self.problem.teams)}
        jobs = {a.assignment_id: j for j, a in enumerate(self.problem.assignments)}
        n_a = max(1, len(self.problem.assignments))
        query = np.array([teams[p.team_id] * n_a + jobs[p.assignment_id]
                          if p.team_id in teams and p.assignment_id in jobs else -1 for p in wanted], dtype=np.int64)
        keys, order = self._sorted_keys
        if not len(keys):
            return [None] * len(wanted)
        at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        hit = (keys[at] == query) & (query >= 0)
        return [int(order[k]) if h else None for k, h in zip(at.tolist(), hit.tolist(), strict=True)]

    def by_team(self) -> EligibleByTeam:
        """Each team's eligible assignments (positions, ascending), read from the arrays: what the
        pre-check and the explanations need, without a ``Pair`` per eligible pair."""
        teams = self.problem.teams
        team, assignment = self.team, self.assignment
        keys = team.astype(np.int64) * max(1, len(self.problem.assignments)) + assignment
        if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):  # ``eligibility`` makes them in this order
            order = np.argsort(keys, kind="stable")
            team, assignment = team[order], assignment[order]
        listed = assignment.tolist()
        by_team = {teams[t].team_id: listed[s:e] for t, s, e in _runs(team)}
        return EligibleByTeam(by_team, _TeamsByAssignment(self.problem, team, assignment))


class _TeamsByAssignment(Mapping[str, list[int]]):
    """Each assignment's eligible teams (positions, ascending), found when asked: the explanations ask only for
    the assignments left unmatched (56 of 5,000 at 10k), so sorting all 400,000 pairs by assignment up front
    (a tenth of a second) went mostly unread."""

    def __init__(self, problem: Problem, team: Ints, assignment: Ints) -> None:
        self._team, self._assignment = team, assignment  # the pairs by team, then assignment
        self._jobs = problem.assignments
        self._position = {a.assignment_id: j for j, a in enumerate(problem.assignments)}
        self._found: dict[str, list[int]] = {}

    def __getitem__(self, assignment_id: str) -> list[int]:
        found = self._found.get(assignment_id)
        if found is None:
            j = self._position.get(assignment_id)
            if j is None:
                raise KeyError(assignment_id)
            found = self._team[np.flatnonzero(self._assignment == j)].tolist()
            if not found:
                raise KeyError(assignment_id)
            self._found[assignment_id] = found
        return found

    def many(self, assignment_ids: Iterable[str]) -> dict[str, list[int]]:
        """The eligible teams of each of these assignments that has any, found in one pass over the pairs (the
        explanations ask for every unmatched assignment: one pass per assignment cost 0.5 ms each at 10k)."""
        asked = list(assignment_ids)
        wanted = {a: self._position[a] for a in asked if a in self._position and a not in self._found}
        if wanted:
            codes = np.fromiter(wanted.values(), dtype=np.int64, count=len(wanted))
            at = np.flatnonzero(np.isin(self._assignment, codes, kind="table"))
            at = at[np.argsort(self._assignment[at], kind="stable")]  # by assignment, each by team (ascending)
            named = {j: a for a, j in wanted.items()}
            teams = self._team[at].tolist()
            for j, start, end in _runs(self._assignment[at]):
                self._found[named[j]] = teams[start:end]
        return {a: self._found[a] for a in asked if a in self._found}

    def _listed(self) -> list[str]:
        return [self._jobs[j].assignment_id for j in np.unique(self._assignment).tolist()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._listed())

    def __len__(self) -> int:
        return len(np.unique(self._assignment))


def _runs(values: Ints) -> list[tuple[int, int, int]]:
    """Each run of equal values in ``values`` (sorted): the value, where it starts and where it ends."""
    if not len(values):
        return []
    starts = np.concatenate([[0], np.flatnonzero(np.diff(values)) + 1])
    ends = np.concatenate([starts[1:], [len(values)]])
    return list(zip(values[starts].tolist(), starts.tolist(), ends.tolist(), strict=True))


# The pre-check's team x place table holds at most this many cells (a byte each) at a time
SUPPLY_TABLE_CELLS = 1 << 24


def precheck_supply(problem: Problem, elig: Eligibility,
                    table_cells: int = SUPPLY_TABLE_CELLS) -> dict[tuple[str, str, str, str], int]:
    """The pre-check's supply (``domain.explain.precheck``) from the arrays: per cell (level, period,
    region, skill: "*" and each required skill of an assignment in it), how many distinct teams of that
    level are eligible for one of the cell's assignments. Each eligible pair stands for its team in its
    assignment's cells of the team's level (an eligible team is of a level the assignment accepts)."""
    from ..domain.explain import ANY_SKILL

    teams, assignments = problem.teams, problem.assignments
    levels = _Vocabulary.of(t.level for t in teams)
    places: dict[tuple[str, str, str], int] = {}
    bases: list[list[int]] = [[places.setdefault((a.period, a.region or "", skill), len(places))
                               for skill in (ANY_SKILL, *sorted(a.required_skills))] for a in assignments]
    if not len(elig) or not places:
        return {}
    width = np.array([len(b) for b in bases], dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(width)[:-1]])
    flat = np.array([k for b in bases for k in b], dtype=np.int64)
    t_level = np.array([levels.codes[t.level] for t in teams], dtype=np.int64)
    per_pair = width[elig.assignment]
    pair = np.repeat(np.arange(len(elig), dtype=np.int64), per_pair)
    offset = np.arange(len(pair), dtype=np.int64) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
    team, place = elig.team[pair], flat[first[elig.assignment[pair]] + offset]
    # each (team, place) once: marked in a team x place table (a sort of a million keys costs several times
    # as much), a block of teams at a time so that the table stays small in a bigger round
    n_places, counts = len(places), np.zeros(len(levels.codes) * len(places), dtype=np.int64)
    block = max(1, table_cells // n_places)
    for start in range(0, len(teams), block):
        size = min(block, len(teams) - start)
        if size == len(teams):
            in_block, at = team, place
        else:
            mask = (team >= start) & (team < start + size)
            in_block, at = team[mask] - start, place[mask]
        seen = np.zeros(size * n_places, dtype=bool)
        seen[in_block * n_places + at] = True
        hit = np.flatnonzero(seen)
        counts += np.bincount(t_level[start + hit // n_places] * n_places + hit % n_places, minlength=len(counts))
    names = {code: key for key, code in places.items()}
    level_names = {code: name for name, code in levels.codes.items()}
    return {(level_names[c // n_places], *names[c % n_places]): int(counts[c]) for c in np.flatnonzero(counts).tolist()}


def eligibility(problem: Problem) -> Eligibility:
    """The same pairs and fits as ``domain.model.eligible_pairs``, computed with array joins: teams are
    bucketed by level and period, assignments grouped by their required skills, and each group's
    candidates filtered for reach, working area and forbidden pairs at once."""
    teams, assignments = problem.teams, problem.assignments
    n_t, n_a = len(teams), len(assignments)
    levels = _Vocabulary.of(t.level for t in teams)
    institutions = _Vocabulary.of(t.institution_id for t in teams)
    periods = _Vocabulary()
    skills = _Vocabulary.of(sorted(frozenset().union(*(t.skills for t in teams),
                                                     *(a.required_skills for a in assignments),
                                                     *(a.nice_to_have_skills for a in assignments))))
    words = max(1, (len(skills.codes) + 63) // 64)
    t_skills = _masks([t.skills for t in teams], skills, words)
    a_required = _masks([a.required_skills for a in assignments], skills, words)
    a_nice = _masks([a.nice_to_have_skills for a in assignments], skills, words)
    t_level = np.array([levels.codes[t.level] for t in teams], dtype=np.int64)
    t_limit = np.array([INF if t.travel_limit_km is None else t.travel_limit_km for t in teams], dtype=np.float64)
    t_remote = np.array([t.remote_allowed for t in teams], dtype=np.bool_)
    a_mode = np.array([("remote", "on_site", "hybrid").index(a.mode) for a in assignments], dtype=np.int64)
    a_priority = np.array([PRIORITY_WEIGHT * a.priority for a in assignments], dtype=np.float64)

    # teams by (level, period): the teams of one level and one list of periods at once
    period_lists: dict[tuple[str, ...], int] = {}
    t_periods = np.array([period_lists.setdefault(t.periods, len(period_lists)) for t in teams], dtype=np.int64)
    list_periods = [[periods.code(p) for p in dict.fromkeys(listed)] for listed in period_lists]
    n_lists = max(1, len(period_lists))
    bucket_parts: dict[tuple[int, int], list[Ints]] = {}
    for code, members in _ranges(t_level * n_lists + t_periods).items():
        level_code, listed = divmod(code, n_lists)
        for period_code in list_periods[listed]:
            bucket_parts.setdefault((level_code, period_code), []).append(members)
    buckets = {key: np.sort(np.concatenate(parts)).astype(np.int32) for key, parts in bucket_parts.items()}
    # assignments by (level, period, required skills), for the levels and periods that have teams
    n_levels, n_periods = max(1, len(levels.codes)), max(1, len(periods.codes))
    a_period = np.array([periods.codes.get(a.period, -1) for a in assignments], dtype=np.int64)
    open_to = [j * n_levels + levels.codes[level] for j, a in enumerate(assignments)
               if a_period[j] >= 0 and (not problem.working_area or in_working_area(problem, a))
               for level in a.accepted_levels if level in levels.codes]
    member = np.array(open_to, dtype=np.int64) // n_levels
    member_level = np.array(open_to, dtype=np.int64) % n_levels
    a_skill_set = _distinct_words(a_required)
    n_sets = int(a_skill_set.max(initial=0)) + 1
    by_bucket: dict[tuple[int, int], list[Ints]] = {}
    for code, positions in _ranges((member_level * n_periods + a_period[member]) * n_sets
                                   + a_skill_set[member]).items():
        key = (code // (n_periods * n_sets), code // n_sets % n_periods)
        if key in buckets:
            by_bucket.setdefault(key, []).append(member[positions])

    t_place, t_places = _place_codes([t.latitude for t in teams], [t.longitude for t in teams])
    a_place, a_places = _place_codes([a.latitude for a in assignments], [a.longitude for a in assignments])
    reach = _Reach(a_mode, t_limit, t_remote, t_place, t_places, a_place, a_places, teams, assignments)
    team_parts: list[Positions] = []
    assignment_parts: list[Positions] = []
    # candidates are (team, assignment) positions as 32-bit integers: there are about three times as many
    # as eligible pairs, and half the bytes to move makes this loop about a third faster
    for key, member_lists in by_bucket.items():
        bucket = buckets[key]
        sizes = np.array([len(m) for m in member_lists], dtype=np.int64)
        first = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=first[1:])
        flat = np.concatenate(member_lists).astype(np.int32)
        able_team, able_group = _able(t_skills[bucket], a_required[flat[first[:-1]]])
        reachable = reach.by_class(bucket, flat, first, able_team, able_group)
        if reachable is not None:
            team_parts.append(reachable[0])
            assignment_parts.append(reachable[1])
            continue
        ends = np.cumsum(sizes[able_group])
        cuts = np.searchsorted(ends, np.arange(CANDIDATES, int(ends[-1]) if len(ends) else 0, CANDIDATES))
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(ends)], strict=True):
            counts = sizes[able_group[lo:hi]]
            cand_t = np.repeat(bucket[able_team[lo:hi]], counts)
            offsets = np.repeat((first[able_group[lo:hi]] - np.cumsum(counts) + counts).astype(np.int32), counts)
            offsets += np.arange(len(offsets), dtype=np.int32)
            cand_a = flat[offsets]
            keep = reach(cand_t, cand_a)
            team_parts.append(cand_t[keep])
            assignment_parts.append(cand_a[keep])
    ti = np.concatenate(team_parts, dtype=np.int64) if team_parts else np.zeros(0, dtype=np.int64)
    ai = np.concatenate(assignment_parts, dtype=np.int64) if assignment_parts else np.zeros(0, dtype=np.int64)

    team_position = {t.team_id: i for i, t in enumerate(teams)}
    assignment_position = {a.assignment_id: j for j, a in enumerate(assignments)}
    if problem.forbidden:
        forbidden = np.array([team_position[p.team_id] * n_a + assignment_position[p.assignment_id]
                              for p in problem.forbidden
                              if p.team_id in team_position and p.assignment_id in assignment_position],
                             dtype=np.int64)
        keep = ~np.isin(ti * n_a + ai, forbidden)
        ti, ai = ti[keep], ai[keep]

    team_order = np.empty(n_t, dtype=np.int64)
    team_order[sorted(range(n_t), key=lambda i: teams[i].team_id)] = np.arange(n_t)
    assignment_order = np.empty(n_a, dtype=np.int64)
    assignment_order[sorted(range(n_a), key=lambda j: assignments[j].assignment_id)] = np.arange(n_a)
    sort_key = team_order[ti]
    sort_key *= max(1, n_a)
    sort_key += assignment_order[ai]
    order = np.argsort(sort_key, kind="stable")
    del sort_key
    ti = ti[order]
    ai = ai[order]
    del order

    # fit, summed in the order of FitBreakdown.total so each value equals the domain's to the last bit (in
    # place where it can be: at 50,000 teams each temporary is 16 MB of fresh memory)
    skills_of, nice_of = t_skills[ti], a_nice[ai]
    other = a_required[ai]
    other |= nice_of
    np.invert(other, out=other)
    other &= skills_of
    nice_of &= skills_of
    del skills_of
    fit = np.full(len(ti), BASE_FIT)
    fit += NICE_TO_HAVE_WEIGHT * _popcount(nice_of).astype(np.float64)
    fit += EXTRA_SKILL_WEIGHT * np.minimum(_popcount(other), MAX_EXTRA_SKILLS).astype(np.float64)
    del nice_of, other
    pref_keys = np.array([team_position[t.team_id] * n_a + assignment_position[aid]
                          for t in teams for aid in t.preferences if aid in assignment_position], dtype=np.int64)
    pref_ranks = np.array([r + 1 for t in teams for r, aid in enumerate(t.preferences)
                           if aid in assignment_position], dtype=np.int64)
    t_rank = np.zeros(len(ti), dtype=np.int64)
    ranking = np.flatnonzero(np.array([bool(t.preferences) for t in teams], dtype=np.bool_)[ti])
    t_rank[ranking] = _lookup(pref_keys, pref_ranks, ti[ranking] * n_a + ai[ranking])
    fit += np.where(t_rank > 0, np.maximum(0.0, TEAM_PREFERENCE_FIRST - TEAM_PREFERENCE_STEP * (t_rank - 1)), 0.0)
    n_i, n_l = max(1, len(institutions.codes)), max(1, len(levels.codes))
    inst_keys = np.array([j * n_i + institutions.codes[i] for j, a in enumerate(assignments)
                          for i in a.preferred_institutions if i in institutions.codes], dtype=np.int64)
    inst_ranks = np.array([r + 1 for a in assignments for r, i in enumerate(a.preferred_institutions)
                           if i in institutions.codes], dtype=np.int64)
    level_keys = np.array([j * n_l + levels.codes[lv] for j, a in enumerate(assignments)
                           for lv in a.preferred_levels if lv in levels.codes], dtype=np.int64)
    level_ranks = np.array([len(a.preferred_institutions) + r + 1 for a in assignments
                            for r, lv in enumerate(a.preferred_levels) if lv in levels.codes], dtype=np.int64)
    t_inst = np.array([institutions.codes[t.institution_id] for t in teams], dtype=np.int64)
    f_rank = _lookup(inst_keys, inst_ranks, ai * n_i + t_inst[ti])
    f_rank = np.where(f_rank > 0, f_rank, _lookup(level_keys, level_ranks, ai * n_l + t_level[ti]))
    fit += np.where(f_rank > 0, np.maximum(0.0, FIRM_PREFERENCE_FIRST - FIRM_PREFERENCE_STEP * (f_rank - 1)), 0.0)
    del f_rank
    fit += reach.points(ti, ai)
    fit += a_priority[ai]
    return Eligibility(problem, ti, ai, fit, t_rank)


def _able(skills: npt.NDArray[np.uint64], required: npt.NDArray[np.uint64]) -> tuple[Ints, Ints]:
    """(team, group) positions where the team's skills hold all the group's required skills."""
    teams_at: list[Ints] = []
    groups_at: list[Ints] = []
    step = max(1, ABLE_CELLS // max(1, skills.shape[0] * skills.shape[1]))
    for g0 in range(0, len(required), step):
        chunk = required[g0:g0 + step]
        able = np.all((skills[:, None, :] & chunk[None, :, :]) == chunk[None, :, :], axis=2)
        t, g = np.nonzero(able)
        teams_at.append(t.astype(np.int64))
        groups_at.append(g.astype(np.int64) + g0)
    if not teams_at:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(teams_at), np.concatenate(groups_at)


class _Reach:
    """domain.model.reachable per pair, and the fit's distance points: distances come from one table
    over the distinct (team place, assignment place) pairs when there are few places, else per pair."""

    def __init__(self, a_mode: Ints, t_limit: Floats, t_remote: Bools, t_place: Ints,
                 t_places: list[tuple[float, float]], a_place: Ints, a_places: list[tuple[float, float]],
                 teams: Any, assignments: Any) -> None:
        self.a_mode, self.t_limit, self.t_remote = a_mode, t_limit, t_remote
        self.t_place, self.a_place, self.t_places, self.a_places = t_place, a_place, t_places, a_places
        self.teams, self.assignments = teams, assignments
        self.t_at = np.array(t_places, dtype=np.float64).reshape(-1, 2)
        self.a_at = np.array(a_places, dtype=np.float64).reshape(-1, 2)
        self.n_places = len(t_places) * len(a_places)
        self.table: Floats | None = None
        self.reach: Bools | None = None
        self.n_classes = 0
        self.t_class: Positions = np.zeros(0, dtype=np.int64)
        self.a_col: Positions = np.zeros(0, dtype=np.int64)
        if 0 < self.n_places <= TABLE_CELLS:
            self.table = _haversine(self.t_at[:, :1], self.t_at[:, 1:], self.a_at[:, 0][None, :],
                                    self.a_at[:, 1][None, :]).reshape(-1)
            self._reach_table()

    def _reach_table(self) -> None:
        """Reachability decided once per team class (place, travel limit, remote work) and assignment
        column (on-site at a place, hybrid at a place, or always: remote work or an unknown place):
        ``reach[t_class * width + a_col]``."""
        assert self.table is not None
        n_tp, n_ap = len(self.t_places), len(self.a_places)
        key = np.stack([np.where(self.t_place >= 0, self.t_place, n_tp).astype(np.float64), self.t_limit,
                        self.t_remote.astype(np.float64)], axis=1)
        classes, t_class = _distinct_rows(key)
        place, limit, remote = classes[:, 0].astype(np.int64), classes[:, 1], classes[:, 2] > 0
        km = np.full((len(classes), n_ap), math.nan)
        located = np.flatnonzero(place < n_tp)
        km[located] = self.table.reshape(n_tp, n_ap)[place[located]]
        within = np.isnan(km) | (km <= limit[:, None])
        near = np.isfinite(limit)[:, None] & ~np.isnan(km) & (
            np.abs(km - limit[:, None]) <= BOUNDARY_KM * np.maximum(1.0, limit)[:, None])
        for c, ap in zip(*(i.tolist() for i in np.nonzero(near)), strict=True):
            within[c, ap] = haversine_km(*self.t_places[place[c]], *self.a_places[ap]) <= limit[c]
        self.reach = np.concatenate([within, within | remote[:, None], np.ones((len(classes), 1), dtype=np.bool_)],
                                    axis=1).reshape(-1)
        self.n_classes = len(classes)
        wide = np.int32 if len(self.reach) < 1 << 31 else np.int64  # as narrow as the candidates' positions
        self.t_class = (t_class.reshape(-1) * (2 * n_ap + 1)).astype(wide)
        self.a_col = np.where((self.a_mode == 0) | (self.a_place < 0), 2 * n_ap,
                              np.where(self.a_mode == 2, n_ap, 0) + self.a_place).astype(wide)

    def by_class(self, bucket: Positions, flat: Positions, first: Ints, able_team: Ints, able_group: Ints
                 ) -> tuple[Positions, Positions] | None:
        """The reachable (team, assignment) pairs among a bucket's able (team, group) pairs, where a
        group's assignments are ``flat[first[g]:first[g + 1]]``: each team class's reachable members of
        each group are listed once, and each able pair takes its class's list, so no unreachable
        candidate is made (at 50,000 teams there are 16 candidates per eligible pair). None without a
        reach table or when the classes times the members are more than REACH_CELLS."""
        if self.reach is None or not len(able_team):
            return None
        width = len(self.reach) // max(1, self.n_classes)
        classes, inverse = np.unique(self.t_class[bucket] // width, return_inverse=True)
        if len(classes) * len(flat) > REACH_CELLS:
            return None
        n_groups = len(first) - 1
        grid = self.reach.reshape(-1, width)[classes][:, self.a_col[flat]]  # class x member: reachable
        counts = np.add.reduceat(grid, first[:-1], axis=1, dtype=np.int64).reshape(-1)  # per (class, group)
        starts = np.cumsum(counts) - counts
        members = flat[np.flatnonzero(grid) % len(flat)]  # by class, then group
        segment = inverse.reshape(-1)[able_team] * n_groups + able_group
        take = counts[segment]
        cand_t = np.repeat(bucket[able_team], take)
        at = np.repeat(starts[segment] - (np.cumsum(take) - take), take) + np.arange(int(take.sum()))
        return cand_t, members[at]

    def _km(self, ti: Positions, ai: Positions) -> Floats:
        """The distance per pair, NaN when a place is unknown."""
        tp, ap = self.t_place[ti], self.a_place[ai]
        known = np.flatnonzero((tp >= 0) & (ap >= 0))
        km = np.full(len(ti), math.nan)
        tp, ap = tp[known], ap[known]
        if self.table is not None:
            km[known] = self.table[tp * len(self.a_places) + ap]
        else:
            km[known] = _haversine(self.t_at[tp, 0], self.t_at[tp, 1], self.a_at[ap, 0], self.a_at[ap, 1])
        return km

    def __call__(self, ti: Positions, ai: Positions) -> Bools:
        """remote always; else within the travel limit (or no limit, or no known distance), or hybrid work
        for a team that may work remotely."""
        if self.reach is not None:
            return self.reach[self.t_class[ti] + self.a_col[ai]]  # type: ignore[no-any-return]
        mode = self.a_mode[ai]
        ok: Bools = (mode == 0) | ((mode == 2) & self.t_remote[ti]) | np.isinf(self.t_limit[ti])
        todo = np.flatnonzero(~ok)
        if len(todo) == 0:
            return ok
        tt, aa = ti[todo], ai[todo]
        km = self._km(tt, aa)
        limit = self.t_limit[tt]
        unknown = np.isnan(km)
        within = unknown | (km <= limit)
        near = np.flatnonzero(~unknown & (np.abs(km - limit) <= BOUNDARY_KM * np.maximum(1.0, limit)))
        for k in near.tolist():
            t, a = self.teams[int(tt[k])], self.assignments[int(aa[k])]
            within[k] = haversine_km(t.latitude, t.longitude, a.latitude, a.longitude) <= t.travel_limit_km
        ok[todo] = within
        return ok

    def points(self, ti: Ints, ai: Ints) -> Floats:
        """The fit's distance points, by the domain's formula once per distinct pair of places."""
        out = np.zeros(len(ti), dtype=np.float64)
        placed = np.flatnonzero((self.a_mode[ai] != 0) & (self.t_place[ti] >= 0) & (self.a_place[ai] >= 0))
        if len(placed) == 0:
            return out
        width = len(self.a_places)
        code = self.t_place[ti[placed]] * width + self.a_place[ai[placed]]
        dense = self.n_places <= max(TABLE_CELLS, len(placed))
        if dense:
            used = np.zeros(self.n_places, dtype=np.bool_)
            used[code] = True
            distinct = np.flatnonzero(used)
        else:
            distinct, code = np.unique(code, return_inverse=True)
            code = code.reshape(-1)
        values = np.array([
            round(DISTANCE_WEIGHT * max(0.0, 1.0 - haversine_km(*self.t_places[k // width],
                                                                 *self.a_places[k % width]) / DISTANCE_SCALE_KM), 2)
            for k in distinct.tolist()], dtype=np.float64)
        if dense:
            table = np.zeros(self.n_places, dtype=np.float64)
            table[distinct] = values
            values = table
        out[placed] = values[code]
        return out


def _distinct_words(masks: npt.NDArray[np.uint64]) -> Ints:
    """A code per row of bit masks, equal for equal rows."""
    if not len(masks):
        return np.zeros(0, dtype=np.int64)
    rows = np.ascontiguousarray(masks).view(np.dtype((np.void, masks.shape[1] * masks.itemsize))).reshape(-1)
    _, inverse = np.unique(rows, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def _distinct_rows(key: Floats) -> tuple[Floats, Ints]:
    """The distinct rows of a 2-d array, sorted, and each row's position among them (``np.unique`` with
    ``axis=0``, by a lexsort: several times faster on thousands of rows)."""
    order = np.lexsort(key.T[::-1])
    ordered = key[order]
    step = np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)]
    inverse = np.empty(len(key), dtype=np.int64)
    inverse[order] = np.cumsum(step) - 1
    return ordered[step], inverse


def _place_codes(latitudes: list[float | None], longitudes: list[float | None]
                 ) -> tuple[Ints, list[tuple[float, float]]]:
    """A code per item for its (latitude, longitude), -1 when either is unknown; and the places."""
    at = np.array([latitudes, longitudes], dtype=np.float64).T  # None: NaN
    known = np.flatnonzero(~np.isnan(at).any(axis=1))
    codes = np.full(len(at), -1, dtype=np.int64)
    if not len(known):
        return codes, []
    places, codes[known] = _distinct_rows(at[known])
    return codes, [(float(lat), float(lon)) for lat, lon in places.tolist()]


# ---- the model as arrays ------------------------------------------------------------------


@dataclass
class ArrayModel:
    """``rows`` groups (row, column, coefficient) triplets; ``row_lower``/``row_upper`` bound each row's
    sum; ``group`` names each row's constraint family; ``objectives`` are dense cost vectors."""

    eligibility: Eligibility
    n_cols: int
    placed_teams: list[str]
    row: Positions  # 32-bit where the rows and columns allow (half the bytes to write, hash and read)
    col: Positions
    coef: Floats
    row_lower: Floats
    row_upper: Floats
    group: list[str]
    objectives: dict[str, Floats]
    blocks: list[int] = field(default_factory=list)  # entries per family, in order (each family's rows in turn)
    extra: list[Key] = field(default_factory=list)  # the stable policy's columns after the pairs', in order

    @property
    def n_pairs(self) -> int:
        return len(self.eligibility)

    @property
    def n_rows(self) -> int:
        return len(self.row_lower)

    def activity(self, values: Floats) -> Floats:
        """Each row's sum at ``values``, a million entries at a time (the temporaries stay small)."""
        lhs: Floats = np.zeros(self.n_rows)
        for at in range(0, len(self.row), ACTIVITY_ENTRIES):
            part = slice(at, at + ACTIVITY_ENTRIES)
            lhs += np.bincount(self.row[part], weights=self.coef[part] * values[self.col[part]], minlength=self.n_rows)
        return lhs

    def holds(self, values: Floats, tolerance: float = 1e-6) -> bool:
        lhs = self.activity(values)
        return bool(np.all(lhs >= self.row_lower - tolerance) and np.all(lhs <= self.row_upper + tolerance))

    def digest(self, policy: str) -> str:
        """A hash of the arrays: rows, bounds and objectives over the numbered columns (as the plain
        model's hash, it does not depend on the ids of teams and assignments, only on the model). The
        entries are hashed in the order build_arrays writes them, the same for the same round and policy
        (sorting them into rows first took six times as long as the hash: 0.4 s at 50,000 teams)."""
        h = hashlib.sha256(policy.encode())
        h.update(np.array([self.n_cols, self.n_pairs, self.n_rows], dtype=np.int64).tobytes())
        for array in (self.row, self.col, self.coef, self.row_lower, self.row_upper):
            h.update(np.ascontiguousarray(array).data)
        for name in sorted(self.objectives):
            if not self.objectives[name].any():  # an objective with no terms is no part of the model
                continue
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.objectives[name]).data)
        return h.hexdigest()


class _Rows:
    def __init__(self) -> None:
        self.rows: list[Ints] = []
        self.cols: list[Ints] = []
        self.coefs: list[Floats] = []
        self.lower: list[Floats] = []
        self.upper: list[Floats] = []
        self.group: list[str] = []
        self.blocks: list[int] = []
        self._ones: Floats = np.zeros(0)

    @property
    def count(self) -> int:
        return len(self.group)

    def add(self, group: str, row: Ints, col: Ints, coef: Floats, lower: Floats, upper: Floats) -> None:
        """Rows numbered 0..len(lower)-1 within this family."""
        self.add_parts(group, [(row, col, coef)], lower, upper)

    def add_parts(self, group: str, parts: list[tuple[Ints, Ints, Floats]], lower: Floats, upper: Floats) -> None:
        """A family whose entries come in parts (kept apart until the model is joined, so no part is
        copied twice); rows numbered 0..len(lower)-1 within it."""
        entries = 0
        for row, col, coef in parts:
            keep = coef != 0
            if not keep.all():
                row, col, coef = row[keep], col[keep], coef[keep]
            entries += len(row)
            self.rows.append(row + self.count if self.count else row)
            self.cols.append(col)
            self.coefs.append(coef)
        self.blocks.append(entries)
        self.lower.append(np.asarray(lower, dtype=np.float64))
        self.upper.append(np.asarray(upper, dtype=np.float64))
        self.group.extend([group] * len(lower))

    def ones(self, n: int) -> Floats:
        """n ones, a view of one shared array (the parts are only read, then joined)."""
        if len(self._ones) < n:
            self._ones = _ones(n)
        return self._ones[:n]


def _ones(n: int) -> Floats:
    return np.ones(n, dtype=np.float64)


def _full(n: int, value: float) -> Floats:
    return np.full(n, value, dtype=np.float64)


def _dense_ranks(keys: Ints) -> tuple[Ints, int]:
    """Each key's rank among the distinct keys (``np.unique``'s inverse), and their number; by a table
    when the keys (not negative) span at most a few times their count, else by sorting."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64), 0
    top = int(keys.max()) + 1
    if top > 4 * len(keys) + 1024:
        _, inverse = np.unique(keys, return_inverse=True)
        return inverse.reshape(-1), int(inverse.max()) + 1
    present = np.zeros(top, dtype=np.bool_)
    present[keys] = True
    rank = np.cumsum(present, dtype=np.int64) - 1
    return rank[keys], int(rank[-1]) + 1


def _ranges(keys: Ints) -> dict[int, Ints]:
    """Positions of each key value (keys not negative), in order."""
    if len(keys) == 0:
        return {}
    inverse, n = _dense_ranks(keys)
    order = np.argsort(inverse.astype(np.uint16) if n <= 1 << 16 else inverse, kind="stable")  # radix sort
    counts = np.bincount(inverse, minlength=n)
    ends = np.cumsum(counts)
    distinct = np.empty(n, dtype=np.int64)
    distinct[inverse] = keys
    return {int(k): order[e - c:e] for k, c, e in zip(distinct.tolist(), counts.tolist(), ends.tolist(), strict=True)}


def _capacity_rows(out: _Rows, problem: Problem, key: Ints, codes: Ints, pair_hours: Floats) -> None:
    """Capacity and supervision rows where no two capacities name one cell: each pair's row is a lookup
    of its cell, so no pair list per capacity is made (entries by column)."""
    n_keys = max(1, int(max(key.max(initial=-1), codes.max(initial=-1))) + 1)
    per_cell = np.bincount(key, minlength=n_keys)
    used = np.flatnonzero((codes >= 0) & (per_cell[np.maximum(codes, 0)] > 0))  # capacities with pairs
    row_of_cell = np.full(n_keys, -1, dtype=np.int64)
    row_of_cell[codes[used]] = np.arange(len(used))
    pair_row = row_of_cell[key]
    held = np.flatnonzero(pair_row >= 0)
    if not len(used):
        return
    capacities = problem.capacities
    out.add("institution_capacity", pair_row[held], held, out.ones(len(held)), _full(len(used), -INF),
            np.array([float(capacities[k].teams) for k in used.tolist()]))
    timed = held[pair_hours[held] != 0]
    has_hours = np.bincount(pair_row[timed], minlength=len(used)) > 0
    if has_hours.any():
        hour_row = np.cumsum(has_hours) - 1
        out.add("supervision_hours", hour_row[pair_row[timed]], timed, pair_hours[timed],
                _full(int(has_hours.sum()), -INF),
                np.array([float(capacities[k].supervision_hours) for k in used[has_hours].tolist()]))


def _capacity_rows_per_capacity(out: _Rows, problem: Problem, key: Ints, codes: list[int], pair_hours: Floats
                                ) -> None:
    """Capacity and supervision rows, a pair list per capacity (two capacities may name one cell)."""
    members = _ranges(key)
    cap_rows: list[tuple[Ints, float]] = []
    hour_rows: list[tuple[Ints, Floats, float]] = []
    for c, code in zip(problem.capacities, codes, strict=True):
        group_pairs = members.get(code, np.zeros(0, dtype=np.int64))
        if len(group_pairs):
            cap_rows.append((group_pairs, float(c.teams)))
            h = pair_hours[group_pairs]
            if np.any(h != 0):
                hour_rows.append((group_pairs[h != 0], h[h != 0], float(c.supervision_hours)))
    if cap_rows:
        out.add("institution_capacity", np.concatenate([np.full(len(g), r) for r, (g, _) in enumerate(cap_rows)]),
                np.concatenate([g for g, _ in cap_rows]), np.concatenate([_ones(len(g)) for g, _ in cap_rows]),
                _full(len(cap_rows), -INF), np.array([b for _, b in cap_rows]))
    if hour_rows:
        out.add("supervision_hours", np.concatenate([np.full(len(g), r) for r, (g, _, _) in enumerate(hour_rows)]),
                np.concatenate([g for g, _, _ in hour_rows]), np.concatenate([h for _, h, _ in hour_rows]),
                _full(len(hour_rows), -INF), np.array([b for _, _, b in hour_rows]))


def build_arrays(problem: Problem, elig: Eligibility, *, stable: bool = False,
                 objectives: Iterable[str] | None = None, stability_pairs: Collection[Pair] | None = None,
                 grouped: Grouped | None = None) -> ArrayModel:
    """The rows of domain.model's CONSTRAINT_FAMILIES (and ``stability`` when ``stable``, of the pairs in
    ``stability_pairs`` only when given) as arrays, and the objectives named (all when None). ``grouped``:
    the eligible pairs grouped (``Grouped.of``), when the caller has them already."""
    wanted = None if objectives is None else set(objectives)
    teams, assignments = problem.teams, problem.assignments
    n_p, n_a = len(elig), len(assignments)
    ti, ai = elig.team, elig.assignment
    x = np.arange(n_p, dtype=np.int64)
    team_position = {t.team_id: i for i, t in enumerate(teams)}
    assignment_position = {a.assignment_id: j for j, a in enumerate(assignments)}
    periods: dict[str, int] = {}
    a_period = np.array([periods.setdefault(a.period, len(periods)) for a in assignments], dtype=np.int64)
    floored = sorted({m.team_id for f in problem.floors for m in floor_members(problem, f) if isinstance(m, Placed)})
    placed_col = {t: n_p + n_a + k for k, t in enumerate(floored)}
    n_cols = n_p + n_a + len(floored)
    out = _Rows()

    # team_at_most_one
    if n_p:
        inverse, n = _dense_ranks(ti * max(1, len(periods)) + a_period[ai])
        out.add("team_at_most_one", inverse, x, out.ones(n_p), _full(n, -INF), _full(n, 1.0))

    # assignment_max_teams, assignment_min_teams
    opened = n_p + np.arange(n_a, dtype=np.int64)
    max_teams = np.array([a.max_teams for a in assignments], dtype=np.float64)
    min_teams = np.array([a.min_teams for a in assignments], dtype=np.float64)
    for group, size, lower, upper in (("assignment_max_teams", max_teams, _full(n_a, -INF), np.zeros(n_a)),
                                      ("assignment_min_teams", min_teams, np.zeros(n_a), _full(n_a, INF))):
        out.add_parts(group, [(ai, x, out.ones(n_p)), (np.arange(n_a), opened, -size)], lower, upper)

    # institution_capacity, supervision_hours: a row per capacity that has pairs, in the capacities' order
    if problem.capacities:
        institutions = _Vocabulary.of(t.institution_id for t in teams)
        levels = _Vocabulary.of(t.level for t in teams)
        t_inst = np.array([institutions.codes[t.institution_id] for t in teams], dtype=np.int64)
        t_level = np.array([levels.codes[t.level] for t in teams], dtype=np.int64)
        n_periods, n_levels = max(1, len(periods)), max(1, len(levels.codes))
        key = (t_inst[ti] * n_periods + a_period[ai]) * n_levels + t_level[ti]  # a pair's (institution, period, level)
        codes = [-1 if ci is None or cp is None or cl is None else (ci * n_periods + cp) * n_levels + cl
                 for c in problem.capacities
                 for ci, cp, cl in [(institutions.codes.get(c.institution_id), periods.get(c.period),
                                     levels.codes.get(c.level))]]
        hours = np.array([float(a.supervision_hours) for a in assignments], dtype=np.float64)
        if len(set(codes) - {-1}) == len(codes) - codes.count(-1):  # a capacity per cell at most
            _capacity_rows(out, problem, key, np.array(codes, dtype=np.int64), hours[ai])
        else:
            _capacity_rows_per_capacity(out, problem, key, codes, hours[ai])

    # firm_cap
    if problem.firm_caps:
        firm_codes: dict[str, int] = {}
        a_firm = np.array([firm_codes.setdefault(a.firm_id, len(firm_codes)) for a in assignments], dtype=np.int64)
        by_firm = _ranges(a_firm[ai]) if n_p else {}
        firm_rows = [(by_firm[firm_codes[cap.firm_id]], float(cap.max_teams)) for cap in problem.firm_caps
                     if cap.firm_id in firm_codes and firm_codes[cap.firm_id] in by_firm]
        if firm_rows:
            out.add("firm_cap", np.concatenate([np.full(len(g), r) for r, (g, _) in enumerate(firm_rows)]),
                    np.concatenate([g for g, _ in firm_rows]), np.concatenate([_ones(len(g)) for g, _ in firm_rows]),
                    _full(len(firm_rows), -INF), np.array([b for _, b in firm_rows]))

    # pins: a pin on a pair without a column is a row 0 >= 1, which no matching meets
    if problem.pinned:
        pins = sorted(problem.pinned)
        found = elig.positions(pins)
        where = [(r, i) for r, i in enumerate(found) if i is not None]
        out.add("pins", np.array([r for r, _ in where], dtype=np.int64),
                np.array([i for _, i in where], dtype=np.int64), _ones(len(where)), _full(len(pins), 1.0),
                _full(len(pins), INF))

    # fairness_floor, team_placed
    if problem.floors:
        floor_rows: list[tuple[Ints, float]] = []
        for floor in problem.floors:
            keys = floor_members(problem, floor)
            if keys:
                cols = [n_p + assignment_position[k.assignment_id] if isinstance(k, Opened) else placed_col[k.team_id]
                        for k in keys]
                floor_rows.append((np.array(cols, dtype=np.int64), floor.min_share * len(keys)))
        if floor_rows:
            out.add("fairness_floor", np.concatenate([np.full(len(c), r) for r, (c, _) in enumerate(floor_rows)]),
                    np.concatenate([c for c, _ in floor_rows]), np.concatenate([_ones(len(c)) for c, _ in floor_rows]),
                    np.array([b for _, b in floor_rows]), _full(len(floor_rows), INF))
        if floored:
            positions = np.array([team_position[t] for t in floored], dtype=np.int64)
            row_of_team = np.full(len(teams), -1, dtype=np.int64)
            row_of_team[positions] = np.arange(len(floored))
            mine = np.flatnonzero(row_of_team[ti] >= 0)
            out.add("team_placed", np.concatenate([np.arange(len(floored)), row_of_team[ti[mine]]]),
                    np.concatenate([np.array([placed_col[t] for t in floored], dtype=np.int64), mine]),
                    np.concatenate([_ones(len(floored)), -_ones(len(mine))]),
                    _full(len(floored), -INF), np.zeros(len(floored)))

    block_cols: list[int] = []
    extra: list[Key] = []
    if stable:
        rows = list(stability(grouped or Grouped.of(problem, elig.pairs), stability_pairs))
        extra = stability_columns(rows)
        column_of: dict[Key, int] = {p: k for p, k in elig.index.items()}
        column_of.update({Opened(a.assignment_id): n_p + j for j, a in enumerate(assignments)})
        column_of.update({Placed(t): k for t, k in placed_col.items()})
        column_of.update({key: n_cols + k for k, key in enumerate(extra)})
        n_cols += len(extra)
        block_cols = [column_of[key] for key in extra if isinstance(key, Blocks)]
        add_rows(out, rows, column_of)

    names = ["fit", "served", "kept", "blocking", *(f"rank_{r}" for r in range(1, problem.max_rank + 1))]
    objectives = {name: np.zeros(n_cols) for name in names if wanted is None or name in wanted}
    if "blocking" in objectives:  # maximised as every objective: minus the pairs that may block
        objectives["blocking"][block_cols] = -1.0
    if "fit" in objectives:
        objectives["fit"][:n_p] = elig.fit
    if "served" in objectives:
        objectives["served"][n_p:n_p + n_a] = 1.0
    if "kept" in objectives and problem.reference:
        objectives["kept"][[i for i in elig.positions(problem.reference) if i is not None]] = 1.0
    for r in range(1, problem.max_rank + 1):
        if f"rank_{r}" in objectives:
            objectives[f"rank_{r}"][:n_p] = elig.team_rank == r

    def joined(parts: list[Any], dtype: Any) -> Any:
        """The parts end to end, each let go once copied (the model's memory then reuses theirs)."""
        whole = np.empty(sum(len(part) for part in parts), dtype=dtype)
        at = 0
        parts.reverse()
        while parts:
            part = parts.pop()
            whole[at:at + len(part)] = part
            at += len(part)
        return whole

    narrow = np.int32 if max(n_cols, out.count) < 1 << 31 else np.int64
    return ArrayModel(elig, n_cols, floored, joined(out.rows, narrow), joined(out.cols, narrow),
                      joined(out.coefs, np.float64), joined(out.lower, np.float64), joined(out.upper, np.float64),
                      out.group, objectives, out.blocks, extra)


def add_rows(out: _Rows, rows: Iterable[Row], column_of: dict[Key, int]) -> None:
    """Domain rows into the triplets (used for the stability families): a key twice in one row (a team's
    own pair with the assignment, in its state and among the assignment's teams) is one entry with the
    coefficients summed, as the row means and as the PuLP model has it (``domain.model.summed_terms``)."""
    by_group: dict[str, list[Row]] = {}
    for r in rows:
        by_group.setdefault(r.group, []).append(r)
    for group, items in by_group.items():
        entries = [(k, column_of[key], c) for k, r in enumerate(items) for key, c in r.terms]
        row = np.array([k for k, _, _ in entries], dtype=np.int64)
        col = np.array([j for _, j, _ in entries], dtype=np.int64)
        coef = np.array([c for _, _, c in entries], dtype=np.float64)
        width = int(col.max(initial=0)) + 1
        merged, inverse = np.unique(row * width + col, return_inverse=True)
        summed = np.bincount(inverse.reshape(-1), weights=coef, minlength=len(merged))
        keep = summed != 0
        row, col, coef = merged[keep] // width, merged[keep] % width, summed[keep]
        lower = np.array([r.rhs if r.sense == ">=" else -INF for r in items], dtype=np.float64)
        upper = np.array([r.rhs if r.sense == "<=" else INF for r in items], dtype=np.float64)
        out.add(group, row, col, coef, lower, upper)
