"""The matching problem, free of frameworks: inputs, eligibility, fit, the hard rules as linear rows,
and a validator that checks any proposed matching against those same rows.

The rules in plain words:

- A team can only be matched to an assignment when the assignment accepts the team's level, the team
  has every required skill, the assignment's period is one of the team's periods, the firm is within
  reach (remote work always is; on-site work when the firm's municipality is within the team's travel
  limit; hybrid work when it is within the limit or the team may work remotely), an on-site or hybrid
  assignment lies in the workspace's working area (when one is set), and the coordinator has not
  forbidden the pair. Other pairs never become decisions.
- A team works on at most one assignment per period. An assignment gets between its minimum and
  maximum number of teams, or none. An institution never supplies more teams, nor more lecturer
  supervision hours, per period and level than it registered. A firm never gets more teams than its
  cap. Every pinned pair is matched. Every fairness floor is met.
- Under the stable policy, as few blocking pairs as possible (none when a stable matching exists): a
  team and an assignment that rank each other block when both would gain by being together and moving
  them together keeps the hard rules (see ``blocking_pairs`` for the exact definition).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import repeat
from typing import Any, Callable, Collection, Iterable, Iterator, Mapping

from ..memory import cycles_paused

MAX_PREFERENCES = 10
MODES = ("on_site", "remote", "hybrid")
FLOOR_DIMENSIONS = ("region", "level", "institution")


@dataclass(frozen=True)
class Team:
    team_id: str
    institution_id: str
    level: str
    skills: frozenset[str]
    periods: tuple[str, ...] = ("",)
    municipality: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    region: str | None = None
    travel_limit_km: float | None = None
    remote_allowed: bool = True
    preferences: tuple[str, ...] = ()  # assignment ids, best first


@dataclass(frozen=True)
class Assignment:
    assignment_id: str
    firm_id: str
    accepted_levels: frozenset[str]
    required_skills: frozenset[str]
    nice_to_have_skills: frozenset[str]
    min_teams: int
    max_teams: int
    period: str = ""
    mode: str = "remote"
    municipality: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    region: str | None = None
    priority: int = 0
    supervision_hours: float = 0
    preferred_institutions: tuple[str, ...] = ()  # best first
    preferred_levels: tuple[str, ...] = ()  # best first


@dataclass(frozen=True)
class Capacity:
    """An institution's limit for one period and level: matched teams, and lecturer hours."""

    institution_id: str
    period: str
    level: str
    teams: int
    supervision_hours: float


@dataclass(frozen=True)
class FirmCap:
    firm_id: str
    max_teams: int


@dataclass(frozen=True)
class FairnessFloor:
    """At least ``min_share`` of a group served: a region's assignments, a level's or an institution's teams."""

    dimension: str
    value: str
    min_share: float


@dataclass(frozen=True, order=True)
class Pair:
    team_id: str
    assignment_id: str


def pair_key(pair: Pair) -> tuple[str, str]:
    """Sort pairs by this: the same order as Pair's own, compared in C rather than in Python."""
    return (pair.team_id, pair.assignment_id)


