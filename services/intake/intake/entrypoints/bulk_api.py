"""Intake's bulk endpoints: CSV/XLSX import of assignments, teams and capacity, their templates, a batch's export.

| endpoint | who |
|---|---|
| ``POST /imports/assignments`` (multipart ``file``, ``dry_run``) | entrepreneur: rows become the caller's assignments |
| ``POST /imports/teams`` (multipart ``file``, ``dry_run``) | institution: rows become the caller's teams |
| ``POST /imports/capacity`` (multipart ``file``, ``dry_run``) | institution: rows become the caller's capacity |
| ``GET /imports/{assignments,teams,capacity}/template.{csv,xlsx}`` | any organisation |
| ``GET /batches/{id}/export.{csv,xlsx}`` | coordinator, own batches only |

Texts for users are Dutch, or English with ``Accept-Language: en`` (or ``?lang=en``).
"""

from __future__ import annotations

from typing import Any, NoReturn

from flask import Response, jsonify, request
from flask_smorest import Api, abort
from marshmallow import Schema, fields
from sqlalchemy.orm import Session
from werkplaats_shared.auth import Principal, current_principal
from werkplaats_shared.http import Blueprint, error_body
from werkplaats_shared.service import Infrastructure
from werkzeug.exceptions import RequestEntityTooLarge

from ..adapters import tabular, upload_parser
from ..adapters.tabular import Text
from ..service_layer import bulk, services
from .i18n import language
from .schemas import AssignmentIn, CapacityIn, TeamIn

MIB = 1024 * 1024
MAX_UPLOAD_BYTES = 16 * MIB
_TRUE = {"1", "true", "yes", "ja", "on"}
_FALSE = {"", "0", "false", "no", "nee", "off"}

_UPLOAD_DOC: dict[str, Any] = {
    "parameters": [{"in": "query", "name": "dry_run", "required": False, "schema": {"type": "boolean"},
                    "description": "validate only, store nothing (also accepted as a form field)"}],
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "CSV (UTF-8 or Windows-1252; , ; or tab) or XLSX, at most 16 MiB "
                                               "and 10,000 data rows"},
                       "dry_run": {"type": "boolean"},
                       "workspace_id": {"type": "string", "maxLength": 36, "description": (
                           "the workspace of every row that leaves its workspace_id cell empty (teams, "
                           "capacity, assignments)")},
                       "period": {"type": "string", "maxLength": 40, "description": (
                           "the period of every row that leaves its period cell empty")}}}}}},
}


def _file_doc(content_type: str, description: str) -> dict[str, Any]:
    media = content_type.split(";", 1)[0]
    return {"responses": {"200": {"description": description, "content": {
        media: {"schema": {"type": "string", "format": "binary"}}}}}}


CSV_DOC = _file_doc(tabular.CSV_MIME, "CSV, UTF-8 with byte order mark, ;-delimited")
XLSX_DOC = _file_doc(tabular.XLSX_MIME, "Excel workbook")


class ImportErrorOut(Schema):
    field = fields.String()
    reason = fields.String()
    row = fields.Integer(allow_none=True, metadata={"description": "row in the sheet (header = row 1)"})
    column = fields.String(allow_none=True)


class ImportRowOut(Schema):
    row = fields.Integer()
    ok = fields.Boolean()
    id = fields.String(allow_none=True, metadata={"description": "what the row created (none in a dry run)"})
    workspace_id = fields.String(metadata={"description": "assignments: the workspace it went to"})
    status = fields.String(metadata={"description": "assignments: submitted, or referred"})
    routing = fields.String(metadata={"description": "assignments: accepted, routed or referred"})


class ImportOut(Schema):
    kind = fields.String()
    dry_run = fields.Boolean()
    valid = fields.Boolean()
    count = fields.Integer(metadata={"description": "what was (or, in a dry run, would be) created"})
    ids = fields.List(fields.String())
    rows = fields.List(fields.Nested(ImportRowOut))
    error_count = fields.Integer()
    errors = fields.List(fields.Nested(ImportErrorOut))


