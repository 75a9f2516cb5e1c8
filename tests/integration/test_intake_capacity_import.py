"""Bulk import of capacity registrations (CSV and XLSX): the single-item rules per row, all rows or none,
a dry run, and the templates."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import openpyxl
import sqlalchemy as sa
from intake.adapters import orm
from intake.entrypoints.schemas import CapacityIn

from . import test_intake_api
from .test_intake_api import World, assert_error
from .test_intake_bulk import XLSX_MIME, assert_import_error, csv_text, upload, xlsx

world = test_intake_api.world

CAP = list(CapacityIn().load_fields)
PROFILE = {"programmes": ["HBO-ICT", "Data Science"]}


def cap_row(w: World, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"workspace_id": w.ids["ws_a"], "programme": "HBO-ICT", "period": "2025-Q1",
                           "level": "HBO", "teams": 4, "team_size_min": 3, "team_size_max": 5,
                           "skills": "python; ux", "supervision_hours": 80}
    row.update(over)
    return row


def profile(w: World) -> None:
    etag = w.get("inst_1", "/institution").headers["ETag"]
    assert w.call("inst_1", "PATCH", "/institution", PROFILE, headers={"If-Match": etag}).status_code == 200


def capacities(w: World) -> list[tuple[Any, ...]]:
    with w.infra.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(
            orm.Capacity.institution_id, orm.Capacity.programme, orm.Capacity.period, orm.Capacity.level,
            orm.Capacity.teams, orm.Capacity.team_size_min, orm.Capacity.team_size_max, orm.Capacity.skills,
            orm.Capacity.supervision_hours).order_by(orm.Capacity.created_at, orm.Capacity.id)).all()]


def test_capacity_rows_from_xlsx_and_csv_are_stored_and_announced(world: World) -> None:
    profile(world)
    inst = world.org["inst_1"]
    outbox_before = len(world.outbox_rows())
    rows = [cap_row(world), cap_row(world, programme="Data Science", level="MBO", teams=2.0, skills="",
                                    supervision_hours="30")]
    resp = upload(world, "inst_1", "capacity", xlsx(CAP, rows))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert (body["kind"], body["count"], body["valid"], len(body["ids"])) == ("capacity", 2, True, 2)
    assert capacities(world) == [(inst, "HBO-ICT", "2025-Q1", "HBO", 4, 3, 5, ["python", "ux"], 80),
                                 (inst, "Data Science", "2025-Q1", "MBO", 2, 3, 5, [], 30)]
    announced = [json.loads(r.body) for r in world.outbox_rows()[outbox_before:]]
    assert [(e["type"], e["payload"]["capacity_id"]) for e in announced] == [
        ("capacity.registered", i) for i in body["ids"]]
    text = csv_text(CAP, [cap_row(world, period="2025-Q2", teams="7")], delimiter=";")
    resp = upload(world, "inst_1", "capacity", text.encode("cp1252"), "capacity.csv")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert capacities(world)[-1] == (inst, "HBO-ICT", "2025-Q2", "HBO", 7, 3, 5, ["python", "ux"], 80)
    listed = world.get("inst_1", "/capacity").get_json()
    assert len(listed) == 3 and {c["institution_id"] for c in listed} == {inst}


def test_a_bad_row_in_the_middle_stores_nothing_and_is_named(world: World) -> None:
    profile(world)
    before, stored = world.snapshot(), capacities(world)
    rows = [cap_row(world), cap_row(world, programme="Rechten"), cap_row(world, team_size_min=6),
            cap_row(world, level="WO"), cap_row(world, period="2030-Q9"), cap_row(world, teams="veel"),
            cap_row(world)]
    errors = assert_import_error(upload(world, "inst_1", "capacity", xlsx(CAP, rows), lang="en"), 422)
    assert [(e["row"], e["column"]) for e in errors] == [
        (3, "programme"), (4, "team_size_min"), (5, "level"), (6, "period"), (7, "teams")]
    assert errors[0]["reason"] == "not one of the institution's programmes (PATCH /institution)"
    dutch = assert_import_error(upload(world, "inst_1", "capacity", xlsx(CAP, rows)), 422)
    assert dutch[0]["reason"] == "Geen van de opleidingen van de instelling (PATCH /institution)."
    assert dutch[1]["reason"] == "team_size_min mag niet groter zijn dan team_size_max."
    assert capacities(world) == stored and world.snapshot() == before


def test_missing_and_unknown_columns_are_reported_before_any_row(world: World) -> None:
    profile(world)
    header = [c for c in CAP if c != "supervision_hours"] + ["budget"]
    errors = assert_import_error(upload(world, "inst_1", "capacity", xlsx(header, [cap_row(world, budget=5)]),
                                        lang="en"), 422)
    assert {(e["column"], e["row"]) for e in errors} == {("budget", 1), ("supervision_hours", None)}
    assert capacities(world) == []


def test_dry_run_validates_and_stores_nothing(world: World) -> None:
    profile(world)
    before = world.snapshot()
    resp = upload(world, "inst_1", "capacity", xlsx(CAP, [cap_row(world), cap_row(world)]), query="?dry_run=true")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert (resp.get_json()["count"], resp.get_json()["ids"]) == (2, [])
    resp = upload(world, "inst_1", "capacity", xlsx(CAP, [cap_row(world), cap_row(world, supervision_hours=None)]),
                  form={"dry_run": "true"}, lang="en")
    body = resp.get_json()
    assert (resp.status_code, body["valid"], body["count"]) == (200, False, 0)
    assert body["errors"] == [{"field": "supervision_hours", "row": 3, "column": "supervision_hours",
                               "reason": "Missing data for required field."}]
    assert capacities(world) == [] and world.snapshot() == before


def test_the_capacity_templates_round_trip(world: World) -> None:
    profile(world)
    resp = world.get("inst_1", "/imports/capacity/template.xlsx")
    assert resp.status_code == 200 and resp.mimetype == XLSX_MIME
    workbook = openpyxl.load_workbook(io.BytesIO(resp.data))
    data_sheet, explanation = workbook.worksheets
    assert data_sheet.title == "Capaciteit" and [c.value for c in data_sheet[1]] == CAP
    assert [r[0] for r in explanation.iter_rows(min_row=2, values_only=True) if r[0]] == CAP
    data_sheet.append([cap_row(world).get(name) for name in CAP])
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert upload(world, "inst_1", "capacity", buffer.getvalue()).status_code == 201
    text = world.get("inst_1", "/imports/capacity/template.csv").data.decode("utf-8-sig")
    assert next(csv.reader(io.StringIO(text), delimiter=";")) == CAP
    filled = text + csv_text(CAP, [cap_row(world, teams=1)], delimiter=";").split("\r\n", 1)[1]
    assert upload(world, "inst_1", "capacity", filled.encode("utf-8-sig"), "c.csv").status_code == 201
    assert [c[4] for c in capacities(world)] == [4, 1]


def test_only_institutions_import_capacity(world: World) -> None:
    profile(world)
    before = world.snapshot()
    for who in ("firm_1", "coord_a"):
        assert_error(upload(world, who, "capacity", xlsx(CAP, [cap_row(world)])), 403)
    assert_error(upload(world, None, "capacity", xlsx(CAP, [cap_row(world)])), 401)
    assert capacities(world) == [] and world.snapshot() == before
