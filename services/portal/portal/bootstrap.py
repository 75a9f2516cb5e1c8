"""The portal's composition root: settings, one client per service, the app, and the HTTP server."""

from __future__ import annotations

import logging

from flask import Flask
from werkplaats_shared.logs import configure_logging
from werkplaats_shared.metrics import registry_for, start_metrics_server
from werkplaats_shared.runner import serve

from .adapters.clients import Clients, IntakeClient, MatchingClient, SchedulingClient
from .config import PortalSettings
from .entrypoints.app import create_portal_app


def build(settings: PortalSettings) -> Flask:
    clients = Clients(intake=IntakeClient(settings.intake_url), matching=MatchingClient(settings.matching_url),
                      scheduling=SchedulingClient(settings.scheduling_url))
    return create_portal_app(settings, clients)


def main() -> None:
    settings = PortalSettings.from_env()
    configure_logging("portal", settings.log_level)
    logging.getLogger(__name__).info("portal listening", extra={"port": settings.http_port})
    app = build(settings)
    metrics = start_metrics_server(registry_for(), settings.metrics_host, settings.metrics_port)
    try:
        serve(app, settings.http_host, settings.http_port, [])
    finally:
        if metrics is not None:
            metrics.close()
