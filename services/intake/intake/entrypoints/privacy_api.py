"""Erasure requests (``POST /privacy/erasures``) and the personal-data access log of intake's routes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Page
from marshmallow import Schema, fields, validate
from werkplaats_shared.audit import install_access_audit
from werkplaats_shared.auth import current_principal
from werkplaats_shared.contracts import ERASURE_SUBJECTS
from werkplaats_shared.fields import UtcDateTime
from werkplaats_shared.http import Blueprint, service_errors
from werkplaats_shared.service import Infrastructure

from ..adapters.privacy_orm import access_log
from ..domain.model import DomainError
from ..service_layer import privacy, services

# Intake's routes that answer or take personal data, and the kind of data each serves.
PERSONAL_ROUTES = {
    "/me": "organisation",
    "/firm": "firm_contact",
    "/teams": "team",
    "/teams/<team_id>": "team",
    "/assignments": "assignment_text",
    "/assignments/<assignment_id>": "assignment_text",
    "/assignments/bulk": "assignment_text",
    "/batches": "assignment_text",
    "/batches/<batch_id>": "assignment_text",
    "/privacy/erasures": "erasure",
    "/accounts": "account",
    "/accounts/<account_id>": "account",
    "/me/language": "account",
    "/signups": "account",
    "/sessions": "account",
    "/sessions/refresh": "account",
    "/sign-in-links/<token>/session": "account",
    "/invitations": "invitation",
    "/invitations/<token>": "invitation",
    "/invitations/<token>/accept": "account",
    # the operator's organisation routes serve organisations' names (a firm's name can name a person)
    "/organisations": "organisation",
    "/organisations/bulk": "organisation",
    "/organisations/firms": "organisation",
    "/organisations/<organisation_id>": "organisation",
    "/organisations/<organisation_id>/deactivate": "organisation",
}


class ErasureIn(Schema):
    subject_kind = fields.String(required=True, validate=validate.OneOf(ERASURE_SUBJECTS), metadata={
        "description": "team (its code; asked by its institution or its workspace's coordinator) or firm_contact "
                       "(the firm's name, KvK number, assignment texts, e-mail address, webhook and kickoff "
                       "address; asked by the firm itself or a coordinator of a workspace serving it)"})
    subject_id = fields.String(required=True, validate=validate.Length(min=1, max=36),
                               metadata={"description": "the team's id or the firm's organisation id"})


class ErasureOut(Schema):
    subject_kind = fields.String(dump_only=True)
    subject_id = fields.String(dump_only=True)
    erased_at = UtcDateTime(dump_only=True)
    placeholder = fields.String(dump_only=True, metadata={
        "description": "the pseudonymous text that now stands where the name or code was"})


class ErasureLogOut(Schema):
    subject_kind = fields.String(dump_only=True, attribute="subject_type")
    subject_id = fields.String(dump_only=True)
    erased_at = UtcDateTime(dump_only=True, attribute="at")


def register_privacy(app: Flask, api: Api, infra: Infrastructure) -> None:
    sf = infra.session_factory
    blp = Blueprint("privacy", __name__, url_prefix="/privacy", description=(
        "Erasure of a team's or a firm contact's personal data in every service (AVG/GDPR art. 17): the data "
        "is replaced by pseudonymous placeholders; ids, matches and audit entries stay"))

    @blp.route("/erasures")
    class Erasures(MethodView):
        @blp.response(200, ErasureLogOut(many=True))
        @blp.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            """The erasures the calling organisation asked for."""
            with sf() as session:
                rows = session.execute(sa.select(access_log).where(
                    access_log.c.action == "erase",
                    access_log.c.actor_organisation_id == current_principal().organisation_id,
                ).order_by(access_log.c.id)).all()
            return [{"subject_type": r.subject_type, "subject_id": r.subject_id, "at": privacy.as_utc(r.at)}
                    for r in rows]

        @blp.arguments(ErasureIn)
        @blp.response(201, ErasureOut)
        def post(self, data: dict[str, Any]) -> Any:
            with service_errors((DomainError,), (services.NotFound,)), sf.begin() as session:
                return privacy.erase(session, lambda env: infra.emit(session, env), current_principal(),
                                     data["subject_kind"], data["subject_id"])

    api.register_blueprint(blp)
    install_access_audit(app, infra.engine, access_log, PERSONAL_ROUTES)
