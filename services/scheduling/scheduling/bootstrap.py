"""Scheduling's composition root."""

from __future__ import annotations

import os

from werkplaats_shared.config import Settings
from werkplaats_shared.service import Infrastructure, consumer_loop, relay_loop, start_infrastructure

from .adapters import orm
from .entrypoints.handlers import HANDLERS

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def bootstrap(settings: Settings | None = None) -> Infrastructure:
    settings = settings or Settings.from_env("scheduling")
    if len(settings.secret_key) < 32:
        raise ValueError("WERKPLAATS_SECRET_KEY must be set to at least 32 characters: it signs the "
                         "accept/decline links in notices")
    return start_infrastructure(settings, (orm.outbox, orm.inbox, orm.api_keys), MIGRATIONS)


def main() -> None:
    from werkplaats_shared import service

    from .entrypoints.api import create_scheduling_app
    from .entrypoints.worker import notice_loop, webhook_loop

    infra = bootstrap()
    service.run(infra, lambda: create_scheduling_app(infra),
                [relay_loop(infra), consumer_loop(infra, HANDLERS), notice_loop(infra), webhook_loop(infra)])
