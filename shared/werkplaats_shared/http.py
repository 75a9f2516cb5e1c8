"""Flask + flask-smorest plumbing: app factory pieces, JSON errors, health and readiness."""

from __future__ import annotations

import functools
import importlib.resources
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import flask_smorest
import sqlalchemy as sa
from flask import Flask, Request, Response, jsonify, render_template_string, request
from flask.typing import ResponseReturnValue
from flask_smorest import Api, Page, abort
from marshmallow import INCLUDE, Schema, ValidationError, fields
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, InternalServerError

from .metrics import install_http_metrics
from .transient import is_transient

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# While the database does not answer, the APIs answer 503 with this Retry-After (seconds), not 500.
UNAVAILABLE_RETRY_AFTER = 5
UNAVAILABLE_MESSAGE = {
    "nl": "De database is tijdelijk niet bereikbaar; probeer het over enkele seconden opnieuw.",
    "en": "The database is temporarily unreachable; try again in a few seconds.",
}


def _field_errors(messages: Any, path: str = "") -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            out += _field_errors(value, f"{path}.{key}" if path else str(key))
    elif isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        out += [{"field": path or "_body", "reason": m} for m in messages]
    elif isinstance(messages, list):
        for m in messages:
            out += _field_errors(m, path)
    else:
        out.append({"field": path or "_body", "reason": str(messages)})
    return out


def error_body(status: int, name: str, errors: list[dict[str, str]], message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "error": name, "errors": errors}
    if message:
        body["message"] = message
    return body


NUL_REASON = "must not contain NUL characters"


