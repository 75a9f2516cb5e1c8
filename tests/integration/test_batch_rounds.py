"""Rounds over several workspaces and large batches by reference (issue 20, item 1), through intake's API, its
outbox, a real HTTP intake that matching fetches from, and matching's handlers and solver (SQLite):

- a batch names several workspaces of its coordinator (or takes every open assignment of them): their teams
  are candidates for each other's assignments, and bad input gets a 4xx naming the field and the reason;
- the round rules hold across workspaces: a team is placed once per period whatever batch of which workspaces
  placed it, and runs of rounds that share a workspace take turns;
- a snapshot above WERKPLAATS_SNAPSHOT_INLINE_BYTES travels by reference (a small message), matching fetches it
  with a signed request, checks its hash and matches exactly as it does the same batch sent inline;
- a fetch that fails because intake is down is held as an infrastructure failure, never dead-lettered.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from intake import bootstrap as intake_bootstrap
from intake.adapters import orm as intake_orm
from intake.entrypoints.api import create_intake_app
from intake.service_layer import services as intake_services
from matching import bootstrap as matching_bootstrap
from matching.adapters import orm as matching_orm
from matching.entrypoints.handlers import handlers
from matching.service_layer import services as matching_services
from sqlalchemy.orm import Session
from werkplaats_shared import claimcheck
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope, parse_envelope
from werkplaats_shared.devstack.ports import reserve_port
from werkplaats_shared.service import Infrastructure
from werkplaats_shared.transient import is_transient
from werkzeug.serving import BaseWSGIServer, make_server

from .harness import Harness, record_effect, wait_until
from .test_intake_api import World, assert_error, workspace_body

SECRET = "a test secret for batch snapshots, 0123456789abcdef"
PERIOD = "2025-Q1"
NAMES = {
    "coord": ("Landelijke Werkplaats", "coordinator", []),
    "coord_other": ("Gemeente Beta Werkplaats", "coordinator", []),
    "inst": ("Hogeschool Eenhoorn", "institution", ["HBO"]),
    "firm_n": ("Bakkerij Noord", "entrepreneur", []),
    "firm_z": ("Garage Zuid", "entrepreneur", []),
}


def _free_port() -> int:
    return reserve_port()


@dataclass
class Round:
    world: World
    tmp: Path
    servers: list[tuple[BaseWSGIServer, threading.Thread]] = field(default_factory=list)
    delivered: dict[int, set[str]] = field(default_factory=dict)
    port: int = 0
    matchings: list[Infrastructure] = field(default_factory=list)

    @property
    def intake(self) -> Infrastructure:
        return self.world.infra

    def serve(self) -> None:
        """Intake's app over real HTTP (matching fetches snapshots from it), on ``port``."""
        server = make_server("127.0.0.1", self.port, self.world.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.servers.append((server, thread))

    def matching(self, name: str) -> Infrastructure:
        settings = Settings.from_env("matching", {
            "WERKPLAATS_DATABASE_URL": f"sqlite:///{self.tmp}/{name}.sqlite3", "WERKPLAATS_DATA_DIR": str(self.tmp),
            "WERKPLAATS_SECRET_KEY": SECRET, "WERKPLAATS_INTAKE_URL": f"http://127.0.0.1:{self.port}"})
        infra = matching_bootstrap.bootstrap(settings)
        self.matchings.append(infra)
        return infra

    def outbox(self, message_type: str | None = None) -> list[Envelope]:
        with self.intake.engine.connect() as conn:
            bodies = conn.execute(sa.select(intake_orm.outbox.c.body).order_by(intake_orm.outbox.c.created_at)
                                  ).scalars().all()
        envelopes = [parse_envelope(json.loads(b)) for b in bodies]
        return [e for e in envelopes if message_type is None or e.type == message_type]

    def deliver(self, m: Infrastructure, envelopes: list[Envelope] | None = None) -> None:
        """What matching's consumer does with intake's new messages: announcements first, then the batches."""
        done = self.delivered.setdefault(id(m), set())
        fresh = [e for e in (envelopes or self.outbox()) if e.message_id not in done
                 and e.type in ("workspace.registered", "batch.submitted")]
        for envelope in sorted(fresh, key=lambda e: e.type != "workspace.registered"):
            with m.session_factory.begin() as session:
                handlers(m.settings)[envelope.type](session, envelope)
            done.add(envelope.message_id)


@pytest.fixture
def rnd(tmp_path: Path) -> Iterator[Round]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    settings = Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/intake.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET, "WERKPLAATS_SNAPSHOT_INLINE_BYTES": "10000"})
    infra = intake_bootstrap.bootstrap(settings)
    app = create_intake_app(infra)
    w = World(infra, app, app.test_client())
    r = Round(w, tmp_path, port=_free_port())
    try:
        for who, (name, role, levels) in NAMES.items():
            w.add_org(who, name, role, levels)
        w.ids["ws_n"] = w.created("coord", "/workspaces", workspace_body(name="Werkplaats Noord"))["id"]
        w.ids["ws_z"] = w.created("coord", "/workspaces", workspace_body(
            name="Werkplaats Zuid", municipalities=["GM0344"],
            periods=[{"code": PERIOD, "starts_on": "2025-01-06", "ends_on": "2025-03-28"}]))["id"]
        w.ids["ws_other"] = w.created("coord_other", "/workspaces", workspace_body(name="Werkplaats Beta"))["id"]
        w.created("firm_n", "/firm", {"kvk_number": "12345671", "sector": "bakkerij", "size_class": "micro",
                                      "municipality": "GM0363", "language": "nl"})
        w.created("firm_z", "/firm", {"kvk_number": "12345672", "sector": "garage", "size_class": "micro",
                                      "municipality": "GM0344", "language": "nl"})
        yield r
    finally:
        for server, thread in r.servers:
            server.shutdown()
            thread.join(5)
        for m in r.matchings:
            m.engine.dispose()
        infra.engine.dispose()
        root.handlers[:] = saved
        root.setLevel(level)


