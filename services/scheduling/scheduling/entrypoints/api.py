"""Scheduling's HTTP API: an entrepreneur's notification contact and webhook, notices and their
delivery log, and the public accept/decline pages behind the signed links in match notices."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from flask.views import MethodView
from flask_smorest import Page, abort
from marshmallow import Schema, fields, post_dump, validate
from werkplaats_shared.auth import current_principal, install_auth, roles
from werkplaats_shared.http import Blueprint, add_health, create_app
from werkplaats_shared.ratelimit import install_rate_limits
from werkplaats_shared.service import Infrastructure, health_checks

from ..adapters import orm
from ..adapters.links import RESPONSES_PATH, ResponseLinks
from ..adapters.pages import render_page
from ..adapters.webhook_client import system_resolve
from ..domain.responses import DECISIONS, LINK_VALIDITY, AlreadyAnswered, LinkExpired, LinkInvalid
from ..domain.webhooks import MAX_URL_LENGTH, Resolver, TargetRefused
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
    status = fields.String(metadata={"description": "e-mail: pending, sent, no_contact or failed"})
    language = fields.String(allow_none=True)
    attempts = fields.Integer()
    webhook_status = fields.String(allow_none=True, metadata={
        "description": "null (no webhook when the notice was made), pending, delivered, failed or cancelled"})
    webhook_attempts = fields.Integer()
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)


class DeliveryOut(Schema):
    channel = fields.String(metadata={"description": "email or webhook"})
    attempt = fields.Integer()
    status_code = fields.Integer(allow_none=True, metadata={"description": "the webhook's HTTP status"})
    error = fields.String(allow_none=True, metadata={"description": "why the attempt failed; null if it succeeded"})
    attempted_at = fields.DateTime()
    duration_ms = fields.Integer(allow_none=True)


class KickoffOut(Schema):
    match_id = fields.String()
    assignment_id = fields.String()
    team_id = fields.String()
    status = fields.String(metadata={"description": "proposed, or unplaced (see reason)"})
    starts_at = fields.DateTime(allow_none=True, metadata={"description": "local time with its offset"})
    ends_at = fields.DateTime(allow_none=True)
    timezone = fields.String()
    reason = fields.String(allow_none=True, metadata={"description": "why no slot was found"})


class WebhookIn(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=MAX_URL_LENGTH), metadata={
        "description": "https URL on a public address; checked now and before every delivery"})
    rotate_secret = fields.Boolean(load_default=False, metadata={
        "description": "generate a new signing secret (returned once in this answer)"})


class WebhookOut(Schema):
    url = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    secret = fields.String(metadata={
        "description": "signing secret; only in the answer that created or rotated it, never again"})

    @post_dump
    def _secret_only_once(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if data.get("secret") is None:
            data.pop("secret", None)
        return data


class DecisionIn(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))


class AnswerOut(Schema):
    decision = fields.String()
    responded_at = fields.DateTime()


class LinkedMatchOut(Schema):
    notice_id = fields.String()
    match_id = fields.String()
    assignment_id = fields.String()
    team_id = fields.String()
    period = fields.String()
    response = fields.Nested(AnswerOut, allow_none=True)


class ResponseOut(Schema):
    match_id = fields.String()
    decision = fields.String()
    responded_at = fields.DateTime()


class ResponsesBlueprint(Blueprint):
    # the accept/decline form posts form fields; API clients may send the same field as JSON
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {**Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
                                             "json_or_form": "application/x-www-form-urlencoded"}


PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


def _wants_html() -> bool:
    if request.method == "POST":
        return not request.is_json
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) != "application/json"


def _page(status: int, state: str, language: str | None, **context: Any) -> Response:
    return Response(render_page("response_page", language, {"state": state, **context}), status=status,
                    mimetype="text/html")


def create_scheduling_app(infra: Infrastructure, resolve: Resolver = system_resolve,
                          links: ResponseLinks | None = None) -> Flask:
    app, api = create_app("Werkplaats scheduling")
    install_auth(app, infra.engine, infra.api_keys, public_prefixes=(RESPONSES_PATH,))
    install_rate_limits(app, infra.settings)
    add_health(app, health_checks(infra))
    sf = infra.session_factory
    settings = infra.settings
    signed = links or ResponseLinks(settings.secret_key, settings.public_url)

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

    webhook = Blueprint("webhook", __name__, url_prefix="/webhook", description=(
        "An entrepreneur's webhook: every notice is also POSTed there as JSON, signed with HMAC-SHA256 "
        "over `timestamp + '.' + body` (headers X-Werkplaats-Timestamp, X-Werkplaats-Signature: "
        "sha256=<hex>, Idempotency-Key: <notice id>), retried with backoff when it fails"))

    @webhook.route("")
    class WebhookItem(MethodView):
        @roles("entrepreneur")
        @webhook.response(200, WebhookOut)
        def get(self) -> Any:
            with sf() as session:
                try:
                    return services.get_webhook(session, current_principal())
                except services.NotFound:
                    abort(404, message="no webhook registered")

        @roles("entrepreneur")
        @webhook.arguments(WebhookIn)
        @webhook.response(200, WebhookOut)
        def put(self, data: dict[str, Any]) -> Any:
            try:
                with sf.begin() as session:
                    return services.set_webhook(session, current_principal(), data, resolve,
                                                settings.webhook_allow_loopback)
            except TargetRefused as exc:
                abort(422, message="this webhook URL cannot be used", errors=[{"field": "url", "reason": exc.reason}])

        @roles("entrepreneur")
        @webhook.response(204)
        def delete(self) -> Any:
            try:
                with sf.begin() as session:
                    services.delete_webhook(session, current_principal())
            except services.NotFound:
                abort(404, message="no webhook registered")
            return None

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

    @notices.route("/<notice_id>/deliveries")
    class NoticeDeliveries(MethodView):
        @notices.response(200, DeliveryOut(many=True))
        def get(self, notice_id: str) -> Any:
            """Every attempt to deliver the notice, by e-mail and by webhook, oldest first."""
            with sf() as session:
                try:
                    return services.deliveries_of(session, current_principal(), notice_id)
                except services.NotFound:
                    abort(404, message="not found")

    kickoffs = Blueprint("kickoffs", __name__, url_prefix="/kickoffs", description=(
        "Kickoffs proposed for accepted matches: first weeks of the period, weekdays, no Dutch public "
        "holiday, the coordinator's kickoffs per day capped; Europe/Amsterdam"))

    @kickoffs.route("")
    class Kickoffs(MethodView):
        @kickoffs.response(200, KickoffOut(many=True))
        @kickoffs.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            with sf() as session:
                found = session.execute(services.visible_kickoffs(current_principal())).scalars().all()
                return [services.kickoff_view(k) for k in found]

    responses = ResponsesBlueprint(
        "responses", __name__, url_prefix="/responses",
        description="Public: the accept/decline link of a match notice (the signed token is the credential). "
                    f"HTML for browsers, JSON for clients that send or accept JSON. Links expire after "
                    f"{LINK_VALIDITY.days} days; the first answer stands.")

    def refuse(status: int, state: str, language: str | None, message: str, **context: Any) -> Any:
        if _wants_html():
            return _page(status, state, language, **context)
        abort(status, message=message, errors=[{"field": "token" if status != 409 else "decision",
                                                "reason": message}])

    def verified(token: str) -> Any:
        """The link's target, or a refusal page/answer when the link is forged or expired."""
        try:
            return signed.read(token)
        except LinkInvalid:
            return refuse(403, "invalid", None, "this link is not valid")
        except LinkExpired as exc:
            with sf() as session:
                notice = session.get(orm.Notice, exc.notice_id)
                contact = session.get(orm.Contact, notice.firm_id) if notice else None
            language = contact.language if contact else (notice.language if notice else None)
            return refuse(400, "expired", language, "this link has expired")

    @responses.after_request
    def _page_headers(response: Response) -> Response:
        response.headers.update(PAGE_HEADERS)
        return response

    @responses.route("/<token>")
    class ResponseLink(MethodView):
        @responses.doc(security=[])  # public: the signed token is the credential
        @responses.response(200, LinkedMatchOut, description="the match and any answer so far")
        @responses.alt_response(403, description="forged or altered link")
        @responses.alt_response(400, description="expired link")
        def get(self, token: str) -> Any:
            target = verified(token)
            if isinstance(target, Response):
                return target
            with sf() as session:
                try:
                    found = services.linked_match(session, target)
                except services.NotFound:
                    return refuse(404, "not_found", None, "this match does not exist")
            answer = found.response
            if _wants_html():
                if answer is not None:
                    return _page(200, "answered", found.language, match=found.match, decision=answer.decision,
                                 responded_at=answer.responded_at)
                return _page(200, "open", found.language, match=found.match, period=found.notice.period,
                             expires_at=signed.expires_at_of(token))
            return {"notice_id": found.notice.id, **found.match, "period": found.notice.period,
                    "response": answer}

        @responses.doc(security=[])
        @responses.arguments(DecisionIn, location="json_or_form")
        @responses.response(201, ResponseOut, description="recorded (HTML page: 200)")
        @responses.alt_response(409, description="the match was answered before; the first answer stands")
        @responses.alt_response(403, description="forged or altered link")
        @responses.alt_response(400, description="expired link")
        def post(self, data: dict[str, Any], token: str) -> Any:
            target = verified(token)
            if isinstance(target, Response):
                return target
            try:
                with sf.begin() as session:
                    found = services.record_response(session, target, data["decision"])
            except services.NotFound:
                return refuse(404, "not_found", None, "this match does not exist")
            except AlreadyAnswered:
                with sf() as session:
                    earlier = services.linked_match(session, target)
                assert earlier.response is not None
                return refuse(409, "answered", earlier.language, "this match was already answered",
                              match=earlier.match, decision=earlier.response.decision,
                              responded_at=earlier.response.responded_at)
            assert found.response is not None
            if _wants_html():
                return _page(200, "recorded", found.language, match=found.match, decision=found.response.decision)
            return found.response

    for blueprint in (contact, webhook, notices, kickoffs, responses):
        api.register_blueprint(blueprint)
    return app
