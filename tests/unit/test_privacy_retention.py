"""Retention periods come from the environment, with defaults, and bad values are refused at start."""

from __future__ import annotations

from datetime import timedelta

import pytest
from werkplaats_shared.config import ENV_VARS
from werkplaats_shared.retention import DEFAULTS, RetentionPeriods


def test_defaults_and_overrides() -> None:
    assert RetentionPeriods.from_env({}) == RetentionPeriods()
    periods = RetentionPeriods.from_env({"WERKPLAATS_RETENTION_TEAM_DAYS": "30", "WERKPLAATS_RETENTION_FIRM_DAYS": "90",
                                         "WERKPLAATS_RETENTION_DELIVERY_DAYS": "7",
                                         "WERKPLAATS_RETENTION_PLAN_JOB_DAYS": "14",
                                         "WERKPLAATS_RETENTION_INTERVAL": "60"})
    assert periods == RetentionPeriods(team_after_period=timedelta(days=30), inactive_firm=timedelta(days=90),
                                       deliveries=timedelta(days=7), plan_jobs=timedelta(days=14),
                                       interval_seconds=60.0)
    assert RetentionPeriods().plan_jobs == timedelta(days=90)


@pytest.mark.parametrize("value", ["0", "-1", "ten", "3651", "1.5", ""])
def test_bad_periods_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="WERKPLAATS_RETENTION_FIRM_DAYS"):
        RetentionPeriods.from_env({"WERKPLAATS_RETENTION_FIRM_DAYS": value})


def test_every_period_is_documented() -> None:
    assert set(DEFAULTS) <= set(ENV_VARS)
