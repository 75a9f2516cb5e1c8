"""Intake's rules: the assignment lifecycle allows listed transitions only."""

from __future__ import annotations

import pytest
from intake.domain.model import (
    KINDS,
    SUPERVISION_HOURS_BY_KIND,
    TRANSITIONS,
    AssignmentStatus,
    CapacityRow,
    DomainError,
    check_fairness_floors,
    sum_capacities,
    supervision_hours,
    transition,
)


def test_allowed_transitions_succeed_and_all_others_are_refused() -> None:
    for current in AssignmentStatus:
        for target in AssignmentStatus:
            if target in TRANSITIONS[current]:
                assert transition(current.value, target) == target.value
            else:
                with pytest.raises(DomainError) as info:
                    transition(current.value, target)
                assert info.value.status == 409


def test_every_status_is_reachable_from_submitted() -> None:
    seen, todo = {AssignmentStatus.SUBMITTED}, [AssignmentStatus.SUBMITTED]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(AssignmentStatus)


def test_capacity_is_summed_per_institution_period_and_level() -> None:
    rows = [CapacityRow("i2", "Q1", "HBO", 1, 5), CapacityRow("i1", "Q1", "HBO", 2, 40),
            CapacityRow("i1", "Q1", "HBO", 3, 60), CapacityRow("i1", "Q1", "MBO", 1, 10)]
    assert sum_capacities(rows) == [CapacityRow("i1", "Q1", "HBO", 5, 100), CapacityRow("i1", "Q1", "MBO", 1, 10),
                                    CapacityRow("i2", "Q1", "HBO", 1, 5)]
    assert sum_capacities([]) == []


def test_supervision_hours_follow_the_kind_of_assignment() -> None:
    assert set(SUPERVISION_HOURS_BY_KIND) == set(KINDS)
    assert supervision_hours("short_job") < supervision_hours("roadmap") < supervision_hours("project")


def test_fairness_floors_name_known_groups_once() -> None:
    levels, regions, institutions = ("MBO", "HBO", "WO"), frozenset({"Utrecht"}), frozenset({"inst-1"})
    ok = [{"dimension": "level", "value": "HBO", "min_share": 0.5},
          {"dimension": "region", "value": "Utrecht", "min_share": 0.5},
          {"dimension": "institution", "value": "inst-1", "min_share": 0.1}]
    check_fairness_floors(ok, levels, regions, institutions)
    for floors, field in [([{"dimension": "region", "value": "Mars", "min_share": 0.1}], "fairness_floors.0.value"),
                          ([ok[0], {**ok[1], "value": "HBO"}], "fairness_floors.1.value"),
                          ([ok[2], ok[2]], "fairness_floors.1.value")]:
        with pytest.raises(DomainError) as err:
            check_fairness_floors(floors, levels, regions, institutions)
        assert err.value.field == field
