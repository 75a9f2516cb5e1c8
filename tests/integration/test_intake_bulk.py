"""Intake's bulk import (CSV, XLSX), its templates and the export of a batch, through the HTTP API.

The files are built here with openpyxl and csv, as a user's spreadsheet program would write them. An
import is all or nothing: a failing row stores nothing and is named by its row in the sheet (header =
row 1) and its column.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
import zipfile
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from intake.adapters import orm
from intake.entrypoints.schemas import AssignmentIn, TeamIn
from intake.service_layer import services
from werkplaats_shared.contracts import make_envelope
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from . import test_intake_api
from .test_intake_api import World, assert_error, batch_body

world = test_intake_api.world  # coordinators, institutions, firms with profiles, workspaces ws_a and ws_b

ASG = list(AssignmentIn().load_fields)
TEAM = list(TeamIn().load_fields)
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ---- building files ---------------------------------------------------------------------------


def asg_row(w: World, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"workspace_id": w.ids["ws_a"], "title": "Webwinkel voor de bakkerij",
                           "description": "Bestellen via de site", "period": "2025-Q1",
                           "accepted_levels": "HBO;WO", "required_skills": "python; ux",
                           "nice_to_have_skills": "", "min_teams": 1, "max_teams": 2}
    row.update(over)
    return row


def team_row(w: World, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"workspace_id": w.ids["ws_a"], "code": "HE-B01", "level": "HBO", "size": 4,
                           "skills": "python;ux", "period": "2025-Q1"}
    row.update(over)
    return row


def xlsx(header: list[str], rows: list[dict[str, Any]]) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Blad1")
    sheet.append(header)
    for row in rows:
        sheet.append([row.get(name) for name in header])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_text(header: list[str], rows: list[dict[str, Any]], delimiter: str = ",") -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(name) is None else row.get(name) for name in header])
    return out.getvalue()


def multipart(data: bytes, filename: str, form: dict[str, str] | None = None) -> tuple[str, bytes]:
    """The request body, encoded in memory (the test client would spool a large body to a temporary file
    that it never closes)."""
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), filename), **(form or {})})
    return f"multipart/form-data; boundary={boundary}", body


def upload(w: World, who: str | None, kind: str, data: bytes, filename: str = "upload.xlsx",
           query: str = "", form: dict[str, str] | None = None, lang: str | None = None,
           headers: dict[str, str] | None = None, encoded: tuple[str, bytes] | None = None) -> TestResponse:
    content_type, body = encoded or multipart(data, filename, form)
    headers = {**({"Accept-Language": lang} if lang else {}), **(headers or {})}
    return w.call(who, "POST", f"/imports/{kind}{query}", data=body, content_type=content_type, headers=headers)


def assert_import_error(resp: TestResponse, status: int) -> list[dict[str, Any]]:
    """The app's JSON error shape; every error also names its row and column (None when not about one)."""
    assert resp.status_code == status, resp.get_data(as_text=True)[:2000]
    body = resp.get_json()
    assert set(body) == {"status", "error", "message", "errors"}, body
    assert body["status"] == status and body["message"]
    for item in body["errors"]:
        assert set(item) == {"field", "reason", "row", "column"}, item
        assert item["reason"]
    errors: list[dict[str, Any]] = body["errors"]
    return errors


def firm_assignments(w: World, who: str) -> int:
    with w.infra.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(orm.Assignment.__table__)
                                .where(orm.Assignment.firm_id == w.org[who])).scalar_one())


# ---- the 10,000-row file ----------------------------------------------------------------------


