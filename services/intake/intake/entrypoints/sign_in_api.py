"""Signing people in, the back end of the web portal: sign-up, sign-in sessions (password or e-mail link),
refresh and sign-out, invitations, and a person's language.

The public routes carry their own credential (an address and password, a refresh token, a link or
invitation token) and are rate-limited per client address; password sign-in is also locked per address
after repeated failures (service layer). Every answer that carries a secret is sent with
``Cache-Control: no-store``.
"""

from __future__ import annotations

import secrets
import smtplib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Page, abort
from marshmallow import Schema, ValidationError, fields, validate
from werkplaats_shared.auth import current_principal, declare_key_management
from werkplaats_shared.fields import UtcDateTime
from werkplaats_shared.http import Blueprint, service_errors
from werkplaats_shared.mail import SmtpMailer
from werkplaats_shared.service import Infrastructure

from ..adapters.mail import MailOut
from ..service_layer import accounts, mails, services, sign_in
from ..service_layer.accounts import AccountError
from ..service_layer.sign_in import Gone, Refusal, SessionAnswer

# Public routes (no API key): exact paths, and prefixes whose routes all are public.
PUBLIC_PATHS = frozenset({"/signups", "/sessions", "/sessions/refresh", "/sessions/revoke", "/sign-in-links"})
PUBLIC_PREFIXES = ("/sign-in-links/", "/invitations/")
# Per client address, on top of the per-address lockout of password sign-in.
SIGNUP_RATE_LIMIT = "10 per hour"
SESSION_RATE_LIMIT = "30 per minute"
LINK_RATE_LIMIT = "10 per minute"
INVITATION_RATE_LIMIT = "30 per minute"
LINK_REQUESTED = {
    "nl": "Als er een account met dit e-mailadres is, is er een aanmeldlink naar dat adres onderweg.",
    "en": "If an account with this e-mail address exists, a sign-in link is on its way to that address.",
}
MAIL_FAILED = "the invitation could not be mailed: try again later"
NO_ACCOUNT = "only a person's account has a language: sign in with an account token"


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


# ---- schemas --------------------------------------------------------------------------------


_LANGUAGE = validate.OneOf(accounts.LANGUAGES)
_PASSWORD = validate.Length(min=accounts.PASSWORD_MIN_LENGTH, max=accounts.PASSWORD_MAX_LENGTH)
_EMAIL_LENGTH = validate.Length(max=accounts.EMAIL_MAX_LENGTH)


class SignupIn(Schema):
    organisation_name = fields.String(required=True, validate=[validate.Length(min=1, max=200), _not_blank])
    email = fields.Email(required=True, validate=_EMAIL_LENGTH)
    password = fields.String(required=True, load_only=True, validate=_PASSWORD)
    language = fields.String(load_default="nl", validate=_LANGUAGE)


class SessionIn(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=accounts.EMAIL_MAX_LENGTH))
    password = fields.String(required=True, load_only=True,
                             validate=validate.Length(min=1, max=accounts.PASSWORD_MAX_LENGTH))


class RefreshIn(Schema):
    refresh_token = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200))


class LinkIn(Schema):
    email = fields.Email(required=True, validate=_EMAIL_LENGTH)
    language = fields.String(load_default="nl", validate=_LANGUAGE)


class InvitationIn(Schema):
    email = fields.Email(required=True, validate=_EMAIL_LENGTH)
    language = fields.String(load_default="nl", validate=_LANGUAGE)


class AcceptIn(Schema):
    password = fields.String(required=True, load_only=True, validate=_PASSWORD)


class LanguageIn(Schema):
    language = fields.String(required=True, validate=_LANGUAGE)


class ServiceTokenOut(Schema):
    token = fields.String(dump_only=True, metadata={"description": "send as 'Authorization: Bearer <token>'"})
    expires_at = UtcDateTime(dump_only=True)


class SessionAccountOut(Schema):
    id = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    language = fields.String(dump_only=True)
    role = fields.String(dump_only=True)
    organisation_id = fields.String(dump_only=True)
    organisation_name = fields.String(dump_only=True)


