"""How long the coordinator's result page of a big round takes to open (issue 14, item 5: under 2 s).

    python -m benchmarks.portal_result_page [--teams 10000] [--assignments 5000] [--repeat 5] [--keep DIR]

Starts the local default stack (benchmarks use it as ``python dev.py run`` does: each service a process,
SQLite per service, the embedded broker, the portal), builds one round of 10,000 teams and 5,000 assignments
in one workspace and period, runs it, and then times, through the portal over HTTP as a signed-in coordinator:

- the result page, first page (50 matches in names);
- a filtered page (a level, a fit range and a text search over titles and firms' names that 100 assignments
  match);
- the unmatched assignments with their reasons, a later page;

each ``--repeat`` times (median and slowest printed). The baseline, measured in the same run against the same
round: matching's paged result call alone (``GET /runs/<id>/results``, what the page asks matching) and, for
comparison, matching's whole explanations of the run (``GET /runs/<id>/explanations``, which the page read
before item 5).

The round: ``benchmarks.generator`` makes a national instance of about twice the size in two periods; the
teams and assignments of 2027-S1 (the first 10,000 and 5,000) become intake rows written straight into
intake's database (institutions with their campuses, firms with their municipality, teams, assignments: as
the HTTP API would store them, without sending 15,000 requests); the batch is then submitted through intake's
own service function in this process, so intake's outbox sends matching the ``batch.submitted`` snapshot it
builds. Intake's HTTP API caps a batch (``MAX_BATCH_ASSIGNMENTS``); for this benchmark
the cap is lifted in this process only. Matching solves the round as it would any other (max_fit).
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

PERIOD = "2027-S1"
PERIODS = [{"code": "2027-S1", "starts_on": "2027-02-01", "ends_on": "2027-06-30"},
           {"code": "2027-S2", "starts_on": "2027-09-01", "ends_on": "2028-01-31"}]
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _round(teams: int, assignments: int) -> dict[str, Any]:
    """The generator's national instance, cut to one period: ``teams`` teams and ``assignments`` assignments."""
    from benchmarks.generator import generate

    snapshot = generate(teams * 2 + teams // 10, assignments=assignments * 2 + assignments // 10, seed=1)
    chosen_teams = [t for t in snapshot["teams"] if t["periods"] == [PERIOD]][:teams]
    chosen = [a for a in snapshot["assignments"] if a["period"] == PERIOD][:assignments]
    if len(chosen_teams) < teams or len(chosen) < assignments:
        raise SystemExit(f"the instance has too few teams or assignments in {PERIOD}")
    return {**snapshot, "teams": chosen_teams, "assignments": chosen}


def _load(stack: Any, coordinator_id: str, instance: dict[str, Any]) -> tuple[str, list[str]]:
    """Intake rows for the round, written into intake's database; answers the workspace and assignment ids."""
    from intake import bootstrap as intake_bootstrap
    from intake.adapters import orm
    from werkplaats_shared.config import Settings
    from werkplaats_shared.db import utcnow

    infra = intake_bootstrap.bootstrap(Settings.from_env("intake", stack.env("intake")))
    now = utcnow()
    teams, assignments = instance["teams"], instance["assignments"]
    area = sorted({t["municipality"] for t in teams} | {a["municipality"] for a in assignments})
    workspace_id = str(uuid.uuid4())
    campuses: dict[str, set[str]] = {}
    levels: dict[str, str] = {}
    for t in teams:
        campuses.setdefault(t["institution_id"], set()).add(t["municipality"])
        levels[t["institution_id"]] = t["level"]
    try:
        with infra.session_factory.begin() as session:
            session.add(orm.Workspace(id=workspace_id, organisation_id=coordinator_id, name="Werkplaats Nederland",
                                      municipalities=area, periods=PERIODS, created_at=now))
            session.flush()
            for n, (institution_id, places) in enumerate(sorted(campuses.items()), start=1):
                session.add(orm.Organisation(
                    id=institution_id, name=f"Onderwijsinstelling {n:03d} ({levels[institution_id]})",
                    role="institution", levels=[levels[institution_id]], created_at=now,
                    campuses=[{"name": f"Campus {code}", "municipality": code} for code in sorted(places)]))
            firms = {a["firm_id"]: a["municipality"] for a in assignments}
            for n, (firm_id, municipality) in enumerate(sorted(firms.items()), start=1):
                session.add(orm.Organisation(
                    id=firm_id, name=f"Bedrijf {n:05d} BV", role="entrepreneur", created_at=now,
                    kvk_number=f"{50_000_000 + n:08d}", sector="mkb", size_class="micro", municipality=municipality,
                    language="nl", workspace_id=workspace_id))
            session.flush()
            for n, t in enumerate(teams, start=1):
                session.add(orm.Team(
                    id=t["team_id"], institution_id=t["institution_id"], workspace_id=workspace_id,
                    code=f"T{n:05d}", level=t["level"], size=4, skills=sorted(t["skills"]), period=PERIOD,
                    created_at=now, campus=f"Campus {t['municipality']}",
                    travel_limit_km=None if t["travel_limit_km"] is None else max(1, round(t["travel_limit_km"])),
                    remote_allowed=t["remote_allowed"], preferences=[]))
            for n, a in enumerate(assignments, start=1):
                session.add(orm.Assignment(
                    id=a["assignment_id"], firm_id=a["firm_id"], workspace_id=workspace_id,
                    title=f"Opdracht {n:05d}: {' en '.join(a['required_skills'])}", description="",
                    period=PERIOD, accepted_levels=a["accepted_levels"], required_skills=a["required_skills"],
                    nice_to_have_skills=a["nice_to_have_skills"], min_teams=a["min_teams"],
                    max_teams=a["max_teams"], status="submitted", created_at=now, kind="project",
                    mode=a["mode"], preferred_institutions=[], preferred_levels=[]))
    finally:
        infra.engine.dispose()
    return workspace_id, [a["assignment_id"] for a in assignments]


def _submit(stack: Any, coordinator_id: str, workspace_id: str, assignment_ids: list[str]) -> str:
    """The batch, through intake's own service function (its snapshot goes to matching by intake's outbox)."""
    from intake import bootstrap as intake_bootstrap
    from intake.service_layer import services
    from werkplaats_shared.auth import Principal
    from werkplaats_shared.config import Settings

    infra = intake_bootstrap.bootstrap(Settings.from_env("intake", stack.env("intake")))
    services.MAX_BATCH_ASSIGNMENTS = len(assignment_ids)  # this process only: the API caps a batch
    try:
        with infra.session_factory.begin() as session:
            batch = services.submit_batch(session, lambda envelope: infra.emit(session, envelope),
                                          Principal(coordinator_id, "coordinator", "benchmark"),
                                          {"workspace_id": workspace_id, "period": PERIOD, "policy": "max_fit",
                                           "auto_publish": False, "assignment_ids": assignment_ids})
            return str(batch.id)
    finally:
        infra.engine.dispose()


def _signed_in(portal: str, email: str, password: str) -> requests.Session:
    web = requests.Session()
    page = web.get(f"{portal}/sign-in", timeout=30)
    token = CSRF.search(page.text)
    assert token is not None, "no CSRF token on the sign-in page"
    answer = web.post(f"{portal}/sign-in", data={"csrf_token": token.group(1), "email": email, "password": password},
                      timeout=30)
    assert answer.ok and "/coordinator" in answer.url, (answer.status_code, answer.url)
    return web


def _timed(what: Callable[[], requests.Response], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = what()
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, (response.status_code, response.text[:300])
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--assignments", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", help="data directory to use and keep (default: a temporary one)")
    parser.add_argument("--solve-timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)

    from werkplaats_shared.devstack.demo import Api, invite_person, wait_for
    from werkplaats_shared.devstack.stack import PORTAL, SERVICES, LocalStack, StackConfig

    folder = args.keep or tempfile.mkdtemp(prefix="werkplaats-bench-")
    ports = {service: _free_port() for service in (*SERVICES, PORTAL)}
    stack = LocalStack(StackConfig(data_dir=folder, ports=ports, smtp_port=_free_port(), portal=True))
    print(f"starting the local stack in {folder} (ports {ports})", flush=True)
    try:
        stack.start(timeout=600)  # a busy machine starts the services slowly
        started = time.perf_counter()
        (coordinator,) = stack.admin("create-organisations", stdin='[{"name": "Werkplaats Nederland", '
                                                                   '"role": "coordinator"}]')
        key, coordinator_id = coordinator["api_key"], coordinator["organisation_id"]
        instance = _round(args.teams, args.assignments)
        print(f"instance: {len(instance['teams'])} teams, {len(instance['assignments'])} assignments "
              f"({time.perf_counter() - started:.1f} s)", flush=True)
        workspace_id, assignment_ids = _load(stack, coordinator_id, instance)
        print(f"loaded into intake ({time.perf_counter() - started:.1f} s)", flush=True)
        matching = Api(stack.url("matching"), key)
        wait_for("the key in matching", lambda: matching.get("/runs") is not None)
        batch_id = _submit(stack, coordinator_id, workspace_id, assignment_ids)
        solve_started = time.perf_counter()
        run = wait_for("the run solved", lambda: _ended_run(stack.url("matching"), key, batch_id),
                       timeout=args.solve_timeout, interval=5.0)
        if run["status"] != "solved":
            raise SystemExit(f"the run ended {run['status']}: {run.get('error')}")
        print(f"batch {batch_id} solved in {time.perf_counter() - solve_started:.1f} s: "
              f"objective {run['objective']:.1f}", flush=True)
        email = "coordinator@bench.example.org"
        password = invite_person(stack, key, email)
        web = _signed_in(stack.url(PORTAL), email, password)
        page = f"{stack.url(PORTAL)}/coordinator/rounds/{batch_id}"
        api = requests.Session()
        api.headers.update({"Authorization": f"Bearer {key}", "Accept": "application/json"})
        base = f"{stack.url('matching')}/runs/{run['id']}"
        first_page = web.get(page, timeout=60)
        assert "T0" in first_page.text, "the result page shows no team codes"
        fit = sorted(i["fit"] for i in api.get(f"{base}/results?page_size=100", timeout=60).json()["items"])[0]
        filtered = {"level": "HBO", "min_fit": f"{fit:.2f}", "q": "Opdracht 004", "size": "50"}
        timings = {
            "baseline: matching's paged result call (50 matches)":
                _timed(lambda: api.get(f"{base}/results", params={"page_size": 50}, timeout=60), args.repeat),
            "baseline: matching's whole explanations of the run":
                _timed(lambda: api.get(f"{base}/explanations", timeout=120), args.repeat),
            "portal: result page, first page": _timed(lambda: web.get(page, timeout=60), args.repeat),
            "portal: filtered page (level, fit range, text)":
                _timed(lambda: web.get(page, params=filtered, timeout=60), args.repeat),
            "portal: unmatched assignments, page 3":
                _timed(lambda: web.get(page, params={"show": "unmatched_assignments", "page": "3"}, timeout=60),
                       args.repeat),
        }
        counts = api.get(f"{base}/results", params={"page_size": 1}, timeout=60).json()["counts"]
        print(f"\nround: {len(instance['teams'])} teams, {len(instance['assignments'])} assignments; "
              f"{counts['matches']} matches, {counts['unmatched_assignments']} assignments and "
              f"{counts['unmatched_teams']} teams unmatched; {args.repeat} requests each\n")
        print("| what | median s | slowest s |")
        print("|---|---:|---:|")
        for what, seconds in timings.items():
            print(f"| {what} | {statistics.median(seconds):.3f} | {max(seconds):.3f} |")
        slowest = max(max(s) for what, s in timings.items() if what.startswith("portal"))
        print(f"\ngoal: every portal page under 2 s: {'met' if slowest < 2 else 'NOT met'} (slowest {slowest:.3f} s)")
        return 0 if slowest < 2 else 1
    finally:
        stack.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ended_run(matching: str, key: str, batch_id: str) -> dict[str, Any] | None:
    """The batch's run once it ended; None while matching has not received the batch, is still solving, or is
    too busy to answer (a 10k round keeps a small machine busy)."""
    try:
        response = requests.get(f"{matching}/batches/{batch_id}/runs", timeout=120,
                                headers={"Authorization": f"Bearer {key}", "Accept": "application/json"})
    except requests.RequestException:
        return None
    if response.status_code in (404, 503):
        return None
    response.raise_for_status()
    return next((r for r in response.json() if r["status"] in ("solved", "failed", "infeasible")), None)


if __name__ == "__main__":
    sys.exit(main())
