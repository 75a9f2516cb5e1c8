"""Scheduling's HTTP API: an entrepreneur's notification contact, and notices."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.views import MethodView
from flask_smorest import Page, abort
from marshmallow import Schema, fields, validate
from werkplaats_shared.auth import current_principal, install_auth, roles
from werkplaats_shared.http import Blueprint, add_health, create_app
from werkplaats_shared.service import Infrastructure, health_checks

from ..adapters import orm
from ..service_layer import services


class ContactIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))


class ContactOut(ContactIn):
    organisation_id = fields.String(dump_only=True)


class NoticeOut(Schema):
    id = fields.String()
    kind = fields.String()
    firm_id = fields.String()
    run_id = fields.String()
    batch_id = fields.String()
    period = fields.String()
    matches = fields.List(fields.Dict())
    status = fields.String(metadata={"description": "pending, sent, no_contact or failed"})
    language = fields.String(allow_none=True)
    attempts = fields.Integer()
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)


def create_scheduling_app(infra: Infrastructure) -> Flask:
    app, api = create_app("Werkplaats scheduling")
    install_auth(app, infra.engine, infra.api_keys)
    add_health(app, health_checks(infra))
    sf = infra.session_factory

    contact = Blueprint("contact", __name__, url_prefix="/contact",
                        description="Where an entrepreneur receives notices (personal data: kept only here)")

    @contact.route("")
    class ContactItem(MethodView):
        @roles("entrepreneur")
        @contact.response(200, ContactOut)
        def get(self) -> Any:
            with sf() as session:
                found = session.get(orm.Contact, current_principal().organisation_id)
            if found is None:
                abort(404, message="no contact registered")
            return found

        @roles("entrepreneur")
        @contact.arguments(ContactIn)
        @contact.response(200, ContactOut)
        def put(self, data: dict[str, Any]) -> Any:
            with sf.begin() as session:
                return services.set_contact(session, current_principal(), data)

    notices = Blueprint("notices", __name__, url_prefix="/notices", description="Notices sent to entrepreneurs")

    @notices.route("")
    class Notices(MethodView):
        @notices.response(200, NoticeOut(many=True))
        @notices.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            with sf() as session:
                return session.execute(services.visible_notices(current_principal())).scalars().all()

    @notices.route("/<notice_id>")
    class NoticeItem(MethodView):
        @notices.response(200, NoticeOut)
        def get(self, notice_id: str) -> Any:
            with sf() as session:
                found = session.execute(services.visible_notices(current_principal())
                                        .where(orm.Notice.id == notice_id)).scalar_one_or_none()
            if found is None:
                abort(404, message="not found")
            return found

    for blueprint in (contact, notices):
        api.register_blueprint(blueprint)
    return app