class SnapshotError(ValueError):
    """A snapshot matching cannot use; ``field`` says where."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Problem:
    """A batch's snapshot plus the coordinator's controls.

    ``pinned`` pairs must be in the matching, ``forbidden`` pairs never are; ``reference`` is the
    published matching a minimum-change re-run tries to keep. An empty ``working_area`` sets no rule.
    """

    teams: tuple[Team, ...]
    assignments: tuple[Assignment, ...]
    pinned: frozenset[Pair] = frozenset()
    forbidden: frozenset[Pair] = frozenset()
    reference: frozenset[Pair] = frozenset()
    capacities: tuple[Capacity, ...] = ()
    firm_caps: tuple[FirmCap, ...] = ()
    floors: tuple[FairnessFloor, ...] = ()
    working_area: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any], *, pinned: Iterable[Pair] = (),
                      forbidden: Iterable[Pair] = (), reference: Iterable[Pair] = ()) -> Problem:
        """A problem from a batch.submitted snapshot, v1 or v2 (v1 fields get the v2 defaults:
        the batch's period, remote work, no places, priorities, supervision, preferences or limits)."""
        with cycles_paused():  # tens of thousands of objects, no cycles among them
            return cls._read(snapshot, pinned, forbidden, reference)

    @classmethod
    def _read(cls, snapshot: Mapping[str, Any], pinned: Iterable[Pair], forbidden: Iterable[Pair],
              reference: Iterable[Pair]) -> Problem:
        period = snapshot["period"]
        # each team and assignment made as its class's __init__ would (every field given), its fields set in one
        # dict update instead of a frozen __init__'s object.__setattr__ per field: a third of the time for the
        # 15,000 of a 10k round (tests/unit/test_matching_rules.py holds both ways equal)
        made, team, assignment = object.__new__, Team, Assignment
        teams: list[Team] = []
        for t in snapshot["teams"]:
            one = made(team)
            one.__dict__.update(
                team_id=t["team_id"], institution_id=t["institution_id"], level=t["level"],
                skills=frozenset(t["skills"]), periods=tuple(t.get("periods") or (period,)),
                municipality=t.get("municipality"), latitude=t.get("latitude"), longitude=t.get("longitude"),
                region=t.get("region"), travel_limit_km=t.get("travel_limit_km"),
                remote_allowed=t.get("remote_allowed", True), preferences=tuple(t.get("preferences", ())))
            teams.append(one)
        assignments: list[Assignment] = []
        for a in snapshot["assignments"]:
            job = made(assignment)
            job.__dict__.update(
                assignment_id=a["assignment_id"], firm_id=a["firm_id"], accepted_levels=frozenset(a["accepted_levels"]),
                required_skills=frozenset(a["required_skills"]),
                nice_to_have_skills=frozenset(a["nice_to_have_skills"]), min_teams=a["min_teams"],
                max_teams=a["max_teams"], period=a.get("period", period), mode=a.get("mode", "remote"),
                municipality=a.get("municipality"), latitude=a.get("latitude"), longitude=a.get("longitude"),
                region=a.get("region"), priority=a.get("priority", 0),
                supervision_hours=a.get("supervision_hours", 0),
                preferred_institutions=tuple(a.get("preferred_institutions", ())),
                preferred_levels=tuple(a.get("preferred_levels", ())))
            assignments.append(job)
        problem = cls(
            tuple(teams), tuple(assignments), frozenset(pinned), frozenset(forbidden), frozenset(reference),
            capacities=tuple(Capacity(c["institution_id"], c["period"], c["level"], c["teams"],
                                      c["supervision_hours"]) for c in snapshot.get("capacities", ())),
            firm_caps=tuple(FirmCap(f["firm_id"], f["max_teams"]) for f in snapshot.get("firm_caps", ())),
            floors=tuple(FairnessFloor(f["dimension"], f["value"], f["min_share"])
                         for f in snapshot.get("fairness_floors", ())),
            working_area=frozenset(snapshot.get("working_area", ())),
        )
        problem.check()
        return problem

    def check(self) -> None:
        """Raise SnapshotError for input the rules cannot work with."""
        seen_teams: set[str] = set()
        for i, t in enumerate(self.teams):
            if t.team_id in seen_teams:
                raise SnapshotError(f"teams[{i}].team_id", "appears twice")
            seen_teams.add(t.team_id)
            if len(t.preferences) > MAX_PREFERENCES:
                raise SnapshotError(f"teams[{i}].preferences", f"at most {MAX_PREFERENCES} ranked assignments")
            if len(set(t.preferences)) != len(t.preferences):
                raise SnapshotError(f"teams[{i}].preferences", "an assignment is ranked twice")
            if not t.periods:
                raise SnapshotError(f"teams[{i}].periods", "at least one period")
        seen: set[str] = set()
        for i, a in enumerate(self.assignments):
            if a.assignment_id in seen:
                raise SnapshotError(f"assignments[{i}].assignment_id", "appears twice")
            seen.add(a.assignment_id)
            if a.min_teams > a.max_teams:
                raise SnapshotError(f"assignments[{i}].min_teams", "is above max_teams")
            if a.mode not in MODES:
                raise SnapshotError(f"assignments[{i}].mode", f"one of {', '.join(MODES)}")
            if len(a.preferred_institutions) > MAX_PREFERENCES:
                raise SnapshotError(f"assignments[{i}].preferred_institutions",
                                    f"at most {MAX_PREFERENCES} ranked institutions")
            if len(set(a.preferred_institutions)) != len(a.preferred_institutions) or \
                    len(set(a.preferred_levels)) != len(a.preferred_levels):
                raise SnapshotError(f"assignments[{i}].preferred_institutions", "an entry is ranked twice")
        for i, f in enumerate(self.floors):
            if f.dimension not in FLOOR_DIMENSIONS or not 0 <= f.min_share <= 1:
                raise SnapshotError(f"fairness_floors[{i}]", "dimension region, level or institution; "
                                                             "min_share between 0 and 1")

    @cached_property
    def teams_by_id(self) -> dict[str, Team]:
        return {t.team_id: t for t in self.teams}

    @cached_property
    def assignments_by_id(self) -> dict[str, Assignment]:
        return {a.assignment_id: a for a in self.assignments}

    def team(self, team_id: str) -> Team | None:
        return self.teams_by_id.get(team_id)

    def assignment(self, assignment_id: str) -> Assignment | None:
        return self.assignments_by_id.get(assignment_id)

    @cached_property
    def max_rank(self) -> int:
        """The longest preference list of any team (ranks beyond it are never used)."""
        return max((len(t.preferences) for t in self.teams), default=0)


# ---- places and preferences -----------------------------------------------------------------

EARTH_RADIUS_KM = 6371.0


@lru_cache(maxsize=1 << 18)  # places are municipality centres: few distinct pairs, asked for often
def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_km(team: Team, assignment: Assignment) -> float | None:
    """Campus to the centre of the firm's municipality, when both places are known."""
    if None in (team.latitude, team.longitude, assignment.latitude, assignment.longitude):
        return None
    return haversine_km(team.latitude, team.longitude, assignment.latitude, assignment.longitude)  # type: ignore[arg-type]


def team_rank(team: Team, assignment_id: str) -> int | None:
    """1 for the team's first choice, 2 for its second, ...; None when the team did not rank it."""
    try:
        return team.preferences.index(assignment_id) + 1
    except ValueError:
        return None


def firm_rank(assignment: Assignment, team: Team) -> int | None:
    """The firm's rank of a team: by its institution in the firm's list, else by its level in the firm's
    list of levels (after every listed institution); teams with the same rank tie. None: unranked."""
    if team.institution_id in assignment.preferred_institutions:
        return assignment.preferred_institutions.index(team.institution_id) + 1
    if team.level in assignment.preferred_levels:
        return len(assignment.preferred_institutions) + assignment.preferred_levels.index(team.level) + 1
    return None


# ---- fit ------------------------------------------------------------------------------------

BASE_FIT = 10.0
NICE_TO_HAVE_WEIGHT = 3.0
EXTRA_SKILL_WEIGHT = 0.5
MAX_EXTRA_SKILLS = 2
TEAM_PREFERENCE_FIRST = 3.0  # the team's first choice; each rank lower 0.25 less
TEAM_PREFERENCE_STEP = 0.25
FIRM_PREFERENCE_FIRST = 2.0  # the firm's best-ranked institution or level; each rank lower 0.125 less
FIRM_PREFERENCE_STEP = 0.125
DISTANCE_WEIGHT = 2.0  # on-site or hybrid work next door; nothing at DISTANCE_SCALE_KM or further
DISTANCE_SCALE_KM = 100.0
PRIORITY_WEIGHT = 0.5  # per point of the firm's priority (0..10)


@dataclass(frozen=True)
class FitBreakdown:
    base: float
    nice_to_have_skills: tuple[str, ...]
    nice_to_have: float
    extra_skills: tuple[str, ...]
    extra: float
    team_preference_rank: int | None = None
    team_preference: float = 0.0
    firm_preference_rank: int | None = None
    firm_preference: float = 0.0
    distance_km: float | None = None
    distance: float = 0.0
    priority: float = 0.0

    @property
    def total(self) -> float:
        return (self.base + self.nice_to_have + self.extra + self.team_preference + self.firm_preference
                + self.distance + self.priority)


def fit_breakdown(team: Team, assignment: Assignment) -> FitBreakdown:
    """A base for being eligible, points per nice-to-have skill, a little for other skills (at most two),
    points for the team's and the firm's ranks of each other (higher ranks more), for a short distance to
    on-site or hybrid work, and for the firm's priority."""
    return FitBreakdown(*fit_parts(team, assignment))


FitParts = tuple[float, tuple[str, ...], float, tuple[str, ...], float, int | None, float, int | None, float,
                 float | None, float, float]


def fit_parts(team: Team, assignment: Assignment) -> FitParts:
    """``fit_breakdown``'s fields in their order, as a tuple (the explanations take apart thousands of
    matches: a tuple is made in a fraction of a frozen dataclass's time); ``parts_total`` sums them."""
    nice = tuple(sorted(assignment.nice_to_have_skills & team.skills))
    extra = tuple(sorted(team.skills - assignment.required_skills - assignment.nice_to_have_skills))
    t_rank, f_rank = team_rank(team, assignment.assignment_id), firm_rank(assignment, team)
    km = distance_km(team, assignment) if assignment.mode != "remote" else None
    return (
        BASE_FIT, nice, NICE_TO_HAVE_WEIGHT * len(nice), extra,
        EXTRA_SKILL_WEIGHT * min(len(extra), MAX_EXTRA_SKILLS),
        t_rank, 0.0 if t_rank is None else max(0.0, TEAM_PREFERENCE_FIRST - TEAM_PREFERENCE_STEP * (t_rank - 1)),
        f_rank, 0.0 if f_rank is None else max(0.0, FIRM_PREFERENCE_FIRST - FIRM_PREFERENCE_STEP * (f_rank - 1)),
        None if km is None else round(km, 1),
        0.0 if km is None else round(DISTANCE_WEIGHT * max(0.0, 1.0 - km / DISTANCE_SCALE_KM), 2),
        PRIORITY_WEIGHT * assignment.priority,
    )


def parts_total(parts: FitParts) -> float:
    """``FitBreakdown.total`` of ``fit_parts``: the points summed in the same order (the same float)."""
    return parts[0] + parts[2] + parts[4] + parts[6] + parts[8] + parts[10] + parts[11]


def fit(team: Team, assignment: Assignment) -> float:
    """How well a team suits an assignment."""
    return fit_breakdown(team, assignment).total


# ---- eligibility ----------------------------------------------------------------------------

# The filters a pair must pass, in the order they are applied (explanations count per filter).
FILTERS: dict[str, dict[str, str]] = {
    "level": {"en": "the assignment accepts the team's level",
              "nl": "de opdracht accepteert het niveau van het team"},
    "skills": {"en": "the team has every required skill",
               "nl": "het team heeft alle vereiste vaardigheden"},
    "period": {"en": "the assignment's period is one of the team's periods",
               "nl": "de periode van de opdracht is een van de periodes van het team"},
    "reach": {"en": "the firm is within reach: remote work always; on-site work within the team's travel "
                    "limit; hybrid work within that limit or when the team may work remotely",
              "nl": "het bedrijf is bereikbaar: werk op afstand altijd; werk op locatie binnen de reisgrens van "
                    "het team; hybride werk binnen die grens of als het team op afstand mag werken"},
    "working_area": {"en": "on-site and hybrid work lies in the workspace's working area",
                     "nl": "werk op locatie en hybride werk ligt in het werkgebied van de werkplaats"},
    "forbidden": {"en": "the coordinator has not forbidden the pair",
                  "nl": "de coördinator heeft het paar niet uitgesloten"},
}


def reachable(team: Team, assignment: Assignment) -> bool:
    if assignment.mode == "remote":
        return True
    km = distance_km(team, assignment)
    within = team.travel_limit_km is None or km is None or km <= team.travel_limit_km
    return within or (assignment.mode == "hybrid" and team.remote_allowed)


def in_working_area(problem: Problem, assignment: Assignment) -> bool:
    return (not problem.working_area or assignment.mode == "remote"
            or assignment.municipality in problem.working_area)


def failed_filter(problem: Problem, team: Team, assignment: Assignment) -> str | None:
    """The first filter the pair fails (a key of FILTERS), or None when it is eligible."""
    if team.level not in assignment.accepted_levels:
        return "level"
    if not assignment.required_skills <= team.skills:
        return "skills"
    if assignment.period not in team.periods:
        return "period"
    if not reachable(team, assignment):
        return "reach"
    if not in_working_area(problem, assignment):
        return "working_area"
    if Pair(team.team_id, assignment.assignment_id) in problem.forbidden:
        return "forbidden"
    return None


def is_eligible(team: Team, assignment: Assignment, problem: Problem | None = None) -> bool:
    return failed_filter(problem or Problem((), ()), team, assignment) is None


def ineligibility(problem: Problem, pair: Pair) -> str | None:
    """Why a pair can never be matched (None when it can)."""
    team, assignment = problem.team(pair.team_id), problem.assignment(pair.assignment_id)
    if team is None:
        return "team is not in the batch"
    if assignment is None:
        return "assignment is not in the batch"
    failed = failed_filter(problem, team, assignment)
    if failed == "level":
        return f"level {team.level} is not accepted (accepts {', '.join(sorted(assignment.accepted_levels))})"
    if failed == "skills":
        return f"team lacks required skills: {', '.join(sorted(assignment.required_skills - team.skills))}"
    if failed == "period":
        return f"the assignment's period {assignment.period} is not one of the team's periods"
    if failed == "reach":
        km = distance_km(team, assignment)
        return (f"the firm's municipality is {km:.0f} km from the campus, beyond the team's travel limit of "
                f"{team.travel_limit_km:g} km")
    if failed == "working_area":
        return f"the firm's municipality {assignment.municipality or '(unknown)'} is outside the working area"
    if failed == "forbidden":
        return "pair is forbidden"
    return None


def eligible_pairs(problem: Problem) -> dict[Pair, float]:
    """Every pair that may be matched, with its fit: only these become variables. Teams are grouped by
    level and period, and indexed by skill, so an assignment only looks at teams with its required skills."""
    buckets: dict[tuple[str, str], list[Team]] = {}
    for team in problem.teams:
        for period in team.periods:
            buckets.setdefault((team.level, period), []).append(team)
    skilled: dict[tuple[str, str], dict[str, set[int]]] = {}
    for key, bucket in buckets.items():
        index = skilled[key] = {}
        for position, team in enumerate(bucket):
            for skill in team.skills:
                index.setdefault(skill, set()).add(position)
    pairs: dict[Pair, float] = {}
    for a in problem.assignments:
        if not in_working_area(problem, a):
            continue
        for level in sorted(a.accepted_levels):
            bucket = buckets.get((level, a.period), [])
            if a.required_skills:
                index = skilled.get((level, a.period), {})
                positions = set.intersection(*(index.get(s, set()) for s in a.required_skills))
                candidates: Iterable[Team] = [bucket[i] for i in sorted(positions)]
            else:
                candidates = bucket
            for t in candidates:
                pair = Pair(t.team_id, a.assignment_id)
                if pair not in problem.forbidden and reachable(t, a):
                    pairs[pair] = fit(t, a)
    return pairs


# ---- the hard rules as linear rows ----------------------------------------------------------


@dataclass(frozen=True, order=True)
class Opened:
    """The open/closed decision of an assignment: staffed (1) or not (0)."""

    assignment_id: str


@dataclass(frozen=True, order=True)
class Placed:
    """Whether a team works on some assignment (used by fairness floors over teams)."""

    team_id: str


@dataclass(frozen=True, order=True)
class Blocks:
    """Stable policy: the pair may block (1); it must be 1 where the pair does block."""

    team_id: str
    assignment_id: str


@dataclass(frozen=True, order=True)
class AtLimit:
    """Stable policy: a limit is reached (1 allowed only where it is): ``rule`` "capacity" (the teams of
    ``problem.capacities[index]``), "hours" (its supervision hours are above ``threshold``) or "firm_cap"
    (the teams of ``problem.firm_caps[index]``)."""

    rule: str
    index: int
    threshold: float = 0.0


Key = Pair | Opened | Placed | Blocks | AtLimit

# Constraint groups, in plain words (used by diagnoses and explanations).
GROUPS: dict[str, dict[str, str]] = {
    "team_at_most_one": {"en": "a team works on at most one assignment per period",
                         "nl": "een team werkt per periode aan hoogstens één opdracht"},
    "assignment_max_teams": {"en": "an assignment gets at most its maximum number of teams",
                             "nl": "een opdracht krijgt hoogstens het maximale aantal teams"},
    "assignment_min_teams": {"en": "a staffed assignment gets at least its minimum number of teams",
                             "nl": "een bemande opdracht krijgt minstens het minimale aantal teams"},
    "institution_capacity": {"en": "an institution supplies at most the teams it registered per period and level",
                             "nl": "een instelling levert per periode en niveau hoogstens het aantal teams dat "
                                   "zij opgaf"},
    "supervision_hours": {"en": "an institution's lecturers supervise at most the hours it registered per "
                                "period and level",
                          "nl": "de docenten van een instelling begeleiden per periode en niveau hoogstens het "
                                "aantal uren dat zij opgaf"},
    "firm_cap": {"en": "a firm gets at most its maximum number of teams over all its assignments",
                 "nl": "een bedrijf krijgt over al zijn opdrachten hoogstens zijn maximale aantal teams"},
    "pins": {"en": "every pinned pair is in the matching",
             "nl": "elk vastgezet paar zit in de indeling"},
    "fairness_floor": {"en": "every fairness floor is met: at least the set share of a region's assignments, or "
                             "of a level's or an institution's teams, is served",
                       "nl": "elke eerlijkheidsondergrens wordt gehaald: minstens het gestelde deel van de "
                             "opdrachten van een regio, of van de teams van een niveau of instelling, komt aan bod"},
    "team_placed": {"en": "a team counts as placed only when it works on an assignment",
                    "nl": "een team telt alleen als geplaatst wanneer het aan een opdracht werkt"},
    "stability": {"en": "a team and an assignment that rank each other, would both gain by being together and "
                        "can be moved together within the limits, count as a blocking pair (stable policy)",
                  "nl": "een team en een opdracht die elkaar rangschikken, er allebei op vooruitgaan samen te werken "
                        "en binnen de grenzen samengezet kunnen worden, tellen als blokkerend paar (stabiel "
                        "beleid)"},
    "stability_limit": {"en": "a limit counts as reached for stability only when it is (stable policy)",
                        "nl": "een grens telt voor stabiliteit alleen als bereikt wanneer zij bereikt is (stabiel "
                              "beleid)"},
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

    def summed(self) -> list[tuple[Key, float]]:
        """The terms with a key that appears more than once summed into one (first appearance's place);
        zero sums left out. A row means the sum of all its terms, so every builder reads it this way."""
        return summed_terms(self.terms)

    def holds(self, values: Mapping[Key, float], tolerance: float = 1e-6) -> bool:
        lhs = self.lhs(values)
        return lhs <= self.rhs + tolerance if self.sense == "<=" else lhs >= self.rhs - tolerance


@dataclass
class Grouped:
    """The pairs grouped once, for every family of rows."""

    problem: Problem
    pairs: list[Pair]
    by_team_period: dict[tuple[str, str], list[Pair]] = field(default_factory=dict)
    by_assignment: dict[str, list[Pair]] = field(default_factory=dict)
    by_team: dict[str, list[Pair]] = field(default_factory=dict)
    by_capacity: dict[tuple[str, str, str], list[Pair]] = field(default_factory=dict)
    by_firm: dict[str, list[Pair]] = field(default_factory=dict)

    @classmethod
    def of(cls, problem: Problem, pairs: Iterable[Pair]) -> Grouped:
        grouped = cls(problem, sorted(set(pairs), key=pair_key))
        teams, assignments = problem.teams_by_id, problem.assignments_by_id
        for pair in grouped.pairs:
            team, assignment = teams.get(pair.team_id), assignments.get(pair.assignment_id)
            period = assignment.period if assignment else ""
            grouped.by_team_period.setdefault((pair.team_id, period), []).append(pair)
            grouped.by_assignment.setdefault(pair.assignment_id, []).append(pair)
            grouped.by_team.setdefault(pair.team_id, []).append(pair)
            if team is not None and assignment is not None:
                grouped.by_capacity.setdefault((team.institution_id, period, team.level), []).append(pair)
                grouped.by_firm.setdefault(assignment.firm_id, []).append(pair)
        return grouped


def summed_terms(terms: Iterable[tuple[Key, float]]) -> list[tuple[Key, float]]:
    """Terms with the coefficients of one key summed, in order of first appearance, zero sums dropped."""
    total: dict[Key, float] = {}
    for key, coef in terms:
        total[key] = total.get(key, 0.0) + coef
    return [(key, coef) for key, coef in total.items() if coef != 0]


def _ones(pairs: Iterable[Pair]) -> tuple[tuple[Key, float], ...]:
    return tuple(zip(pairs, repeat(1.0)))


def team_at_most_one(g: Grouped) -> Iterator[Row]:
    for (team_id, period), team_pairs in sorted(g.by_team_period.items()):
        label = f"team {team_id}" if period == "" else f"team {team_id} in period {period}"
        yield Row("team_at_most_one", label, _ones(team_pairs), "<=", 1)


def assignment_team_range(g: Grouped) -> Iterator[Row]:
    """Between the minimum and maximum number of teams, or none: tied to the open/closed decision."""
    for a in g.problem.assignments:
        terms = _ones(g.by_assignment.get(a.assignment_id, []))
        opened = Opened(a.assignment_id)
        yield Row("assignment_max_teams", f"assignment {a.assignment_id}",
                  (*terms, (opened, -float(a.max_teams))), "<=", 0)
        yield Row("assignment_min_teams", f"assignment {a.assignment_id}",
                  (*terms, (opened, -float(a.min_teams))), ">=", 0)


def capacity_label(c: Capacity) -> str:
    return f"institution {c.institution_id}, period {c.period}, level {c.level}"


def institution_capacity(g: Grouped) -> Iterator[Row]:
    """Matched teams of an institution per period and level (a row only where capacity is registered)."""
    for c in g.problem.capacities:
        group = g.by_capacity.get((c.institution_id, c.period, c.level), [])
        if group:
            yield Row("institution_capacity", capacity_label(c), _ones(group), "<=", c.teams)


def supervision_hours(g: Grouped) -> Iterator[Row]:
    """The supervision hours the matched assignments need, per institution, period and level."""
    assignments = g.problem.assignments_by_id
    for c in g.problem.capacities:
        terms = tuple((p, float(assignments[p.assignment_id].supervision_hours))
                      for p in g.by_capacity.get((c.institution_id, c.period, c.level), [])
                      if assignments[p.assignment_id].supervision_hours)
        if terms:
            yield Row("supervision_hours", capacity_label(c), terms, "<=", c.supervision_hours)


def firm_caps(g: Grouped) -> Iterator[Row]:
    for cap in g.problem.firm_caps:
        group = g.by_firm.get(cap.firm_id, [])
        if group:
            yield Row("firm_cap", f"firm {cap.firm_id}", _ones(group), "<=", cap.max_teams)


def pinned_pairs(g: Grouped) -> Iterator[Row]:
    """A pinned pair is in the matching; a pin on a pair without a variable cannot hold (0 >= 1)."""
    eligible = set(g.pairs) if g.problem.pinned else set()
    for pin in sorted(g.problem.pinned):
        terms = ((pin, 1.0),) if pin in eligible else ()
        yield Row("pins", f"pin team {pin.team_id} on assignment {pin.assignment_id}", terms, ">=", 1, pin)


def floor_members(problem: Problem, floor: FairnessFloor) -> list[Opened | Placed]:
    """The group a floor is about: a region's assignments, or a level's or an institution's teams."""
    if floor.dimension == "region":
        return [Opened(a.assignment_id) for a in problem.assignments if a.region == floor.value]
    attribute = "level" if floor.dimension == "level" else "institution_id"
    return [Placed(t.team_id) for t in problem.teams if getattr(t, attribute) == floor.value]


def fairness_floors(g: Grouped) -> Iterator[Row]:
    """served >= min_share * size (over an empty group the floor holds trivially); a team counts as
    served only when it works on an assignment."""
    placed: set[str] = set()
    for floor in g.problem.floors:
        members = floor_members(g.problem, floor)
        if not members:
            continue
        placed |= {m.team_id for m in members if isinstance(m, Placed)}
        yield Row("fairness_floor", f"{floor.dimension} {floor.value}: at least {floor.min_share:.0%}",
                  tuple((m, 1.0) for m in members), ">=", floor.min_share * len(members))
    for team_id in sorted(placed):
        yield Row("team_placed", f"team {team_id}",
                  ((Placed(team_id), 1.0), *((p, -1.0) for p in g.by_team.get(team_id, []))), "<=", 0)


def _ranked(pairs: Iterable[Pair], rank_of: Callable[[Pair], int | None]) -> list[tuple[int, Pair]]:
    """The pairs that have a rank, best first."""
    return sorted(((r, p) for p in pairs if (r := rank_of(p)) is not None), key=lambda rp: (rp[0], *pair_key(rp[1])))


def hours_margin(problem: Problem) -> float:
    """Half the step the supervision hours are given in (whole hours in the contracts: 0.5). Sums of
    hours differ by a step at least, so a sum is above a threshold when it reaches threshold + margin."""
    values = [float(a.supervision_hours) for a in problem.assignments] + [
        float(c.supervision_hours) for c in problem.capacities]
    for step in (1.0, 0.1, 0.01, 0.001):
        if all(abs(v / step - round(v / step)) < 1e-9 for v in values):
            return step / 2
    return 1e-4


def limit_indices(problem: Problem) -> tuple[dict[tuple[str, str, str], list[int]], dict[str, list[int]]]:
    """The positions of the capacities per cell (institution, period, level) and of the firm caps per firm."""
    cells: dict[tuple[str, str, str], list[int]] = {}
    for k, c in enumerate(problem.capacities):
        cells.setdefault((c.institution_id, c.period, c.level), []).append(k)
    firms: dict[str, list[int]] = {}
    for k, cap in enumerate(problem.firm_caps):
        firms.setdefault(cap.firm_id, []).append(k)
    return cells, firms


def stability(g: Grouped, only: Collection[Pair] | None = None) -> Iterator[Row]:
    """Rows that make ``Blocks(t, a)`` 1 wherever the pair blocks (``blocking_pairs``), with one 0/1
    ``AtLimit`` per limit that can stop a pair from blocking (it may be 1 only where the limit is reached,
    by its own "stability_limit" row). For a pair (t, a) ranked on both sides, with m = a's maximum:

    - t is in one of these states in a's period: it holds an assignment it ranks at least as high as a
      (then it does not gain), it is free, or it holds a worse one q. Each state where t gains comes with
      the limits that moving t to a may break: free, its cell's capacities and (a needing more hours than
      t frees) supervision hours, and the firm caps of a's firm unless q is of that firm too.
    - Per group of states with the same limits (S: 1 when t is in one of them):
      m*b + m*(those limits) - m*S + (a's teams ranked at least as t) >= 0: t gains, no limit is reached
      and a has room or a worse team, so b = 1. Where a firm cap is among them, also
      m*b + m*(the other limits) - m*S - (a's teams ranked below t) >= -m: a replaces a worse team, so
      the firm's count stays; b = 1 unless a capacity or hours limit is reached.
    (A team a ranks below t is never of t's own institution and level: a firm ranks teams by those, so
    they tie. Replacing it never frees room in t's capacities.)
    A term may appear twice in a row (t's own pair with a: in its state and among a's teams); a row
    means the sum of its terms. With ``only``, the rows of those pairs alone (and the limits they name):
    a relaxation whose optimum bounds the full model's, used by the cutting-plane solve of the stable
    policy (``matching.solver.stable``), which adds a pair's rows once the pair blocks a matching found."""
    problem = g.problem
    teams, assignments = problem.teams_by_id, problem.assignments_by_id
    cells, firm_caps_of = limit_indices(problem)
    margin = hours_margin(problem)
    limits: dict[AtLimit, None] = {}
    for (team_id, period), own in sorted(g.by_team_period.items()):
        t = teams.get(team_id)
        if t is None or not t.preferences:
            continue
        rank_of = {p: team_rank(t, p.assignment_id) for p in own}
        for t_rank, pair in _ranked(own, rank_of.get):
            if only is not None and pair not in only:
                continue
            a = assignments[pair.assignment_id]
            f_rank = firm_rank(a, t)
            if f_rank is None or a.max_teams < 1:
                continue
            m = float(a.max_teams)
            at_least = [p for p in own if (r := rank_of[p]) is not None and r <= t_rank]
            staffed = [p for p in g.by_assignment.get(a.assignment_id, []) if p.team_id in teams]
            firm_ranks = {p: firm_rank(a, teams[p.team_id]) for p in staffed}
            good = [p for p in staffed if (r := firm_ranks[p]) is not None and r <= f_rank]
            worse = [p for p in staffed if (r := firm_ranks[p]) is None or r > f_rank]
            capacities = cells.get((t.institution_id, period, t.level), [])
            caps = firm_caps_of.get(a.firm_id, [])

            states: dict[tuple[tuple[AtLimit, ...], tuple[AtLimit, ...]], tuple[list[bool], list[Pair]]] = {}
            states.setdefault(_reached(problem, a, capacities, caps, None), ([False], []))[0][0] = True
            for p in own:
                if p not in at_least:
                    reached = _reached(problem, a, capacities, caps, assignments[p.assignment_id])
                    states.setdefault(reached, ([False], []))[1].append(p)
            b = Blocks(team_id, a.assignment_id)
            label = f"team {team_id} and assignment {a.assignment_id}"
            for (rules, firm), ([free], held) in states.items():
                # -m * S: S = (1 - every pair of t in the period) for the free state, plus each held pair
                state = summed_terms([*((p, m) for p in own if free), *((p, -m) for p in held)])
                rhs = m if free else 0.0
                yield Row("stability", label, ((b, m), *state, *((lim, m) for lim in (*rules, *firm)),
                                               *_ones(good)), ">=", rhs)
                if firm:
                    yield Row("stability", label, ((b, m), *state, *((lim, m) for lim in rules),
                                                   *((p, -1.0) for p in worse)), ">=", rhs - m)
                limits.update(dict.fromkeys((*rules, *firm)))
    for limit in sorted(limits):
        yield _limit_row(g, limit, margin)


def _reached(problem: Problem, a: Assignment, capacities: list[int], caps: list[int], hold: Assignment | None
             ) -> tuple[tuple[AtLimit, ...], tuple[AtLimit, ...]]:
    """The limits that moving a team to ``a`` may break, the team holding ``hold`` in that period (None:
    free): its cell's capacities (when free) and hours (when ``a`` needs more than it frees); then the
    firm caps of ``a``'s firm (unless ``hold`` is of that firm)."""
    rules = [] if hold is not None else [AtLimit("capacity", c) for c in capacities]
    freed = 0.0 if hold is None else float(hold.supervision_hours)
    if a.supervision_hours > freed:
        rules += [AtLimit("hours", c, float(problem.capacities[c].supervision_hours) - a.supervision_hours + freed)
                  for c in capacities]
    firm = () if hold is not None and hold.firm_id == a.firm_id else tuple(AtLimit("firm_cap", f) for f in caps)
    return tuple(rules), firm


def _limit_row(g: Grouped, limit: AtLimit, margin: float) -> Row:
    """``limit`` may be 1 only where it is reached: its pairs' sum at least its size times it."""
    problem = g.problem
    if limit.rule == "firm_cap":
        cap = problem.firm_caps[limit.index]
        return Row("stability_limit", f"firm {cap.firm_id} full",
                   (*_ones(g.by_firm.get(cap.firm_id, [])), (limit, -float(cap.max_teams))), ">=", 0.0)
    c = problem.capacities[limit.index]
    group = g.by_capacity.get((c.institution_id, c.period, c.level), [])
    if limit.rule == "capacity":
        return Row("stability_limit", f"{capacity_label(c)} full",
                   (*_ones(group), (limit, -float(c.teams))), ">=", 0.0)
    assignments = problem.assignments_by_id
    hours = tuple((p, float(h)) for p in group if (h := assignments[p.assignment_id].supervision_hours))
    return Row("stability_limit", f"{capacity_label(c)}: more than {limit.threshold:g} hours",
               (*hours, (limit, -(limit.threshold + margin))), ">=", 0.0)


def stability_columns(rows: Iterable[Row]) -> list[Key]:
    """The stable policy's own decisions (``Blocks``, ``AtLimit``), in order of first appearance in the rows:
    the columns after the pairs, the open/closed decisions and the placed teams, on both paths."""
    found: dict[Key, None] = {}
    for row in rows:
        for key, _ in row.terms:
            if isinstance(key, (Blocks, AtLimit)):
                found.setdefault(key, None)
    return list(found)


CONSTRAINT_FAMILIES = (team_at_most_one, assignment_team_range, institution_capacity, supervision_hours,
                       firm_caps, pinned_pairs, fairness_floors)
CAPACITY_GROUPS = ("institution_capacity", "supervision_hours", "firm_cap", "assignment_max_teams")


def hard_rows(problem: Problem, pairs: Iterable[Pair], *, stable: bool = False) -> Iterator[Row]:
    grouped = Grouped.of(problem, pairs)
    for family in CONSTRAINT_FAMILIES:
        yield from family(grouped)
    if stable:
        yield from stability(grouped)


# ---- the validator --------------------------------------------------------------------------


def values_of(matching: Iterable[Pair]) -> dict[Key, float]:
    """The 0/1 decisions a matching stands for: its pairs, each assignment it staffs, each team it places."""
    values: dict[Key, float] = {}
    for pair in matching:
        values[pair] = 1.0
        values[Opened(pair.assignment_id)] = 1.0
        values[Placed(pair.team_id)] = 1.0
    return values


def violations(problem: Problem, matching: Iterable[Pair], *, stable: bool = False) -> list[str]:
    """Every hard rule the matching breaks, checked with the optimiser's own rows; empty when feasible.
    With ``stable``, also each blocking pair, found by the stability rows: every limit set to whether the
    matching reaches it, no pair allowed to block."""
    chosen = list(matching)
    found: list[str] = []
    eligible = eligible_pairs(problem)
    for pair in chosen:
        if pair not in eligible:
            reason = ineligibility(problem, pair) or "not eligible"
            found.append(f"ineligible pair {pair.team_id}/{pair.assignment_id}: {reason}")
    values = values_of(chosen)
    rows = list(hard_rows(problem, set(eligible) | set(chosen), stable=stable))
    for row in rows:
        if row.group == "stability_limit":  # the limit is reached when its row holds with it at 1
            limit = next(key for key, _ in row.terms if isinstance(key, AtLimit))
            values[limit] = 1.0 if row.holds({**values, limit: 1.0}) else 0.0
    blocking: dict[str, None] = {}
    for row in rows:
        if row.holds(values):
            continue
        if row.group == "stability":
            blocking.setdefault(f"stability: {row.label} would both rather be together", None)
        elif row.group != "stability_limit":
            found.append(f"{row.group}: {row.label} ({row.lhs(values):g} {row.sense} {row.rhs:g} broken)")
    return found + list(blocking)


def blocking_pairs(problem: Problem, matching: Iterable[Pair], eligible: Iterable[Pair] | None = None
                   ) -> list[Pair]:
    """The blocking pairs of a (feasible) matching. An eligible pair (t, a), not in the matching, ranked
    by both sides, blocks when both gain and moving them together keeps the hard rules:

    - t gains: it is free in a's period, or ranks a above the assignment it has there (one it did not
      rank counts below any it ranked); moving, it leaves that assignment;
    - a gains: it has room (fewer teams than its maximum) and takes t besides its teams, or it ranks t
      above one of its teams (an unranked team below any ranked; teams of one rank tie) and takes t in
      that team's place;
    - some such move keeps every limit: t's institution's teams and supervision hours for that period
      and level, the firm's cap, the assignment's maximum, one assignment per team per period. (An
      assignment left below its minimum, a pin or a fairness floor do not stop a pair from blocking.)

    A worse team is never of t's own institution and level (the firm ranks teams by those: they tie).
    So replacing one keeps the firm's count and needs room in t's capacities and hours (when t moves
    from an assignment in the period its capacity stays, its hours change by the difference); taking t
    besides needs that and room under the firm's cap (unless t leaves an assignment of the same firm)."""
    chosen = set(matching)
    teams, assignments = problem.teams_by_id, problem.assignments_by_id
    cells, firm_caps_of = limit_indices(problem)
    held: dict[tuple[str, str], str] = {}
    staffed: dict[str, list[str]] = {}
    used = [0] * len(problem.capacities)
    hours = [0.0] * len(problem.capacities)
    per_firm: Counter[str] = Counter()
    for p in chosen:
        t, a = teams.get(p.team_id), assignments.get(p.assignment_id)
        if t is None or a is None:
            continue
        held[(p.team_id, a.period)] = p.assignment_id
        staffed.setdefault(p.assignment_id, []).append(p.team_id)
        per_firm[a.firm_id] += 1
        for c in cells.get((t.institution_id, a.period, t.level), []):
            used[c] += 1
            hours[c] += a.supervision_hours
    blocking = []
    for pair in sorted(eligible_pairs(problem) if eligible is None else eligible, key=pair_key):
        if pair in chosen:
            continue
        t, a = teams[pair.team_id], assignments[pair.assignment_id]
        t_rank, f_rank = team_rank(t, a.assignment_id), firm_rank(a, t)
        if t_rank is None or f_rank is None:
            continue
        current = held.get((t.team_id, a.period))
        current_rank = None if current is None else team_rank(t, current)
        if current is not None and current_rank is not None and current_rank <= t_rank:
            continue  # the team does not gain
        hold = None if current is None else assignments[current]
        others = staffed.get(a.assignment_id, [])
        worse = [o for o in others if (r := firm_rank(a, teams[o])) is None or f_rank < r]
        capacities = cells.get((t.institution_id, a.period, t.level), [])
        freed = 0.0 if hold is None else hold.supervision_hours
        limits_kept = (hold is not None or all(used[c] < problem.capacities[c].teams for c in capacities)) and all(
            hours[c] + a.supervision_hours - freed <= problem.capacities[c].supervision_hours + 1e-9
            for c in capacities)
        if not limits_kept:
            continue
        firm_kept = (hold is not None and hold.firm_id == a.firm_id) or all(
            per_firm[a.firm_id] < problem.firm_caps[f].max_teams for f in firm_caps_of.get(a.firm_id, []))
        if worse or (len(others) < a.max_teams and firm_kept):
            blocking.append(pair)
    return blocking
