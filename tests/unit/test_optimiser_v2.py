"""Every policy on v2 instances (periods, places, working area, capacities, supervision, firm caps,
fairness floors, preferences, pins and forbids) against exhaustive enumeration, with feasibility and
blocking pairs checked by plain Python written apart from the optimiser's rows."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matching.domain.explain import explain
from matching.domain.model import (
    FILTERS,
    Pair,
    Problem,
    blocking_pairs,
    eligible_pairs,
    failed_filter,
    fit,
    violations,
)
from matching.domain.policies import POLICIES
from matching.solver.paths import solve

LEVELS = ("MBO", "HBO", "WO")
SKILLS = ("web", "data", "ai")
PERIODS = ("2026-P1", "2026-P2")
INSTITUTIONS = ("inst-a", "inst-b", "inst-c")
# code, centre, province
PLACES = (("GM0344", 52.09, 5.12, "Utrecht"), ("GM0363", 52.37, 4.89, "Noord-Holland"),
          ("GM0202", 51.98, 5.91, "Gelderland"), ("GM0014", 53.22, 6.57, "Groningen"))
POLICY_NAMES = ("max_fit", "max_served", "rank_maximal", "stable", "min_change")


def place(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.15:
        return {"municipality": None, "latitude": None, "longitude": None, "region": None}
    code, lat, lon, region = rng.choice(PLACES)
    return {"municipality": code, "latitude": lat, "longitude": lon, "region": region}


def random_snapshot(rng: random.Random, n_teams: int, n_assignments: int) -> dict[str, Any]:
    periods = PERIODS[:rng.randint(1, 2)]
    firms = [f"f{i}" for i in range(max(1, n_assignments - rng.randint(0, 2)))]
    assignment_ids = [f"a{j}" for j in range(n_assignments)]
    assignments = []
    for j in range(n_assignments):
        lo = rng.choice((1, 1, 1, 2))
        assignments.append({
            "assignment_id": assignment_ids[j], "firm_id": rng.choice(firms),
            "accepted_levels": rng.sample(LEVELS, rng.randint(1, 3)),
            "required_skills": rng.sample(SKILLS, rng.choice((0, 0, 1))),
            "nice_to_have_skills": rng.sample(SKILLS, rng.randint(0, 2)),
            "min_teams": lo, "max_teams": lo + rng.choice((0, 0, 1)), "period": rng.choice(periods),
            "mode": rng.choice(("on_site", "remote", "hybrid")), **place(rng), "priority": rng.randint(0, 3),
            "supervision_hours": rng.choice((0, 2, 4)),
            "preferred_institutions": rng.sample(INSTITUTIONS, rng.randint(0, 2)),
            "preferred_levels": rng.sample(LEVELS, rng.randint(0, 2))})
    teams = []
    for i in range(n_teams):
        teams.append({
            "team_id": f"t{i}", "institution_id": rng.choice(INSTITUTIONS), "level": rng.choice(LEVELS),
            "skills": rng.sample(SKILLS, rng.randint(0, 3)),
            "periods": rng.sample(periods, rng.randint(1, len(periods))),
            **place(rng), "travel_limit_km": rng.choice((None, 30, 80, 200)), "remote_allowed": rng.random() < 0.6,
            "preferences": rng.sample(assignment_ids, rng.randint(0, min(3, n_assignments)))})
    capacities = [{"institution_id": inst, "period": p, "level": lv, "teams": rng.randint(0, 2),
                   "supervision_hours": rng.choice((0, 4, 6, 20))}
                  for inst in INSTITUTIONS for p in periods for lv in LEVELS if rng.random() < 0.15]
    firm_caps = [{"firm_id": f, "max_teams": rng.randint(1, 2)} for f in firms if rng.random() < 0.3]
    floors = []
    if rng.random() < 0.3:
        dimension = rng.choice(("region", "level", "institution"))
        value = {"region": rng.choice(PLACES)[3], "level": rng.choice(LEVELS),
                 "institution": rng.choice(INSTITUTIONS)}[dimension]
        floors.append({"dimension": dimension, "value": value, "min_share": rng.choice((0.25, 0.5, 1.0))})
    working_area = [p[0] for p in PLACES if rng.random() < 0.6] if rng.random() < 0.3 else []
    return {"batch_id": "b", "workspace_id": "w", "coordinator_id": "c", "period": periods[0],
            "policy": "max_fit", "auto_publish": False, "working_area": working_area, "assignments": assignments,
            "teams": teams, "capacities": capacities, "firm_caps": firm_caps, "fairness_floors": floors}


def random_problem(rng: random.Random, n_teams: int, n_assignments: int, reference: bool = False) -> Problem:
    snapshot = random_snapshot(rng, n_teams, n_assignments)
    base = Problem.from_snapshot(snapshot)
    pairs = sorted(plain_eligible(base))
    forbidden = [p for p in pairs if rng.random() < 0.1]
    allowed = [p for p in pairs if p not in forbidden]
    pinned = rng.sample(allowed, 1) if allowed and rng.random() < 0.2 else []
    ref = rng.sample(pairs, min(len(pairs), rng.randint(0, 3))) if reference else []
    return Problem.from_snapshot(snapshot, pinned=pinned, forbidden=forbidden, reference=ref)


# ---- the rules in plain Python, apart from the optimiser's rows ------------------------------


def km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    a = (math.sin(math.radians(lat2 - lat1) / 2) ** 2 + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2))
         * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def plain_eligible(problem: Problem) -> set[Pair]:
    found = set()
    for t in problem.teams:
        for a in problem.assignments:
            if t.level not in a.accepted_levels or not a.required_skills <= t.skills or a.period not in t.periods:
                continue
            if a.mode != "remote":
                known = None not in (t.latitude, t.longitude, a.latitude, a.longitude)
                distance = km(t.latitude, t.longitude, a.latitude, a.longitude) if known else None  # type: ignore[arg-type]
                near = t.travel_limit_km is None or distance is None or distance <= t.travel_limit_km
                if not (near or (a.mode == "hybrid" and t.remote_allowed)):
                    continue
                if problem.working_area and a.municipality not in problem.working_area:
                    continue
            if Pair(t.team_id, a.assignment_id) not in problem.forbidden:
                found.add(Pair(t.team_id, a.assignment_id))
    return found


def plain_feasible(problem: Problem, matching: frozenset[Pair]) -> bool:
    teams, jobs = problem.teams_by_id, problem.assignments_by_id
    if not problem.pinned <= matching or not matching <= plain_eligible(problem):
        return False
    if len({(p.team_id, jobs[p.assignment_id].period) for p in matching}) != len(matching):
        return False
    per_job = Counter(p.assignment_id for p in matching)
    if any(n and not a.min_teams <= n <= a.max_teams for a in problem.assignments
           for n in [per_job[a.assignment_id]]):
        return False
    for c in problem.capacities:
        mine = [p for p in matching if teams[p.team_id].institution_id == c.institution_id
                and teams[p.team_id].level == c.level and jobs[p.assignment_id].period == c.period]
        if len(mine) > c.teams or sum(jobs[p.assignment_id].supervision_hours for p in mine) > c.supervision_hours:
            return False
    per_firm = Counter(jobs[p.assignment_id].firm_id for p in matching)
    if any(per_firm[cap.firm_id] > cap.max_teams for cap in problem.firm_caps):
        return False
    placed = {p.team_id for p in matching}
    for f in problem.floors:
        if f.dimension == "region":
            group = [a.assignment_id for a in problem.assignments if a.region == f.value]
            served = sum(1 for a in group if per_job[a])
        else:
            group = [t.team_id for t in problem.teams
                     if (t.level if f.dimension == "level" else t.institution_id) == f.value]
            served = sum(1 for t in group if t in placed)
        if served < f.min_share * len(group) - 1e-9:
            return False
    return True


def team_choice(problem: Problem, team_id: str, assignment_id: str) -> int | None:
    prefs = problem.teams_by_id[team_id].preferences
    return prefs.index(assignment_id) + 1 if assignment_id in prefs else None


def firm_choice(problem: Problem, assignment_id: str, team_id: str) -> tuple[int, int] | None:
    """Institutions the firm listed come before levels it listed; the same entry: a tie."""
    a, t = problem.assignments_by_id[assignment_id], problem.teams_by_id[team_id]
    if t.institution_id in a.preferred_institutions:
        return (0, a.preferred_institutions.index(t.institution_id))
    if t.level in a.preferred_levels:
        return (1, a.preferred_levels.index(t.level))
    return None


def keeps_limits(problem: Problem, matching: frozenset[Pair]) -> bool:
    """The limits a move must keep for a pair to block: one assignment per team per period, an
    assignment's maximum, an institution's teams and supervision hours per period and level, a firm's cap."""
    teams, jobs = problem.teams_by_id, problem.assignments_by_id
    if len({(p.team_id, jobs[p.assignment_id].period) for p in matching}) != len(matching):
        return False
    per_job = Counter(p.assignment_id for p in matching)
    if any(per_job[a.assignment_id] > a.max_teams for a in problem.assignments):
        return False
    for c in problem.capacities:
        mine = [p for p in matching if teams[p.team_id].institution_id == c.institution_id
                and teams[p.team_id].level == c.level and jobs[p.assignment_id].period == c.period]
        if len(mine) > c.teams or sum(jobs[p.assignment_id].supervision_hours for p in mine) > c.supervision_hours:
            return False
    per_firm = Counter(jobs[p.assignment_id].firm_id for p in matching)
    return all(per_firm[cap.firm_id] <= cap.max_teams for cap in problem.firm_caps)