class SessionOut(Schema):
    session_id = fields.String(dump_only=True, metadata={"description": "the claim sid of the tokens"})
    refresh_token = fields.String(dump_only=True, metadata={
        "description": "renews the tokens (POST /sessions/refresh) and ends the session (POST /sessions/revoke); "
                       "each refresh gives a new one"})
    refresh_expires_at = UtcDateTime(dump_only=True)
    account = fields.Nested(SessionAccountOut, dump_only=True)
    tokens = fields.Dict(keys=fields.String(), values=fields.Nested(ServiceTokenOut), dump_only=True,
                         metadata={"description": "one token per service: intake, matching and scheduling"})


class LinkRequestedOut(Schema):
    message = fields.String(dump_only=True)


class InvitationOut(Schema):
    id = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    expires_at = UtcDateTime(dump_only=True)


class InvitationShownOut(Schema):
    organisation_name = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    expires_at = UtcDateTime(dump_only=True)
    language = fields.String(dump_only=True, metadata={"description": "the invitation's language: nl or en"})


class MeAccountOut(Schema):
    id = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    language = fields.String(dump_only=True)


def session_body(answer: SessionAnswer) -> dict[str, Any]:
    account = answer.account
    return {
        "session_id": answer.session_id, "refresh_token": answer.refresh_token,
        "refresh_expires_at": answer.refresh_expires_at,
        "account": {"id": account.id, "email": account.email, "language": account.language, "role": answer.role,
                    "organisation_id": account.organisation_id, "organisation_name": answer.organisation_name},
        "tokens": {service: {"token": t.token, "expires_at": t.expires_at} for service, t in answer.tokens.items()},
    }


NO_STORE = {"Cache-Control": "no-store"}


def _refuse(refusal: Refusal) -> None:
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else None
    abort(refusal.status, message=refusal.reason, errors=[{"field": "_body", "reason": refusal.reason}],
          headers=headers)


# ---- views ----------------------------------------------------------------------------------


