"""Scheduling's message handlers."""

from __future__ import annotations

from werkplaats_shared.consumer import Handler
from werkplaats_shared.service import apikey_replica_handlers

from ..adapters import orm
from ..service_layer import privacy, services

HANDLERS: dict[str, Handler] = {
    "workspace.registered": services.on_workspace_registered,
    "batch.announced": services.on_batch_announced,
    "matches.published": services.on_verified_matches_published,
    "firm.referred": services.on_verified_firm_referred,
    **apikey_replica_handlers(orm.api_keys),
    "personal_data.erased": privacy.on_personal_data_erased,
}