def team(r: Round, ws: str, code: str, skills: list[str]) -> str:
    return str(r.world.created("inst", "/teams", {"workspace_id": r.world.ids[ws], "code": code, "level": "HBO",
                                                  "size": 4, "skills": skills, "period": PERIOD})["id"])


def assignment(r: Round, firm: str, ws: str, required: list[str], period: str = PERIOD, **over: Any) -> str:
    return str(r.world.created(firm, "/assignments", {
        "workspace_id": r.world.ids[ws], "title": "Webwinkel", "description": "Bestellen via de site.",
        "period": period, "accepted_levels": ["HBO"], "required_skills": required, "nice_to_have_skills": [],
        "min_teams": 1, "max_teams": 1, "mode": "remote", **over})["id"])


def work(m: Infrastructure) -> list[str]:
    done = []
    while (run_id := matching_services.claim_next_run(m.session_factory)) is not None:
        matching_services.execute_run(m.session_factory, m.emit, run_id, "highs", 30)
        done.append(run_id)
    return done


def placed(m: Infrastructure, batch_id: str | None = None) -> list[tuple[str, str, str, float]]:
    """(batch, team, assignment, score) of every published match no firm declined."""
    query = (sa.select(matching_orm.Run.batch_id, matching_orm.Match.team_id, matching_orm.Match.assignment_id,
                       matching_orm.Match.score)
             .join(matching_orm.Run).where(matching_orm.Run.status == "published",
                                           sa.or_(matching_orm.Match.response.is_(None),
                                                  matching_orm.Match.response != "declined")))
    if batch_id is not None:
        query = query.where(matching_orm.Run.batch_id == batch_id)
    with m.session_factory() as session:
        return sorted((str(b), str(t), str(a), float(s)) for b, t, a, s in session.execute(query).all())


def each_team_once_per_period(m: Infrastructure) -> Counter[tuple[str, str]]:
    """Independent check of the round rule, from its definition: count every published, not declined match
    per (team, period) over all of matching's runs, whatever their batch or workspaces."""
    with m.session_factory() as session:
        rows = session.execute(sa.select(matching_orm.Match.team_id, matching_orm.Run.period)
                               .join(matching_orm.Run).where(matching_orm.Run.status == "published",
                                                             sa.or_(matching_orm.Match.response.is_(None),
                                                                    matching_orm.Match.response != "declined"))).all()
    return Counter((str(t), str(p)) for t, p in rows)


# ---- a batch over several workspaces -----------------------------------------------------------------------


