"""Flask + flask-smorest plumbing: app factory pieces, JSON errors, health and readiness."""

from __future__ import annotations

import base64
import binascii
import functools
import http
import importlib.resources
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable

import flask_smorest
import sqlalchemy as sa
from flask import Flask, Request, Response, current_app, g, jsonify, render_template_string, request
from flask.typing import ResponseReturnValue
from flask_smorest import Api, Page, abort
from flask_smorest.pagination import PaginationParameters
from flask_smorest.utils import unpack_tuple_response
from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema
from opentelemetry.trace import SpanKind
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, InternalServerError

from .metrics import install_http_metrics
from .tracing import activate, current_traceparent, deactivate, start_span
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
                   '{"total": 42, "total_pages": 3, "first_page": 1, "last_page": 3, "page": 1, "next_page": 2, '
                   '"next_after": "..."}; next_after (lists paged in the database, while rows follow) is the '
                   "after of the next page: a page asked for by after carries page_size and next_after only.",
    "schema": {"type": "string"},
}


@dataclass(frozen=True)
class Listed:
    """A list endpoint's query, for QueryPage (a tuple would read as the view's status and headers); ``view``
    turns each row of the page into what the response schema dumps (left out: the row itself). A query may
    select more than the entity (e.g. a figure taken out of a heavy column by the database): the rows are then
    tuples, the entity first. The query's ORDER BY (columns of that entity, all ascending or all descending,
    ending in a unique one) is also the list's keyset: ``after`` pages continue from a row's key."""

    sessions: Any
    query: sa.Select[Any]
    view: Callable[[Any, Any], Any] | None = None  # (session, row) -> item


class PagingParameters(PaginationParameters):  # type: ignore[misc]
    """A page by number (``page``, with the list's total) or after a position (``after``: the ``next_after``
    of the previous page; no total, so walking a whole list costs each row once)."""

    def __init__(self, page: int, page_size: int, after: list[Any] | None = None) -> None:
        super().__init__(page, page_size)
        self.after = after
        self.next_after: str | None = None


def _key_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"a list's key cannot hold a {type(value).__name__}")


def _key_parsed(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"t"} and isinstance(value["t"], str):
            return datetime.fromisoformat(value["t"])
        if set(value) == {"d"} and isinstance(value["d"], str):
            return date.fromisoformat(value["d"])
        raise ValueError("not a key value")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ValueError("not a key value")


