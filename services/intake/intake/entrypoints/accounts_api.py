"""Accounts of the organisation's people, account tokens (``POST /tokens/<audience>``) and the organisation's own
API keys.
Their routes are declared key management, so the shared scope check (werkplaats_shared.auth) asks the scope
``keys`` for them."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, Response, request, url_for
from flask.views import MethodView
from flask_smorest import Api, Page, abort
from marshmallow import Schema, fields, validate
from werkplaats_shared.auth import UNAUTHORIZED_NL, current_principal, declare_key_management
from werkplaats_shared.contracts import SCOPES
from werkplaats_shared.db import utcnow
from werkplaats_shared.fields import UtcDateTime
from werkplaats_shared.http import Blueprint, Listed, QueryPage, service_errors
from werkplaats_shared.idempotency import HEADER as IDEMPOTENCY_HEADER
from werkplaats_shared.service import Infrastructure

from ..service_layer import accounts, services, sign_in
from ..service_layer.accounts import AccountError
from .i18n import language

TOKENS_PATH = "/tokens/"  # its routes carry their own credential (e-mail and password), not an API key
# per client address, on top of the service-wide limit and the lockout per account address; as high as
# POST /sessions' limit, so that colleagues behind one address are not locked out by each other
LOGIN_RATE_LIMIT = "30 per minute"
SIGN_IN_FAILED = "wrong e-mail address or password"
NO_IDEMPOTENCY = f"{IDEMPOTENCY_HEADER} is not accepted here: the answer carries a secret that is shown once"
UNKNOWN_AUDIENCE = f"the audience is one of: {', '.join(accounts.TOKEN_SERVICES)}"

# Dutch for every text this module and its use cases answer with (English is the code's own text), and for
# the shared key and token checks (their 401s are answered in Dutch by the shared library already).
DUTCH: list[tuple[str, str]] = [
    (r"wrong e-mail address or password", "Onjuist e-mailadres of wachtwoord."),
    (r"this API key lacks the scope (?P<a>\w+)", "Deze API-sleutel heeft het recht '{a}' niet."),
    (r"Idempotency-Key is not accepted here: the answer carries a secret that is shown once",
     "Idempotency-Key wordt hier niet aanvaard: het antwoord bevat een geheim dat maar één keer wordt getoond."),
    (r"an account with this e-mail address exists already", "Er bestaat al een account met dit e-mailadres."),
    (r"only coordinating organisations have accounts", "Alleen coördinerende organisaties hebben accounts."),
    (r"too many failed sign-ins for this address: try again later or ask for a sign-in link",
     "Te veel mislukte aanmeldpogingen voor dit adres: probeer het later opnieuw of vraag een aanmeldlink aan."),
    (r"this session has ended: sign in again", "Deze sessie is beëindigd: meld u opnieuw aan."),
    (r"this sign-in link is not known", "Deze aanmeldlink is onbekend."),
    (r"this sign-in link has been used already: ask for a new one",
     "Deze aanmeldlink is al gebruikt: vraag een nieuwe aan."),
    (r"this sign-in link has expired: ask for a new one", "Deze aanmeldlink is verlopen: vraag een nieuwe aan."),
    (r"this invitation is not known", "Deze uitnodiging is onbekend."),
    (r"this invitation has been accepted already: sign in instead",
     "Deze uitnodiging is al aanvaard: meld u aan."),
    (r"this invitation has expired: ask the organisation for a new one",
     "Deze uitnodiging is verlopen: vraag de organisatie om een nieuwe."),
    (r"the invitation could not be mailed: try again later",
     "De uitnodiging kon niet worden gemaild: probeer het later opnieuw."),
    (r"only a person's account has a language: sign in with an account token",
     "Alleen het account van een persoon heeft een taal: meld u aan met een accounttoken."),
    (r"must not be blank", "Mag niet leeg zijn."),
    (r"Must be one of: nl, en\.", "Moet een van deze zijn: nl, en."),
    (r"unknown scope; the scopes are: (?P<a>.+)", "Onbekend recht; de rechten zijn: {a}."),
    (r"a key cannot give scopes it does not hold itself",
     "Een sleutel kan geen rechten geven die hij zelf niet heeft."),
    (r"a revoked key cannot be rotated", "Een ingetrokken sleutel kan niet worden vervangen."),
    (r"the audience is one of: (?P<a>.+)", "De dienst (audience) is een van: {a}."),
    (r"tokens are not available: the service has no secret key",
     "Tokens zijn niet beschikbaar: de dienst heeft geen geheime sleutel."),
    (r"Not a valid email address\.", "Geen geldig e-mailadres."),
    *UNAUTHORIZED_NL,
]
_DUTCH = [(re.compile(pattern), dutch) for pattern, dutch in DUTCH]


def to_dutch(text: str) -> str | None:
    for pattern, dutch in _DUTCH:
        found = pattern.fullmatch(text)
        if found:
            return dutch.format(**found.groupdict())
    return None


# ---- schemas --------------------------------------------------------------------------------


class AccountIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=accounts.EMAIL_MAX_LENGTH))
    password = fields.String(required=True, load_only=True, validate=validate.Length(
        min=accounts.PASSWORD_MIN_LENGTH, max=accounts.PASSWORD_MAX_LENGTH))
    language = fields.String(load_default="nl", validate=validate.OneOf(accounts.LANGUAGES))


class AccountOut(Schema):
    id = fields.String(dump_only=True)
    organisation_id = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    language = fields.String(dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    disabled_at = UtcDateTime(dump_only=True, allow_none=True)


class TokenIn(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=accounts.EMAIL_MAX_LENGTH))
    password = fields.String(required=True, load_only=True,
                             validate=validate.Length(min=1, max=accounts.PASSWORD_MAX_LENGTH))


class TokenOut(Schema):
    token = fields.String(dump_only=True, metadata={"description": "send as 'Authorization: Bearer <token>'"})
    token_type = fields.String(dump_only=True)
    audience = fields.String(dump_only=True)
    expires_at = UtcDateTime(dump_only=True)


class KeyIn(Schema):
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         validate=validate.Length(min=1, max=len(SCOPES)))
    label = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))


class KeyOut(Schema):
    key_id = fields.String(dump_only=True)
    role = fields.String(dump_only=True)
    scopes = fields.List(fields.String(), dump_only=True)
    label = fields.String(dump_only=True, allow_none=True)
    rotated_from = fields.String(dump_only=True, allow_none=True)
    created_at = UtcDateTime(dump_only=True)
    revoked_at = UtcDateTime(dump_only=True, allow_none=True)


class NewKeyOut(KeyOut):
    api_key = fields.String(dump_only=True, metadata={"description": "the key itself; shown this once only"})


# ---- views ----------------------------------------------------------------------------------


def register_accounts(app: Flask, api: Api, infra: Infrastructure) -> None:
    """Install after ``install_rate_limits``: the token route gets its own, stricter rate limit."""
    sf = infra.session_factory

    def in_tx(fn: Any, *args: Any, emit: bool = False) -> Any:
        with service_errors((AccountError,), (services.NotFound,)), sf.begin() as session:
            if emit:
                return fn(session, lambda env: infra.emit(session, env), *args)
            return fn(session, *args)

    def secret_answer(body: Any, status: int, location: str | None = None) -> Any:
        headers = {"Cache-Control": "no-store"}
        if location:
            headers["Location"] = location
        return body, status, headers

    def refuse_idempotency_key() -> None:
        # The idempotency store keeps a 2xx answer verbatim, and these answers carry a secret shown once.
        if IDEMPOTENCY_HEADER in request.headers:
            abort(400, message=NO_IDEMPOTENCY, errors=[{"field": f"headers.{IDEMPOTENCY_HEADER}",
                                                        "reason": NO_IDEMPOTENCY}])

    acc = Blueprint("accounts", __name__, url_prefix="/accounts",
                    description="Accounts of the caller's organisation's people; they sign in with POST /sessions "
                                "(or POST /tokens/{audience})")

    @acc.route("")
    class Accounts(MethodView):
        @acc.response(200, AccountOut(many=True))
        @acc.paginate(QueryPage, max_page_size=100)
        def get(self) -> Any:
            return Listed(sf, accounts.visible_accounts(current_principal()))

        @acc.arguments(AccountIn)
        @acc.response(201, AccountOut)
        def post(self, data: dict[str, Any]) -> Any:
            account = in_tx(accounts.create_account, current_principal(), data["email"], data["password"],
                            data["language"])
            return account, 201, {"Location": url_for("accounts.AccountItem", account_id=account.id)}

    @acc.route("/<account_id>")
    class AccountItem(MethodView):
        @acc.response(200, AccountOut)
        def get(self, account_id: str) -> Any:
            return in_tx(accounts.get_account, current_principal(), account_id)

    @acc.route("/<account_id>/disable")
    class AccountDisable(MethodView):
        @acc.response(200, AccountOut)
        def post(self, account_id: str) -> Any:
            return in_tx(accounts.disable_account, current_principal(), account_id, emit=True)

    keys = Blueprint("api_keys", __name__, url_prefix="/api-keys",
                     description="The caller's organisation's API keys: scopes, rotation, revocation")

    @keys.route("")
    class Keys(MethodView):
        @keys.response(200, KeyOut(many=True))
        @keys.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            with sf() as session:
                return accounts.list_keys(session, current_principal())

        @keys.arguments(KeyIn)
        @keys.response(201, NewKeyOut)
        def post(self, data: dict[str, Any]) -> Any:
            refuse_idempotency_key()
            key = in_tx(accounts.create_key, current_principal(), data["scopes"], data["label"], emit=True)
            return secret_answer(key, 201, url_for("api_keys.KeyItem", key_id=key.key_id))

    @keys.route("/<key_id>")
    class KeyItem(MethodView):
        @keys.response(200, KeyOut)
        def get(self, key_id: str) -> Any:
            return in_tx(accounts.get_key, current_principal(), key_id)

    @keys.route("/<key_id>/rotate")
    class KeyRotation(MethodView):
        @keys.response(201, NewKeyOut)
        def post(self, key_id: str) -> Any:
            refuse_idempotency_key()
            key = in_tx(accounts.rotate_key, current_principal(), key_id, emit=True)
            return secret_answer(key, 201, url_for("api_keys.KeyItem", key_id=key.key_id))

    @keys.route("/<key_id>/revoke")
    class KeyRevocation(MethodView):
        @keys.response(200, KeyOut)
        def post(self, key_id: str) -> Any:
            return in_tx(accounts.revoke_key, current_principal(), key_id, emit=True)

    tok = Blueprint("tokens", __name__, url_prefix=TOKENS_PATH.rstrip("/"),
                    description="Log in: an account's e-mail and password for a short-lived token "
                                "meant for one service (intake, matching or scheduling); no API key needed")

    @tok.route("/<audience>")
    class Tokens(MethodView):
        @tok.arguments(TokenIn)
        @tok.response(201, TokenOut)
        @tok.doc(security=[])
        def post(self, data: dict[str, Any], audience: str) -> Any:
            if audience not in accounts.TOKEN_SERVICES:
                abort(404, message=UNKNOWN_AUDIENCE)
            with service_errors((AccountError,), ()), sf.begin() as session:
                # the same lockout per address as POST /sessions (the failure commits before the refusal)
                checked = sign_in.check_password(session, data["email"], data["password"], utcnow())
                if not isinstance(checked, sign_in.Refusal):
                    issued = accounts.issue_account_token(infra.settings.secret_key, checked, audience,
                                                          accounts.account_role(session, checked))
            if isinstance(checked, sign_in.Refusal):
                headers = {"Retry-After": str(checked.retry_after)} if checked.retry_after is not None else None
                return abort(checked.status, message=checked.reason,
                             errors=[{"field": "_body", "reason": checked.reason}], headers=headers)
            body = {"token": issued.token, "token_type": "Bearer", "audience": issued.audience,
                    "expires_at": issued.expires_at}
            return secret_answer(body, 201)

    limiters = app.extensions.get("limiter")
    if not limiters:
        raise RuntimeError("install_rate_limits must run before register_accounts: POST /tokens needs its limit")
    for limiter in limiters:
        limiter.limit(LOGIN_RATE_LIMIT)(tok)

    for blueprint in (acc, keys, tok):
        api.register_blueprint(blueprint)
    declare_key_management(app, acc.name, keys.name)
    _install_dutch_texts(app)


def _install_dutch_texts(app: Flask) -> None:
    @app.after_request
    def _translate(response: Response) -> Response:
        if response.status_code < 400 or not response.is_json or language() != "nl":
            return response
        body = response.get_json(silent=True)
        if not isinstance(body, dict):
            return response
        translated = dict(body)
        if isinstance(body.get("message"), str):
            translated["message"] = to_dutch(body["message"]) or body["message"]
        if isinstance(body.get("errors"), list):
            translated["errors"] = [{**e, "reason": to_dutch(e["reason"]) or e["reason"]}
                                    if isinstance(e, dict) and isinstance(e.get("reason"), str) else e
                                    for e in body["errors"]]
        if translated != body:
            response.set_data(json.dumps(translated))
        return response
