"""The batch-submit benchmark (issue 20, item 1): what a round of N assignments over several workspaces costs
when a coordinator submits it, and what its snapshot costs matching to take in, inline or by reference.

Intake's database is filled through its ORM (no HTTP: loading is the pipeline benchmark's business) with one
coordinating organisation, W workspaces, N open assignments (two per firm) and 2N teams (the issue's national
round is 50,000 teams and 25,000 assignments). Then, timed:

- ``POST /batches`` with every workspace and ``"assignments": "all_open"`` through intake's API (Flask's test
  client, in process: validation, the queries, the snapshot, the outbox rows, the commit);
- matching taking the batch in (check, fetch, hash, validation, storing the batch and its queued run): once from
  the message as intake sent it (by reference above WERKPLAATS_SNAPSHOT_INLINE_BYTES: fetched over real HTTP from
  intake), and once from the same snapshot sent inline (the message read from JSON as the consumer does).

The first size (default 2,000: the old limit of a batch) is the baseline the others are compared with, per
assignment, in the same run:

    python -m benchmarks.batch_submit                                   # 2,000, 25,000 and 50,000 on SQLite
    python -m benchmarks.batch_submit --database-url postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa
from werkplaats_shared import geo
from werkplaats_shared.contracts import make_envelope, parse_envelope
from werkplaats_shared.service import Infrastructure
from werkzeug.serving import make_server

from benchmarks.lists import SECRET_KEY, START, _database, add_key
from benchmarks.run import machine

PERIOD = "2030-Q1"
SKILLS = ("python", "ux", "data", "security", "marketing", "webshop")
LEVELS = ("MBO", "HBO", "WO")


def _settings(service: str, database_url: str, data_dir: str, **extra: str) -> Any:
    from werkplaats_shared.config import Settings

    return Settings.from_env(service, {"WERKPLAATS_DATABASE_URL": database_url, "WERKPLAATS_DATA_DIR": data_dir,
                                       "WERKPLAATS_SECRET_KEY": SECRET_KEY, **extra})


def load_round(infra: Infrastructure, assignments: int, workspaces: int) -> dict[str, Any]:
    """One coordinator with ``workspaces`` workspaces, ``assignments`` open assignments, twice as many teams."""
    from intake.adapters import orm

    codes = sorted(geo.municipalities())
    coordinator, institution = str(uuid.uuid4()), str(uuid.uuid4())
    ws_ids = [str(uuid.uuid4()) for _ in range(workspaces)]
    firms = [str(uuid.uuid4()) for _ in range(-(-assignments // 2))]
    with infra.session_factory.begin() as session:
        session.add_all([orm.Organisation(id=coordinator, name="Landelijke Werkplaats", role="coordinator", levels=[],
                                          created_at=START),
                         orm.Organisation(id=institution, name="Hogeschool Eenhoorn", role="institution",
                                          levels=list(LEVELS), created_at=START)])
        session.flush()
        session.execute(sa.insert(orm.Organisation), [
            {"id": f, "name": f"Bedrijf {i}", "name_key": f"bedrijf {i}", "role": "entrepreneur", "levels": [],
             "created_at": START, "kvk_number": f"{10_000_000 + i}", "municipality": codes[i % len(codes)],
             "sector": "detailhandel", "size_class": "micro", "language": "nl", "programmes": [], "campuses": [],
             "blocks": []} for i, f in enumerate(firms)])
        session.execute(sa.insert(orm.Workspace), [
            {"id": w, "organisation_id": coordinator, "name": f"Werkplaats {i}",
             "municipalities": codes[i::workspaces], "periods": [{"code": PERIOD}], "created_at": START}
            for i, w in enumerate(ws_ids)])
        teams = [{"id": str(uuid.uuid4()), "institution_id": institution, "workspace_id": ws_ids[i % workspaces],
                  "code": f"T{i:06d}", "level": LEVELS[i % 3], "size": 4,
                  "skills": [SKILLS[i % 6], SKILLS[(i * 7) % 6]], "period": PERIOD, "created_at": START,
                  "remote_allowed": True, "preferences": []} for i in range(2 * assignments)]
        rows = [{"id": str(uuid.uuid4()), "firm_id": firms[i // 2], "workspace_id": ws_ids[i % workspaces],
                 "title": f"Opdracht {i}", "description": "Een webwinkel met bestellen en ophalen.", "period": PERIOD,
                 "accepted_levels": [LEVELS[i % 3], LEVELS[(i + 1) % 3]], "required_skills": [SKILLS[i % 6]],
                 "nice_to_have_skills": [SKILLS[(i + 1) % 6]], "min_teams": 1, "max_teams": 1,
                 "status": "submitted", "created_at": START, "kind": "project", "mode": "remote",
                 "preferred_institutions": [], "preferred_levels": []} for i in range(assignments)]
        for start in range(0, len(teams), 5000):
            session.execute(sa.insert(orm.Team), teams[start:start + 5000])
        for start in range(0, len(rows), 5000):
            session.execute(sa.insert(orm.Assignment), rows[start:start + 5000])
    return {"coordinator": coordinator, "workspaces": ws_ids}


def measure(assignments: int, workspaces: int, base_url: str | None, inline_bytes: int) -> dict[str, Any]:
    from intake import bootstrap as intake_bootstrap
    from intake.adapters import orm as intake_orm
    from intake.entrypoints.api import create_intake_app
    from matching import bootstrap as matching_bootstrap
    from matching.entrypoints.handlers import handlers

    with _database(base_url, "intake") as (intake_url, data_dir):
        port_server = make_server("127.0.0.1", 0, lambda env, start: [])  # a free port, then intake's app on it
        port = port_server.server_port
        port_server.server_close()
        intake = intake_bootstrap.bootstrap(_settings("intake", intake_url, data_dir,
                                                      WERKPLAATS_SNAPSHOT_INLINE_BYTES=str(inline_bytes)))
        app = create_intake_app(intake)
        world = load_round(intake, assignments, workspaces)
        key = add_key(intake, world["coordinator"], "coordinator")
        client = app.test_client()
        started = time.perf_counter()
        resp = client.post("/batches", json={"workspace_ids": world["workspaces"], "period": PERIOD,
                                             "assignments": "all_open"}, headers={"Authorization": f"Bearer {key}"})
        submit_s = time.perf_counter() - started
        assert resp.status_code == 201, resp.get_data(as_text=True)[:500]
        batch_id = resp.get_json()["id"]
        with intake.engine.connect() as conn:
            bodies = [json.loads(b) for b in conn.execute(sa.select(intake_orm.outbox.c.body).order_by(
                intake_orm.outbox.c.created_at)).scalars()]
            stored = conn.execute(sa.select(intake_orm.BatchSnapshot.body).where(
                intake_orm.BatchSnapshot.batch_id == batch_id)).scalar_one_or_none()
        submitted = next(b for b in bodies if b["type"] == "batch.submitted")
        message_bytes = len(json.dumps(submitted, separators=(",", ":")))
        snapshot_bytes = len(stored) if stored is not None else message_bytes

        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        timings: dict[str, float] = {}
        try:
            for label in ("by_reference", "inline"):
                if label == "inline":
                    payload = json.loads(stored) if stored is not None else submitted["payload"]
                    raw = make_envelope("batch.submitted", 3, payload).to_dict()
                else:
                    raw = submitted
                with _database(base_url, f"matching_{label}") as (murl, mdir):
                    matching = matching_bootstrap.bootstrap(_settings(
                        "matching", murl, mdir, WERKPLAATS_INTAKE_URL=f"http://127.0.0.1:{port}"))
                    take = handlers(matching.settings)
                    for env in bodies:
                        if env["type"] == "workspace.registered":
                            with matching.session_factory.begin() as session:
                                take[env["type"]](session, parse_envelope(env))
                    text = json.dumps(raw)
                    started = time.perf_counter()
                    envelope = parse_envelope(json.loads(text))
                    with matching.session_factory.begin() as session:
                        take["batch.submitted"](session, envelope)
                    timings[label] = time.perf_counter() - started
                    matching.engine.dispose()
        finally:
            server.shutdown()
            thread.join(5)
            intake.engine.dispose()
        return {"assignments": assignments, "teams": 2 * assignments, "workspaces": workspaces,
                "submit_s": submit_s, "snapshot_bytes": snapshot_bytes, "message_bytes": message_bytes,
                "by_reference": stored is not None, "matching_by_reference_s": timings["by_reference"],
                "matching_inline_s": timings["inline"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignments", type=int, action="append",
                        help="N (repeatable; default 2000, 25000 and 50000; the first is the baseline)")
    parser.add_argument("--workspaces", type=int, default=10)
    parser.add_argument("--inline-bytes", type=int, default=1_000_000, help="WERKPLAATS_SNAPSHOT_INLINE_BYTES")
    parser.add_argument("--database-url", default=os.environ.get("WERKPLAATS_BENCH_POSTGRES_URL"),
                        help="a PostgreSQL server's URL (each database fresh, then dropped); default: SQLite")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; load average before: {os.getloadavg()}")
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; {args.workspaces} workspaces; "
          f"inline up to {args.inline_bytes} bytes")
    rows = [measure(n, args.workspaces, args.database_url, args.inline_bytes)
            for n in args.assignments or [2_000, 25_000, 50_000]]
    base = rows[0]
    print("| assignments | teams | POST /batches s | per assignment vs first | snapshot MB | message KB | "
          "sent | matching takes it in, s (by reference / inline) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = (r["submit_s"] / r["assignments"]) / (base["submit_s"] / base["assignments"])
        print(f"| {r['assignments']:,} | {r['teams']:,} | {r['submit_s']:.2f} | {ratio:.2f}x | "
              f"{r['snapshot_bytes'] / 1e6:.2f} | {r['message_bytes'] / 1e3:.1f} | "
              f"{'by reference' if r['by_reference'] else 'inline'} | "
              f"{r['matching_by_reference_s']:.2f} / {r['matching_inline_s']:.2f} |")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
