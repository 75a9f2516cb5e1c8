"""Intake's privacy edge: who may erase what, what an erasure changes and emits, the retention job on a
fixed clock, and the append-only access log of personal-data reads and refused attempts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from intake.adapters import orm
from intake.adapters.privacy_orm import access_log
from intake.service_layer import privacy
from werkplaats_shared.audit import entries
from werkplaats_shared.contracts import parse_envelope
from werkplaats_shared.retention import RetentionPeriods

from . import test_intake_api
from .test_intake_api import World, assignment_body

world = test_intake_api.world

PERSONAL = ("HE-T01", "UT-T07", "Bakkerij Jansen BV", "Garage De Vries", "12345671", "Webwinkel voor de bakkerij",
            "Bestellen via de site")


def erase(w: World, who: str, kind: str, subject_id: str) -> Any:
    return w.post(who, "/privacy/erasures", {"subject_kind": kind, "subject_id": subject_id})


def log_text(w: World) -> str:
    return "\n".join(repr(e) for e in entries(w.infra.engine, access_log))


def erased_events(w: World) -> list[dict[str, Any]]:
    return [parse_envelope(json.loads(r.body)).payload for r in w.outbox_rows()
            if r.type == "personal_data.erased"]


def test_only_the_owner_or_the_serving_coordinator_may_erase(world: World) -> None:
    w = world
    t1, firm_1 = w.ids["t1"], w.org["firm_1"]
    for who, kind, subject in (("coord_b", "team", t1), ("inst_2", "team", t1), ("firm_1", "team", t1),
                               ("firm_2", "firm_contact", firm_1), ("inst_1", "firm_contact", firm_1),
                               ("coord_b", "firm_contact", w.org["firm_2"]),
                               ("coord_a", "firm_contact", w.org["inst_1"])):
        assert erase(w, who, kind, subject).status_code == 404, (who, kind)
    assert erased_events(w) == []
    assert erase(w, "coord_a", "team", "no-such-team").status_code == 404
    bad = erase(w, "coord_a", "person", t1)
    assert bad.status_code == 422 and "subject_kind" in [e["field"] for e in bad.get_json()["errors"]]
    assert w.post("coord_a", "/privacy/erasures", {"subject_kind": "team", "subject_id": t1,
                                                    "reason": "x"}).status_code == 422
    with w.infra.engine.connect() as conn:
        assert conn.execute(sa.select(orm.Team.code).where(orm.Team.id == t1)).scalar_one() == "HE-T01"


def test_erasure_replaces_the_data_emits_ids_only_and_is_audited(world: World) -> None:
    w = world
    t1, t2, firm_1 = w.ids["t1"], w.ids["t2"], w.org["firm_1"]
    team = erase(w, "coord_a", "team", t1)
    assert team.status_code == 201, team.get_json()
    firm = erase(w, "firm_1", "firm_contact", firm_1)
    assert firm.status_code == 201
    assert w.get("inst_1", f"/teams/{t1}").get_json()["code"] == f"erased-{t1[:8]}"
    assert w.get("inst_2", f"/teams/{t2}").get_json()["code"] == "UT-T07"
    profile = w.get("firm_1", "/firm")
    assert profile.status_code == 404  # no KvK number any more: the firm may register its profile again
    with w.infra.engine.connect() as conn:
        org = conn.execute(sa.select(orm.Organisation).where(orm.Organisation.id == firm_1)).one()
        texts = conn.execute(sa.select(orm.Assignment.title, orm.Assignment.description)
                             .where(orm.Assignment.firm_id == firm_1)).all()
        others = conn.execute(sa.select(orm.Assignment.title).where(orm.Assignment.firm_id == w.org["firm_2"])).all()
    assert (org.name, org.kvk_number) == (f"erased-{firm_1[:8]}", None)
    assert set(texts) == {("[erased]", "")}
    assert others == [("Planning van de werkplaats",)]
    assert erased_events(w) == [
        {"subject_kind": "team", "subject_id": t1, "erased_at": team.get_json()["erased_at"]},
        {"subject_kind": "firm_contact", "subject_id": firm_1, "erased_at": firm.get_json()["erased_at"]}]
    erasures = [e for e in entries(w.infra.engine, access_log) if e["action"] == "erase"]
    assert [(e["subject_type"], e["subject_id"], e["actor_organisation_id"]) for e in erasures] == [
        ("team", t1, w.org["coord_a"]), ("firm_contact", firm_1, firm_1)]
    assert not [p for p in PERSONAL if p in log_text(w)]


def test_personal_data_reads_and_refused_attempts_are_logged_without_the_data(world: World) -> None:
    w = world
    t1 = w.ids["t1"]
    before = len(entries(w.infra.engine, access_log))
    assert w.get("inst_1", f"/teams/{t1}").status_code == 200
    assert w.get("inst_2", f"/teams/{t1}").status_code == 404
    assert w.get(None, f"/teams/{t1}").status_code == 401
    assert w.get("firm_1", "/batches").status_code == 403
    assert w.get("coord_a", "/workspaces").status_code == 200  # no personal data: not logged
    new = entries(w.infra.engine, access_log)[before:]
    assert [(e["action"], e["subject_type"], e["subject_id"], e["actor_organisation_id"], e["route"], e["status"])
            for e in new] == [
        ("read", "team", t1, w.org["inst_1"], "/teams/<team_id>", 200),
        ("denied", "team", t1, w.org["inst_2"], "/teams/<team_id>", 404),
        ("denied", "team", t1, None, "/teams/<team_id>", 401),
        ("denied", "assignment_text", w.org["firm_1"], w.org["firm_1"], "/batches", 403),
    ]
    assert not [p for p in PERSONAL if p in log_text(w)]


def test_assignments_submitted_in_bulk_are_logged_as_one_write_without_their_texts(world: World) -> None:
    w = world
    before = len(entries(w.infra.engine, access_log))
    items = [assignment_body(w.ids["ws_a"], title=f"Webwinkel voor de bakkerij {i}") for i in range(3)]
    assert w.post("firm_1", "/assignments/bulk", {"assignments": items}).status_code == 201
    new = entries(w.infra.engine, access_log)[before:]
    assert [(e["action"], e["subject_type"], e["subject_id"], e["actor_organisation_id"], e["route"], e["status"])
            for e in new] == [("write", "assignment_text", w.org["firm_1"], w.org["firm_1"], "/assignments/bulk", 201)]
    assert not [p for p in PERSONAL if p in log_text(w)]


def test_the_access_log_refuses_update_and_delete(world: World) -> None:
    w = world
    assert w.get("inst_1", f"/teams/{w.ids['t1']}").status_code == 200
    count = len(entries(w.infra.engine, access_log))
    for statement in (access_log.update().values(subject_id="forged"), access_log.delete()):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), w.infra.engine.begin() as conn:
            conn.execute(statement)
    assert len(entries(w.infra.engine, access_log)) == count
    assert {e["subject_id"] for e in entries(w.infra.engine, access_log)} != {"forged"}


def test_retention_erases_teams_after_their_period_and_inactive_firms_on_a_fixed_clock(world: World) -> None:
    w = world
    periods = RetentionPeriods(team_after_period=timedelta(days=30), inactive_firm=timedelta(days=365))
    period_end = datetime(2025, 3, 28, tzinfo=UTC)  # 2025-Q1 ends; both teams are in it

    def run(now: datetime) -> int:
        with w.infra.session_factory.begin() as session:
            return privacy.apply_retention(session, lambda env: w.infra.emit(session, env), periods, now)

    assert run(period_end + timedelta(days=29)) == 0
    assert erased_events(w) == []
    assert run(period_end + timedelta(days=31)) == 2
    assert {(e["subject_kind"], e["subject_id"]) for e in erased_events(w)} == {
        ("team", w.ids["t1"]), ("team", w.ids["t2"])}
    assert run(period_end + timedelta(days=40)) == 0  # erased once only
    with w.infra.engine.connect() as conn:
        created = conn.execute(sa.select(sa.func.max(orm.Assignment.created_at))).scalar_one()
    last = privacy.as_utc(created)
    assert run(last + timedelta(days=364)) == 0
    assert run(last + timedelta(days=366)) == 2  # firm_1 and firm_2: no new assignment for a year
    kinds = [(e["subject_kind"], e["subject_id"]) for e in erased_events(w)]
    assert ("firm_contact", w.org["firm_1"]) in kinds and ("firm_contact", w.org["firm_2"]) in kinds
    retention = [e for e in entries(w.infra.engine, access_log) if e["action"] == "retention"]
    assert len(retention) == 4 and all(e["actor_organisation_id"] is None for e in retention)


def test_erasure_takes_free_text_skills_out_of_the_rows_and_every_outbox_row_and_keeps_the_vocabulary(
        world: World) -> None:
    """Skills are free text (an institution or firm may type a name); the vocabulary's stay, the rest go from
    the subject's rows and from every message in the outbox, so an unsent batch snapshot leaves without them."""
    w = world
    ws_a = w.ids["ws_a"]
    team_text, firm_text, other_text = "MrkTeam Jan Jansen", "MrkFirm bel Piet", "MrkOther eigen vak"
    team = w.created("inst_1", "/teams", test_intake_api.team_body(
        ws_a, code="HE-T99", skills=["python", team_text, "ux"]))
    other = w.created("inst_2", "/teams", test_intake_api.team_body(ws_a, code="UT-T98", level="WO",
                                                                   skills=["python", other_text]))
    assignment = w.created("firm_1", "/assignments", test_intake_api.assignment_body(
        ws_a, required_skills=["python", firm_text], nice_to_have_skills=[team_text]))
    w.created("coord_a", "/batches", test_intake_api.batch_body(ws_a, [assignment["id"]]))

    def outbox() -> str:
        return "\n".join(r.body for r in w.outbox_rows())

    assert team_text in outbox() and firm_text in outbox()
    assert erase(w, "inst_1", "team", team["id"]).status_code == 201
    assert erase(w, "firm_1", "firm_contact", w.org["firm_1"]).status_code == 201

    assert sorted(w.get("inst_1", f"/teams/{team['id']}").get_json()["skills"]) == ["python", "ux"]
    assert sorted(w.get("inst_2", f"/teams/{other['id']}").get_json()["skills"]) == sorted(["python", other_text])
    kept = w.get("firm_1", f"/assignments/{assignment['id']}").get_json()
    assert (kept["required_skills"], kept["nice_to_have_skills"]) == (["python"], [])
    assert team_text not in outbox() and firm_text not in outbox()
    assert other_text in outbox()  # another team's skill is not the erased subject's
    (batch_message,) = [json.loads(r.body) for r in w.outbox_rows() if r.type == "batch.submitted"]
    teams = {t["team_id"]: sorted(t["skills"]) for t in batch_message["payload"]["teams"]}
    assert teams[team["id"]] == ["python", "ux"] and teams[other["id"]] == sorted(["python", other_text])
    assert [(a["required_skills"], a["nice_to_have_skills"]) for a in batch_message["payload"]["assignments"]
            ] == [(["python"], [])]
