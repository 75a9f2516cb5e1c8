"""Matching's message handlers."""

from __future__ import annotations

from werkplaats_shared.consumer import Handler
from werkplaats_shared.service import apikey_replica_handlers

from ..adapters import orm
from ..service_layer import privacy, services

HANDLERS: dict[str, Handler] = {
    "workspace.registered": services.on_workspace_registered,
    "batch.submitted": services.on_verified_batch_submitted,
    "batch.closed": services.on_batch_closed,
    "match.responded": services.on_match_responded,
    "assignment.withdrawn": services.on_assignment_withdrawn,
    "assignment.left_batch": services.on_assignment_left_batch,
    **apikey_replica_handlers(orm.api_keys),
    "personal_data.erased": privacy.on_personal_data_erased,
}