def test_ten_thousand_xlsx_rows_import_completely(world: World) -> None:
    rows = [asg_row(world, title=f"Opdracht {i:05d}", min_teams=1 + i % 2, max_teams=2) for i in range(10_000)]
    data = xlsx(ASG, rows)
    before = firm_assignments(world, "firm_1")
    started = time.perf_counter()
    resp = upload(world, "firm_1", "assignments", data)
    elapsed = time.perf_counter() - started
    assert resp.status_code == 201, resp.get_data(as_text=True)[:2000]
    print(f"10,000-row XLSX import: {elapsed:.1f} s")  # shown with -s
    body = resp.get_json()
    assert (body["count"], body["valid"], body["dry_run"]) == (10_000, True, False)
    assert len(set(body["ids"])) == 10_000
    assert [r["row"] for r in body["rows"]] == list(range(2, 10_002))
    assert all(r["ok"] and r["routing"] == "accepted" for r in body["rows"])
    assert firm_assignments(world, "firm_1") == before + 10_000
    with world.infra.engine.connect() as conn:
        stored = conn.execute(sa.select(orm.Assignment).where(orm.Assignment.id == body["ids"][4999])).one()
        events = conn.execute(sa.select(sa.func.count()).select_from(orm.outbox)
                              .where(orm.outbox.c.type == "assignment.submitted")).scalar_one()
    assert (stored.title, stored.accepted_levels, stored.required_skills, stored.min_teams) == (
        "Opdracht 04999", ["HBO", "WO"], ["python", "ux"], 2)
    assert events >= 10_000  # the same events as the single-item API, in the same transaction


def test_one_bad_row_in_the_middle_stores_nothing_and_is_named(world: World) -> None:
    rows = [asg_row(world, title=f"Opdracht {i:05d}") for i in range(10_000)]
    rows[5000]["accepted_levels"] = "HBO;BSc"  # data row 5001: row 5002 in the sheet
    before = world.snapshot()
    errors = assert_import_error(upload(world, "firm_1", "assignments", xlsx(ASG, rows), lang="en"), 422)
    assert errors == [{"field": "accepted_levels.1", "row": 5002, "column": "accepted_levels",
                       "reason": "Must be one of: MBO, HBO, WO."}]
    assert world.snapshot() == before


def test_domain_rules_are_the_single_item_rules(world: World) -> None:
    rows = [asg_row(world), asg_row(world, period="2025-Q3"), asg_row(world, min_teams=3, max_teams=2),
            asg_row(world, workspace_id=str(uuid.uuid4())), asg_row(world, title=""), asg_row(world, min_teams="x")]
    before = world.snapshot()
    resp = upload(world, "firm_1", "assignments", csv_text(ASG, rows).encode(), "a.csv")
    errors = assert_import_error(resp, 422)
    assert [(e["row"], e["column"]) for e in errors] == [
        (3, "period"), (4, "min_teams"), (5, "workspace_id"), (6, "title"), (7, "min_teams")]
    assert errors[0]["reason"].startswith("Periode '2025-Q3' staat niet in de kalender")  # Dutch by default
    assert resp.get_json()["message"] == "5 fout(en) in 5 rij(en); er is niets opgeslagen."
    teams = [team_row(world), team_row(world, level="WO"), team_row(world, size="4.5"), team_row(world, size=13)]
    errors = assert_import_error(upload(world, "inst_1", "teams", csv_text(TEAM, teams).encode(), "t.csv",
                                        lang="en"), 422)
    assert [(e["row"], e["column"], e["reason"]) for e in errors] == [
        (3, "level", "the institution does not offer level WO"), (4, "size", "Not a valid integer."),
        (5, "size", "Must be greater than or equal to 1 and less than or equal to 12.")]
    assert world.snapshot() == before


def test_team_rows_become_the_callers_teams(world: World) -> None:
    rows = [team_row(world, remote_allowed="nee", travel_limit_km="25", skills=" python ;ux;; "),
            team_row(world, code="HE-B02", level="MBO", size=3, remote_allowed="", skills="")]
    resp = upload(world, "inst_1", "teams", csv_text(TEAM, rows, delimiter=";").encode("cp1252"), "teams.csv")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    first, second = (world.get("inst_1", f"/teams/{i}").get_json() for i in resp.get_json()["ids"])
    assert (first["code"], first["remote_allowed"], first["travel_limit_km"], first["skills"]) == (
        "HE-B01", False, 25, ["python", "ux"])
    assert (second["level"], second["size"], second["remote_allowed"], second["skills"]) == ("MBO", 3, True, [])
    assert all(t["id"] != first["id"] for t in world.get("inst_2", "/teams").get_json())


