"""Infeasible inputs give a diagnosis naming the constraint group, never a crash or an empty result;
a solve stopped by its time limit keeps the best matching found and says so."""

from __future__ import annotations

from typing import Any

import pulp
import pytest
from matching.domain.model import Assignment, Pair, Problem, Team, violations
from matching.solver.paths import solve

HBO_WEB = Team("t0", "i0", "HBO", frozenset({"web"}))
HBO_PLAIN = Team("t1", "i1", "HBO", frozenset())
WO_TEAM = Team("t2", "i1", "WO", frozenset({"web"}))


def job(name: str, lo: int = 1, hi: int = 1, levels: tuple[str, ...] = ("HBO",),
        required: frozenset[str] = frozenset()) -> Assignment:
    return Assignment(name, f"f-{name}", frozenset(levels), required, frozenset(), lo, hi)


def groups(diagnosis: dict[str, Any] | None) -> list[str]:
    assert diagnosis is not None
    return [g["group"] for g in diagnosis["groups"]]


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_pin_on_a_pair_of_the_wrong_level_is_named_with_its_reason(solver: str) -> None:
    problem = Problem((HBO_WEB, WO_TEAM), (job("a"), job("b")), pinned=frozenset({Pair("t2", "a")}))
    solution = solve(problem, solver)
    assert (solution.status, solution.matches) == ("infeasible", {})
    assert groups(solution.diagnosis) == ["pins"]
    assert solution.diagnosis is not None
    (broken,) = solution.diagnosis["groups"][0]["constraints"]
    assert broken["reason"] == "level WO is not accepted (accepts HBO)"
    assert solution.diagnosis["pins_involved"] == [{"team_id": "t2", "assignment_id": "a"}]
    assert "every pinned pair is in the matching" in solution.diagnosis["message"]
    assert "elk vastgezet paar" in solution.diagnosis["message_nl"]


def test_pin_on_a_pair_missing_skills_or_forbidden_is_named() -> None:
    needs_web = job("a", required=frozenset({"web"}))
    solution = solve(Problem((HBO_PLAIN,), (needs_web,), pinned=frozenset({Pair("t1", "a")})))
    assert groups(solution.diagnosis) == ["pins"]
    assert solution.diagnosis is not None
    assert solution.diagnosis["groups"][0]["constraints"][0]["reason"] == "team lacks required skills: web"
    forbidden = Problem((HBO_WEB,), (job("a"),), pinned=frozenset({Pair("t0", "a")}),
                        forbidden=frozenset({Pair("t0", "a")}))
    solution = solve(forbidden)
    assert solution.diagnosis is not None
    assert solution.diagnosis["groups"][0]["constraints"][0]["reason"] == "pair is forbidden"


def test_two_pins_on_one_team_break_the_one_assignment_rule() -> None:
    problem = Problem((HBO_WEB, HBO_PLAIN), (job("a"), job("b")),
                      pinned=frozenset({Pair("t0", "a"), Pair("t0", "b")}))
    solution = solve(problem)
    assert solution.status == "infeasible"
    assert groups(solution.diagnosis) == ["team_at_most_one"]
    assert solution.diagnosis is not None
    assert solution.diagnosis["groups"][0]["constraints"] == [{"label": "team t0", "short_by": 1.0}]
    assert solution.diagnosis["pins_involved"] == [{"team_id": "t0", "assignment_id": "a"},
                                                   {"team_id": "t0", "assignment_id": "b"}]


def test_pin_on_an_assignment_whose_minimum_cannot_be_met() -> None:
    # the assignment needs two teams; only one team is eligible, and it is pinned there
    problem = Problem((HBO_WEB, WO_TEAM), (job("a", lo=2, hi=2),), pinned=frozenset({Pair("t0", "a")}))
    solution = solve(problem)
    assert solution.status == "infeasible"
    assert groups(solution.diagnosis) == ["assignment_min_teams"]
    assert solution.diagnosis is not None
    assert solution.diagnosis["groups"][0]["constraints"][0]["label"] == "assignment a"
    # without the pin the same input is simply solved, with the assignment left empty
    assert solve(Problem(problem.teams, problem.assignments)).status == "optimal"


def test_more_pins_than_an_assignment_takes() -> None:
    problem = Problem((HBO_WEB, HBO_PLAIN), (job("a"),), pinned=frozenset({Pair("t0", "a"), Pair("t1", "a")}))
    solution = solve(problem)
    assert groups(solution.diagnosis) == ["assignment_max_teams"]


class StoppedByTimeLimit(pulp.HiGHS):  # type: ignore[misc]
    """HiGHS, reporting what it reports when the time limit stops it with a solution in hand."""

    def actualSolve(self, lp: pulp.LpProblem) -> int:
        status = super().actualSolve(lp)
        lp.assignStatus(pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible)
        return int(status)


def test_time_limit_keeps_the_best_found_and_marks_it() -> None:
    problem = Problem((HBO_WEB, HBO_PLAIN), (job("a"), job("b")))
    solution = solve(problem, policy="max_served", make=lambda limit, seed: StoppedByTimeLimit(msg=False))
    assert solution.status == "feasible" and solution.time_limit_reached
    assert len(solution.matches) == 2 and violations(problem, solution.matches) == []
    assert solve(problem).time_limit_reached is False