def test_a_round_over_two_workspaces_pairs_teams_and_assignments_across_them(rnd: Round) -> None:
    w = rnd.world
    team_n, team_z = team(rnd, "ws_n", "N-1", ["python"]), team(rnd, "ws_z", "Z-1", ["ux"])
    a_n = assignment(rnd, "firm_n", "ws_n", ["ux"])  # only Zuid's team can do it
    a_z = assignment(rnd, "firm_z", "ws_z", ["python"])  # only Noord's team can do it
    assignment(rnd, "firm_n", "ws_n", [], period="2025-Q2")  # another period: not open for this round

    body = w.created("coord", "/batches", {"workspace_ids": [w.ids["ws_n"], w.ids["ws_z"]], "period": PERIOD,
                                           "assignments": "all_open"})
    assert body["workspace_id"] == w.ids["ws_n"] and body["workspace_ids"] == [w.ids["ws_n"], w.ids["ws_z"]]
    assert sorted(a["id"] for a in body["assignments"]) == sorted([a_n, a_z])
    assert w.get("coord", f"/batches?id={body['id']}").get_json()[0]["workspace_ids"] == body["workspace_ids"]
    (sent,) = rnd.outbox("batch.submitted")
    assert (sent.version, sent.payload["workspace_ids"]) == (3, [w.ids["ws_n"], w.ids["ws_z"]])
    assert sorted(t["team_id"] for t in sent.payload["teams"]) == sorted([team_n, team_z])
    assert sent.payload["working_area"] == ["GM0363", "GM0384", "GM0344"]
    assert {e.payload["workspace_id"] for e in rnd.outbox("workspace.registered")} == {w.ids["ws_n"], w.ids["ws_z"]}

    m = rnd.matching("matching")
    rnd.deliver(m)
    work(m)
    assert [(t, a) for _, t, a, _ in placed(m, body["id"])] == sorted([(team_z, a_n), (team_n, a_z)])


def test_the_old_single_workspace_request_still_works_and_all_open_takes_one_workspaces_open_assignments(
        rnd: Round) -> None:
    w = rnd.world
    a_n = assignment(rnd, "firm_n", "ws_n", [])
    assignment(rnd, "firm_z", "ws_z", [])
    old = w.created("coord", "/batches", {"workspace_id": w.ids["ws_n"], "period": PERIOD, "assignment_ids": [a_n]})
    assert (old["workspace_id"], old["workspace_ids"]) == (w.ids["ws_n"], [w.ids["ws_n"]])
    (sent,) = rnd.outbox("batch.submitted")
    assert sent.payload["workspace_ids"] == [w.ids["ws_n"]] and sent.payload["snapshot_ref"] is None
    # every open one is taken now: nothing left in Noord
    resp = w.post("coord", "/batches", {"workspace_id": w.ids["ws_n"], "period": PERIOD, "assignments": "all_open"})
    assert "open" in assert_error(resp, 409, "assignments")["errors"][0]["reason"]


def test_bad_round_requests_get_the_field_and_the_reason_and_change_nothing(rnd: Round) -> None:
    w = rnd.world
    a_n, a_z = assignment(rnd, "firm_n", "ws_n", []), assignment(rnd, "firm_z", "ws_z", [])
    a_q2 = assignment(rnd, "firm_n", "ws_n", [], period="2025-Q2")
    n, z, other = w.ids["ws_n"], w.ids["ws_z"], w.ids["ws_other"]
    before = w.snapshot()

    def refused(body: dict[str, Any], status: int, field: str, reason: str) -> None:
        resp = w.call("coord", "POST", "/batches", body, headers={"Accept-Language": "en"})
        found = assert_error(resp, status, field)
        assert any(reason in e["reason"] for e in found["errors"] if e["field"] == field), found

    base = {"period": PERIOD, "assignment_ids": [a_n, a_z]}
    refused({**base, "workspace_ids": [n, str(uuid.uuid4())]}, 422, "workspace_ids.1", "no such workspace")
    refused({**base, "workspace_ids": [n, other]}, 422, "workspace_ids.1", "no such workspace")  # not theirs
    refused({**base, "workspace_ids": [n, n]}, 422, "workspace_ids", "each workspace may be named once")
    refused({**base, "workspace_ids": [n, z], "workspace_id": n}, 422, "workspace_ids", "not both")
    refused({"period": PERIOD, "assignment_ids": [a_n]}, 422, "workspace_id", "give workspace_id or workspace_ids")
    refused({"workspace_ids": [n, z], "period": PERIOD}, 422, "assignment_ids", "give assignment_ids or")
    refused({**base, "workspace_ids": [n, z], "assignments": "all_open"}, 422, "assignments", "not both")
    refused({**base, "workspace_ids": [n, z], "assignments": "some"}, 422, "assignments", "Must be one of")
    # mixed periods: an assignment of another period, or a workspace whose calendar lacks the period
    refused({"workspace_ids": [n, z], "period": PERIOD, "assignment_ids": [a_n, a_q2]}, 422, "assignment_ids.1",
            "assignment is for period 2025-Q2, not 2025-Q1")
    refused({"workspace_ids": [n, z], "period": "2025-Q2", "assignment_ids": [a_q2]}, 422, "workspace_ids.1",
            "is not in the workspace's calendar")
    # an assignment of a workspace the batch does not name
    refused({"workspace_ids": [z], "period": PERIOD, "assignment_ids": [a_z, a_n]}, 422, "assignment_ids.1",
            "no such assignment in this workspace")
    refused({"workspace_ids": [n, z], "period": PERIOD, "assignment_ids": [a_z, str(uuid.uuid4())]}, 422,
            "assignment_ids.1", "no such assignment in these workspaces")
    assert w.snapshot() == before
    # in Dutch by default
    resp = w.post("coord", "/batches", {**base, "workspace_ids": [n, other]})
    assert assert_error(resp, 422, "workspace_ids.1")["errors"][0]["reason"] == "Deze werkplaats bestaat niet."
    resp = w.post("coord", "/batches", {**base, "workspace_ids": [n, z], "assignments": "all_open"})
    assert assert_error(resp, 422, "assignments")["errors"][0]["reason"] == (
        "Geef assignment_ids of assignments: all_open, niet allebei.")
    assert w.snapshot() == before


