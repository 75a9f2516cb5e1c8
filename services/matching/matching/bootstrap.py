"""Matching's composition root."""

from __future__ import annotations

import os

from werkplaats_shared.config import Settings
from werkplaats_shared.metrics import MATCHING_RUNS, LeasedWork, start_at_zero
from werkplaats_shared.service import Infrastructure, consumer_loop, relay_loop, start_infrastructure

from .adapters import orm
from .domain.policies import POLICIES
from .entrypoints.handlers import handlers
from .memory import keep_freed_memory

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def bootstrap(settings: Settings | None = None) -> Infrastructure:
    settings = settings or Settings.from_env("matching")
    infra = start_infrastructure(settings, (orm.outbox, orm.inbox, orm.api_keys), MIGRATIONS)
    infra.leased_work = LeasedWork(orm.Run.__table__, kinds=("run",))  # werkplaats_work_items
    # the failures the alert rules watch exist from the start (deploy/prometheus/alerts.yml)
    start_at_zero(MATCHING_RUNS, *({"policy": policy, "status": "failed"} for policy in POLICIES))
    return infra


def main() -> None:
    from werkplaats_shared import service

    from .entrypoints.api import create_matching_app
    from .entrypoints.worker import solver_loop

    infra = bootstrap()
    if infra.settings.process != "api":  # this process solves: see memory.py
        keep_freed_memory()
    service.run(infra, lambda: create_matching_app(infra),
                [relay_loop(infra), consumer_loop(infra, handlers(infra.settings)), solver_loop(infra)])