def test_a_retried_import_with_an_idempotency_key_creates_once(world: World) -> None:
    data = csv_text(ASG, [asg_row(world, title=f"R{i}", description="d" * 4000) for i in range(300)]).encode()
    assert len(data) > 1024 * 1024  # past the app's own cap: the import's cap applies before the key is checked
    before = firm_assignments(world, "firm_1")
    key, encoded = {"Idempotency-Key": str(uuid.uuid4())}, multipart(data, "r.csv")  # a retry sends the same bytes
    first = upload(world, "firm_1", "assignments", b"", headers=key, encoded=encoded)
    again = upload(world, "firm_1", "assignments", b"", headers=key, encoded=encoded)
    assert first.status_code == 201, first.get_data(as_text=True)[:2000]
    assert again.status_code == 201, again.get_data(as_text=True)[:2000]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["ids"] == first.get_json()["ids"]
    assert firm_assignments(world, "firm_1") == before + 300


def test_cells_outside_the_named_columns_are_refused(world: World) -> None:
    text = csv_text(ASG, [asg_row(world), asg_row(world)], delimiter=";")
    lines = text.split("\r\n")
    lines[2] += ";stray"  # row 3 runs one cell past the header
    before = world.snapshot()
    errors = assert_import_error(upload(world, "firm_1", "assignments", "\r\n".join(lines).encode(), "s.csv"), 422)
    assert [(e["row"], e["column"]) for e in errors] == [(3, f"kolom {chr(ord('A') + len(ASG))}")]
    assert world.snapshot() == before


# ---- encodings and delimiters -----------------------------------------------------------------


def test_windows_1252_csv_with_accents_imports_correctly(world: World) -> None:
    rows = [asg_row(world, title="Café De Kroon: nieuwe website", description="Menukaart € 12,50")]
    data = csv_text(ASG, rows, delimiter=";").encode("cp1252")
    assert b"Caf\xe9" in data
    resp = upload(world, "firm_1", "assignments", data, "opdrachten.csv")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    stored = world.get("firm_1", f"/assignments/{resp.get_json()['ids'][0]}").get_json()
    assert (stored["title"], stored["description"]) == ("Café De Kroon: nieuwe website", "Menukaart € 12,50")


@pytest.mark.parametrize(("encoding", "delimiter"), [("utf-8-sig", ";"), ("utf-8", ","), ("utf-8", "\t")])
def test_utf8_with_or_without_bom_and_each_delimiter(world: World, encoding: str, delimiter: str) -> None:
    rows = [asg_row(world, title="Crème brûlée-app"), asg_row(world, title="Tweede")]
    resp = upload(world, "firm_1", "assignments", csv_text(ASG, rows, delimiter).encode(encoding), "x.csv")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    first = world.get("firm_1", f"/assignments/{resp.get_json()['ids'][0]}").get_json()
    assert (first["title"], first["required_skills"]) == ("Crème brûlée-app", ["python", "ux"])


def test_utf16_and_undecodable_bytes_are_refused_clearly(world: World) -> None:
    before = world.snapshot()
    text = csv_text(ASG, [asg_row(world)])
    errors = assert_import_error(upload(world, "firm_1", "assignments", text.encode("utf-16"), "u.csv",
                                        lang="en"), 422)
    assert errors[0]["field"] == "file" and "UTF-16" in errors[0]["reason"]
    bad = text.encode("utf-8").replace(b"Webwinkel", b"Web\x81winkel")  # 0x81: neither UTF-8 nor cp1252
    errors = assert_import_error(upload(world, "firm_1", "assignments", bad, "b.csv"), 422)
    assert "UTF-8" in errors[0]["reason"] and "Windows-1252" in errors[0]["reason"] and "0x81" in errors[0]["reason"]
    assert world.snapshot() == before


