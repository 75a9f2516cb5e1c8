"""Why a run came out as it did: reasons with counts for everything left unmatched, the score of
each match taken apart, figures per run, and the supply-against-demand check made before solving.
Pure: a problem and a matching in, plain data out."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field, fields
from functools import cached_property
from itertools import compress
from math import fsum
from typing import Any, Iterable, Mapping

from .model import (
    CAPACITY_GROUPS,
    FILTERS,
    GROUPS,
    Assignment,
    FitBreakdown,
    FitParts,
    Pair,
    Problem,
    Row,
    Team,
    blocking_pairs,
    capacity_label,
    eligible_pairs,
    failed_filter,
    fit_breakdown,
    fit_parts,
    hard_rows,
    in_working_area,
    ineligibility,
    limit_indices,
    pair_key,
    parts_total,
    reachable,
    team_rank,
    values_of,
)

REASONS: dict[str, dict[str, str]] = {
    "no_team_of_accepted_level": {
        "en": "no team of an accepted level was in the batch",
        "nl": "er was geen team van een geaccepteerd niveau in de batch"},
    "no_team_with_required_skills": {
        "en": "teams of an accepted level existed, but none had all required skills",
        "nl": "er waren teams van een geaccepteerd niveau, maar geen met alle vereiste vaardigheden"},
    "no_team_in_period": {
        "en": "teams with the right level and skills existed, but none works in the assignment's period",
        "nl": "er waren teams met het juiste niveau en de juiste vaardigheden, maar geen werkt in de periode "
              "van de opdracht"},
    "no_team_within_reach": {
        "en": "suitable teams existed in the period, but the firm lies beyond each one's travel limit",
        "nl": "er waren geschikte teams in de periode, maar het bedrijf ligt voor elk buiten de reisgrens"},
    "outside_working_area": {
        "en": "the firm's municipality lies outside the workspace's working area (on-site or hybrid work)",
        "nl": "de gemeente van het bedrijf ligt buiten het werkgebied van de werkplaats (werk op locatie of "
              "hybride)"},
    "all_eligible_teams_forbidden": {
        "en": "every eligible team was forbidden for this assignment",
        "nl": "elk geschikt team was voor deze opdracht uitgesloten"},
    "too_few_eligible_teams": {
        "en": "fewer eligible teams existed than the assignment's minimum number of teams",
        "nl": "er waren minder geschikte teams dan het minimale aantal teams van de opdracht"},
    "capacity_ran_out": {
        "en": "eligible teams existed, but a capacity ran out (see binding)",
        "nl": "er waren geschikte teams, maar een capaciteit was op (zie binding)"},
    "eligible_teams_went_elsewhere": {
        "en": "eligible teams existed, but they went to assignments where they counted for more under the "
              "policy (higher fit)",
        "nl": "er waren geschikte teams, maar die gingen naar opdrachten waar zij onder het beleid meer "
              "opleverden (hogere passendheid)"},
    "not_chosen": {
        "en": "enough eligible teams were free, but staffing this assignment would have broken another rule "
              "(such as stability or a fairness floor) or lowered the policy's result",
        "nl": "er waren genoeg vrije geschikte teams, maar deze opdracht bemannen had een andere regel "
              "gebroken (zoals stabiliteit of een eerlijkheidsondergrens) of het resultaat van het beleid verlaagd"},
    "no_assignment_accepts_level": {
        "en": "no assignment in the batch accepts the team's level",
        "nl": "geen opdracht in de batch accepteert het niveau van het team"},
    "no_assignment_with_covered_skills": {
        "en": "assignments accept the team's level, but each needs a skill the team lacks",
        "nl": "opdrachten accepteren het niveau van het team, maar elk vraagt een vaardigheid die het team mist"},
    "no_assignment_in_period": {
        "en": "assignments the team could do exist, but none in one of the team's periods",
        "nl": "er zijn opdrachten die het team kan doen, maar geen in een van de periodes van het team"},
    "no_assignment_within_reach": {
        "en": "assignments the team could do exist in its periods, but each lies beyond its travel limit",
        "nl": "er zijn opdrachten in de periodes van het team, maar elk ligt buiten de reisgrens"},
    "no_assignment_in_working_area": {
        "en": "the assignments the team could reach lie outside the workspace's working area",
        "nl": "de opdrachten die het team kan bereiken liggen buiten het werkgebied van de werkplaats"},
    "all_eligible_assignments_forbidden": {
        "en": "every assignment the team suits was forbidden for it",
        "nl": "elke opdracht waarvoor het team geschikt is, was voor dit team uitgesloten"},
    "eligible_assignments_went_to_other_teams": {
        "en": "assignments the team suits existed, but they were staffed by other teams or left closed",
        "nl": "er waren opdrachten waarvoor het team geschikt is, maar die gingen naar andere teams of bleven dicht"},
}

# The first filter that leaves no candidate names the reason.
ASSIGNMENT_FILTER_REASONS = {"level": "no_team_of_accepted_level", "skills": "no_team_with_required_skills",
                             "period": "no_team_in_period", "reach": "no_team_within_reach",
                             "working_area": "outside_working_area", "forbidden": "all_eligible_teams_forbidden"}
TEAM_FILTER_REASONS = {"level": "no_assignment_accepts_level", "skills": "no_assignment_with_covered_skills",
                       "period": "no_assignment_in_period", "reach": "no_assignment_within_reach",
                       "working_area": "no_assignment_in_working_area",
                       "forbidden": "all_eligible_assignments_forbidden"}
# the old count names, kept for readers of earlier runs
ASSIGNMENT_COUNT_NAMES = {"level": "of_accepted_level", "skills": "with_required_skills", "period": "in_period",
                          "reach": "within_reach", "working_area": "in_working_area"}
TEAM_COUNT_NAMES = {"level": "accepting_level", "skills": "skills_covered", "period": "in_period",
                    "reach": "within_reach", "working_area": "in_working_area"}
BLOCKING_SHOWN = 5
# a match's score parts, in order (as ``dataclasses.asdict`` gives them: its fields are flat)
BREAKDOWN_FIELDS = tuple(f.name for f in fields(FitBreakdown))


@dataclass(frozen=True)
class EligibleByTeam:
    """A run's eligible pairs as each team's eligible assignments (positions in ``problem.assignments``,
    ascending): what the explanations and the pre-check read of them, without a ``Pair`` per eligible
    pair (400,000 at 10,000 teams). ``matching.solver.arrays.Eligibility.by_team`` makes it from the arrays."""

    assignments: Mapping[str, list[int]]
    # and each assignment's eligible teams (positions in ``problem.teams``, ascending)
    teams: Mapping[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of_pairs(cls, problem: Problem, pairs: Iterable[Pair]) -> EligibleByTeam:
        position = {a.assignment_id: j for j, a in enumerate(problem.assignments)}
        team_position = {t.team_id: i for i, t in enumerate(problem.teams)}
        found: dict[str, list[int]] = {}
        teams: dict[str, list[int]] = {}
        for pair in pairs:
            if pair.assignment_id in position and pair.team_id in team_position:
                found.setdefault(pair.team_id, []).append(position[pair.assignment_id])
                teams.setdefault(pair.assignment_id, []).append(team_position[pair.team_id])
        return cls({t: sorted(js) for t, js in found.items()}, {a: sorted(ts) for a, ts in teams.items()})

    def teams_of(self, assignment_ids: list[str]) -> Mapping[str, list[int]]:
        """The eligible teams of each of these assignments that has any, asked for together (the arrays' view
        finds them in one pass: ``_TeamsByAssignment.many``)."""
        many = getattr(self.teams, "many", None)
        if many is not None:
            found: Mapping[str, list[int]] = many(assignment_ids)
            return found
        return {a: self.teams[a] for a in assignment_ids if a in self.teams}

    def pairs(self, problem: Problem) -> list[Pair]:
        jobs = problem.assignments
        return [Pair(t, jobs[j].assignment_id) for t, js in self.assignments.items() for j in js]

    def ranked(self, problem: Problem) -> list[Pair]:
        """The eligible pairs the team ranked, by team (in the problem's order) and rank: the only ones
        that can block."""
        position = {a.assignment_id: j for j, a in enumerate(problem.assignments)}
        found = []
        for t in problem.teams:
            if t.preferences and (mine := self.assignments.get(t.team_id)):
                last = len(mine)
                for aid in t.preferences:  # (each a binary search in the team's positions, ascending)
                    j = position.get(aid)
                    if j is not None and (k := bisect_left(mine, j)) < last and mine[k] == j:
                        found.append(Pair(t.team_id, aid))
        return found


def _reason(code: str, counts: dict[str, int]) -> dict[str, Any]:
    return {"reason": code, **REASONS[code], "counts": counts}


class Candidates:
    """The eligibility filters applied to one assignment's teams, or one team's assignments, in order,
    counting what each filter removes. Teams and assignments are indexed once by level, skill, period and
    working area, so only the few candidates left are checked for reach and forbids one by one."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.teams, self.jobs = problem.teams, problem.assignments
        self.teams_of_level: dict[str, set[int]] = {}
        for i, t in enumerate(self.teams):
            self.teams_of_level.setdefault(t.level, set()).add(i)
        self.jobs_accepting: dict[str, set[int]] = {}
        for j, a in enumerate(self.jobs):
            for level in a.accepted_levels:
                self.jobs_accepting.setdefault(level, set()).add(j)
        self.jobs_in_area = {j for j, a in enumerate(self.jobs) if in_working_area(problem, a)}
        self._covered: dict[frozenset[str], set[int]] = {}
        # for the counts of ``for_team`` given the team's eligible assignments: the assignments per
        # required skill set, accepted level and period (counted, and listed where outside the working area)
        self.required_sets: dict[frozenset[str], dict[tuple[str, str], list[int]]] = {}
        self.outside_cells: dict[tuple[frozenset[str], str, str], list[int]] = {}  # outside the working area
        self.level_counts = {level: len(jobs) for level, jobs in self.jobs_accepting.items()}
        for j, a in enumerate(self.jobs):
            cells = self.required_sets.setdefault(a.required_skills, {})
            for level in a.accepted_levels:
                cells.setdefault((level, a.period), []).append(j)
                if j not in self.jobs_in_area:
                    self.outside_cells.setdefault((a.required_skills, level, a.period), []).append(j)
        self._class_counts: dict[tuple[str, frozenset[str], frozenset[str]], tuple[int, int, list[int]]] = {}
        self._skill_bits: dict[str, int] = {}  # a bit per skill some assignment requires (_sets_of_level)
        self._level_sets: dict[str, list[tuple[int, frozenset[str], int, dict[str, list[int]]]]] = {}
        self.forbidden_of: dict[str, list[str]] = {}
        self.forbidden_for: dict[str, list[str]] = {}
        for pair in problem.forbidden:
            self.forbidden_of.setdefault(pair.team_id, []).append(pair.assignment_id)
            self.forbidden_for.setdefault(pair.assignment_id, []).append(pair.team_id)
        self._assignment_counts: dict[tuple[frozenset[str], frozenset[str], str], tuple[int, int, int]] = {}
        self._covering: dict[frozenset[str], int] = {}  # the teams with every skill of the set, as bits

    # the indexes the plain filters (``for_assignment``, ``for_team``) read, made on first use: the counts per
    # class (``for_assignment_eligible``, ``team_left``) do without them
    @cached_property
    def teams_with_skill(self) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for i, t in enumerate(self.teams):
            for skill in t.skills:
                found.setdefault(skill, set()).add(i)
        return found

    @cached_property
    def teams_in_period(self) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for i, t in enumerate(self.teams):
            for period in t.periods:
                found.setdefault(period, set()).add(i)
        return found

    @cached_property
    def jobs_requiring(self) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for j, a in enumerate(self.jobs):
            for skill in a.required_skills:
                found.setdefault(skill, set()).add(j)
        return found

    @cached_property
    def jobs_in_period(self) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for j, a in enumerate(self.jobs):
            found.setdefault(a.period, set()).add(j)
        return found

    @cached_property
    def jobs_needing_nothing(self) -> set[int]:
        return {j for j, a in enumerate(self.jobs) if not a.required_skills}

    @staticmethod
    def _steps(total: int, stages: list[set[int]]) -> Counter[str]:
        removed: Counter[str] = Counter()
        before = total
        for code, left in zip(FILTERS, stages, strict=True):
            removed[code] = before - len(left)
            before = len(left)
        return removed

    def _assignment_class(self, a: Assignment) -> tuple[int, int, int]:
        """For the assignments of ``a``'s accepted levels, required skills and period: how many teams
        pass the level filter, the skill filter too, and the period filter too. The teams are read as bits (a
        bit per team): those with every required skill are the skills' bits and-ed, counted per level and per
        level and period by ``int.bit_count``."""
        key = (a.accepted_levels, a.required_skills, a.period)
        found = self._assignment_counts.get(key)
        if found is None:
            with_skill, of_level, in_period = self._team_bits
            covering = self._covering.get(a.required_skills)
            if covering is None:  # the teams with every skill of the set
                covering = (1 << len(self.teams)) - 1
                for skill in a.required_skills:
                    covering &= with_skill.get(skill, 0)
                self._covering[a.required_skills] = covering
            levels = sorted(a.accepted_levels)
            found = self._assignment_counts[key] = (
                sum(len(self.teams_of_level.get(lv, ())) for lv in levels),
                sum((covering & of_level.get(lv, 0)).bit_count() for lv in levels),
                sum((covering & in_period.get((lv, a.period), 0)).bit_count() for lv in levels))
        return found

    @cached_property
    def _team_bits(self) -> tuple[dict[str, int], dict[str, int], dict[tuple[str, str], int]]:
        """The teams (bit i: ``problem.teams[i]``) with each skill, of each level, and of each level working in
        each period."""
        with_skill: dict[str, list[int]] = {}
        of_level: dict[str, list[int]] = {}
        in_period: dict[tuple[str, str], list[int]] = {}
        for i, t in enumerate(self.teams):
            of_level.setdefault(t.level, []).append(i)
            for skill in t.skills:
                with_skill.setdefault(skill, []).append(i)
            for p in set(t.periods):
                in_period.setdefault((t.level, p), []).append(i)
        size = (len(self.teams) + 7) // 8

        def bits(positions: list[int]) -> int:
            mask = bytearray(size)
            for i in positions:
                mask[i >> 3] |= 1 << (i & 7)
            return int.from_bytes(mask, "little")

        return ({k: bits(v) for k, v in with_skill.items()}, {k: bits(v) for k, v in of_level.items()},
                {k: bits(v) for k, v in in_period.items()})

    def for_assignment_eligible(self, a: Assignment, eligible: list[int]) -> tuple[Counter[str], list[Team]]:
        """``for_assignment`` where the assignment's eligible teams (positions, ascending) are known: the
        counts of the level, skill and period filters are read per class of assignments, and only the
        assignment's forbidden pairs are checked one by one (outside the working area: ``for_assignment``)."""
        if not in_working_area(self.problem, a):
            return self.for_assignment(a)
        level, skills, period = self._assignment_class(a)
        teams = self.problem.teams_by_id
        forbidden = sum(1 for tid in self.forbidden_for.get(a.assignment_id, ())
                        if tid in teams and failed_filter(self.problem, teams[tid], a) == "forbidden")
        reach = len(eligible) + forbidden
        removed: Counter[str] = Counter({"level": len(self.teams) - level, "skills": level - skills,
                                         "period": skills - period, "reach": period - reach, "working_area": 0,
                                         "forbidden": forbidden})
        return removed, [self.teams[i] for i in eligible]

    def for_assignment(self, a: Assignment) -> tuple[Counter[str], list[Team]]:
        """What each filter removed of the teams, and the eligible teams left."""
        level = set().union(*(self.teams_of_level.get(lv, set()) for lv in a.accepted_levels))
        skills = level.intersection(*(self.teams_with_skill.get(s, set()) for s in a.required_skills))
        period = skills & self.teams_in_period.get(a.period, set())
        reach = {i for i in period if reachable(self.teams[i], a)}
        area = reach if in_working_area(self.problem, a) else set()
        allowed = {i for i in area if Pair(self.teams[i].team_id, a.assignment_id) not in self.problem.forbidden}
        removed = self._steps(len(self.teams), [level, skills, period, reach, area, allowed])
        return removed, [self.teams[i] for i in sorted(allowed)]

    def _class_of(self, t: Team) -> tuple[int, int, list[int]]:
        """For the teams of ``t``'s level, skills and periods: how many assignments pass the level and
        skill filters, how many the period filter too, and those of them outside the working area."""
        key = (t.level, t.skills, frozenset(t.periods))
        found = self._class_counts.get(key)
        if found is None:
            # the required skill sets of the level's assignments as bits: a set is covered when none of its
            # bits is missing from the team's (about 2,000 classes and 100 sets in a national round)
            sets = self._sets_of_level(t.level)  # (gives the skills their bits)
            bits = self._skill_bits
            lacking = ~sum(bits.get(s, 0) for s in t.skills)
            skills = period = 0
            outside: list[int] = []
            outside_cells = self.outside_cells  # (none where every firm is in the working area)
            for mask, required, count, per_period in sets:
                if mask & lacking:
                    continue
                skills += count
                for p in key[2]:
                    jobs = per_period.get(p)
                    if jobs is not None:
                        period += len(jobs)
                        if outside_cells:
                            outside.extend(outside_cells.get((required, t.level, p), ()))
            found = self._class_counts[key] = (skills, period, sorted(outside))
        return found

    def _sets_of_level(self, level: str) -> list[tuple[int, frozenset[str], int, dict[str, list[int]]]]:
        """Per required skill set with assignments accepting ``level``: its bits, the set, how many such
        assignments and those per period (``required_sets``' cells of the level)."""
        found = self._level_sets.get(level)
        if found is None:
            bits = self._skill_bits
            found = self._level_sets[level] = []
            for required, cells in self.required_sets.items():
                per_period = {p: jobs for (lv, p), jobs in cells.items() if lv == level}
                if per_period:
                    mask = 0
                    for skill in required:
                        mask |= bits.setdefault(skill, 1 << len(bits))
                    found.append((mask, required, sum(map(len, per_period.values())), per_period))
        return found

    def team_left(self, t: Team, eligible: int) -> tuple[int, int, int, int, int, int]:
        """``for_team``'s counts where the team's number of eligible assignments is known: the assignments
        left after the level, skill, period, reach and working-area filters, and the pairs forbidden. The
        counts of the level, skill and period filters are read per class of teams (level, skills, periods),
        and only the assignments outside the working area and the team's forbidden pairs are checked one by
        one for reach (the same answer: tests/unit/test_matching_explanations.py compares the two)."""
        skills, period, outside = self._class_of(t)
        reach_outside = sum(1 for j in outside if reachable(t, self.jobs[j])) if outside else 0
        forbidden = 0
        if t.team_id in self.forbidden_of:
            jobs = self.problem.assignments_by_id
            forbidden = sum(1 for aid in self.forbidden_of[t.team_id]
                            if aid in jobs and failed_filter(self.problem, t, jobs[aid]) == "forbidden")
        area = eligible + forbidden
        return self.level_counts.get(t.level, 0), skills, period, area + reach_outside, area, forbidden

    def for_team(self, t: Team) -> tuple[Counter[str], list[Assignment]]:
        """What each filter removed of the assignments, and the eligible assignments left."""
        level = self.jobs_accepting.get(t.level, set())
        covered = self._covered.get(t.skills)
        if covered is None:  # teams share skill sets: each set's assignments are found once
            needs: Counter[int] = Counter()
            for skill in t.skills:
                needs.update(self.jobs_requiring.get(skill, ()))
            covered = self._covered[t.skills] = self.jobs_needing_nothing | {
                j for j, n in needs.items() if n == len(self.jobs[j].required_skills)}
        skills = level & covered
        period = skills & set().union(*(self.jobs_in_period.get(p, set()) for p in t.periods))
        reach = {j for j in period if reachable(t, self.jobs[j])}
        area = reach & self.jobs_in_area
        allowed = {j for j in area if Pair(t.team_id, self.jobs[j].assignment_id) not in self.problem.forbidden}
        removed = self._steps(len(self.jobs), [level, skills, period, reach, area, allowed])
        return removed, [self.jobs[j] for j in sorted(allowed)]


def _left(removed: Counter[str], total: int, names: dict[str, str]) -> tuple[dict[str, int], str | None]:
    """Counts after each filter, and the first filter after which no candidate was left."""
    counts, left, emptied = {}, total, None
    for code in FILTERS:
        left -= removed[code]
        if code in names:
            counts[names[code]] = left
        if left == 0 and emptied is None and total:
            emptied = code
    return counts, emptied if total else "level"


class Capacities:
    """The capacity rows of a matching, to tell which ones would break if a pair were added. A row's
    label, bound and sum at the matching do not depend on the pairs it holds besides the matching's, so
    they are read per cell and firm from the matching's counts (``every_row=True``: from rows built over
    ``eligible`` by ``hard_rows``, the plain version the tests compare this with)."""

    def __init__(self, problem: Problem, matching: Iterable[Pair], eligible: Iterable[Pair] = (), *,
                 every_row: bool = False) -> None:
        chosen = set(matching)
        self.problem, self.every_row = problem, every_row
        self.rows_of: dict[Pair, list[tuple[Row, float]]] = {}
        self.used: dict[int, float] = {}
        if every_row:
            self.values = values_of(chosen)
            for row in hard_rows(problem, set(eligible) | chosen):
                if row.group in CAPACITY_GROUPS and row.sense == "<=":
                    for key, coef in row.terms:
                        if isinstance(key, Pair) and coef > 0:
                            self.rows_of.setdefault(key, []).append((row, coef))
            return
        teams, jobs = problem.teams_by_id, problem.assignments_by_id
        self.cells, self.caps_of = limit_indices(problem)
        self.teams_in = [0.0] * len(problem.capacities)
        self.hours_in = [0.0] * len(problem.capacities)
        self.per_firm: Counter[str] = Counter()
        self.staffed: Counter[str] = Counter()
        for pair in chosen:
            t, a = teams.get(pair.team_id), jobs.get(pair.assignment_id)
            if t is None or a is None:
                continue
            self.per_firm[a.firm_id] += 1
            self.staffed[a.assignment_id] += 1
            for c in self.cells.get((t.institution_id, a.period, t.level), []):
                self.teams_in[c] += 1
                self.hours_in[c] += a.supervision_hours
        # the rows that would break, per (institution, period, level), with the hours, and per firm: _binding
        self.cell_rows: dict[tuple[str, str, str], list[Row]] = {}
        self.hours_rows_of: dict[tuple[tuple[str, str, str], float], list[Row]] = {}
        self.firm_rows_of: dict[str, list[Row]] = {}
        self._cell_limits: dict[tuple[str, str, str, float], list[Row]] = {}  # limit_rows_of

    def lhs(self, row: Row) -> float:
        if id(row) not in self.used:
            self.used[id(row)] = row.lhs(self.values)
        return self.used[id(row)]

    def binding(self, pair: Pair, groups: Iterable[str] = CAPACITY_GROUPS) -> list[Row]:
        wanted = set(groups)
        if self.every_row:
            return [row for row, coef in self.rows_of.get(pair, [])
                    if row.group in wanted and self.lhs(row) + coef > row.rhs + 1e-6]
        t, a = self.problem.teams_by_id.get(pair.team_id), self.problem.assignments_by_id.get(pair.assignment_id)
        if t is None or a is None:
            return []
        return list(self._binding(t, a, tuple(sorted(wanted))))

    def limit_rows_of(self, t: Team, a: Assignment) -> list[Row]:
        """``binding_of`` for the limits (institution capacity, supervision hours, firm cap), read only:
        the institution's rows depend on the team's institution and level and the assignment's period and
        hours only (a few hundred of them in a national round, asked about for every eligible pair of a free
        team), the firm's on the firm only."""
        if self.every_row:
            return self.binding(Pair(t.team_id, a.assignment_id), LIMITS)
        rows = self.cell_limit_rows(t, a)
        if a.firm_id in self.caps_of:
            firm = self._binding(t, a, LIMITS[2:])
            if firm:
                rows = rows + firm
        return rows

    def cell_limit_rows(self, t: Team, a: Assignment) -> list[Row]:
        """``limit_rows_of`` less the firm's caps: the institution's rows (capacity, supervision hours)
        adding (t, a) would break, found once per institution, level, period and hours."""
        key = (t.institution_id, t.level, a.period, a.supervision_hours)
        rows = self._cell_limits.get(key)
        if rows is None:
            rows = self._cell_limits[key] = self._binding(t, a, LIMITS[:2])
        return rows

    def binding_of(self, t: Team, a: Assignment, groups: tuple[str, ...]) -> list[Row]:
        """``binding`` of the pair (t, a), read only (the rows found are shared between pairs)."""
        if self.every_row:
            return self.binding(Pair(t.team_id, a.assignment_id), groups)
        return self._binding(t, a, groups)

    def _binding(self, t: Team, a: Assignment, groups: tuple[str, ...]) -> list[Row]:
        """The rows adding (t, a) would break. Those of the institution's cell depend on the team's
        institution and level and the assignment's period only (its hours row on the assignment's hours too),
        the firm's caps on the firm only: each found once and shared by the tens of thousands of pairs asked
        about; the assignment's own maximum is checked per pair."""
        cell = (t.institution_id, a.period, t.level)
        found: list[Row] = []
        if "institution_capacity" in groups:
            rows = self.cell_rows.get(cell)
            if rows is None:  # (a row is made only when found binding)
                caps = self.problem.capacities
                rows = self.cell_rows[cell] = [
                    Row("institution_capacity", capacity_label(caps[c]), (), "<=", caps[c].teams)
                    for c in self.cells.get(cell, []) if self.teams_in[c] + 1 > caps[c].teams + 1e-6]
            found += rows
        hours = a.supervision_hours
        if "supervision_hours" in groups and hours > 0:
            rows = self.hours_rows_of.get((cell, hours))
            if rows is None:
                caps = self.problem.capacities
                rows = self.hours_rows_of[(cell, hours)] = [
                    Row("supervision_hours", capacity_label(caps[c]), (), "<=", caps[c].supervision_hours)
                    for c in self.cells.get(cell, []) if self.hours_in[c] + hours > caps[c].supervision_hours + 1e-6]
            found += rows
        if "firm_cap" in groups:
            found += self.firm_rows(a)
        if "assignment_max_teams" in groups:  # its sum at the matching: the teams less the maximum, once staffed
            staffed = self.staffed.get(a.assignment_id, 0)
            if staffed - (a.max_teams if staffed else 0) + 1 > 1e-6:
                found.append(Row("assignment_max_teams", f"assignment {a.assignment_id}", (), "<=", 0))
        return found


    def firm_rows(self, a: Assignment) -> list[Row]:
        """The firm caps adding a team to ``a`` would break (the same for every team)."""
        rows = self.firm_rows_of.get(a.firm_id)
        if rows is None:
            firm_caps = self.problem.firm_caps
            rows = self.firm_rows_of[a.firm_id] = [
                Row("firm_cap", f"firm {firm_caps[k].firm_id}", (), "<=", firm_caps[k].max_teams)
                for k in self.caps_of.get(a.firm_id, [])
                if self.per_firm[a.firm_id] + 1 > firm_caps[k].max_teams + 1e-6]
        return rows


class FreeTeamFlags:
    """A free team's eligible assignments read as flags per position in ``problem.assignments`` rather
    than pair by pair: per institution and level, one byte per position (``of_class``) with the bits
    BLOCKED (a limit would break: ``Capacities.limit_rows_of`` not empty), OPEN (neither blocked nor full),
    FULL and STAFFED; a team's positions are read in one pass (``of_team``) and each bit counted by
    ``bytes.translate`` and ``count``, in C. A position's limits depend on its period and hours (a code, a
    handful in a round) and its firm's caps only: per institution and level, each code's rows are found once
    and the bytes made from each position's state (code, firm blocked, full, staffed) by translate."""

    BLOCKED, OPEN, FULL, STAFFED = (bytes((v >> bit) & 1 for v in range(256)) for bit in range(4))

    def __init__(self, problem: Problem, capacities: Capacities, staffed: Mapping[str, int]) -> None:
        jobs = problem.assignments
        self.capacities = capacities
        codes: dict[tuple[str, float], int] = {}
        self.sample: list[Assignment] = []  # an assignment of each code
        state: list[int] = []
        # what a position's rows depend on, as a number: its code and its firm (if the firm's caps bind); and
        # a position of each such number
        self.key: list[int] = []
        self.position_of: dict[int, int] = {}
        firms: dict[str, int] = {}
        for j, a in enumerate(jobs):
            c = codes.setdefault((a.period, a.supervision_hours), len(codes))
            if c == len(self.sample):
                self.sample.append(a)
            firm = bool(capacities.firm_rows(a))
            n = staffed.get(a.assignment_id, 0)
            state.append(c * 8 + firm * 4 + (n >= a.max_teams) * 2 + (n > 0))
            key = c * (len(jobs) + 1) + (firms.setdefault(a.firm_id, len(firms) + 1) if firm else 0)
            self.key.append(key)
            self.position_of.setdefault(key, j)
        self.states = len(codes) * 8
        self.state: bytes | list[int] = bytes(state) if self.states <= 256 else state
        self._of_class: dict[tuple[str, str], bytes] = {}

    def of_class(self, t: Team) -> bytes:
        """For the teams of ``t``'s institution and level: each position's bits."""
        key = (t.institution_id, t.level)
        found = self._of_class.get(key)
        if found is None:
            cell = [bool(self.capacities.cell_limit_rows(t, a)) for a in self.sample]

            def bits(v: int) -> int:  # a position's state: code, firm blocked, full, staffed
                blocked, full = cell[v >> 3] or bool(v & 4), bool(v & 2)
                return blocked | (not blocked and not full) << 1 | full << 2 | (v & 1) << 3

            if isinstance(self.state, bytes):
                found = self.state.translate(bytes(bits(v) if v < self.states else 0 for v in range(256)))
            else:  # more than 32 codes (periods and hours): the same, through Python
                found = bytes(map(bits, self.state))
            self._of_class[key] = found
        return found

    def rows(self, t: Team, positions: list[int], blocked: bytes) -> list[Row]:
        """The limit rows of the blocked positions (``blocked``: the BLOCKED bit of each, in the order of
        ``positions``), asked of one position per code and firm (in no order: ``_described`` sorts them)."""
        jobs = self.capacities.problem.assignments
        keys = set(map(self.key.__getitem__, compress(positions, blocked)))
        return [r for k in keys for r in self.capacities.limit_rows_of(t, jobs[self.position_of[k]])]


# the capacities a pair can break besides its assignment's maximum (the institution's rows first)
LIMITS = ("institution_capacity", "supervision_hours", "firm_cap")


def _described(rows: Iterable[Row]) -> list[dict[str, Any]]:
    unique = {(r.group, r.label): r for r in rows}
    return [{"group": g, "label": label, "en": GROUPS[g]["en"], "nl": GROUPS[g]["nl"]}
            for g, label in sorted(unique)]


def explain(problem: Problem, matching: Iterable[Pair],
            run_pairs: Mapping[Pair, float] | EligibleByTeam | None = None, *,
            every_row: bool = False) -> dict[str, Any]:
    """``run_pairs``: the run's eligible pairs, when already computed (as a mapping or per team).

    The capacity rows that say why a pair could not be added are built over the matching and the pairs
    asked about only (a free eligible team of an unmatched assignment, an eligible assignment of an
    unmatched team): a row's label, bound and sum at the matching do not depend on the other pairs, so
    the answer is the same as with rows over every eligible pair (``every_row=True``, the plain version;
    tests/unit/test_matching_explanations.py compares the two on random rounds) at a fraction of the cost.
    Likewise a free team's filter counts are read per class of teams (``Candidates.team_left``)
    and its eligible assignments from ``run_pairs``, where the plain version filters every assignment."""
    chosen = sorted(set(matching), key=pair_key)
    teams = problem.teams_by_id
    assignments = problem.assignments_by_id
    busy = {(p.team_id, assignments[p.assignment_id].period) for p in chosen if p.assignment_id in assignments}
    placed = {p.team_id for p in chosen}
    staffed = Counter(p.assignment_id for p in chosen)
    if isinstance(run_pairs, EligibleByTeam):
        by_team = run_pairs
        all_eligible: Iterable[Pair] = by_team.pairs(problem) if every_row else by_team.ranked(problem)
    else:
        all_eligible = eligible_pairs(problem) if run_pairs is None else run_pairs
        by_team = EligibleByTeam.of_pairs(problem, all_eligible)
    candidates = Candidates(problem)
    limits = LIMITS
    if every_row:
        open_assignments = [(a, *candidates.for_assignment(a)) for a in problem.assignments
                            if not staffed[a.assignment_id]]
    else:
        unstaffed = [a for a in problem.assignments if not staffed[a.assignment_id]]
        teams_of = by_team.teams_of([a.assignment_id for a in unstaffed])
        open_assignments = [(a, *candidates.for_assignment_eligible(a, list(teams_of.get(a.assignment_id, []))))
                            for a in unstaffed]
    free_teams: list[tuple[Team, Counter[str], list[Assignment]]] = []  # (plain)
    free_positions: list[tuple[Team, list[int]]] = []  # (positions, read by FreeTeamFlags)
    no_positions: list[int] = []
    if every_row:
        free_teams = [(team, *candidates.for_team(team)) for team in problem.teams if team.team_id not in placed]
    else:
        positions = by_team.assignments
        free_positions = [(team, positions.get(team.team_id, no_positions)) for team in problem.teams
                          if team.team_id not in placed]
    asked = list(all_eligible) if every_row else []  # (per team: every eligible pair when every_row)
    capacities = Capacities(problem, chosen, asked, every_row=every_row)

    unmatched_assignments = []
    for a, removed, eligible in open_assignments:
        counts, emptied = _left(removed, len(problem.teams), ASSIGNMENT_COUNT_NAMES)
        free = [t for t in eligible if (t.team_id, a.period) not in busy]
        # the rows depend on the team's institution and level only: asked once per class of free teams (the
        # plain version, every_row, asks per pair)
        by_class: dict[tuple[str, str], list[Row]] = {}
        blocked = {}
        for t in free:
            key = (t.team_id, "") if every_row else (t.institution_id, t.level)
            rows = by_class.get(key)
            if rows is None:
                rows = by_class[key] = capacities.binding_of(t, a, limits)
            blocked[t.team_id] = rows
        usable = [t for t in free if not blocked[t.team_id]]
        counts.update({"teams": len(problem.teams), "forbidden": removed["forbidden"], "eligible": len(eligible),
                       "eligible_matched_elsewhere": len(eligible) - len(free),
                       "eligible_blocked_by_capacity": len(free) - len(usable), "min_teams": a.min_teams})
        binding: list[dict[str, Any]] = []
        if emptied is not None:
            code = ASSIGNMENT_FILTER_REASONS[emptied]
        elif len(eligible) < a.min_teams:
            code = "too_few_eligible_teams"
        elif len(usable) < a.min_teams and len(usable) < len(free):
            code = "capacity_ran_out"
            binding = _described(r for rows in blocked.values() for r in rows)
        elif len(usable) < a.min_teams:
            code = "eligible_teams_went_elsewhere"
        else:
            code = "not_chosen"
        unmatched_assignments.append({"assignment_id": a.assignment_id, **_reason(code, counts),
                                      "removed": {f: removed[f] for f in FILTERS}, "binding": binding})

    # the fast version reads each free team's eligible assignments as flags per position (FreeTeamFlags); the
    # plain one, below, asks about each pair
    unmatched_teams = _free_teams_explained(problem, candidates, capacities, staffed, free_positions) \
        if free_positions else []
    for team, removed, usable_assignments in free_teams:
        counts, emptied = _left(removed, len(problem.assignments), TEAM_COUNT_NAMES)
        # one pass over the team's eligible assignments: the capacity rows adding each would break, how many
        # are full, staffed, blocked
        blocked_rows: list[list[Row]] = []
        full = taken = 0
        stuck = True  # every eligible assignment full or blocked by capacity
        for a in usable_assignments:
            rows = capacities.limit_rows_of(team, a)
            n = staffed.get(a.assignment_id, 0)
            taken += n > 0
            full += n >= a.max_teams
            if rows:
                blocked_rows.append(rows)
            elif n < a.max_teams:
                stuck = False
        counts.update({"assignments": len(problem.assignments), "forbidden": removed["forbidden"],
                       "eligible": len(usable_assignments), "eligible_full": full, "eligible_staffed": taken,
                       "eligible_closed": len(usable_assignments) - taken,
                       "eligible_blocked_by_capacity": len(blocked_rows)})
        binding = []
        if emptied is not None:
            code = TEAM_FILTER_REASONS[emptied]
        elif stuck and blocked_rows:
            code = "capacity_ran_out"
            binding = _described(r for rows in blocked_rows for r in rows)
        else:
            code = "eligible_assignments_went_to_other_teams"
        unmatched_teams.append({"team_id": team.team_id, **_reason(code, counts),
                                "removed": {f: removed[f] for f in FILTERS}, "binding": binding})

    matches = []
    fits: dict[Pair, FitParts] = {}  # each matched pair's fit, taken apart once (the figures sum them)
    if isinstance(run_pairs, EligibleByTeam) and not every_row:  # a matched pair is eligible: among the team's
        position = {a.assignment_id: j for j, a in enumerate(problem.assignments)}  # (ascending) positions

        def is_eligible(p: Pair) -> bool:
            js, j = by_team.assignments.get(p.team_id, ()), position[p.assignment_id]
            k = bisect_left(js, j)
            return k < len(js) and js[k] == j
    else:
        def is_eligible(p: Pair) -> bool:
            return ineligibility(problem, p) is None
    for p in chosen:
        matched_team, assignment = teams.get(p.team_id), assignments.get(p.assignment_id)
        if matched_team is None or assignment is None:
            continue
        parts = fits[p] = fit_parts(matched_team, assignment)
        if not is_eligible(p):
            continue
        score = dict(zip(BREAKDOWN_FIELDS, parts, strict=True))  # as FitBreakdown's fields, in their order
        score["total"] = parts_total(parts)
        matches.append({"team_id": p.team_id, "assignment_id": p.assignment_id, "score": score})

    return {"unmatched_assignments": unmatched_assignments, "unmatched_teams": unmatched_teams,
            "matches": matches, "filters": FILTERS,
            "figures": figures(problem, chosen, all_eligible, fits, ranked_eligible=None if every_row or not isinstance(
                run_pairs, EligibleByTeam) else all_eligible)}


def _free_teams_explained(problem: Problem, candidates: Candidates, capacities: Capacities,
                          staffed: Mapping[str, int], free: list[tuple[Team, list[int]]]) -> list[dict[str, Any]]:
    """The free teams' reasons as ``explain``'s loop over each eligible pair gives them (its plain version,
    every_row, which the tests compare this with): the filter counts per class of teams
    (``Candidates.team_left``), the counts of the team's eligible assignments summed over flags per position
    in C."""
    flags = FreeTeamFlags(problem, capacities, staffed)
    blocked_bit, open_bit, full_bit, staffed_bit = flags.BLOCKED, flags.OPEN, flags.FULL, flags.STAFFED
    n_jobs = len(problem.assignments)
    # the names of the counts left after the level, skill, period, reach and working-area filters (``_left``)
    level_name, skills_name, period_name, reach_name, area_name = (TEAM_COUNT_NAMES[f] for f in FILTERS
                                                                   if f in TEAM_COUNT_NAMES)
    texts = {code: (REASONS[code]["en"], REASONS[code]["nl"]) for code in REASONS}
    team_left, of_class = candidates.team_left, flags.of_class
    explained = []
    for team, js in free:
        level, skills, period, reach, area, forbidden = team_left(team, len(js))
        mine = bytes(map(of_class(team).__getitem__, js))  # the bits of the team's eligible assignments
        blocked = mine.translate(blocked_bit)
        n_blocked = blocked.count(1)
        taken = mine.translate(staffed_bit).count(1)
        counts = {level_name: level, skills_name: skills, period_name: period, reach_name: reach,
                  area_name: area, "assignments": n_jobs, "forbidden": forbidden, "eligible": len(js),
                  "eligible_full": mine.translate(full_bit).count(1), "eligible_staffed": taken,
                  "eligible_closed": len(js) - taken, "eligible_blocked_by_capacity": n_blocked}
        binding: list[dict[str, Any]] = []
        # the first filter after which no assignment was left names the reason (``_left``)
        if not n_jobs or not level:
            code = TEAM_FILTER_REASONS["level"]
        elif not skills:
            code = TEAM_FILTER_REASONS["skills"]
        elif not period:
            code = TEAM_FILTER_REASONS["period"]
        elif not reach:
            code = TEAM_FILTER_REASONS["reach"]
        elif not area:
            code = TEAM_FILTER_REASONS["working_area"]
        elif not js:
            code = TEAM_FILTER_REASONS["forbidden"]
        elif n_blocked and 1 not in mine.translate(open_bit):  # every eligible assignment full or blocked
            code = "capacity_ran_out"
            binding = _described(flags.rows(team, js, blocked))
        else:
            code = "eligible_assignments_went_to_other_teams"
        en, nl = texts[code]
        explained.append({"team_id": team.team_id, "reason": code, "en": en, "nl": nl, "counts": counts,
                          "removed": {"level": n_jobs - level, "skills": level - skills, "period": skills - period,
                                      "reach": period - reach, "working_area": reach - area,
                                      "forbidden": forbidden},
                          "binding": binding})
    return explained


def _share(part: int, whole: int) -> dict[str, Any]:
    return {"served": part, "total": whole, "share": round(part / whole, 4) if whole else None}


def preference_profile(problem: Problem, matching: Iterable[Pair],
                       fits: Mapping[Pair, FitParts] | None = None) -> dict[str, int]:
    """Per matched pair, which choice of the team it was ("1", "2", ... or "unranked"); and the teams
    left without any assignment ("unmatched"). ``fits``: matched pairs' fits taken apart (``fit_parts``), when
    already made: where they are every matched pair's, the team's rank is read from them."""
    chosen = set(matching)
    profile: Counter[str] = Counter()
    if fits is not None and len(fits) == len(chosen):  # (its pairs are the matching's: every one of them)
        profile.update("unranked" if r is None else str(r) for r in (parts[5] for parts in fits.values()))
    else:
        for p in chosen:
            team = problem.team(p.team_id)
            rank = team_rank(team, p.assignment_id) if team is not None else None
            profile["unranked" if rank is None else str(rank)] += 1
    placed = {p.team_id for p in chosen}
    ranks = [str(r) for r in range(1, problem.max_rank + 1)]
    return {**{r: profile[r] for r in ranks}, "unranked": profile["unranked"],
            "unmatched": sum(1 for t in problem.teams if t.team_id not in placed)}


def unused_capacity(problem: Problem, matching: Iterable[Pair]) -> list[dict[str, Any]]:
    """Per registered capacity (institution, period, level): teams and supervision hours used and left."""
    used: Counter[tuple[str, str, str]] = Counter()
    hours: dict[tuple[str, str, str], float] = {}
    teams, jobs = problem.teams_by_id, problem.assignments_by_id
    for p in set(matching):  # (the hours summed in the set's order, as ever)
        team, assignment = teams.get(p.team_id), jobs.get(p.assignment_id)
        if team is not None and assignment is not None:
            key = (team.institution_id, assignment.period, team.level)
            used[key] += 1
            hours[key] = hours.get(key, 0.0) + assignment.supervision_hours
    shown = []
    for c in problem.capacities:
        key = (c.institution_id, c.period, c.level)
        shown.append({"institution_id": c.institution_id, "period": c.period, "level": c.level,
                      "teams": c.teams, "teams_used": used[key], "teams_unused": c.teams - used[key],
                      "supervision_hours": c.supervision_hours, "supervision_hours_used": hours.get(key, 0.0),
                      "supervision_hours_unused": c.supervision_hours - hours.get(key, 0.0)})
    return shown


def figures(problem: Problem, matching: Iterable[Pair], eligible: Iterable[Pair] | None = None,
            fits: Mapping[Pair, FitParts] | None = None, *,
            ranked_eligible: Iterable[Pair] | None = None) -> dict[str, Any]:
    """Served shares (assignments by accepted level and by region, teams by level and by institution),
    the teams' preference profile, blocking pairs (for any policy) and unused capacity. ``fits``: the
    matched pairs' fits, when already taken apart (``fit_parts``: every matched pair whose team and assignment
    exist).
    ``ranked_eligible``: the eligible pairs the teams ranked, by team and rank, when already listed
    (``EligibleByTeam.ranked``)."""
    chosen = set(matching)
    served_assignments = {p.assignment_id for p in chosen}
    placed_teams = {p.team_id for p in chosen}
    levels = sorted({lv for a in problem.assignments for lv in a.accepted_levels}
                    | {t.level for t in problem.teams})
    institutions = sorted({t.institution_id for t in problem.teams})
    regions = sorted({a.region or "" for a in problem.assignments})
    # only a pair the team ranked can block: those are the pairs looked at (in the same order)
    if ranked_eligible is not None:
        ranked = list(ranked_eligible)
    else:
        if eligible is None:
            eligible = eligible_pairs(problem)
        known = eligible if isinstance(eligible, (Mapping, set, frozenset)) else set(eligible)
        ranked = [p for t in problem.teams for aid in t.preferences if (p := Pair(t.team_id, aid)) in known]
    blocking = blocking_pairs(problem, chosen, ranked)
    # each share counted per level, region and institution (of all, and of those served), by Counter's own loop
    jobs, served_jobs = problem.assignments, [job for job in problem.assignments
                                              if job.assignment_id in served_assignments]
    by_level = Counter(lv for job in jobs for lv in job.accepted_levels)
    by_level_served = Counter(lv for job in served_jobs for lv in job.accepted_levels)
    by_region = Counter([job.region or "" for job in jobs])
    by_region_served = Counter([job.region or "" for job in served_jobs])
    placed = [team for team in problem.teams if team.team_id in placed_teams]
    team_level, team_level_placed = Counter([t.level for t in problem.teams]), Counter([t.level for t in placed])
    by_institution = Counter([t.institution_id for t in problem.teams])
    by_institution_placed = Counter([t.institution_id for t in placed])
    return {
        "assignments": _share(len(served_assignments), len(problem.assignments)),
        "assignments_by_accepted_level": {lv: _share(by_level_served[lv], by_level[lv]) for lv in levels},
        "assignments_by_region": {r: _share(by_region_served[r], by_region[r]) for r in regions},
        "teams_by_level": {lv: _share(team_level_placed[lv], team_level[lv]) for lv in levels},
        "teams_by_institution": {i: _share(by_institution_placed[i], by_institution[i]) for i in institutions},
        "preference_profile": preference_profile(problem, chosen, fits),
        "blocking_pairs": {"count": len(blocking), "first": [
            {"team_id": p.team_id, "assignment_id": p.assignment_id} for p in blocking[:BLOCKING_SHOWN]]},
        "unused_capacity": unused_capacity(problem, chosen),
        "unused_teams": sorted(t.team_id for t in problem.teams if t.team_id not in placed_teams),
        "matches": len(chosen),
        # fsum: exactly rounded, so the total does not depend on the order of the set (nor on the process)
        "total_fit": float(fsum(parts_total(f) for f in map(fits.get, chosen) if f is not None) if fits is not None else
                           fsum(fit_breakdown(t, a).total for p in chosen
                                if (t := problem.team(p.team_id)) and (a := problem.assignment(p.assignment_id)))),
    }


# ---- before solving -------------------------------------------------------------------------

ANY_SKILL = "*"


def precheck(problem: Problem, eligible: Mapping[Pair, float] | EligibleByTeam | None = None, *,
             supply_counts: Mapping[tuple[str, str, str, str], int] | None = None) -> dict[str, Any]:
    """Supply against demand per level x period x region x skill, before solving. Demand: the minimum
    team counts of the assignments in the cell (an assignment counts in each level it accepts, and in
    each required skill as well as in "*", any skill). Supply: the teams that could serve one of them
    (every eligibility filter applied). A cell short of supply does not stop the run; it says where
    assignments must stay empty."""
    if supply_counts is not None:  # the supply counted from the arrays (``matching.solver.arrays.precheck_supply``)
        return _checked(problem, supply_counts)
    servers: dict[str, set[str]] = {}
    if isinstance(eligible, EligibleByTeam):
        jobs = problem.assignments
        for team_id, positions in eligible.assignments.items():
            for j in positions:
                servers.setdefault(jobs[j].assignment_id, set()).add(team_id)
    else:
        for p in eligible_pairs(problem) if eligible is None else eligible:
            servers.setdefault(p.assignment_id, set()).add(p.team_id)
    supply: dict[tuple[str, str, str, str], set[str]] = {}
    teams = problem.teams_by_id
    for a in problem.assignments:
        for level in sorted(a.accepted_levels):
            able = {t for t in servers.get(a.assignment_id, ()) if teams[t].level == level}
            for skill in (ANY_SKILL, *sorted(a.required_skills)):
                supply.setdefault((level, a.period, a.region or "", skill), set()).update(able)
    return _checked(problem, {cell: len(able) for cell, able in supply.items()})


def _checked(problem: Problem, supply: Mapping[tuple[str, str, str, str], int]) -> dict[str, Any]:
    """The pre-check's answer from the supply per cell (cells without an entry: no supply)."""
    # per cell: [demand, assignments] (plain dicts: a Counter calls Python code for each new key)
    counted: dict[tuple[str, str, str, str], list[int]] = {}
    for a in problem.assignments:
        least, period, region, skills = a.min_teams, a.period, a.region or "", (ANY_SKILL, *a.required_skills)
        for level in a.accepted_levels:
            for skill in skills:
                cell = (level, period, region, skill)
                sums = counted.get(cell)
                if sums is None:
                    counted[cell] = [least, 1]
                else:
                    sums[0] += least
                    sums[1] += 1
    cells = []
    for cell in sorted(counted):
        level, period, region, skill = cell
        demand, assignments_in = counted[cell]
        supplied = supply.get(cell, 0)
        cells.append({"level": level, "period": period, "region": region or None, "skill": skill,
                      "assignments": assignments_in, "demand": demand, "supply": supplied,
                      "short_by": max(0, demand - supplied)})
    short_cells = [c for c in cells if c["short_by"]]
    unknown = unknown_preferences(problem)
    return {
        "cells": cells,
        "short_cells": len(short_cells),
        "message": (f"{len(short_cells)} of {len(cells)} cells have less supply than demand; their assignments "
                    "cannot all be staffed" if short_cells else "supply covers demand in every cell"),
        "message_nl": (f"{len(short_cells)} van {len(cells)} cellen hebben minder aanbod dan vraag; hun opdrachten "
                       "kunnen niet allemaal bemand worden" if short_cells else "het aanbod dekt de vraag in elke cel"),
        "unknown_preferences": unknown,
        "unknown_preferences_message": (
            f"{len(unknown)} ranked assignments are not in the batch and play no part in this run: "
            + ", ".join(f"team {u['team_id']} choice {u['rank']} ({u['assignment_id']})" for u in unknown)
            if unknown else "every ranked assignment is in the batch"),
        "unknown_preferences_message_nl": (
            f"{len(unknown)} gerangschikte opdrachten zitten niet in de batch en tellen in deze run niet mee: "
            + ", ".join(f"team {u['team_id']} keuze {u['rank']} ({u['assignment_id']})" for u in unknown)
            if unknown else "elke gerangschikte opdracht zit in de batch"),
    }


def unknown_preferences(problem: Problem) -> list[dict[str, Any]]:
    """Each team's ranked assignment that is not in the batch (by team, then rank): the ranks of the
    others stay as the team gave them, this one can never be matched and never blocks."""
    assignments = problem.assignments_by_id
    return [{"team_id": t.team_id, "assignment_id": aid, "rank": rank}
            for t in sorted(problem.teams, key=lambda t: t.team_id)
            for rank, aid in enumerate(t.preferences, start=1) if aid not in assignments]