def plain_blocking(problem: Problem, matching: frozenset[Pair]) -> list[Pair]:
    """A team and an assignment that ranked each other, eligible, not together, both gaining, and some
    move that puts them together keeping the limits (``keeps_limits``). The team gains when it is free
    in that period or ranks the assignment above what it has there (unranked: worse than any ranked);
    it leaves that. The assignment gains when it has room (it takes the team besides its teams) or ranks
    the team above one of its teams (unranked: worse than any ranked; that team leaves). Every move is
    tried on the whole matching."""
    jobs = problem.assignments_by_id
    found = []
    for pair in sorted(plain_eligible(problem) - matching):
        mine = team_choice(problem, pair.team_id, pair.assignment_id)
        theirs = firm_choice(problem, pair.assignment_id, pair.team_id)
        if mine is None or theirs is None:
            continue
        period = jobs[pair.assignment_id].period
        current = {p for p in matching if p.team_id == pair.team_id and jobs[p.assignment_id].period == period}
        ranks = [team_choice(problem, pair.team_id, p.assignment_id) for p in current]
        if any(r is not None and r <= mine for r in ranks):
            continue
        rest = matching - current
        on_it = [p for p in matching if p.assignment_id == pair.assignment_id]
        moves = [rest | {pair}] if len(on_it) < jobs[pair.assignment_id].max_teams else []
        for other in on_it:
            rank = firm_choice(problem, pair.assignment_id, other.team_id)
            if rank is None or theirs < rank:
                moves.append((rest - {other}) | {pair})
        if any(keeps_limits(problem, move) for move in moves):
            found.append(pair)
    return found


