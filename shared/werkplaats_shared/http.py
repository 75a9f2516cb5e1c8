"""Flask + flask-smorest plumbing: app factory pieces, JSON errors, health and readiness."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import flask_smorest
from flask import Flask, Request, jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Api, abort
from marshmallow import INCLUDE, Schema, fields
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


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


class JsonBodyParser(FlaskParser):
    """JSON the decoder refuses beyond syntax errors (nested past the recursion limit, integers past
    Python's digit limit) is an invalid body (400), not a 500."""

    def _raw_load_json(self, req: Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError):
            raise json.JSONDecodeError("JSON body the decoder refuses", "?", 0) from None


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = JsonBodyParser()


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
        for name, value in (data.get("headers") or {}).items():  # webargs passes headers=None
            response.headers[name] = value
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="werkplaats"'
        return response


def create_app(title: str, version: str = "1") -> tuple[Flask, WerkplaatsApi]:
    app = Flask(title)
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
                   "description": "an API key wpk_<id>_<secret>, or a coordinator token (JWT) from intake's "
                                  "POST /tokens/{audience}"}}},
        "security": [{"apiKey": []}]})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        if isinstance(exc, HTTPException):
            return api.handle_http_exception(exc)
        log.exception("unhandled error")
        return api.handle_http_exception(InternalServerError())

    return app, api


def add_health(app: Flask, checks: dict[str, Callable[[], bool]]) -> None:
    @app.get("/health")
    def health() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.get("/ready")
    def ready() -> ResponseReturnValue:
        results = {name: check() for name, check in checks.items()}
        ok = all(results.values())
        return jsonify(status="ready" if ok else "not ready",
                       checks={k: "ok" if v else "unreachable" for k, v in results.items()}), (
            200 if ok else 503)


@contextmanager
def service_errors(field_errors: tuple[type[Exception], ...],
                   not_found: tuple[type[Exception], ...]) -> Iterator[None]:
    """Turn a use case's refusals into JSON errors: field errors (with ``field``, ``reason`` and
    ``status`` attributes) keep their status, the not-found kinds answer 404."""
    try:
        yield
    except field_errors as exc:
        field, reason = getattr(exc, "field"), getattr(exc, "reason")  # noqa: B009 - duck-typed errors
        abort(getattr(exc, "status", 422), message=reason, errors=[{"field": field, "reason": reason}])
    except not_found:
        abort(404, message="not found")