def submit_assignment(session: Session, emit: bulk.Emit, principal: Principal,
                      data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assignment, routing = services.submit_assignment(session, emit, principal, data)
    return assignment.id, {"workspace_id": assignment.workspace_id, "status": assignment.status,
                           "routing": routing.outcome}


def register_team(session: Session, emit: bulk.Emit, principal: Principal,
                  data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return services.register_team(session, principal, data, emit).id, {}


def register_capacity(session: Session, emit: bulk.Emit, principal: Principal,
                      data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return services.register_capacity(session, emit, principal, data).id, {}


# Columns an upload may fill in once for all its rows (multipart form fields beside the file): a file then
# needs no internal id in each row.
DEFAULTABLE = ("workspace_id", "period")


def import_kinds() -> dict[str, bulk.ImportKind]:
    """What can be imported: the single-item API's request schema and use case, per kind."""
    return {
        "assignments": bulk.import_kind("assignments", "entrepreneur", Text("Opdrachten", "Assignments"),
                                        Text("opdracht", "assignment"), AssignmentIn, submit_assignment,
                                        bulk.ASSIGNMENT_TEXTS),
        "teams": bulk.import_kind("teams", "institution", Text("Teams", "Teams"), Text("team", "team"), TeamIn,
                                  register_team, bulk.TEAM_TEXTS),
        "capacity": bulk.import_kind("capacity", "institution", Text("Capaciteit", "Capacity"),
                                     Text("capaciteitsregistratie", "capacity registration"), CapacityIn,
                                     register_capacity, bulk.CAPACITY_TEXTS),
    }


def errors_json(problems: list[bulk.Problem], lang: str) -> list[dict[str, Any]]:
    return [{"field": p.field, "reason": p.reason.pick(lang), "row": p.row, "column": p.column} for p in problems]


def fail(status: int, message: Text, field: str, lang: str) -> NoReturn:
    abort(status, message=message.pick(lang), errors=errors_json([bulk.Problem(field, message)], lang))
    raise AssertionError("unreachable")


def download(data: bytes, content_type: str, filename: str) -> Response:
    return Response(data, content_type=content_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def register_bulk(api: Api, infra: Infrastructure) -> None:
    sf = infra.session_factory
    kinds = import_kinds()
    parser = upload_parser.IsolatedParser(slots=infra.settings.import_parsers,
                                          timeout=infra.settings.import_parse_seconds)

    imports = Blueprint("imports", __name__, url_prefix="/imports",
                        description="Bulk import from CSV or XLSX (all rows or none), and its templates")

    @imports.url_value_preprocessor
    def _upload_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
        """Runs before every before_request hook (one of them may read the body): uploads to these routes
        may be larger than the app's 1 MiB cap."""
        if request.method == "POST":
            request.max_content_length = MAX_UPLOAD_BYTES

    @imports.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Any:
        if getattr(exc, "data", None):  # our own 413 (too many rows), already worded
            return api.handle_http_exception(exc)
        lang = language()
        text = Text(f"Het bestand is groter dan {MAX_UPLOAD_BYTES // MIB} MiB.",
                    f"The file is larger than {MAX_UPLOAD_BYTES // MIB} MiB.")
        body = error_body(413, exc.name, errors_json([bulk.Problem("file", text)], lang), text.pick(lang))
        return jsonify(body), 413

    def run(kind: bulk.ImportKind) -> tuple[dict[str, Any], int]:
        lang = language()
        upload = request.files.get("file")
        flag = request.args.get("dry_run", request.form.get("dry_run"))
        if flag is not None and flag.strip().lower() not in _TRUE | _FALSE:
            fail(422, Text("dry_run moet true of false zijn.", "dry_run must be true or false."), "dry_run", lang)
        dry_run = flag is not None and flag.strip().lower() in _TRUE
        if upload is None:
            fail(422, Text("Stuur het bestand als multipart/form-data-veld 'file'.",
                           "Send the file as the multipart/form-data field 'file'."), "file", lang)
        defaults = {name: request.form[name].strip() for name in DEFAULTABLE
                    if name in kind.header and request.form.get(name, "").strip()}
        try:
            outcome = bulk.run_import(sf, infra.emit_all, current_principal(), kind, upload.read(), dry_run=dry_run,
                                      defaults=defaults, read=parser.read)
        except upload_parser.ParserBusy as exc:
            text = Text("Er worden nu te veel bestanden tegelijk gelezen; probeer het zo opnieuw.",
                        "Too many files are being read at once; try again shortly.")
            abort(503, message=text.pick(lang), errors=errors_json([bulk.Problem("file", text)], lang),
                  headers={"Retry-After": str(exc.retry_after)})
        except bulk.ImportRejected as exc:
            abort(exc.status, message=exc.message.pick(lang), errors=errors_json(exc.problems, lang))
        except services.NotFound:
            abort(404, message="not found")
        ids = [outcome.ids[n] for n in outcome.rows if n in outcome.ids]
        failed = {p.row for p in outcome.problems}
        body = {
            "kind": kind.name, "dry_run": outcome.dry_run, "valid": outcome.valid, "count": outcome.count, "ids": ids,
            "rows": [{"row": n, "ok": n not in failed, "id": outcome.ids.get(n), **outcome.details.get(n, {})}
                     for n in outcome.rows],
            "error_count": outcome.problem_count, "errors": errors_json(outcome.problems, lang),
        }
        return body, 200 if dry_run else 201

    def add_kind(kind: bulk.ImportKind) -> None:
        @imports.route(f"/{kind.name}", methods=["POST"], endpoint=f"import_{kind.name}")
        @imports.doc(**_UPLOAD_DOC)
        @imports.response(201, ImportOut, description="stored: every row, with the ids created")
        @imports.alt_response(200, schema=ImportOut, description="dry run: what would be created, and the errors")
        def import_rows() -> Any:
            """Import a CSV or XLSX file: every row or none.

            Rows are validated like the single-item POST. When any row fails: 422, nothing stored, and the
            errors name the row (header = row 1) and the column."""
            return run(kind)

        @imports.route(f"/{kind.name}/template.csv", endpoint=f"{kind.name}_template_csv")
        @imports.doc(**CSV_DOC)
        def template_csv() -> Response:
            """The CSV template: the header row the import accepts."""
            return download(tabular.write_csv(kind.header, []), tabular.CSV_MIME, f"{kind.name}-template.csv")

        @imports.route(f"/{kind.name}/template.xlsx", endpoint=f"{kind.name}_template_xlsx")
        @imports.doc(**XLSX_DOC)
        def template_xlsx() -> Response:
            """The XLSX template: the header row the import accepts, and a sheet explaining each column."""
            header, rows = bulk.explanation_rows(kind)
            data = tabular.write_xlsx([
                tabular.SheetSpec(kind.sheet.nl, kind.header, widths=[max(14, len(n) + 4) for n in kind.header]),
                tabular.SheetSpec("Toelichting (explanation)", header, rows, widths=[22, 20, 60, 60, 34], wrap=True),
            ])
            return download(data, tabular.XLSX_MIME, f"{kind.name}-template.xlsx")

    for kind in kinds.values():
        add_kind(kind)

    exports = Blueprint("batch_exports", __name__, url_prefix="/batches",
                        description="A batch's assignments, states and matches as a spreadsheet")

    def export(batch_id: str, extension: str) -> Response:
        with sf() as session:
            try:
                batch, rows = bulk.export_batch(session, current_principal(), batch_id)
            except services.NotFound:
                abort(404, message="not found")
        if extension == "csv":
            return download(tabular.write_csv(bulk.EXPORT_HEADER, rows), tabular.CSV_MIME, f"batch-{batch.id}.csv")
        data = tabular.write_xlsx([tabular.SheetSpec(
            "Batch", bulk.EXPORT_HEADER, rows, widths=[38, 38, 40, 12, 16, 10, 10, 12, 16, 38, 8, 38])])
        return download(data, tabular.XLSX_MIME, f"batch-{batch.id}.xlsx")

    @exports.route("/<batch_id>/export.csv", endpoint="export_csv")
    @exports.doc(**CSV_DOC)
    def export_csv(batch_id: str) -> Response:
        """The batch as CSV (UTF-8, ;): one row per match of the current run, assignments without one too."""
        return export(batch_id, "csv")

    @exports.route("/<batch_id>/export.xlsx", endpoint="export_xlsx")
    @exports.doc(**XLSX_DOC)
    def export_xlsx(batch_id: str) -> Response:
        """The batch as XLSX: one row per match of the current run, assignments without one too."""
        return export(batch_id, "xlsx")

    api.register_blueprint(imports)
    api.register_blueprint(exports)