def _nul_path(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where the first NUL character is in decoded input (a key or a string at any depth), else None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return (*path, key.replace("\x00", "\\0"))
            found = _nul_path(item, (*path, key))
            if found is not None:
                return found
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _nul_path(item, (*path, index))
            if found is not None:
                return found
    return None


def refuse_nul(data: Any) -> None:
    """Raise a field error (422 naming the field) when the input holds a NUL character: PostgreSQL
    cannot store one in text, and no title, code or name needs one."""
    path = _nul_path(data)
    if path is None:
        return
    messages: Any = [NUL_REASON]
    for part in reversed(path or ("_body",)):
        messages = {part: messages}
    raise ValidationError(messages)


class JsonBodyParser(FlaskParser):
    """JSON the decoder refuses beyond syntax errors (nested past the recursion limit, integers past
    Python's digit limit) is an invalid body (400), not a 500; a NUL character anywhere in the input
    (body, query or form) is refused with 422 naming the field, before any schema sees it."""

    def _raw_load_json(self, req: Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError):
            raise json.JSONDecodeError("JSON body the decoder refuses", "?", 0) from None

    def _load_location_data(self, *, schema: Schema, req: Request, location: str) -> Any:
        data = super()._load_location_data(schema=schema, req=req, location=location)
        if location == "json":
            refuse_nul(data)
        elif location in ("query", "querystring", "form", "json_or_form"):
            source = req.args if location in ("query", "querystring") else req.form
            refuse_nul({key: "\x00" if any("\x00" in v for v in source.getlist(key)) else "" for key in source})
        return data


PAGINATION_HEADER_DOC = {
    "description": "Pagination metadata as JSON text, e.g. "
                   '{"total": 42, "total_pages": 3, "first_page": 1, "last_page": 3, "page": 1, "next_page": 2}',
    "schema": {"type": "string"},
}


@dataclass(frozen=True)
class Listed:
    """A list endpoint's query, for QueryPage (a tuple would read as the view's status and headers); ``view``
    turns each row of the page into what the response schema dumps (left out: the row itself)."""

    sessions: Any
    query: sa.Select[Any]
    view: Callable[[Any, Any], Any] | None = None  # (session, row) -> item


class QueryPage(Page):  # type: ignore[misc]
    """Pages a query in the database (a count, then one page with OFFSET and LIMIT), so a long list is not
    loaded whole to answer one page of it."""

    @property
    def items(self) -> list[Any]:
        listed: Listed = self.collection
        with listed.sessions() as session:
            rows = list(session.execute(listed.query.offset(self.page_params.first_item)
                                        .limit(self.page_params.page_size)).scalars())
            return [listed.view(session, row) for row in rows] if listed.view else rows

    @property
    def item_count(self) -> int:
        listed: Listed = self.collection
        with listed.sessions() as session:
            return int(session.execute(sa.select(sa.func.count()).select_from(
                listed.query.order_by(None).subquery())).scalar_one())


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = JsonBodyParser()

    def _document_pagination_metadata(self, spec: Any, resp_doc: dict[str, Any]) -> None:
        # The header is sent as JSON text: declared as a string (flask-smorest declares an object, which
        # OpenAPI's header serialisation would read as comma-separated key,value pairs).
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = dict(PAGINATION_HEADER_DOC)


class ErrorItemSchema(Schema):
    class Meta:
        unknown = INCLUDE  # imports add the row and column of a file

    field = fields.String(metadata={"description": "the input at fault, e.g. periods.0.code or query.page"})
    reason = fields.String(required=True, metadata={"description": "why it was refused"})
    row = fields.Integer(allow_none=True, metadata={"description": "row of an uploaded file (the header is row 1)"})
    column = fields.String(allow_none=True, metadata={"description": "column of an uploaded file"})


class ErrorSchema(Schema):
    status = fields.Integer(required=True, metadata={"description": "the HTTP status code"})
    error = fields.String(required=True, metadata={"description": "the HTTP status name"})
    message = fields.String(metadata={"description": "what went wrong, in words"})
    errors = fields.List(fields.Nested(ErrorItemSchema), required=True)


class WerkplaatsApi(Api):  # type: ignore[misc]
    """Every error as JSON: ``{"status", "error", "message", "errors": [{"field", "reason"}]}``."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> ResponseReturnValue:
        status = error.code or 500
        data = getattr(error, "data", {}) or {}
        errors: list[dict[str, str]] = []
        if "messages" in data:
            for location, messages in data["messages"].items():
                for item in _field_errors(messages):
                    field = item["field"] if location == "json" else f"{location}.{item['field']}"
                    errors.append({"field": field, "reason": item["reason"]})
        errors += data.get("errors", [])
        message = data.get("message") or (error.description if status < 500 else "internal error")
        response = jsonify(error_body(status, error.name, errors, message))
        response.status_code = status
        allowed = getattr(error, "valid_methods", None)
        if status == 405 and allowed:  # the methods the URL does take (RFC 9110: a 405 carries Allow)
            response.headers["Allow"] = ", ".join(allowed)
        for name, value in (data.get("headers") or {}).items():  # webargs passes headers=None
            response.headers[name] = value
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="werkplaats"'
        return response


DOCS_PATH = "/docs"
INDEX_PATH = "/"
# What a person who opens a service's base URL reads: where its documentation is (no API key needed).
INDEX_TEXT = {
    "nl": "Dit is de API van {title}. De documentatie staat op /docs (om te proberen), het OpenAPI-document op "
          "/openapi.json. Stuur bij elk ander verzoek 'Authorization: Bearer <sleutel>'.",
    "en": "This is the API of {title}. Its documentation is at /docs (to try it out), the OpenAPI document at "
          "/openapi.json. Send 'Authorization: Bearer <key>' with every other request.",
}
# Swagger UI's files, shipped by the flask-swagger-ui package: served by the service itself, never a CDN.
_SWAGGER_UI_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}
DOCS_PATHS = frozenset({DOCS_PATH, f"{DOCS_PATH}/docs.js", *(f"{DOCS_PATH}/{name}" for name in _SWAGGER_UI_ASSETS)})
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_DOCS_PAGE = """<!DOCTYPE html>
<html lang="nl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}: API-documentatie (API documentation)</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{{ url_for('api_docs_asset_swagger_ui_css') }}">
</head>
<body>
<noscript>Deze pagina heeft JavaScript nodig. (This page needs JavaScript.)</noscript>
<div id="swagger-ui" data-spec-url="{{ url_for('api-docs.openapi_json') }}"></div>
<script src="{{ url_for('api_docs_asset_swagger_ui_bundle_js') }}"></script>
<script src="{{ url_for('api_docs_script') }}"></script>
</body>
</html>
"""
# No inline script, so the page's CSP can forbid them. "Authorize" takes the API key (or a coordinator
# token); "Try it out" then sends it as "Authorization: Bearer <key>", the scheme the document declares.
# The key lives in the page only: not stored in the browser, gone on reload. No online validator.
_DOCS_SCRIPT = """window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    withCredentials: false
  });
});
"""


def _docs_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def add_api_docs(app: Flask) -> None:
    """Swagger UI at /docs: a browsable, try-it-out view of the service's /openapi.json. Its routes are
    plain Flask routes, so they are not operations of the document itself."""
    @app.get(DOCS_PATH)
    def api_docs() -> ResponseReturnValue:
        page = render_template_string(_DOCS_PAGE, title=app.config["API_TITLE"])
        response = Response(page, mimetype="text/html")
        response.headers["Cache-Control"] = "no-cache"
        return _docs_headers(response)

    @app.get(f"{DOCS_PATH}/docs.js")
    def api_docs_script() -> ResponseReturnValue:
        response = Response(_DOCS_SCRIPT, mimetype="text/javascript")
        response.headers["Cache-Control"] = "no-cache"
        return _docs_headers(response)

    for name, mimetype in _SWAGGER_UI_ASSETS.items():
        def asset(name: str = name, mimetype: str = mimetype) -> ResponseReturnValue:
            response = Response(_swagger_ui_asset(name), mimetype=mimetype)
            response.cache_control.public = True
            response.cache_control.max_age = 3600
            response.add_etag()
            response.make_conditional(request)
            return _docs_headers(response)

        endpoint = "api_docs_asset_" + name.replace("-", "_").replace(".", "_")
        app.add_url_rule(f"{DOCS_PATH}/{name}", endpoint=endpoint, view_func=asset, methods=["GET"])


@functools.cache
def _swagger_ui_asset(name: str) -> bytes:
    return (importlib.resources.files("flask_swagger_ui") / "dist" / name).read_bytes()


def create_app(title: str, version: str = "1") -> tuple[Flask, WerkplaatsApi]:
    app = Flask(title, static_folder=None)  # no service serves files from /static
    install_http_metrics(app, title.removeprefix("Werkplaats ").lower())  # first: its clock starts first
    app.config.update(
        API_TITLE=title,
        API_VERSION=version,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
    )
    api = WerkplaatsApi(app, spec_kwargs={"components": {"securitySchemes": {
        "apiKey": {"type": "http", "scheme": "bearer",
                   "description": "an API key wpk_<id>_<secret>, or an account's token (JWT) from intake's "
                                  "POST /sessions or POST /tokens/{audience}"}}},
        "security": [{"apiKey": []}]})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        if isinstance(exc, HTTPException):
            return api.handle_http_exception(exc)
        if is_transient(exc):
            log.warning("infrastructure unavailable; answered 503", extra={"error": type(exc).__name__})
            return unavailable_response()
        log.exception("unhandled error")
        return api.handle_http_exception(InternalServerError())

    @app.before_request
    def _no_nul_in_path() -> None:
        # No identifier holds a NUL character (and PostgreSQL cannot compare text with one).
        if "\x00" in request.path:
            abort(404, message="not found")

    add_api_docs(app)
    add_index(app)
    return app, api


def add_index(app: Flask) -> None:
    """``GET /``: a short JSON answer pointing to /docs and /openapi.json, in the caller's language."""
    @app.get(INDEX_PATH)
    def api_index() -> ResponseReturnValue:
        lang = request_language()
        title = str(app.config["API_TITLE"])
        response = jsonify(service=title, message=INDEX_TEXT[lang].format(title=title),
                           docs=request.host_url.rstrip("/") + DOCS_PATH,
                           openapi=request.host_url.rstrip("/") + "/openapi.json")
        response.headers["Content-Language"] = lang
        response.vary.add("Accept-Language")
        return response