# ---- the round rules across workspaces ----------------------------------------------------------------------


def test_a_team_a_national_round_placed_is_held_from_a_regional_batch_of_the_same_period(rnd: Round) -> None:
    w = rnd.world
    team_n, team_z = team(rnd, "ws_n", "N-1", ["python"]), team(rnd, "ws_z", "Z-1", ["python"])
    a_n, a_z = assignment(rnd, "firm_n", "ws_n", ["python"]), assignment(rnd, "firm_z", "ws_z", ["python"])
    national = w.created("coord", "/batches", {"workspace_ids": [w.ids["ws_n"], w.ids["ws_z"]], "period": PERIOD,
                                               "assignment_ids": [a_n, a_z]})
    m = rnd.matching("matching")
    rnd.deliver(m)
    work(m)
    assert {t for _, t, _, _ in placed(m, national["id"])} == {team_n, team_z}
    # a regional batch of Zuid later in the same period: both teams are taken (Noord's one too would be, were it
    # a candidate); its assignment stays open, the teams are held by the national batch
    later = assignment(rnd, "firm_z", "ws_z", ["python"])
    regional = w.created("coord", "/batches", {"workspace_id": w.ids["ws_z"], "period": PERIOD,
                                               "assignment_ids": [later]})
    rnd.deliver(m)
    work(m)
    assert placed(m, regional["id"]) == []
    with m.session_factory() as session:
        (run,) = session.execute(sa.select(matching_orm.Run).where(
            matching_orm.Run.batch_id == regional["id"])).scalars().all()
        assert {(h["team_id"], h["batch_id"]) for h in (run.controls or {})["held"]} == {
            (team_n, national["id"]), (team_z, national["id"])}
    assert max(each_team_once_per_period(m).values()) == 1


def test_runs_of_rounds_that_share_a_workspace_take_turns(rnd: Round) -> None:
    w = rnd.world
    team(rnd, "ws_n", "N-1", ["python"])
    team(rnd, "ws_z", "Z-1", ["python"])
    a_n, a_z = assignment(rnd, "firm_n", "ws_n", ["python"]), assignment(rnd, "firm_z", "ws_z", ["python"])
    a_z2 = assignment(rnd, "firm_z", "ws_z", ["python"])
    national = w.created("coord", "/batches", {"workspace_ids": [w.ids["ws_n"], w.ids["ws_z"]], "period": PERIOD,
                                               "assignment_ids": [a_n, a_z]})
    regional = w.created("coord", "/batches", {"workspace_id": w.ids["ws_z"], "period": PERIOD,
                                               "assignment_ids": [a_z2]})
    m = rnd.matching("matching")
    rnd.deliver(m)
    sf = m.session_factory
    first = matching_services.claim_next_run(sf)
    with sf() as session:
        run = session.get(matching_orm.Run, first)
        assert run is not None and run.batch_id == national["id"]
    assert matching_services.claim_next_run(sf) is None  # Zuid's own batch waits: the national run holds Zuid
    matching_services.execute_run(sf, m.emit, str(first), "highs", 30)
    second = matching_services.claim_next_run(sf)
    with sf() as session:
        run = session.get(matching_orm.Run, second)
        assert run is not None and run.batch_id == regional["id"]
        assert {h["batch_id"] for h in (run.controls or {})["held"]} == {national["id"]}
    matching_services.execute_run(sf, m.emit, str(second), "highs", 30)
    assert max(each_team_once_per_period(m).values()) == 1


