"""The operator's organisations: create one, create many from a CSV file (all or none), list, read, deactivate.
Every change is audited (intake's audit log: the operator's organisation and key, and what was done).

A new organisation's first API key is in the answer that creates it, once; it is stored only as a hash and
never logged. Rules: service_layer/organisations.py (the admin command applies the same ones).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, request, url_for
from flask.views import MethodView
from flask_smorest import Api, abort
from marshmallow import Schema, ValidationError, fields, validate
from werkplaats_shared.auth import current_principal, declare_key_management
from werkplaats_shared.contracts import LEVELS, ROLES
from werkplaats_shared.fields import UtcDateTime
from werkplaats_shared.http import Blueprint, Listed, QueryPage, service_errors
from werkplaats_shared.service import Infrastructure

from ..adapters import tabular
from ..domain.model import DomainError
from ..service_layer import organisations, services
from ..service_layer.assignments_bulk import flatten_messages
from .i18n import language
from .schemas import FirmIn

NO_STORE = {"Cache-Control": "no-store"}  # an answer with API keys: no cache may keep it
COLUMNS = ("name", "role", "levels")
REQUIRED_COLUMNS = ("name", "role")

BULK_DESCRIPTION = f"""Create many organisations from a CSV file: all of them, or none.

Send the file as the body (`Content-Type: text/csv`) or as the multipart/form-data field `file`. UTF-8 (or
Windows-1252), delimited by `,`, `;` or tab; the first row is the header; at most
{organisations.MAX_BULK_ROWS:,} data rows and 1 MiB.

| column | required | what |
|---|---|---|
| `name` | yes | the organisation's name, at most {organisations.NAME_MAX_LENGTH} characters |
| `role` | yes | {', '.join(ROLES)} |
| `levels` | for an institution | the levels it offers, of {', '.join(LEVELS)}, separated by spaces, `,` or `;` |

