"""Why a run came out as it did: reasons with counts for everything left unmatched, the score of
each match taken apart, and figures per run. Pure: a problem and a matching in, plain data out."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any, Iterable

from .model import Pair, Problem, fit_breakdown, ineligibility

REASONS: dict[str, dict[str, str]] = {
    "no_team_of_accepted_level": {
        "en": "no team of an accepted level was in the batch",
        "nl": "er was geen team van een geaccepteerd niveau in de batch"},
    "no_team_with_required_skills": {
        "en": "teams of an accepted level existed, but none had all required skills",
        "nl": "er waren teams van een geaccepteerd niveau, maar geen met alle vereiste vaardigheden"},
    "all_eligible_teams_forbidden": {
        "en": "every eligible team was forbidden for this assignment",
        "nl": "elk geschikt team was voor deze opdracht uitgesloten"},
    "too_few_eligible_teams": {
        "en": "fewer eligible teams existed than the assignment's minimum number of teams",
        "nl": "er waren minder geschikte teams dan het minimale aantal teams van de opdracht"},
    "eligible_teams_went_elsewhere": {
        "en": "eligible teams existed, but they went to other assignments",
        "nl": "er waren geschikte teams, maar die gingen naar andere opdrachten"},
    "no_assignment_accepts_level": {
        "en": "no assignment in the batch accepts the team's level",
        "nl": "geen opdracht in de batch accepteert het niveau van het team"},
    "no_assignment_with_covered_skills": {
        "en": "assignments accept the team's level, but each needs a skill the team lacks",
        "nl": "opdrachten accepteren het niveau van het team, maar elk vraagt een vaardigheid die het team mist"},
    "all_eligible_assignments_forbidden": {
        "en": "every assignment the team suits was forbidden for it",
        "nl": "elke opdracht waarvoor het team geschikt is, was voor dit team uitgesloten"},
    "eligible_assignments_went_to_other_teams": {
        "en": "assignments the team suits existed, but they were staffed by other teams or left closed",
        "nl": "er waren opdrachten waarvoor het team geschikt is, maar die gingen naar andere teams of bleven dicht"},
}


def _reason(code: str, counts: dict[str, int]) -> dict[str, Any]:
    return {"reason": code, **REASONS[code], "counts": counts}


def explain(problem: Problem, matching: Iterable[Pair]) -> dict[str, Any]:
    chosen = sorted(set(matching))
    teams = {t.team_id: t for t in problem.teams}
    assignments = {a.assignment_id: a for a in problem.assignments}
    team_of = {p.team_id: p.assignment_id for p in chosen}
    staffed = Counter(p.assignment_id for p in chosen)

    unmatched_assignments = []
    for a in problem.assignments:
        if staffed[a.assignment_id]:
            continue
        of_level = [t for t in problem.teams if t.level in a.accepted_levels]
        skilled = [t for t in of_level if a.required_skills <= t.skills]
        allowed = [t for t in skilled if Pair(t.team_id, a.assignment_id) not in problem.forbidden]
        placed = [t for t in allowed if t.team_id in team_of]
        counts = {"teams": len(problem.teams), "of_accepted_level": len(of_level),
                  "with_required_skills": len(skilled), "forbidden": len(skilled) - len(allowed),
                  "eligible": len(allowed), "eligible_matched_elsewhere": len(placed),
                  "min_teams": a.min_teams}
        if not of_level:
            code = "no_team_of_accepted_level"
        elif not skilled:
            code = "no_team_with_required_skills"
        elif not allowed:
            code = "all_eligible_teams_forbidden"
        elif len(allowed) < a.min_teams:
            code = "too_few_eligible_teams"
        else:
            code = "eligible_teams_went_elsewhere"
        unmatched_assignments.append({"assignment_id": a.assignment_id, **_reason(code, counts)})

    unmatched_teams = []
    for team in problem.teams:
        if team.team_id in team_of:
            continue
        accepting = [a for a in problem.assignments if team.level in a.accepted_levels]
        covered = [a for a in accepting if a.required_skills <= team.skills]
        usable = [a for a in covered if Pair(team.team_id, a.assignment_id) not in problem.forbidden]
        full = [a for a in usable if staffed[a.assignment_id] >= a.max_teams]
        counts = {"assignments": len(problem.assignments), "accepting_level": len(accepting),
                  "skills_covered": len(covered), "forbidden": len(covered) - len(usable),
                  "eligible": len(usable), "eligible_full": len(full),
                  "eligible_staffed": sum(1 for a in usable if staffed[a.assignment_id]),
                  "eligible_closed": sum(1 for a in usable if not staffed[a.assignment_id])}
        if not accepting:
            code = "no_assignment_accepts_level"
        elif not covered:
            code = "no_assignment_with_covered_skills"
        elif not usable:
            code = "all_eligible_assignments_forbidden"
        else:
            code = "eligible_assignments_went_to_other_teams"
        unmatched_teams.append({"team_id": team.team_id, **_reason(code, counts)})

    matches = []
    for p in chosen:
        matched_team, assignment = teams.get(p.team_id), assignments.get(p.assignment_id)
        if matched_team is None or assignment is None or ineligibility(problem, p) is not None:
            continue
        b = fit_breakdown(matched_team, assignment)
        matches.append({"team_id": p.team_id, "assignment_id": p.assignment_id,
                        "score": {**asdict(b), "total": b.total}})

    return {"unmatched_assignments": unmatched_assignments, "unmatched_teams": unmatched_teams,
            "matches": matches, "figures": figures(problem, chosen)}


def _share(part: int, whole: int) -> dict[str, Any]:
    return {"served": part, "total": whole, "share": round(part / whole, 4) if whole else None}


def figures(problem: Problem, matching: Iterable[Pair]) -> dict[str, Any]:
    """Served shares: of assignments by accepted level, of teams by level and by institution."""
    chosen = set(matching)
    served_assignments = {p.assignment_id for p in chosen}
    placed_teams = {p.team_id for p in chosen}
    levels = sorted({lv for a in problem.assignments for lv in a.accepted_levels}
                    | {t.level for t in problem.teams})
    institutions = sorted({t.institution_id for t in problem.teams})
    return {
        "assignments": _share(len(served_assignments), len(problem.assignments)),
        "assignments_by_accepted_level": {
            lv: _share(sum(1 for a in problem.assignments if lv in a.accepted_levels
                           and a.assignment_id in served_assignments),
                       sum(1 for a in problem.assignments if lv in a.accepted_levels)) for lv in levels},
        "teams_by_level": {
            lv: _share(sum(1 for t in problem.teams if t.level == lv and t.team_id in placed_teams),
                       sum(1 for t in problem.teams if t.level == lv)) for lv in levels},
        "teams_by_institution": {
            i: _share(sum(1 for t in problem.teams if t.institution_id == i and t.team_id in placed_teams),
                      sum(1 for t in problem.teams if t.institution_id == i)) for i in institutions},
        "unused_teams": sorted(t.team_id for t in problem.teams if t.team_id not in placed_teams),
        "matches": len(chosen),
        "total_fit": float(sum(fit_breakdown(t, a).total for p in chosen
                               if (t := problem.team(p.team_id)) and (a := problem.assignment(p.assignment_id)))),
    }
