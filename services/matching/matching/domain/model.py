"""The matching problem, free of frameworks: inputs, eligibility, fit, the hard rules as linear rows,
and a validator that checks any proposed matching against those same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping


@dataclass(frozen=True)
class Team:
    team_id: str
    institution_id: str
    level: str
    skills: frozenset[str]


@dataclass(frozen=True)
class Assignment:
    assignment_id: str
    firm_id: str
    accepted_levels: frozenset[str]
    required_skills: frozenset[str]
    nice_to_have_skills: frozenset[str]
    min_teams: int
    max_teams: int


@dataclass(frozen=True, order=True)
class Pair:
    team_id: str
    assignment_id: str


@dataclass(frozen=True)
class Problem:
    """A batch's snapshot plus the coordinator's controls.

    ``pinned`` pairs must be in the matching, ``forbidden`` pairs never are; ``reference`` is the
    published matching a minimum-change re-run tries to keep.
    """

    teams: tuple[Team, ...]
    assignments: tuple[Assignment, ...]
    pinned: frozenset[Pair] = frozenset()
    forbidden: frozenset[Pair] = frozenset()
    reference: frozenset[Pair] = frozenset()

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any], *, pinned: Iterable[Pair] = (),
                      forbidden: Iterable[Pair] = (), reference: Iterable[Pair] = ()) -> Problem:
        teams = tuple(
            Team(t["team_id"], t["institution_id"], t["level"], frozenset(t["skills"]))
            for t in snapshot["teams"]
        )
        assignments = tuple(
            Assignment(a["assignment_id"], a["firm_id"], frozenset(a["accepted_levels"]),
                       frozenset(a["required_skills"]), frozenset(a["nice_to_have_skills"]),
                       a["min_teams"], a["max_teams"])
            for a in snapshot["assignments"]
        )
        return cls(teams, assignments, frozenset(pinned), frozenset(forbidden), frozenset(reference))

    def team(self, team_id: str) -> Team | None:
        return next((t for t in self.teams if t.team_id == team_id), None)

    def assignment(self, assignment_id: str) -> Assignment | None:
        return next((a for a in self.assignments if a.assignment_id == assignment_id), None)


# ---- fit ------------------------------------------------------------------------------------

BASE_FIT = 10.0
NICE_TO_HAVE_WEIGHT = 3.0
EXTRA_SKILL_WEIGHT = 0.5
MAX_EXTRA_SKILLS = 2


@dataclass(frozen=True)
class FitBreakdown:
    base: float
    nice_to_have_skills: tuple[str, ...]
    nice_to_have: float
    extra_skills: tuple[str, ...]
    extra: float

    @property
    def total(self) -> float:
        return self.base + self.nice_to_have + self.extra


def fit_breakdown(team: Team, assignment: Assignment) -> FitBreakdown:
    """A base for being eligible, points per nice-to-have skill, a little for other skills (at most two)."""
    nice = tuple(sorted(assignment.nice_to_have_skills & team.skills))
    extra = tuple(sorted(team.skills - assignment.required_skills - assignment.nice_to_have_skills))
    return FitBreakdown(BASE_FIT, nice, NICE_TO_HAVE_WEIGHT * len(nice), extra,
                        EXTRA_SKILL_WEIGHT * min(len(extra), MAX_EXTRA_SKILLS))


def fit(team: Team, assignment: Assignment) -> float:
    """How well a team suits an assignment."""
    return fit_breakdown(team, assignment).total


# ---- eligibility ----------------------------------------------------------------------------


def is_eligible(team: Team, assignment: Assignment) -> bool:
    return team.level in assignment.accepted_levels and assignment.required_skills <= team.skills


def ineligibility(problem: Problem, pair: Pair) -> str | None:
    """Why a pair can never be matched (None when it can): unknown, level, skills, forbidden."""
    team, assignment = problem.team(pair.team_id), problem.assignment(pair.assignment_id)
    if team is None:
        return "team is not in the batch"
    if assignment is None:
        return "assignment is not in the batch"
    if team.level not in assignment.accepted_levels:
        return f"level {team.level} is not accepted (accepts {', '.join(sorted(assignment.accepted_levels))})"
    missing = assignment.required_skills - team.skills
    if missing:
        return f"team lacks required skills: {', '.join(sorted(missing))}"
    if pair in problem.forbidden:
        return "pair is forbidden"
    return None


def eligible_pairs(problem: Problem) -> dict[Pair, float]:
    """Every pair that may be matched, with its fit: only these become variables."""
    by_level: dict[str, list[Team]] = {}
    for team in problem.teams:
        by_level.setdefault(team.level, []).append(team)
    pairs: dict[Pair, float] = {}
    for a in problem.assignments:
        for level in sorted(a.accepted_levels):
            for t in by_level.get(level, ()):
                pair = Pair(t.team_id, a.assignment_id)
                if a.required_skills <= t.skills and pair not in problem.forbidden:
                    pairs[pair] = fit(t, a)
    return pairs


# ---- the hard rules as linear rows ----------------------------------------------------------


@dataclass(frozen=True, order=True)
class Opened:
    """The open/closed decision of an assignment: staffed (1) or not (0)."""

    assignment_id: str


Key = Pair | Opened

# Constraint groups, in plain words (used by diagnoses and explanations).
GROUPS: dict[str, dict[str, str]] = {
    "team_at_most_one": {"en": "a team works on at most one assignment",
                         "nl": "een team werkt aan hoogstens één opdracht"},
    "assignment_max_teams": {"en": "an assignment gets at most its maximum number of teams",
                             "nl": "een opdracht krijgt hoogstens het maximale aantal teams"},
    "assignment_min_teams": {"en": "a staffed assignment gets at least its minimum number of teams",
                             "nl": "een bemande opdracht krijgt minstens het minimale aantal teams"},
    "pins": {"en": "every pinned pair is in the matching",
             "nl": "elk vastgezet paar zit in de indeling"},
}


@dataclass(frozen=True)
class Row:
    """One labelled linear constraint ``sum(coef * value[key]) <sense> rhs`` over 0/1 decisions."""

    group: str
    label: str
    terms: tuple[tuple[Key, float], ...]
    sense: str  # "<=" or ">="
    rhs: float
    pin: Pair | None = None  # the pinned pair a "pins" row stands for

    def lhs(self, values: Mapping[Key, float]) -> float:
        return sum(coef * values.get(key, 0.0) for key, coef in self.terms)

    def holds(self, values: Mapping[Key, float], tolerance: float = 1e-6) -> bool:
        lhs = self.lhs(values)
        return lhs <= self.rhs + tolerance if self.sense == "<=" else lhs >= self.rhs - tolerance


def _by(pairs: Iterable[Pair], attr: str) -> dict[str, list[Pair]]:
    grouped: dict[str, list[Pair]] = {}
    for pair in sorted(pairs):
        grouped.setdefault(getattr(pair, attr), []).append(pair)
    return grouped


def team_at_most_one(problem: Problem, pairs: Iterable[Pair]) -> Iterator[Row]:
    for team_id, team_pairs in sorted(_by(pairs, "team_id").items()):
        yield Row("team_at_most_one", f"team {team_id}", tuple((p, 1.0) for p in team_pairs), "<=", 1)


def assignment_team_range(problem: Problem, pairs: Iterable[Pair]) -> Iterator[Row]:
    """Between the minimum and maximum number of teams, or none: tied to the open/closed decision."""
    grouped = _by(pairs, "assignment_id")
    for a in problem.assignments:
        terms = tuple((p, 1.0) for p in grouped.get(a.assignment_id, []))
        opened = Opened(a.assignment_id)
        yield Row("assignment_max_teams", f"assignment {a.assignment_id}",
                  (*terms, (opened, -float(a.max_teams))), "<=", 0)
        yield Row("assignment_min_teams", f"assignment {a.assignment_id}",
                  (*terms, (opened, -float(a.min_teams))), ">=", 0)


def pinned_pairs(problem: Problem, pairs: Iterable[Pair]) -> Iterator[Row]:
    """A pinned pair is in the matching; a pin on a pair without a variable cannot hold (0 >= 1)."""
    eligible = set(pairs)
    for pin in sorted(problem.pinned):
        terms = ((pin, 1.0),) if pin in eligible else ()
        yield Row("pins", f"pin team {pin.team_id} on assignment {pin.assignment_id}", terms, ">=", 1, pin)


CONSTRAINT_FAMILIES = (team_at_most_one, assignment_team_range, pinned_pairs)


def hard_rows(problem: Problem, pairs: Iterable[Pair]) -> Iterator[Row]:
    chosen = list(pairs)
    for family in CONSTRAINT_FAMILIES:
        yield from family(problem, chosen)


# ---- the validator --------------------------------------------------------------------------


def values_of(matching: Iterable[Pair]) -> dict[Key, float]:
    """The 0/1 decisions a matching stands for: its pairs, and each assignment it staffs."""
    values: dict[Key, float] = {}
    for pair in matching:
        values[pair] = 1.0
        values[Opened(pair.assignment_id)] = 1.0
    return values


def violations(problem: Problem, matching: Iterable[Pair]) -> list[str]:
    """Every hard rule the matching breaks, checked with the optimiser's own rows; empty when feasible."""
    chosen = list(matching)
    found: list[str] = []
    eligible = eligible_pairs(problem)
    for pair in chosen:
        if pair not in eligible:
            reason = ineligibility(problem, pair) or "not eligible"
            found.append(f"ineligible pair {pair.team_id}/{pair.assignment_id}: {reason}")
    values = values_of(chosen)
    for row in hard_rows(problem, set(eligible) | set(chosen)):
        if not row.holds(values):
            found.append(f"{row.group}: {row.label} ({row.lhs(values):g} {row.sense} {row.rhs:g} broken)")
    return found
