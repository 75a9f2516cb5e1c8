"""Matching's composition root."""

from __future__ import annotations

import os

from werkplaats_shared.config import Settings
from werkplaats_shared.service import Infrastructure, consumer_loop, relay_loop, start_infrastructure

from .adapters import orm
from .entrypoints.handlers import handlers
from .memory import keep_freed_memory

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def bootstrap(settings: Settings | None = None) -> Infrastructure:
    settings = settings or Settings.from_env("matching")
    return start_infrastructure(settings, (orm.outbox, orm.inbox, orm.api_keys), MIGRATIONS)


def main() -> None:
    from werkplaats_shared import service

    from .entrypoints.api import create_matching_app
    from .entrypoints.worker import solver_loop

    infra = bootstrap()
    if infra.settings.process != "api":  # this process solves: see memory.py
        keep_freed_memory()
    service.run(infra, lambda: create_matching_app(infra),
                [relay_loop(infra), consumer_loop(infra, handlers(infra.settings)), solver_loop(infra)])
