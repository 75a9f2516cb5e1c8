"""Intake's message handlers: translate incoming events to the service layer."""

from __future__ import annotations

from sqlalchemy.orm import Session
from werkplaats_shared.consumer import Handler, PermanentError
from werkplaats_shared.contracts import Envelope

from ..domain.model import DomainError
from ..service_layer import services


def _permanent(fn: Handler) -> Handler:
    def wrapped(session: Session, envelope: Envelope) -> None:
        try:
            fn(session, envelope)
        except DomainError as exc:
            raise PermanentError(f"{exc.field}: {exc.reason}") from exc

    return wrapped


HANDLERS: dict[str, Handler] = {
    "matches.published": _permanent(services.on_matches_published),
    "match.responded": _permanent(services.on_match_responded),
    "run.ended": _permanent(services.on_run_ended),
}
