"""What an erasure costs matching: one team's and one firm's free-text skills taken out of a round.

    python -m benchmarks.erasure [--sizes 1k,10k] [--runs 3]

Per size: a generated ``batch.submitted`` v2 (benchmarks.generator) whose first team and first firm get a
free-text skill, stored on a fresh SQLite database by matching's own handler with ``--runs`` queued runs
(each a copy of the snapshot, as re-runs make them). Then matching's ``personal_data.erased`` handler runs
for the team and for the firm, each in its own transaction with its WAL checkpoint. The baseline, measured
in the same run on the same database: storing the batch (``batch.submitted``, one transaction), which
writes the snapshot once, and one re-run request, which copies it once more."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import uuid
from typing import Any

from matching import bootstrap
from matching.entrypoints.handlers import HANDLERS
from matching.service_layer import services
from werkplaats_shared.auth import Principal
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.service import Infrastructure

from .generator import generate

SIZES = {"1k": 1_000, "10k": 10_000}


def _timed(infra: Infrastructure, message_type: str, version: int, payload: dict[str, Any]) -> float:
    envelope = make_envelope(message_type, version, payload)
    started = time.perf_counter()
    with infra.session_factory.begin() as session:
        HANDLERS[message_type](session, envelope)
    return time.perf_counter() - started


def measure(teams: int, runs: int) -> dict[str, float]:
    snapshot = generate(teams)
    team, firm = snapshot["teams"][0], snapshot["assignments"][0]
    team["skills"] = [*team["skills"], "free text typed by the institution"]
    firm["nice_to_have_skills"] = [*firm["nice_to_have_skills"], "free text typed by the firm"]
    coordinator = str(uuid.uuid4())
    snapshot.update(batch_id=str(uuid.uuid4()), coordinator_id=coordinator, auto_publish=False)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings.from_env("matching", {"WERKPLAATS_DATABASE_URL": f"sqlite:///{data_dir}/m.sqlite3",
                                                  "WERKPLAATS_DATA_DIR": data_dir})
        infra = bootstrap.bootstrap(settings)
        logging.getLogger().setLevel(logging.WARNING)
        try:
            submit = _timed(infra, "batch.submitted", 2, snapshot)
            principal = Principal(coordinator, "coordinator", "key-bench")
            rerun = 0.0
            for _ in range(runs - 1):
                started = time.perf_counter()
                with infra.session_factory.begin() as session:
                    services.request_run(session, principal, snapshot["batch_id"], {})
                rerun = time.perf_counter() - started
            erased = {kind: _timed(infra, "personal_data.erased", 1, {
                "subject_kind": kind, "subject_id": subject, "erased_at": utcnow().isoformat()})
                for kind, subject in (("team", team["team_id"]), ("firm_contact", firm["firm_id"]))}
        finally:
            infra.engine.dispose()
    return {"submit": submit, "rerun": rerun, "team": erased["team"], "firm": erased["firm_contact"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1k,10k")
    parser.add_argument("--runs", type=int, default=3, help="runs of the batch stored before the erasure")
    args = parser.parse_args(argv)
    print("| teams | runs stored | store the batch (baseline) | one re-run request | erase a team | erase a firm |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        f = measure(SIZES[size], max(1, args.runs))
        print(f"| {size} | {max(1, args.runs)} | {f['submit']:.3f} s | {f['rerun']:.3f} s | {f['team']:.3f} s "
              f"({f['team'] / f['submit']:.1f}x) | {f['firm']:.3f} s ({f['firm'] / f['submit']:.1f}x) |")


if __name__ == "__main__":
    main()
