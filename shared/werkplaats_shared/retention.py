"""Retention periods (environment variables, see config.ENV_VARS) and the loop that applies them.

Each service applies the periods to its own data: intake erases teams and inactive firms (and tells the
other services by ``personal_data.erased``), scheduling deletes old delivery attempts and the records of
plan jobs that ended long ago."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from .runner import Loop

log = logging.getLogger(__name__)

DEFAULTS = {
    "WERKPLAATS_RETENTION_TEAM_DAYS": 365,
    "WERKPLAATS_RETENTION_FIRM_DAYS": 365,
    "WERKPLAATS_RETENTION_DELIVERY_DAYS": 365,
    "WERKPLAATS_RETENTION_PLAN_JOB_DAYS": 90,
    "WERKPLAATS_RETENTION_INTERVAL": 3600,
}
MAX_DAYS = 3650


@dataclass(frozen=True)
class RetentionPeriods:
    team_after_period: timedelta = timedelta(days=365)
    inactive_firm: timedelta = timedelta(days=365)
    deliveries: timedelta = timedelta(days=365)
    plan_jobs: timedelta = timedelta(days=90)
    interval_seconds: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetentionPeriods:
        e = os.environ if env is None else env
        values: dict[str, int] = {}
        for name, default in DEFAULTS.items():
            raw = e.get(name, str(default)).strip()
            upper = 86400 if name.endswith("INTERVAL") else MAX_DAYS
            if not raw.isdigit() or not 1 <= int(raw) <= upper:
                raise ValueError(f"{name} must be a whole number from 1 to {upper}")
            values[name] = int(raw)
        return cls(team_after_period=timedelta(days=values["WERKPLAATS_RETENTION_TEAM_DAYS"]),
                   inactive_firm=timedelta(days=values["WERKPLAATS_RETENTION_FIRM_DAYS"]),
                   deliveries=timedelta(days=values["WERKPLAATS_RETENTION_DELIVERY_DAYS"]),
                   plan_jobs=timedelta(days=values["WERKPLAATS_RETENTION_PLAN_JOB_DAYS"]),
                   interval_seconds=float(values["WERKPLAATS_RETENTION_INTERVAL"]))


def retention_loop(apply_once: Callable[[], int], interval_seconds: float) -> Loop:
    """Run ``apply_once`` now and then every ``interval_seconds``; a failed run is logged and retried
    at the next interval."""

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                done = apply_once()
                if done:
                    log.info("retention applied", extra={"count": done})
            except Exception:
                log.exception("retention run failed")
            stop.wait(interval_seconds)

    return Loop("retention", run)