def request_language() -> str:
    """Dutch unless the request asks for English (``?lang=en`` or ``Accept-Language: en``)."""
    asked = request.args.get("lang")
    if asked in UNAVAILABLE_MESSAGE:
        return str(asked)
    return request.accept_languages.best_match(tuple(UNAVAILABLE_MESSAGE), default="nl") or "nl"


def unavailable_response() -> Response:
    """503 in the error format, with Retry-After: the database (or broker) does not answer just now."""
    lang = request_language()
    message = UNAVAILABLE_MESSAGE[lang]
    response = jsonify(error_body(503, "Service Unavailable", [{"field": "_service", "reason": message}], message))
    response.status_code = 503
    response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    response.headers["Content-Language"] = lang
    response.vary.add("Accept-Language")
    return response


def add_health(app: Flask, checks: dict[str, Callable[[], bool]],
               reports: dict[str, Callable[[], Any]] | None = None) -> None:
    """``/health`` (the process answers) and ``/ready`` (``checks`` all pass, else 503). ``reports`` are shown
    under ``reports`` in /ready and never fail it (the outbox's age, the consumer's state)."""
    @app.get("/health")
    def health() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.get("/ready")
    def ready() -> ResponseReturnValue:
        results = {name: check() for name, check in checks.items()}
        ok = all(results.values())
        body: dict[str, Any] = {"status": "ready" if ok else "not ready",
                                "checks": {k: "ok" if v else "unreachable" for k, v in results.items()}}
        if reports:
            body["reports"] = {name: _report(report) for name, report in reports.items()}
        return jsonify(body), 200 if ok else 503


def _report(report: Callable[[], Any]) -> Any:
    try:
        return report()
    except Exception as exc:  # noqa: BLE001 - a report never fails readiness
        return {"error": type(exc).__name__}


@contextmanager
def service_errors(field_errors: tuple[type[Exception], ...],
                   not_found: tuple[type[Exception], ...]) -> Iterator[None]:
    """Turn a use case's refusals into JSON errors: field errors (with ``field``, ``reason`` and
    ``status`` attributes) keep their status, the not-found kinds answer 404."""
    try:
        yield
    except field_errors as exc:
        field, reason = getattr(exc, "field"), getattr(exc, "reason")  # noqa: B009 - duck-typed errors
        retry_after = getattr(exc, "retry_after", None)
        abort(getattr(exc, "status", 422), message=reason, errors=[{"field": field, "reason": reason}],
              headers={"Retry-After": str(retry_after)} if retry_after is not None else None)
    except not_found:
        abort(404, message="not found")
