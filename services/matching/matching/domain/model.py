"""The matching problem, free of frameworks: inputs, eligibility, fit, and a validator that
checks any proposed matching against the same rules the optimiser enforces."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping


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


@dataclass(frozen=True)
class Problem:
    teams: tuple[Team, ...]
    assignments: tuple[Assignment, ...]

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> Problem:
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
        return cls(teams, assignments)


@dataclass(frozen=True)
class Pair:
    team_id: str
    assignment_id: str


BASE_FIT = 10.0
NICE_TO_HAVE_WEIGHT = 3.0
EXTRA_SKILL_WEIGHT = 0.5


def is_eligible(team: Team, assignment: Assignment) -> bool:
    return team.level in assignment.accepted_levels and assignment.required_skills <= team.skills


def fit(team: Team, assignment: Assignment) -> float:
    """How well a team suits an assignment: a base for being eligible, plus nice-to-have skills."""
    nice = len(assignment.nice_to_have_skills & team.skills)
    extra = len(team.skills - assignment.required_skills - assignment.nice_to_have_skills)
    return BASE_FIT + NICE_TO_HAVE_WEIGHT * nice + EXTRA_SKILL_WEIGHT * min(extra, 2)


def eligible_pairs(problem: Problem) -> dict[Pair, float]:
    by_level: dict[str, list[Team]] = {}
    for team in problem.teams:
        by_level.setdefault(team.level, []).append(team)
    pairs: dict[Pair, float] = {}
    for a in problem.assignments:
        for level in sorted(a.accepted_levels):
            for t in by_level.get(level, ()):
                if a.required_skills <= t.skills:
                    pairs[Pair(t.team_id, a.assignment_id)] = fit(t, a)
    return pairs


def violations(problem: Problem, matching: Iterable[Pair]) -> list[str]:
    """Every hard rule the matching breaks; empty when it is feasible."""
    chosen = list(matching)
    teams = {t.team_id: t for t in problem.teams}
    assignments = {a.assignment_id: a for a in problem.assignments}
    found: list[str] = []
    for pair in chosen:
        t, a = teams.get(pair.team_id), assignments.get(pair.assignment_id)
        if t is None or a is None:
            found.append(f"unknown pair {pair}")
        elif not is_eligible(t, a):
            found.append(f"ineligible pair {pair}")
    for team_id, n in Counter(p.team_id for p in chosen).items():
        if n > 1:
            found.append(f"team {team_id} has {n} assignments")
    for assignment_id, n in Counter(p.assignment_id for p in chosen).items():
        a = assignments.get(assignment_id)
        if a is not None and not (a.min_teams <= n <= a.max_teams):
            found.append(f"assignment {assignment_id} has {n} teams, allowed {a.min_teams}-{a.max_teams} or 0")
    return found