# ---- large batches by reference ----------------------------------------------------------------------------


def _large_round(r: Round) -> tuple[list[str], list[str]]:
    teams = [team(r, ws, f"{ws[-1].upper()}-{i}", ["python"] if i % 2 else ["ux"])
             for ws in ("ws_n", "ws_z") for i in range(8)]
    assignments = [assignment(r, firm, ws, ["python"] if i % 3 else [], title=f"Opdracht {i}")
                   for firm, ws in (("firm_n", "ws_n"), ("firm_z", "ws_z")) for i in range(14)]
    return teams, assignments


def test_a_batch_above_the_threshold_travels_by_reference_and_matches_as_the_same_batch_inline(rnd: Round) -> None:
    w = rnd.world
    _, assignments = _large_round(rnd)
    rnd.serve()
    body = w.created("coord", "/batches", {"workspace_ids": [w.ids["ws_n"], w.ids["ws_z"]], "period": PERIOD,
                                           "assignments": "all_open"})
    assert len(body["assignments"]) == len(assignments)
    (by_reference,) = rnd.outbox("batch.submitted")
    reference = by_reference.payload["snapshot_ref"]
    assert reference is not None and reference["size_bytes"] > 10_000
    assert "teams" not in by_reference.payload and len(by_reference.to_json()) < 1_000  # a small message
    with rnd.intake.session_factory() as session:
        stored = session.get(intake_orm.BatchSnapshot, by_reference.message_id)
        assert stored is not None and stored.batch_id == body["id"]
        assert claimcheck.digest(stored.body) == reference["sha256"]

    # the same batch as intake sends it inline (no threshold), built by intake's own code
    inline: list[Envelope] = []
    with rnd.intake.session_factory() as session:
        batch = session.get(intake_orm.Batch, body["id"])
        assert batch is not None
        members = list(session.execute(sa.select(intake_orm.Assignment).where(
            intake_orm.Assignment.batch_id == batch.id).order_by(intake_orm.Assignment.created_at,
                                                                  intake_orm.Assignment.id)).scalars())
        first = intake_services.get_workspace(session, batch.workspace_id)
        intake_services.announce_batch(session, inline.append, first, batch, members, inline_max_bytes=None)
        session.rollback()
    (inline_submitted,) = [e for e in inline if e.type == "batch.submitted"]
    assert inline_submitted.payload["snapshot_ref"] is None
    assert claimcheck.encode(inline_submitted.payload) == stored.body  # same snapshot, byte for byte

    by_ref_matching, inline_matching = rnd.matching("by-reference"), rnd.matching("inline")
    rnd.deliver(by_ref_matching)
    rnd.deliver(inline_matching, [*rnd.outbox("workspace.registered"), inline_submitted])
    work(by_ref_matching)
    work(inline_matching)
    with by_ref_matching.session_factory() as session:
        held = session.get(matching_orm.Batch, body["id"])
        assert held is not None and held.snapshot == inline_submitted.payload
    matched = placed(by_ref_matching, body["id"])
    assert len(matched) >= 8
    assert matched == placed(inline_matching, body["id"])


def test_the_snapshot_route_answers_only_a_valid_unexpired_signature_for_that_snapshot(rnd: Round) -> None:
    w = rnd.world
    _large_round(rnd)
    w.created("coord", "/batches", {"workspace_ids": [w.ids["ws_n"], w.ids["ws_z"]], "period": PERIOD,
                                    "assignments": "all_open"})
    ref = rnd.outbox("batch.submitted")[0].payload["snapshot_ref"]
    sid, now = ref["snapshot_id"], time.time()
    good = claimcheck.signed_url("", SECRET, sid, now)
    resp = w.get(None, good)
    assert resp.status_code == 200 and claimcheck.digest(resp.get_data()) == ref["sha256"]
    assert resp.headers["Cache-Control"] == "no-store"
    expired = int(now) - 1
    for path in (f"/batch-snapshots/{sid}", f"/batch-snapshots/{sid}?expires={int(now) + 30}&signature=00",
                 f"/batch-snapshots/{sid}?expires={expired}&signature={claimcheck.signature(SECRET, sid, expired)}",
                 claimcheck.signed_url("", "another secret of at least thirty-two chars", sid, now),
                 good.replace(sid, "0" * 32)):  # another snapshot's id with this one's signature
        resp = w.get("coord", path)
        assert resp.status_code == 403, path
        assert ref["sha256"] not in resp.get_data(as_text=True) and b"teams" not in resp.get_data()
    far = int(now) + 3600  # a signature that would live for an hour is not accepted either
    assert w.get(None, f"/batch-snapshots/{sid}?expires={far}&signature={claimcheck.signature(SECRET, sid, far)}"
                 ).status_code == 403
    assert w.get(None, claimcheck.signed_url("", SECRET, "0" * 32, now)).status_code == 404


