"""Intake's composition root."""

from __future__ import annotations

import os

from werkplaats_shared.config import Settings
from werkplaats_shared.service import Infrastructure, consumer_loop, relay_loop, start_infrastructure

from .adapters import orm
from .entrypoints.handlers import HANDLERS

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def bootstrap(settings: Settings | None = None) -> Infrastructure:
    settings = settings or Settings.from_env("intake")
    return start_infrastructure(settings, (orm.outbox, orm.inbox, orm.api_keys), MIGRATIONS)


def main() -> None:
    from werkplaats_shared import service

    from .entrypoints.api import create_intake_app
    from .service_layer import privacy, reconcile

    infra = bootstrap()
    service.run(infra, lambda: create_intake_app(infra), [relay_loop(infra), consumer_loop(infra, HANDLERS),
                                                          privacy.retention_worker(infra),
                                                          reconcile.reconcile_loop(infra)])