def all_feasible(problem: Problem) -> list[frozenset[Pair]]:
    """Every feasible matching: each team picks at most one eligible assignment per period."""
    eligible = plain_eligible(problem)
    jobs = problem.assignments_by_id
    options = []
    for t in problem.teams:
        per_period: list[list[str | None]] = [
            [None, *(p.assignment_id for p in sorted(eligible) if p.team_id == t.team_id
                     and jobs[p.assignment_id].period == period)] for period in t.periods]
        options.append((t.team_id, per_period))
    found: list[frozenset[Pair]] = []
    count: Counter[str] = Counter()
    chosen: list[Pair] = []

    def walk(i: int, k: int) -> None:
        """Team i picks for its k-th period; then the next period, then the next team."""
        if i == len(options):
            matching = frozenset(chosen)
            if plain_feasible(problem, matching):
                found.append(matching)
            return
        team_id, per_period = options[i]
        if k == len(per_period):
            walk(i + 1, 0)
            return
        for a in per_period[k]:
            if a is None:
                walk(i, k + 1)
            elif count[a] < jobs[a].max_teams:  # prune: never over an assignment's maximum
                count[a] += 1
                chosen.append(Pair(team_id, a))
                walk(i, k + 1)
                chosen.pop()
                count[a] -= 1

    walk(0, 0)
    return found


