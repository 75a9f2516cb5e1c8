"""An erasure reaches the stored snapshots too (issue 20's leftovers), in SQLite and PostgreSQL: the batch snapshot
intake keeps for matching to fetch (claim-check) and the run snapshots matching keeps lose the erased team's and
firm's free-text skills, as every other copy does, and the batch is still matched:

- a ``batch.submitted`` sent before the erasure (it waited in a queue) fetches the rewritten snapshot and matches;
- the outbox row names the rewritten snapshot's digest, so the message sent again matches the same way;
- matching, which took the batch before the erasure, keeps no copy of the texts in its batch and run snapshots.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from intake import bootstrap as intake_bootstrap
from intake.adapters import orm as intake_orm
from intake.entrypoints.api import create_intake_app
from matching import bootstrap as matching_bootstrap
from matching.adapters import orm as matching_orm
from matching.entrypoints.handlers import handlers
from werkplaats_shared import claimcheck
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import parse_envelope
from werkplaats_shared.service import Infrastructure
from werkzeug.serving import make_server

from .test_batch_rounds import NAMES, PERIOD, SECRET, Round, _free_port, _large_round, assignment, placed, team, work
from .test_intake_api import World, workspace_body


@dataclass
class Services:
    round: Round
    url: Any  # label -> database URL

    def matching(self, name: str) -> Infrastructure:
        settings = Settings.from_env("matching", {
            "WERKPLAATS_DATABASE_URL": self.url(name), "WERKPLAATS_DATA_DIR": str(self.round.tmp),
            "WERKPLAATS_SECRET_KEY": SECRET, "WERKPLAATS_INTAKE_URL": f"http://127.0.0.1:{self.round.port}"})
        infra = matching_bootstrap.bootstrap(settings)
        self.round.matchings.append(infra)
        return infra


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def svc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level

    def url(name: str) -> str:
        if request.param == "postgresql":
            return str(request.getfixturevalue("make_postgres_db")(name.replace("-", "_")))
        return f"sqlite:///{tmp_path}/{name}.sqlite3"

    infra = intake_bootstrap.bootstrap(Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": url("intake"), "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET, "WERKPLAATS_SNAPSHOT_INLINE_BYTES": "10000"}))
    app = create_intake_app(infra)
    w = World(infra, app, app.test_client())
    r = Round(w, tmp_path, port=_free_port())
    server = make_server("127.0.0.1", r.port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for who, (name, role, levels) in NAMES.items():
            w.add_org(who, name, role, levels)
        w.ids["ws_n"] = w.created("coord", "/workspaces", workspace_body(name="Werkplaats Noord"))["id"]
        w.ids["ws_z"] = w.created("coord", "/workspaces", workspace_body(
            name="Werkplaats Zuid", municipalities=["GM0344"],
            periods=[{"code": PERIOD, "starts_on": "2025-01-06", "ends_on": "2025-03-28"}]))["id"]
        w.created("firm_n", "/firm", {"kvk_number": "12345671", "sector": "bakkerij", "size_class": "micro",
                                      "municipality": "GM0363", "language": "nl"})
        w.created("firm_z", "/firm", {"kvk_number": "12345672", "sector": "garage", "size_class": "micro",
                                      "municipality": "GM0344", "language": "nl"})
        yield Services(r, url)
    finally:
        server.shutdown()
        thread.join(5)
        for m in r.matchings:
            m.engine.dispose()
        infra.engine.dispose()
        root.handlers[:] = saved
        root.setLevel(level)


def stored_snapshot_texts(infra: Infrastructure) -> str:
    with infra.engine.connect() as conn:
        bodies = conn.execute(sa.select(intake_orm.BatchSnapshot.body)).scalars().all()
    return "\n".join(bytes(b).decode() for b in bodies)


def matching_snapshot_texts(m: Infrastructure) -> str:
    with m.engine.connect() as conn:
        runs = conn.execute(sa.select(sa.cast(matching_orm.RunSnapshot.snapshot, sa.Text))).scalars().all()
        batches = conn.execute(sa.select(sa.cast(matching_orm.Batch.snapshot, sa.Text))).scalars().all()
    return "\n".join([*runs, *batches])


def test_an_erasure_rewrites_the_stored_snapshots_and_the_batch_is_still_matched(svc: Services) -> None:
    r = svc.round
    w = r.world
    team_text, firm_text = f"MrkTeam Jan Jansen {secrets.token_hex(4)}", f"MrkFirm bel Piet {secrets.token_hex(4)}"
    _large_round(r)
    marked_team = team(r, "ws_n", "N-MRK", ["python", team_text])
    marked_assignment = assignment(r, "firm_n", "ws_n", ["python", firm_text], title="Opdracht met kenmerk")
    batch = w.created("coord", "/batches", {"workspace_ids": [w.ids["ws_n"], w.ids["ws_z"]], "period": PERIOD,
                                            "assignments": "all_open"})
    (sent_before,) = r.outbox("batch.submitted")
    before = sent_before.payload["snapshot_ref"]
    assert before is not None  # the snapshot stays in intake; the message names it
    assert team_text in stored_snapshot_texts(r.intake) and firm_text in stored_snapshot_texts(r.intake)

    early = svc.matching("early")  # took the batch before the erasure
    r.deliver(early, [*r.outbox("workspace.registered"), sent_before])
    work(early)
    assert team_text in matching_snapshot_texts(early)

    for who, kind, subject in (("inst", "team", marked_team), ("firm_n", "firm_contact", w.org["firm_n"])):
        resp = w.post(who, "/privacy/erasures", {"subject_kind": kind, "subject_id": subject})
        assert resp.status_code == 201, resp.get_data(as_text=True)

    # intake's stored snapshot no longer holds the texts; the rest of it is as it was
    stored = stored_snapshot_texts(r.intake)
    assert team_text not in stored and firm_text not in stored
    assert marked_team in stored and marked_assignment in stored
    with r.intake.session_factory() as session:
        row = session.get(intake_orm.BatchSnapshot, before["snapshot_id"])
        assert row is not None
        assert (row.sha256, row.size_bytes) == (claimcheck.digest(row.body), len(row.body))
        assert row.sha256 != before["sha256"] and before["sha256"] in (row.replaces_sha256 or [])
    (sent_now,) = r.outbox("batch.submitted")
    assert sent_now.message_id == sent_before.message_id
    assert sent_now.payload["snapshot_ref"] == {"snapshot_id": before["snapshot_id"], "sha256": row.sha256,
                                                "size_bytes": row.size_bytes}

    # the message sent before the erasure (it waited in a queue) fetches the rewritten snapshot, and matches
    late = svc.matching("late")
    r.deliver(late, [*r.outbox("workspace.registered"), sent_before])
    work(late)
    # the message as the outbox holds it now (sent again by the reconciliation) matches the same way
    again = svc.matching("again")
    r.deliver(again, [*r.outbox("workspace.registered"), sent_now])
    work(again)
    matched = placed(late, batch["id"])
    assert len(matched) >= 8 and any(t == marked_team for _, t, _, _ in matched)
    assert matched == placed(again, batch["id"])
    for m in (late, again):
        texts = matching_snapshot_texts(m)
        assert team_text not in texts and firm_text not in texts and marked_team in texts

    # matching that held the texts before erases them from its batch and run snapshots when told
    with r.intake.engine.connect() as conn:
        bodies = conn.execute(sa.select(intake_orm.outbox.c.body).where(
            intake_orm.outbox.c.type == "personal_data.erased")).scalars().all()
    assert len(bodies) == 2
    r.deliver(early)  # nothing new of the kinds it delivers
    for body in bodies:
        with early.session_factory.begin() as session:
            handlers(early.settings)["personal_data.erased"](session, parse_envelope(json.loads(body)))
    texts = matching_snapshot_texts(early)
    assert team_text not in texts and firm_text not in texts and marked_team in texts


def test_a_fetch_takes_a_rewritten_snapshot_only_for_a_digest_it_replaces(svc: Services) -> None:
    """The digest check still refuses a body that is not the snapshot named: only a message naming one of the
    digests the stored snapshot had before an erasure gets the rewritten body."""
    r = svc.round
    w = r.world
    _large_round(r)
    marked_team = team(r, "ws_n", "N-MRK", ["python", "MrkTeam eigen vak"])
    w.created("coord", "/batches", {"workspace_ids": [w.ids["ws_n"], w.ids["ws_z"]], "period": PERIOD,
                                    "assignments": "all_open"})
    (sent,) = r.outbox("batch.submitted")
    reference = sent.payload["snapshot_ref"]
    assert w.post("inst", "/privacy/erasures", {"subject_kind": "team", "subject_id": marked_team}).status_code == 201
    base = f"http://127.0.0.1:{r.port}"
    fetched = claimcheck.fetch(base, SECRET, reference)
    assert marked_team in json.dumps(fetched) and "MrkTeam" not in json.dumps(fetched)
    with pytest.raises(claimcheck.SnapshotRefused):
        claimcheck.fetch(base, SECRET, {**reference, "sha256": "0" * 64})
