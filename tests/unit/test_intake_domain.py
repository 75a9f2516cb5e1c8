"""Intake's rules: the assignment lifecycle allows listed transitions only."""

from __future__ import annotations

import pytest
from intake.domain.model import TRANSITIONS, AssignmentStatus, DomainError, transition


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