def test_empty_files_header_only_and_non_spreadsheets_are_422(world: World) -> None:
    before = world.snapshot()
    for data in (b"", b"\r\n  \r\n", ",".join(ASG).encode() + b"\r\n", xlsx(ASG, []), b"%PDF-1.7 \x00\x01",
                 b"PK\x03\x04 not really a zip"):
        assert_import_error(upload(world, "firm_1", "assignments", data), 422)
    assert_import_error(world.post("firm_1", "/imports/assignments", data={"other": "x"},
                                   content_type="multipart/form-data"), 422)
    assert world.snapshot() == before


def test_limits_rows_and_size_are_413_json(world: World) -> None:
    before = world.snapshot()
    row = ",".join(str(v) for v in asg_row(world, accepted_levels="HBO", required_skills="").values())
    too_many = (",".join(ASG) + "\n" + (row + "\n") * 10_001).encode()
    errors = assert_import_error(upload(world, "firm_1", "assignments", too_many, "many.csv", lang="en"), 413)
    assert "10,000" in errors[0]["reason"]
    huge = b"x" * (16 * 1024 * 1024 + 1)
    errors = assert_import_error(upload(world, "firm_1", "assignments", huge, "huge.csv"), 413)
    assert errors[0]["field"] == "file" and "16 MiB" in errors[0]["reason"]
    # above the app's 1 MiB but within the import's cap: accepted as far as size goes
    padded = csv_text(ASG, [asg_row(world, description="d" * 4000)] * 300).encode()
    assert len(padded) > 1024 * 1024
    assert upload(world, "firm_1", "assignments", padded, "big.csv", query="?dry_run=true").status_code == 200
    assert world.snapshot() == before


# ---- columns and formulas ---------------------------------------------------------------------


def test_missing_and_extra_columns_are_reported_before_any_row(world: World) -> None:
    header = [c for c in ASG if c != "title"] + ["contact_email"]
    rows = [asg_row(world, contact_email="info@bakkerij.nl", min_teams="not checked")]
    before = world.snapshot()
    errors = assert_import_error(upload(world, "firm_1", "assignments", xlsx(header, rows), lang="en"), 422)
    assert sorted((e["column"], e["row"]) for e in errors) == [("contact_email", 1), ("title", None)]
    assert {e["column"]: e["reason"] for e in errors}["title"] == "The required column 'title' is missing."
    # optional columns may be left out: their defaults apply
    minimal = ["workspace_id", "title", "period", "accepted_levels"]
    resp = upload(world, "firm_1", "assignments", xlsx(minimal, [asg_row(world)]))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    stored = world.get("firm_1", f"/assignments/{resp.get_json()['ids'][0]}").get_json()
    assert (stored["min_teams"], stored["max_teams"], stored["description"]) == (1, 1, "")
    assert world.snapshot()["counts"]["assignments"] == before["counts"]["assignments"] + 1


def test_formula_cells_are_refused_naming_row_and_column(world: World) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(ASG)
    for i in range(3):
        sheet.append([asg_row(world, title=f"Opdracht {i}").get(c) for c in ASG])
    sheet.cell(row=3, column=ASG.index("title") + 1, value='=CONCAT("Web", "winkel")')
    sheet.cell(row=4, column=ASG.index("max_teams") + 1, value="=1+1")
    buffer = io.BytesIO()
    workbook.save(buffer)
    before = world.snapshot()
    errors = assert_import_error(upload(world, "firm_1", "assignments", buffer.getvalue(), lang="en"), 422)
    assert [(e["row"], e["column"], e["reason"]) for e in errors] == [
        (3, "title", "formulas are not accepted; paste values"),
        (4, "max_teams", "formulas are not accepted; paste values")]
    dutch = assert_import_error(upload(world, "firm_1", "assignments", buffer.getvalue()), 422)
    assert dutch[0]["reason"].startswith("Formules worden niet geaccepteerd")
    assert world.snapshot() == before