def test_a_fetch_while_intake_is_down_is_held_not_dead_lettered_and_goes_through_once_intake_answers(
        rnd: Round, broker_url: str, namespace: str) -> None:
    w = rnd.world
    _large_round(rnd)
    w.created("coord", "/batches", {"workspace_ids": [w.ids["ws_n"], w.ids["ws_z"]], "period": PERIOD,
                                    "assignments": "all_open"})
    (envelope,) = rnd.outbox("batch.submitted")
    fetch = matching_services.snapshot_fetch(Settings.from_env("matching", {
        "WERKPLAATS_SECRET_KEY": SECRET, "WERKPLAATS_INTAKE_URL": f"http://127.0.0.1:{rnd.port}"}))
    with pytest.raises(claimcheck.SnapshotUnavailable) as refused:
        matching_services.with_snapshot(envelope, fetch)  # nothing listens on intake's port yet
    assert is_transient(refused.value)

    fetched: list[int] = []

    def handler(session: Session, env: Envelope) -> None:
        full = matching_services.with_snapshot(env, fetch)
        fetched.append(len(full.payload["assignments"]))
        record_effect(session, env)

    h = Harness(broker_url, namespace, f"sqlite:///{rnd.tmp / 'consumer.sqlite3'}", max_deliveries=2)
    try:
        h.emit_in_transaction(envelope)
        assert h.relay_once() == 1
        consumer = h.start_consumer({"batch.submitted": handler})
        wait_until(lambda: consumer.transient_waits >= 2, 60, "the consumer to hold the message and wait")
        assert h.effect_count() == 0 and h.dead_letters(1, timeout=1) == []
        rnd.serve()
        wait_until(lambda: h.effect_count() == 1, 60, "the batch once intake answers")
        assert fetched == [28] and h.dead_letters(1, timeout=1) == []
    finally:
        h.stop()


def test_intake_keeps_a_stored_snapshot_only_while_matching_may_still_fetch_it(rnd: Round) -> None:
    """The current snapshot stays (the reconciliation may send its message again); one a re-submission superseded
    goes once a run ended, and every one goes when the batch is closed."""
    from intake.entrypoints.handlers import HANDLERS as INTAKE_HANDLERS
    from werkplaats_shared.contracts import make_envelope

    w = rnd.world
    _large_round(rnd)
    body = w.created("coord", "/batches", {"workspace_ids": [w.ids["ws_n"], w.ids["ws_z"]], "period": PERIOD,
                                           "assignments": "all_open"})

    def stored() -> list[str]:
        with rnd.intake.session_factory() as session:
            return sorted(session.execute(sa.select(intake_orm.BatchSnapshot.id).where(
                intake_orm.BatchSnapshot.batch_id == body["id"])).scalars())

    def run_ended(minute: int) -> None:
        with rnd.intake.session_factory.begin() as session:
            INTAKE_HANDLERS["run.ended"](session, make_envelope("run.ended", 1, {
                "run_id": str(uuid.uuid4()), "batch_id": body["id"], "trigger": "batch.submitted",
                "status": "infeasible", "ended_at": f"2030-01-01T10:{minute:02d}:00+00:00", "error": None,
                "diagnosis": None}))

    first = [e.message_id for e in rnd.outbox("batch.submitted")]
    assert stored() == first
    run_ended(1)
    assert stored() == first  # still the one the last message names
    etag = w.get("coord", f"/batches/{body['id']}").headers["ETag"]
    resp = w.call("coord", "PATCH", f"/batches/{body['id']}", {"policy": "max_served"}, headers={"If-Match": etag})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    messages = [e.message_id for e in rnd.outbox("batch.submitted")]
    assert len(messages) == 2 and stored() == sorted(messages)
    run_ended(2)
    assert stored() == [messages[-1]]
    assert w.post("coord", f"/batches/{body['id']}/close").status_code == 200
    assert stored() == []