def encode_cursor(values: list[Any]) -> str:
    text = json.dumps([_key_value(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The key values in a ``next_after``; ValueError for anything that is not one."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("not a position in a list") from exc
    if not isinstance(values, list) or not values:
        raise ValueError("not a position in a list")
    return [_key_parsed(v) for v in values]


CURSOR_REASON = "not a position in this list: use the next_after of the list's previous page"


class Cursor(fields.String):
    """``after``: a ``next_after`` from the X-Pagination header of the previous page."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 1000:
            raise ValidationError(CURSOR_REASON)
        try:
            return decode_cursor(text)
        except ValueError as exc:
            raise ValidationError(CURSOR_REASON) from exc


MAX_PAGE = 1_000_000


def paging_schema(default_page_size: int, max_page_size: int) -> type[Schema]:
    class PagingSchema(Schema):
        class Meta:
            unknown = EXCLUDE

        # a page beyond MAX_PAGE is refused: its offset would not fit a database's integer
        page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
        page_size = fields.Integer(load_default=default_page_size,
                                   validate=validate.Range(min=1, max=max_page_size))
        after = Cursor(load_default=None, metadata={
            "description": "continue after this position: the next_after of the previous page's X-Pagination "
                           "header (walking a whole list this way costs each row once; such a page gives no "
                           "total)"})

        @validates_schema
        def _one_way(self, data: dict[str, Any], **_kwargs: Any) -> None:
            if data.get("after") is not None and data.get("page", 1) != 1:
                raise ValidationError("a page is named by its number or by after, not both", "page")

        @post_load
        def _params(self, data: dict[str, Any], **_kwargs: Any) -> PagingParameters:
            return PagingParameters(**data)

    return PagingSchema


def _order_keys(query: sa.Select[Any]) -> tuple[list[Any], bool] | None:
    """The query's ORDER BY columns and whether they descend; None when they cannot page by key (not all
    columns of the selected entity's table, or in mixed directions: such a list pages by number only)."""
    entity = query.column_descriptions[0].get("entity") if query.column_descriptions else None
    if entity is None:
        return None
    table = sa.inspect(entity).local_table
    keys: list[Any] = []
    directions: set[bool] = set()
    for clause in query._order_by_clauses:
        descending = False
        if isinstance(clause, UnaryExpression):
            if clause.modifier not in (operators.asc_op, operators.desc_op):
                return None
            descending = clause.modifier is operators.desc_op
            clause = clause.element
        if not isinstance(clause, sa.Column) or clause.table is not table:
            return None
        keys.append(clause)
        directions.add(descending)
    if not keys or len(directions) != 1:
        return None
    return keys, directions.pop()


def _fits(keys: list[Any], values: list[Any]) -> bool:
    """Whether the values are a key of these columns (a cursor of another list, or made up, is not)."""
    if len(keys) != len(values):
        return False
    for column, value in zip(keys, values, strict=True):
        try:
            kind = column.type.python_type
        except NotImplementedError:
            continue
        if value is None or not isinstance(value, kind) or (kind is date and isinstance(value, datetime)):
            return False
        if (isinstance(value, str) and "\x00" in value) or (isinstance(value, int) and abs(value) >= 2**63):
            return False  # no database takes them
    return True


def _position(key: list[Any]) -> str | None:
    """The ``next_after`` of a row's key; None (the list pages by number only) for a key the row comparison
    would miss rows by (a NULL) or that does not travel as JSON."""
    if any(value is None for value in key):
        return None
    try:
        return encode_cursor(key)
    except TypeError:
        return None


def _row_key(row: Any, keys: list[Any]) -> list[Any]:
    entity = row[0] if isinstance(row, sa.Row) else row
    mapper = sa.inspect(type(entity))
    return [getattr(entity, mapper.get_property_by_column(column).key) for column in keys]


class QueryPage(Page):  # type: ignore[misc]
    """Pages a query in the database, so a long list is not loaded whole to answer one page of it: by number
    (a count, then one page with OFFSET and LIMIT) or by key (``after``: the rows after the previous page's
    last one, through the index of the ORDER BY; no count)."""

    @property
    def items(self) -> list[Any]:
        listed: Listed = self.collection
        params = self.page_params
        size = params.page_size
        after = getattr(params, "after", None)
        order = _order_keys(listed.query)
        query = listed.query
        if after is not None:
            if order is None or not _fits(order[0], after):
                abort(422, message="invalid pagination", errors=[{"field": "query.after", "reason": CURSOR_REASON}])
            keys, descending = order or ([], False)
            values = [sa.literal(v, type_=k.type) for k, v in zip(keys, after, strict=True)]
            position = sa.tuple_(*values)
            # the first column's bound is implied, but PostgreSQL estimates the rows left from it (not from the
            # row comparison): it then walks the index in order instead of sorting every row left
            query = query.where(keys[0] <= values[0], sa.tuple_(*keys) < position) if descending else \
                query.where(keys[0] >= values[0], sa.tuple_(*keys) > position)
        else:
            query = query.offset(params.first_item)
        with listed.sessions() as session:
            result = session.execute(query.limit(size + 1))
            rows = list(result.scalars() if len(query.column_descriptions) == 1 else result.all())
            if len(rows) > size and order is not None and isinstance(params, PagingParameters):
                params.next_after = _position(_row_key(rows[size - 1], order[0]))
            rows = rows[:size]
            return [listed.view(session, row) for row in rows] if listed.view else rows

    @property
    def item_count(self) -> int:
        listed: Listed = self.collection
        if getattr(self.page_params, "after", None) is not None:
            return -1
        query = listed.query.order_by(None)
        entity = query.column_descriptions[0].get("entity")
        if entity is not None:  # counted by the key alone: the rows' other columns are not read
            query = query.with_only_columns(*sa.inspect(entity).primary_key)
        with listed.sessions() as session:
            return int(session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one())


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = JsonBodyParser()

    def paginate(self, pager: Any = None, *, page: int | None = None, page_size: int | None = None,
                 max_page_size: int | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """flask-smorest's pagination; with QueryPage also ``after`` (keyset pages) and, in the X-Pagination
        header, ``next_after`` while rows follow."""
        if pager is not QueryPage:
            decorator: Callable[[Callable[..., Any]], Callable[..., Any]] = super().paginate(
                pager, page=page, page_size=page_size, max_page_size=max_page_size)
            return decorator
        schema = paging_schema(page_size or self.DEFAULT_PAGINATION_PARAMETERS["page_size"],
                               max_page_size or self.DEFAULT_PAGINATION_PARAMETERS["max_page_size"])
        error_status_code = self.PAGINATION_ARGUMENTS_PARSER.DEFAULT_VALIDATION_STATUS

        def decorator_(func: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                params: PagingParameters = self.PAGINATION_ARGUMENTS_PARSER.parse(schema, request, location="query")
                result, status, headers = unpack_tuple_response(current_app.ensure_sync(func)(*args, **kwargs))
                result = QueryPage(result, page_params=params).items
                if params.after is None:
                    metadata = self._make_pagination_metadata(params.page, params.page_size, params.item_count)
                else:
                    metadata = {"page_size": params.page_size}
                if params.next_after is not None:
                    metadata["next_after"] = params.next_after
                headers = headers if headers is not None else {}
                headers[self.PAGINATION_HEADER_NAME] = json.dumps(metadata)
                return result, status, headers

            wrapper._apidoc = deepcopy(getattr(wrapper, "_apidoc", {}))  # type: ignore[attr-defined]
            wrapper._apidoc["pagination"] = {  # type: ignore[attr-defined]
                "parameters": {"in": "query", "schema": schema},
                "response": {error_status_code: http.HTTPStatus(error_status_code).name}}
            return wrapper

        return decorator_

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
    service = title.removeprefix("Werkplaats ").lower()
    install_http_metrics(app, service)  # first: its clock starts first
    install_tracing(app, service)  # then: what authentication logs carries the trace id
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


def install_tracing(app: Flask, service: str) -> None:
    """A span per request (tracing.py), child of the request's ``traceparent`` header if it has a valid one.
    What the request logs and the messages it puts in the outbox carry its trace id; the answer tells it in a
    ``traceresponse`` header (W3C Trace Context level 2), so a caller can follow its request in the logs."""

    @app.before_request
    def _start_span() -> None:
        span = start_span(service, request.method, SpanKind.SERVER, {"traceparent": request.headers.get("traceparent")})
        g.trace_span, g.trace_token = span, activate(span)

    @app.after_request
    def _name_span(response: Response) -> Response:
        span = g.get("trace_span")
        if span is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.response.status_code", response.status_code)
            traceparent = current_traceparent()
            if traceparent:
                response.headers["traceresponse"] = traceparent
        return response

    @app.teardown_request
    def _end_span(_exc: BaseException | None) -> None:
        token, span = g.pop("trace_token", None), g.pop("trace_span", None)
        if token is not None:
            deactivate(token)
        if span is not None:
            span.end()


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
