"""WERKPLAATS_WORKSHOP_PLAN_GAP: the relative gap a workshop plan job is solved to (README's configuration
table); 1% unless set, and a value that is not a fraction from 0 to 0.5 stops the worker with the setting's
name instead of planning to a gap nobody meant."""

from __future__ import annotations

import pytest
from scheduling.bootstrap import workshop_plan_gap


def test_the_gap_is_one_percent_unless_set() -> None:
    assert workshop_plan_gap({}) == 0.01
    assert workshop_plan_gap({"WERKPLAATS_WORKSHOP_PLAN_GAP": ""}) == 0.01


@pytest.mark.parametrize(("raw", "gap"), [("0", 0.0), ("0.001", 0.001), (" 0.05 ", 0.05), ("0.5", 0.5)])
def test_a_fraction_from_zero_to_a_half_is_taken(raw: str, gap: float) -> None:
    assert workshop_plan_gap({"WERKPLAATS_WORKSHOP_PLAN_GAP": raw}) == gap


@pytest.mark.parametrize("raw", ["1%", "-0.01", "0.6", "1", "nan", "inf", "een procent"])
def test_anything_else_is_refused_with_the_settings_name(raw: str) -> None:
    with pytest.raises(ValueError, match=r"WERKPLAATS_WORKSHOP_PLAN_GAP must be a fraction from 0 to 0\.5"):
        workshop_plan_gap({"WERKPLAATS_WORKSHOP_PLAN_GAP": raw})