def score(problem: Problem, policy: str, matching: frozenset[Pair] | dict[Pair, float]) -> tuple[float, ...]:
    """The policy's objectives, in order, computed from the matching alone (each the more the better)."""
    pairs = set(matching)
    teams, jobs = problem.teams_by_id, problem.assignments_by_id
    values = {"fit": sum(fit(teams[p.team_id], jobs[p.assignment_id]) for p in pairs),
              "served": len({p.assignment_id for p in pairs}), "kept": len(problem.reference & pairs)}
    for r in range(1, 11):
        values[f"rank_{r}"] = sum(1 for p in pairs if team_choice(problem, p.team_id, p.assignment_id) == r)
    if any(o.minimise for o in POLICIES[policy].objectives):  # fewest blocking pairs: the most of minus them
        values["blocking"] = -len(plain_blocking(problem, frozenset(pairs)))
    return tuple(round(float(values[o.name]), 6) for o in POLICIES[policy].objectives)


def check_against_brute_force(problem: Problem, policy: str) -> None:
    candidates = all_feasible(problem)
    fewest = 0
    if policy == "stable":  # the fewest blocking pairs first
        counts = {m: len(plain_blocking(problem, m)) for m in candidates}
        fewest = min(counts.values(), default=0)
        candidates = [m for m in candidates if counts[m] == fewest]
    solution = solve(problem, policy=policy)
    if not candidates:
        assert solution.status == "infeasible" and solution.matches == {}
        assert solution.diagnosis is not None and solution.diagnosis["groups"], solution.diagnosis
        return
    assert solution.status == "optimal", solution.diagnosis
    chosen = frozenset(solution.matches)
    assert plain_feasible(problem, chosen)
    if policy == "stable":
        assert len(plain_blocking(problem, chosen)) == fewest == solution.objective_values["blocking"]
    best = max(score(problem, policy, m) for m in candidates)
    assert score(problem, policy, chosen) == pytest.approx(best, abs=1e-6)


# ---- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_eligibility_equals_the_plain_rules(seed: int) -> None:
    problem = random_problem(random.Random(seed), 8, 6)
    assert set(eligible_pairs(problem)) == plain_eligible(problem)


@pytest.mark.parametrize("policy", POLICY_NAMES)
@pytest.mark.parametrize("seed", range(24))
def test_every_policy_equals_brute_force_on_v2_instances(policy: str, seed: int) -> None:
    rng = random.Random(seed * 31 + POLICY_NAMES.index(policy))
    problem = random_problem(rng, rng.randint(2, 8), rng.randint(1, 6), reference=policy == "min_change")
    check_against_brute_force(problem, policy)