# ---- dry run ----------------------------------------------------------------------------------


def test_dry_run_reports_and_stores_nothing(world: World) -> None:
    before = world.snapshot()
    data = xlsx(ASG, [asg_row(world, title=f"T{i}") for i in range(3)])
    resp = upload(world, "firm_1", "assignments", data, query="?dry_run=true")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert (body["dry_run"], body["valid"], body["count"], body["errors"]) == (True, True, 3, [])
    assert [(r["row"], r["ok"], r["id"], r["routing"]) for r in body["rows"]] == [
        (2, True, None, "accepted"), (3, True, None, "accepted"), (4, True, None, "accepted")]
    assert body["ids"] == []
    bad = xlsx(ASG, [asg_row(world), asg_row(world, accepted_levels=""), asg_row(world)])
    resp = upload(world, "firm_1", "assignments", bad, form={"dry_run": "ja"}, lang="en")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert (body["valid"], body["count"], body["ids"], body["error_count"]) == (False, 0, [], 1)
    assert [(r["row"], r["ok"]) for r in body["rows"]] == [(2, True), (3, False), (4, True)]
    assert body["errors"] == [{"field": "accepted_levels", "row": 3, "column": "accepted_levels",
                               "reason": "Missing data for required field."}]
    assert_import_error(upload(world, "firm_1", "assignments", data, query="?dry_run=maybe"), 422)
    assert world.snapshot() == before


