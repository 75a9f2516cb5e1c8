"""``Idempotency-Key`` on creating POSTs: a retried request returns the first response and never
creates twice.

The key is claimed (a row per organisation and key) before the view runs, so a concurrent retry
gets 409 instead of a second creation; a successful response is stored with the claim and replayed
for every later request with the same key and the same body; a failed request releases the claim so
that the client may try again. Reusing a key for a different request is refused with 422.

An answer that carries a secret shown once (an API key: sent with ``Cache-Control: no-store``) is not
kept: a retry learns that the first request was done (409, with its ``Location``) but never gets the
secret from this table, so no plaintext key is stored beside the hashed ones.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request
from flask_smorest import abort
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .auth import current_principal
from .db import utcnow

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
RETENTION = timedelta(days=2)


def idempotency_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "idempotency_keys", metadata,
        sa.Column("organisation_id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(MAX_KEY_LENGTH), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("location", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def install_idempotency(app: Flask, engine: Engine, table: sa.Table) -> None:
    @app.before_request
    def _claim() -> Response | None:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or "principal" not in g:
            return None
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            abort(400, message=f"{HEADER} must be 1-{MAX_KEY_LENGTH} characters",
                  errors=[{"field": f"headers.{HEADER}", "reason": f"1-{MAX_KEY_LENGTH} characters"}])
        org = current_principal().organisation_id
        fingerprint = _fingerprint()
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.created_at < utcnow() - RETENTION))
            try:
                with conn.begin_nested():
                    conn.execute(table.insert().values(organisation_id=org, key=key, fingerprint=fingerprint,
                                                       created_at=utcnow()))
                g.idempotency_claim = (org, key)
                return None
            except IntegrityError:
                row = conn.execute(sa.select(table).where(table.c.organisation_id == org,
                                                          table.c.key == key)).one()
        if row.fingerprint != fingerprint:
            abort(422, message=f"this {HEADER} was used for a different request",
                  errors=[{"field": f"headers.{HEADER}", "reason": "already used for a different request"}])
        if row.status is None:
            abort(409, message=f"a request with this {HEADER} is still being processed",
                  errors=[{"field": f"headers.{HEADER}", "reason": "request in progress; retry later"}])
        if row.body is None:  # the first answer held a secret shown once: it was not kept
            response = Response(json.dumps({
                "code": 409, "status": "Conflict",
                "message": f"the request with this {HEADER} was done; its answer held a secret that is shown once",
                "errors": [{"field": f"headers.{HEADER}",
                            "reason": "already done; its answer held a secret shown once and is not kept"}]}),
                status=409, mimetype="application/json")
            if row.location:
                response.headers["Location"] = row.location
            response.headers["Idempotent-Replayed"] = "true"
            return response
        replay = Response(row.body, status=row.status, mimetype="application/json")
        if row.location:
            replay.headers["Location"] = row.location
        replay.headers["Idempotent-Replayed"] = "true"
        return replay

    @app.after_request
    def _record(response: Response) -> Response:
        claim: Any = g.pop("idempotency_claim", None)
        if claim is None:
            return response
        org, key = claim
        where = sa.and_(table.c.organisation_id == org, table.c.key == key)
        with engine.begin() as conn:
            if 200 <= response.status_code < 300:
                secret = "no-store" in response.headers.get("Cache-Control", "")
                conn.execute(table.update().where(where).values(
                    status=response.status_code, body=None if secret else response.get_data(as_text=True),
                    location=response.headers.get("Location")))
            else:
                conn.execute(table.delete().where(where))
        return response

    @app.teardown_request
    def _release(exc: BaseException | None) -> None:
        claim: Any = g.pop("idempotency_claim", None)
        if claim is not None:  # the view raised before a response existed
            org, key = claim
            with engine.begin() as conn:
                conn.execute(table.delete().where(table.c.organisation_id == org, table.c.key == key))