def test_the_random_instances_exercise_every_limit() -> None:
    """The random instances above do exercise every rule: over the seeds, each one cuts matchings."""
    cut: Counter[str] = Counter()
    for seed in range(40):
        problem = random_problem(random.Random(seed), 5, 4)
        loose = Problem(problem.teams, problem.assignments, problem.pinned, problem.forbidden)
        tight = set(all_feasible(problem))
        for m in all_feasible(loose):
            if m not in tight:
                values = violations(problem, m)
                cut.update(v.split(":")[0] for v in values)
    assert {"institution_capacity", "supervision_hours", "firm_cap", "fairness_floor"} <= set(cut), cut


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 100_000), st.integers(1, 12), st.integers(1, 8), st.sampled_from(POLICY_NAMES))
def test_every_result_passes_the_validator(seed: int, n_teams: int, n_assignments: int, policy: str) -> None:
    problem = random_problem(random.Random(seed), n_teams, n_assignments, reference=policy == "min_change")
    solution = solve(problem, policy=policy)
    if solution.status == "infeasible":
        assert solution.matches == {} and solution.diagnosis and solution.diagnosis["groups"]
        return
    assert solution.status == "optimal"
    assert violations(problem, solution.matches) == []
    assert plain_feasible(problem, frozenset(solution.matches))
    if POLICIES[policy].stable:  # the validator names each blocking pair the run counts
        assert len(violations(problem, solution.matches, stable=True)) == solution.objective_values["blocking"]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 100_000), st.integers(1, 12), st.integers(1, 8))
def test_the_stable_policy_counts_its_blocking_pairs_as_the_plain_definition_does(seed: int, n_teams: int,
                                                                                 n_assignments: int) -> None:
    problem = random_problem(random.Random(seed), n_teams, n_assignments)
    solution = solve(problem, policy="stable")
    if solution.status == "infeasible":  # only where the hard rules alone cannot hold
        assert solution.diagnosis is not None
        assert solution.diagnosis["groups"], solution.diagnosis
        assert solve(problem).status == "infeasible" and "blocking" not in solution.objective_values
        return
    assert solution.status == "optimal"
    found = plain_blocking(problem, frozenset(solution.matches))
    assert blocking_pairs(problem, solution.matches) == found
    assert solution.objective_values["blocking"] == len(found)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 100_000), st.integers(2, 8), st.integers(1, 6))
def test_min_change_after_one_decline_changes_no_more_pairs_than_needed(seed: int, n_teams: int,
                                                                         n_assignments: int) -> None:
    rng = random.Random(seed)
    base = random_problem(rng, n_teams, n_assignments)
    published = solve(base)
    if not published.matches:
        return
    declined = rng.choice(sorted(published.matches))
    others = frozenset(published.matches) - {declined}
    problem = Problem(base.teams, base.assignments, base.pinned - {declined}, base.forbidden | {declined}, others,
                      base.capacities, base.firm_caps, base.floors, base.working_area)
    rerun = solve(problem, policy="min_change")
    candidates = all_feasible(problem)
    if not candidates:
        assert rerun.status == "infeasible" and rerun.diagnosis is not None
        return
    assert rerun.status == "optimal" and declined not in rerun.matches
    assert violations(problem, rerun.matches) == []
    fewest_dropped = min(len(others - m) for m in candidates)
    assert len(others - set(rerun.matches)) == fewest_dropped


def test_blocking_pairs_of_the_domain_equal_the_plain_definition() -> None:
    for seed in range(40):
        rng = random.Random(seed)
        problem = random_problem(rng, 6, 4)
        for matching in rng.sample(all_feasible(problem) or [frozenset()], 1):
            assert blocking_pairs(problem, matching) == plain_blocking(problem, matching)


@pytest.mark.parametrize("seed", range(30))
def test_explanations_count_each_filter_as_the_pairs_fail_it(seed: int) -> None:
    """The indexed counting in explanations equals asking every pair which filter it fails first."""
    problem = random_problem(random.Random(seed), 8, 6)
    result = explain(problem, solve(problem).matches)
    for item in result["unmatched_assignments"]:
        a = problem.assignments_by_id[item["assignment_id"]]
        fails = Counter(failed_filter(problem, t, a) for t in problem.teams)
        assert item["removed"] == {f: fails[f] for f in FILTERS}
        assert item["counts"]["eligible"] == fails[None]
    for item in result["unmatched_teams"]:
        t = problem.teams_by_id[item["team_id"]]
        fails = Counter(failed_filter(problem, t, a) for a in problem.assignments)
        assert item["removed"] == {f: fails[f] for f in FILTERS}
        assert item["counts"]["eligible"] == fails[None]