# ---- templates --------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "kind", "fields"), [("firm_1", "assignments", ASG), ("inst_1", "teams", TEAM)])
def test_templates_round_trip(world: World, who: str, kind: str, fields: list[str]) -> None:
    fill = asg_row(world, title="Uit het sjabloon") if kind == "assignments" else team_row(world, code="SJ-01")
    # XLSX: header row = what the import accepts, an explanation sheet in Dutch and English
    resp = world.get(who, f"/imports/{kind}/template.xlsx")
    assert resp.status_code == 200 and resp.mimetype == XLSX_MIME
    assert "attachment" in resp.headers["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(resp.data))
    data_sheet, explanation = workbook.worksheets
    assert [c.value for c in data_sheet[1]] == fields and data_sheet.max_row == 1
    explained = [row[0] for row in explanation.iter_rows(min_row=2, values_only=True) if row[0]]
    assert explained == fields
    assert all(row[2] and row[3] for row in explanation.iter_rows(min_row=2, values_only=True))
    data_sheet.append([fill.get(name) for name in fields])
    buffer = io.BytesIO()
    workbook.save(buffer)
    resp = upload(world, who, kind, buffer.getvalue(), f"{kind}.xlsx")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["count"] == 1
    # CSV: the header row only; filled in and sent back as a spreadsheet program saves it
    resp = world.get(who, f"/imports/{kind}/template.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    text = resp.data.decode("utf-8-sig")
    assert next(csv.reader(io.StringIO(text), delimiter=";")) == fields
    filled = text + csv_text(fields, [fill], delimiter=";").split("\r\n", 1)[1]
    resp = upload(world, who, kind, filled.encode("utf-8-sig"), f"{kind}.csv")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    created = world.get(who, f"/{kind}/{resp.get_json()['ids'][0]}").get_json()
    assert created["title" if kind == "assignments" else "code"] in ("Uit het sjabloon", "SJ-01")


# ---- who may ----------------------------------------------------------------------------------


def test_roles_and_keys(world: World) -> None:
    before = world.snapshot()
    data = xlsx(ASG, [asg_row(world)])
    body = assert_error(upload(world, "inst_1", "assignments", data), 403)
    assert body["message"].startswith("Deze actie vraagt de rol")
    assert_error(upload(world, "coord_a", "assignments", data), 403)
    assert_error(upload(world, "firm_1", "teams", xlsx(TEAM, [team_row(world)])), 403)
    assert_error(upload(world, None, "assignments", data), 401)
    assert_error(world.get(None, "/imports/assignments/template.csv"), 401)
    assert world.snapshot() == before


# ---- export -----------------------------------------------------------------------------------


def test_export_of_a_matched_batch_contains_the_match(world: World) -> None:
    ids, org = world.ids, world.org
    tricky = world.created("firm_2", "/assignments", {**test_intake_api.assignment_body(ids["ws_a"]),
                                                      "title": "=HYPERLINK(\"http://evil\")"})
    batch = world.created("coord_a", "/batches", batch_body(ids["ws_a"], [ids["a1"], ids["a2"], tricky["id"]]))
    run_id, match_id = str(uuid.uuid4()), str(uuid.uuid4())
    envelope = make_envelope("matches.published", 1, {
        "run_id": run_id, "batch_id": batch["id"], "workspace_id": ids["ws_a"],
        "coordinator_id": org["coord_a"], "period": "2025-Q1",
        "matches": [{"match_id": match_id, "assignment_id": ids["a1"], "team_id": ids["t1"],
                     "firm_id": org["firm_1"], "institution_id": org["inst_1"], "score": 0.75}],
        "unmatched_assignment_ids": [ids["a2"], tricky["id"]],
    })
    with world.infra.session_factory.begin() as session:
        services.on_matches_published(session, envelope)

    resp = world.get("coord_a", f"/batches/{batch['id']}/export.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig")), delimiter=";"))
    by_id = {r["assignment_id"]: r for r in rows}
    assert len(rows) == 3
    assert (by_id[ids["a1"]]["status"], by_id[ids["a1"]]["team_code"], by_id[ids["a1"]]["team_id"],
            float(by_id[ids["a1"]]["score"]), by_id[ids["a1"]]["match_id"]) == (
        "matched", "HE-T01", ids["t1"], 0.75, match_id)
    assert (by_id[ids["a2"]]["status"], by_id[ids["a2"]]["team_code"]) == ("unmatched", "")
    assert by_id[tricky["id"]]["title"] == "'=HYPERLINK(\"http://evil\")"  # never run as a formula

    resp = world.get("coord_a", f"/batches/{batch['id']}/export.xlsx")
    assert resp.status_code == 200 and resp.mimetype == XLSX_MIME
    sheet = openpyxl.load_workbook(io.BytesIO(resp.data)).worksheets[0]
    header = [c.value for c in sheet[1]]
    table = {row[header.index("assignment_id")].value: {h: c for h, c in zip(header, row, strict=True)}
             for row in sheet.iter_rows(min_row=2)}
    assert (table[ids["a1"]]["team_code"].value, table[ids["a1"]]["score"].value) == ("HE-T01", 0.75)
    assert table[tricky["id"]]["title"].data_type == "s"

    assert_error(world.get("coord_b", f"/batches/{batch['id']}/export.csv"), 404)
    assert_error(world.get("coord_b", f"/batches/{batch['id']}/export.xlsx"), 404)
    assert_error(world.get("coord_a", f"/batches/{uuid.uuid4()}/export.csv"), 404)
    assert_error(world.get("firm_1", f"/batches/{batch['id']}/export.csv"), 403)
    assert_error(world.get(None, f"/batches/{batch['id']}/export.xlsx"), 401)


def test_openapi_documents_the_bulk_routes(world: World) -> None:
    spec = json.loads(world.get(None, "/openapi.json").data)
    for path in ("/imports/assignments", "/imports/teams", "/imports/assignments/template.xlsx",
                 "/batches/{batch_id}/export.csv"):
        assert path in spec["paths"], path
    assert "multipart/form-data" in spec["paths"]["/imports/teams"]["post"]["requestBody"]["content"]