def register_sign_in(app: Flask, api: Api, infra: Infrastructure, clock: Callable[[], datetime]) -> None:
    """Install after ``install_rate_limits``: the public routes get their own limits per client address."""
    sf = infra.session_factory
    settings = infra.settings
    secret = settings.secret_key
    mail = MailOut(SmtpMailer.from_settings(settings))

    def errors() -> Any:
        return service_errors((AccountError, Gone), (services.NotFound,))

    def link(kind: str, token: str) -> str:
        return f"{settings.portal_url}/{kind}/{token}"

    signups = Blueprint("signups", __name__, url_prefix="/signups",
                        description="A firm signs up: a new entrepreneur organisation and its first account, "
                                    "signed in at once; no API key needed")

    @signups.route("")
    class Signups(MethodView):
        @signups.arguments(SignupIn)
        @signups.response(201, SessionOut)
        @signups.doc(security=[])
        def post(self, data: dict[str, Any]) -> Any:
            with errors(), sf.begin() as session:
                answer = sign_in.sign_up(session, lambda env: infra.emit(session, env), secret,
                                         data["organisation_name"].strip(), data["email"], data["password"],
                                         data["language"], clock())
            return session_body(answer), 201, NO_STORE

    sessions = Blueprint("sessions", __name__, url_prefix="/sessions",
                         description="A person's sign-in session: tokens for every service, renewed with the "
                                     "refresh token, ended by sign-out; no API key needed")

    @sessions.route("")
    class Sessions(MethodView):
        @sessions.arguments(SessionIn)
        @sessions.response(201, SessionOut)
        @sessions.doc(security=[])
        def post(self, data: dict[str, Any]) -> Any:
            """Sign in with e-mail address and password."""
            with errors(), sf.begin() as session:
                outcome = sign_in.password_session(session, secret, data["email"], data["password"], clock())
            if isinstance(outcome, Refusal):  # after the commit: the failure is counted
                return _refuse(outcome)
            return session_body(outcome), 201, NO_STORE

    @sessions.route("/refresh")
    class SessionRefresh(MethodView):
        @sessions.arguments(RefreshIn)
        @sessions.response(200, SessionOut)
        @sessions.doc(security=[])
        def post(self, data: dict[str, Any]) -> Any:
            with errors(), sf.begin() as session:
                outcome = sign_in.refresh_session(session, secret, data["refresh_token"], clock())
            if isinstance(outcome, Refusal):
                return _refuse(outcome)
            return session_body(outcome), 200, NO_STORE

    @sessions.route("/revoke")
    class SessionRevocation(MethodView):
        @sessions.arguments(RefreshIn)
        @sessions.response(204)
        @sessions.doc(security=[])
        def post(self, data: dict[str, Any]) -> Any:
            """Sign out: the session's tokens stop working in every service. Answers 204 whether or not the
            session was still open."""
            with errors(), sf.begin() as session:
                sign_in.revoke_session(session, lambda env: infra.emit(session, env), data["refresh_token"], clock())
            return "", 204

    links = Blueprint("sign_in_links", __name__, url_prefix="/sign-in-links",
                      description="Sign in without a password: a single-use link, valid 15 minutes, mailed to the "
                                  "account's address; no API key needed")

    @links.route("")
    class SignInLinks(MethodView):
        @links.arguments(LinkIn)
        @links.response(202, LinkRequestedOut)
        @links.doc(security=[])
        def post(self, data: dict[str, Any]) -> Any:
            """Always 202: the answer never says whether the address has an account."""
            with errors(), sf.begin() as session:
                to_send = sign_in.request_link(session, data["email"], clock())
            if to_send is not None:
                subject, body = mails.render("sign_in_link", to_send.language,
                                             link=link("sign-in/link", to_send.token), until=to_send.expires_at)
                mail.send_later(to=to_send.email, subject=subject, body=body, message_id=secrets.token_hex(16),
                                language=to_send.language, about=f"account {to_send.account_id}")
            return {"message": LINK_REQUESTED[data["language"]]}, 202, NO_STORE

    @links.route("/<token>/session")
    class SignInLinkSession(MethodView):
        @links.response(201, SessionOut)
        @links.doc(security=[])
        def post(self, token: str) -> Any:
            """Use a sign-in link (once)."""
            with errors(), sf.begin() as session:
                answer = sign_in.link_session(session, secret, token, clock())
            return session_body(answer), 201, NO_STORE

    inv = Blueprint("invitations", __name__, url_prefix="/invitations",
                    description="Invitations: an organisation invites a person by e-mail to an account of its own; "
                                "the invited person reads and accepts the invitation without an API key")

    @inv.route("")
    class Invitations(MethodView):
        @inv.response(200, InvitationOut(many=True))
        @inv.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            """The organisation's open invitations."""
            with sf() as session:
                return sign_in.open_invitations(session, current_principal(), clock())

        @inv.arguments(InvitationIn)
        @inv.response(201, InvitationOut)
        def post(self, data: dict[str, Any]) -> Any:
            with errors(), sf.begin() as session:
                new = sign_in.invite(session, current_principal(), data["email"], data["language"], clock())
                invitation = new.invitation
                subject, body = mails.render("invitation", invitation.language, link=link("invitations", new.token),
                                             until=invitation.expires_at, organisation=new.organisation_name)
                try:  # before the commit: an invitation that was not mailed is not stored
                    mail.send_now(to=invitation.email, subject=subject, body=body,
                                  message_id=secrets.token_hex(16), language=invitation.language)
                except (OSError, smtplib.SMTPException):
                    raise AccountError("email", MAIL_FAILED, 503) from None
            return invitation, 201

    @inv.route("/<token>")
    class InvitationItem(MethodView):
        @inv.response(200, InvitationShownOut)
        @inv.doc(security=[])
        def get(self, token: str) -> Any:
            with errors(), sf() as session:
                return sign_in.show_invitation(session, token, clock())

    @inv.route("/<token>/accept")
    class InvitationAcceptance(MethodView):
        @inv.arguments(AcceptIn)
        @inv.response(201, SessionOut)
        @inv.doc(security=[])
        def post(self, data: dict[str, Any], token: str) -> Any:
            with errors(), sf.begin() as session:
                answer = sign_in.accept_invitation(session, secret, token, data["password"], clock())
            return session_body(answer), 201, NO_STORE

    limiters = app.extensions.get("limiter")
    if not limiters:
        raise RuntimeError("install_rate_limits must run before register_sign_in: its routes need their limits")
    for limiter in limiters:
        limiter.limit(SIGNUP_RATE_LIMIT)(signups)
        limiter.limit(SESSION_RATE_LIMIT)(sessions)
        limiter.limit(LINK_RATE_LIMIT)(links)
        limiter.limit(INVITATION_RATE_LIMIT)(inv)

    for blueprint in (signups, sessions, links, inv):
        api.register_blueprint(blueprint)
    declare_key_management(app, inv.name)
