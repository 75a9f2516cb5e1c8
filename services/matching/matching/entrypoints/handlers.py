"""Matching's message handlers."""

from __future__ import annotations

from sqlalchemy.orm import Session
from werkplaats_shared.config import Settings
from werkplaats_shared.consumer import Handler
from werkplaats_shared.contracts import Envelope
from werkplaats_shared.service import apikey_replica_handlers

from ..adapters import orm
from ..service_layer import privacy, services


def handlers(settings: Settings | None = None) -> dict[str, Handler]:
    """Matching's handlers; with ``settings``, a batch.submitted sent by reference is fetched from intake
    (WERKPLAATS_INTAKE_URL, signed with WERKPLAATS_SECRET_KEY); without, such a message cannot be handled."""
    fetch = services.snapshot_fetch(settings) if settings is not None else services.no_snapshot_fetch

    def on_batch_submitted(session: Session, envelope: Envelope) -> None:
        services.on_verified_batch_submitted(session, envelope, fetch)

    return {**HANDLERS, "batch.submitted": on_batch_submitted}


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