def test_the_workspace_and_period_chosen_once_fill_every_row_that_leaves_them_empty(world: World) -> None:
    """A file without internal ids: the workspace and period come with the upload, a row may still name its own."""
    rows = [{**team_row(world, code=f"HE-D{i:02d}"), "workspace_id": None, "period": None} for i in range(3)]
    header = [name for name in TEAM if name not in ("workspace_id", "period")]
    data = xlsx(header, rows)
    missing = upload(world, "inst_1", "teams", data)
    errors = assert_import_error(missing, 422)
    assert {e["column"] for e in errors} >= {"workspace_id"}
    resp = upload(world, "inst_1", "teams", data, form={"workspace_id": world.ids["ws_a"], "period": "2025-Q1"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    made = [world.get("inst_1", f"/teams/{i}").get_json() for i in resp.get_json()["ids"]]
    assert {(t["workspace_id"], t["period"], t["code"]) for t in made} == {
        (world.ids["ws_a"], "2025-Q1", f"HE-D{i:02d}") for i in range(3)}


# ---- bounded work per file (issue 19, item 8) -------------------------------------------------


def _crafted_xlsx(w: World, extra_rows: str, shared_strings: str | None = None) -> bytes:
    """A workbook whose sheet holds the header and one valid row, then ``extra_rows`` as written (the XML a
    probe wrote by hand); optionally a shared-strings part of its own."""
    valid = asg_row(w, accepted_levels="HBO", required_skills="")

    def cells(number: int, values: list[Any]) -> str:
        return "".join(f'<c r="{openpyxl.utils.get_column_letter(i + 1)}{number}" t="inlineStr"><is><t>{v}</t></is></c>'
                       for i, v in enumerate(values))

    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             f'<row r="1">{cells(1, ASG)}</row><row r="2">{cells(2, [valid.get(n, "") for n in ASG])}</row>'
             f'{extra_rows}</sheetData></worksheet>')
    source = zipfile.ZipFile(io.BytesIO(xlsx(ASG, [])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, sheet if item.filename == "xl/worksheets/sheet1.xml" else source.read(item))
        if shared_strings is not None:
            target.writestr("xl/sharedStrings.xml", shared_strings)
    return out.getvalue()


def _probe_upload(w: World, data: bytes) -> TestResponse:
    return upload(w, "firm_1", "assignments", data, query="?dry_run=true", lang="en")


def test_a_small_xlsx_of_empty_rows_is_refused_at_once(world: World) -> None:
    """The probe's file: under 100 KB, a million formatted empty rows; it took a minute of CPU."""
    data = _crafted_xlsx(world, '<row><c s="1"/></row>' * 1_000_000)
    assert len(data) < 100 * 1024
    resp = _probe_upload(world, data)
    errors = assert_import_error(resp, 413)
    assert "10,000" in errors[0]["reason"] and "empty rows count" in errors[0]["reason"]
    # a single empty row far down counts too: the rows before it are empty rows of the sheet
    resp = _probe_upload(world, _crafted_xlsx(world, '<row r="1048576"><c r="A1048576" s="1"/></row>'))
    assert_import_error(resp, 413)


def test_a_cell_in_the_last_column_does_not_make_every_row_wide(world: World) -> None:
    rows = "".join(f'<row r="{n}"><c r="XFD{n}" s="1"/></row>' for n in range(3, 5_000))
    resp = _probe_upload(world, _crafted_xlsx(world, rows))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.get_json()["count"] == 1


def test_too_many_cells_or_shared_strings_are_refused_before_parsing(world: World) -> None:
    wide = "".join(f'<row r="{n}">' + "".join(f'<c r="{openpyxl.utils.get_column_letter(c)}{n}" s="1"/>'
                                              for c in range(1, 150)) + "</row>" for n in range(3, 5_000))
    resp = _probe_upload(world, _crafted_xlsx(world, wide))
    assert "too many" in assert_import_error(resp, 413)[0]["reason"]
    strings = ('<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
               'spreadsheetml/2006/main">' + "<si><t/></si>" * 1_000_000 + "</sst>")
    resp = _probe_upload(world, _crafted_xlsx(world, "", shared_strings=strings))
    assert "too many" in assert_import_error(resp, 413)[0]["reason"]