A row is refused when it breaks a rule of `POST /organisations`, when an earlier row of the file names the same
organisation (same role, same name with spaces collapsed and case ignored), or when an active organisation of
that role has that name already. Then nothing is stored and the answer (422) names every bad row (the header is
row 1), its column and the reason. The answer 201 lists every organisation created with its first API key,
shown only this once."""


class OrganisationOut(Schema):
    id = fields.String()
    name = fields.String()
    role = fields.String()
    levels = fields.List(fields.String())
    created_at = UtcDateTime()
    deactivated_at = UtcDateTime(allow_none=True, metadata={"description": "none while it is active"})


class CreatedOrganisationOut(OrganisationOut):
    api_key = fields.String(metadata={"description": "its first API key: shown only in this answer, stored as a "
                                                     "hash"})


class BulkCreatedOut(Schema):
    count = fields.Integer()
    organisations = fields.List(fields.Nested(CreatedOrganisationOut), metadata={
        "description": "in the order of the file's rows"})


class OrganisationIn(Schema):
    name = fields.String(required=True, metadata={"description": f"at most {organisations.NAME_MAX_LENGTH} "
                                                                 "characters; unique among the active "
                                                                 "organisations of its role"})
    role = fields.String(required=True, metadata={"description": ", ".join(ROLES)})
    levels = fields.List(fields.String(), load_default=list, metadata={
        "description": f"the levels an institution offers (at least one), of {', '.join(LEVELS)}"})


class OrganisationFilter(Schema):
    role = fields.String(validate=validate.OneOf(ROLES), metadata={"description": "only organisations of this "
                                                                                  "role (kind)"})
    active = fields.Boolean(metadata={"description": "true: only active ones; false: only deactivated ones"})


class DeactivationIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=organisations.REASON_MAX_LENGTH),
                           metadata={"description": "why (kept in the audit log; write no personal data)"})


class NewFirmIn(FirmIn):
    name = fields.String(required=True, metadata={"description": f"at most {organisations.NAME_MAX_LENGTH} "
                                                                 "characters; unique among active firms"})


class FirmsBulkIn(Schema):
    firms = fields.List(fields.Raw(), required=True, validate=validate.Length(min=1, max=organisations.MAX_BULK_ROWS),
                        metadata={"description": "each: name and the fields of POST /firm (NewFirmIn)"})


class CreatedFirmOut(CreatedOrganisationOut):
    row = fields.Integer(metadata={"description": "the item's position in the request (from 0)"})
    kvk_number = fields.String()
    municipality = fields.String()
    workspace_id = fields.String(allow_none=True, metadata={"description": "the workspace whose working area "
                                                                           "covers the firm; none when none does"})


class FirmsCreatedOut(Schema):
    count = fields.Integer()
    firms = fields.List(fields.Nested(CreatedFirmOut), metadata={"description": "in the request's order"})


def created_view(item: organisations.Created) -> dict[str, Any]:
    org = item.organisation
    return {"id": org.id, "name": org.name, "role": org.role, "levels": org.levels,
            "created_at": org.created_at, "deactivated_at": org.deactivated_at, "api_key": item.api_key}


def _levels(cell: Any) -> list[str]:
    return [part for part in re.split(r"[\s,;]+", tabular.text_of(cell)) if part] if cell is not None else []


def _bulk_items(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """The rows of an uploaded CSV file as (row number, fields); refuses the file as a whole (422/413/415)."""
    lang = language()
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        abort(415, message="send the organisations as a CSV file",
              errors=[{"field": "file", "reason": "send the organisations as a CSV file"}])
    try:
        table = tabular.read_table(data, organisations.MAX_BULK_ROWS)
    except tabular.FileRejected as exc:
        reason = exc.reason.pick(lang)
        abort(exc.status, message=reason, errors=[{"field": "file", "reason": reason, "row": exc.row}])
    header = [name.strip().lower() for name in table.header]
    wrong = [{"field": "file", "row": table.header_row, "column": name or tabular.column_label(i),
              "reason": "unknown column"} for i, name in enumerate(header) if name not in COLUMNS]
    wrong += [{"field": "file", "row": table.header_row, "column": name, "reason": "the column is missing"}
              for name in REQUIRED_COLUMNS if name not in header]
    wrong += [{"field": "file", "row": table.header_row, "column": name, "reason": "the column is named twice"}
              for name in COLUMNS if header.count(name) > 1]
    if wrong:
        abort(422, message="the file's header is not the one documented", errors=wrong)
    position = {name: header.index(name) for name in COLUMNS if name in header}
    items: list[tuple[int, dict[str, Any]]] = []
    for row in table.rows:
        cells = {name: row.values[i] if i < len(row.values) else None for name, i in position.items()}
        items.append((row.number, {"name": tabular.text_of(cells["name"]) if cells["name"] is not None else None,
                                   "role": tabular.text_of(cells["role"]) if cells["role"] is not None else None,
                                   "levels": _levels(cells.get("levels"))}))
    return items


def register_organisations(app: Flask, api: Api, infra: Infrastructure) -> None:
    """Every route needs the key scope ``keys``: it mints API keys or takes them away."""
    sf = infra.session_factory
    orgs = Blueprint("organisations", __name__, url_prefix="/organisations",
                     description="The operator's: organisations and their first API keys, created one at a time "
                                 "or from a CSV file, and deactivated (audited)")

    @orgs.route("")
    class Organisations(MethodView):
        @orgs.arguments(OrganisationFilter, location="query")
        @orgs.response(200, OrganisationOut(many=True))
        @orgs.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            """The organisations, oldest first, a page at a time; by role and by whether they are active."""
            return Listed(sf, organisations.query(**filters))

        @orgs.arguments(OrganisationIn)
        @orgs.response(201, CreatedOrganisationOut)
        def post(self, data: dict[str, Any]) -> Any:
            """Create an organisation and its first API key (in this answer only). An active organisation of
            the same role and name (spaces collapsed, case ignored): 409."""
            with service_errors((DomainError,), (services.NotFound,)), sf.begin() as session:
                made = organisations.create(session, lambda env: infra.emit(session, env), current_principal(),
                                            name=data["name"], role=data["role"], levels=data["levels"])
                body = created_view(made)
            return body, 201, {"Location": url_for("organisations.OrganisationItem", organisation_id=body["id"]),
                               **NO_STORE}

    @orgs.route("/bulk")
    class OrganisationsBulk(MethodView):
        @orgs.doc(description=BULK_DESCRIPTION, requestBody={"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"}}}}}})
        @orgs.response(201, BulkCreatedOut)
        def post(self) -> Any:
            """Create many organisations from a CSV file: all or none."""
            upload = request.files.get("file")
            if request.mimetype == "multipart/form-data" and upload is None:
                abort(422, message="send the file as the multipart/form-data field 'file'",
                      errors=[{"field": "file", "reason": "send the file as the multipart/form-data field 'file'"}])
            if upload is None and request.mimetype not in ("text/csv", "text/plain"):
                abort(415, message="send the organisations as a CSV file",
                      errors=[{"field": "file", "reason": "send the organisations as a CSV file"}])
            items = _bulk_items(upload.read() if upload is not None else request.get_data())
            try:
                with service_errors((DomainError,), (services.NotFound,)), sf.begin() as session:
                    made = organisations.create_many(session, lambda env: infra.emit(session, env),
                                                     current_principal(), items)
                    views = [created_view(item) for item in made]
            except organisations.BulkRejected as exc:
                abort(422, message=f"{len(exc.problems)} problems in the file; nothing was stored",
                      errors=[{"field": p.column, "row": p.row, "column": p.column, "reason": p.reason}
                              for p in exc.problems])
            return {"count": len(views), "organisations": views}, 201, NO_STORE

    @orgs.route("/firms")
    class FirmsBulk(MethodView):
        @orgs.arguments(FirmsBulkIn)
        @orgs.response(201, FirmsCreatedOut)
        def post(self, data: dict[str, Any]) -> Any:
            """Create many firms at once, each an entrepreneur organisation with its profile (the fields of
            ``POST /firm``) and its first API key (in this answer only): all of them, or none.

            A firm is refused when it breaks a rule of ``POST /organisations`` or ``POST /firm``, when an
            earlier item has its name or KvK number, or when an active firm has its name or any firm its KvK
            number. Then nothing is stored and the answer (422) names every bad item: ``row`` is its position
            in ``firms`` (from 0), ``field`` the path (``firms.3.kvk_number``) and ``reason`` why."""
            schema = NewFirmIn()
            loaded: list[tuple[int, dict[str, Any]]] = []
            rejected: list[organisations.Problem] = []
            for n, item in enumerate(data["firms"]):
                try:
                    loaded.append((n, schema.load(item)))
                except ValidationError as exc:
                    rejected += [organisations.Problem(n, path, reason)
                                 for path, reason in flatten_messages(exc.messages)]
            try:
                with service_errors((DomainError,), (services.NotFound,)), sf.begin() as session:
                    made = organisations.create_firms(session, lambda env: infra.emit(session, env),
                                                      current_principal(), loaded, rejected)
                    views = [{**created_view(organisations.Created(m.organisation, m.api_key)), "row": m.row,
                              "kvk_number": m.organisation.kvk_number, "municipality": m.organisation.municipality,
                              "workspace_id": m.organisation.workspace_id} for m in made]
            except organisations.BulkRejected as exc:
                rows = len({p.row for p in exc.problems})
                abort(422, message=f"{len(exc.problems)} problems in {rows} firms; nothing was stored",
                      errors=[{"field": f"firms.{p.row}.{p.column}", "row": p.row, "reason": p.reason}
                              for p in exc.problems])
            return {"count": len(views), "firms": views}, 201, NO_STORE

    @orgs.route("/<organisation_id>")
    class OrganisationItem(MethodView):
        @orgs.response(200, OrganisationOut)
        def get(self, organisation_id: str) -> Any:
            with service_errors((DomainError,), (services.NotFound,)), sf() as session:
                return organisations.get(session, organisation_id)

    @orgs.route("/<organisation_id>/deactivate")
    class OrganisationDeactivation(MethodView):
        @orgs.arguments(DeactivationIn)
        @orgs.response(200, OrganisationOut)
        def post(self, data: dict[str, Any], organisation_id: str) -> Any:
            """Deactivate an organisation: its API keys stop working at once (the other services follow
            within moments), its accounts are disabled, its open invitations end; its data is kept. Audited
            with the reason. Deactivating it again: 409."""
            with service_errors((DomainError,), (services.NotFound,)), sf.begin() as session:
                return organisations.deactivate(session, lambda env: infra.emit(session, env), current_principal(),
                                                organisation_id, data["reason"])

    api.register_blueprint(orgs)
    declare_key_management(app, orgs.name)
