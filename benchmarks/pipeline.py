"""The end-to-end pipeline benchmark (issue 20, item 7): a generated national round pushed through the real
services as users would, from the first organisation to the last mail.

    python -m benchmarks.pipeline --teams 10000
    python -m benchmarks.pipeline --teams 50000 --clients 8

It starts the local default as ``python3 dev.py run`` does (``werkplaats_shared.devstack``: the embedded
broker, the SMTP sink writing a Maildir, intake, matching and scheduling as separate processes, each with its
own SQLite database) on free ports with its own data directory under /tmp, stops every process it started by
its PID, and loads the instance of ``benchmarks.generator`` (``network`` flavour) through the public HTTP APIs:

| stage | through |
|---|---|
| organisations | the operator's ``POST /organisations/bulk`` (CSV, 2,000 a file): coordinator, institutions |
| keys known | waiting until matching and scheduling know the new keys (``apikey.issued``) |
| workspace | the coordinator's ``POST /workspaces`` (one national workspace) and ``PUT /contact`` |
| firms | the operator's ``POST /organisations/firms`` and ``PUT /contacts`` at scheduling (2,000 a request) |
| institutions | each institution's ``PATCH /institution`` (programme, campuses) |
| capacity | each institution's ``POST /imports/capacity`` (CSV) |
| assignments | each firm's ``POST /assignments/bulk`` |
| teams | each institution's ``POST /imports/teams`` (CSV) |
| batches | the coordinator's ``POST /batches`` (``submit_batches``: one per period, every open assignment) |
| runs | until every batch is matched (auto_publish: each run publishes its matches when solved); ``GET /batches`` |
| notices | until the SMTP sink holds one mail per notice (one notice per firm with a match in a run) |

``--firms-one-by-one`` is the baseline before the operator's firm onboarding: the firms come in the
organisations' CSV and each sends its profile (``POST /firm``) and contact (``PUT /contact``) itself.

Each stage prints its time, its throughput, the peak memory of every process so far (VmHWM of
/proc/PID/status) and the CPU time each process took during the stage. Then: the served share (assignments
with a team) against the in-process solve of the same national instance (the generator's snapshot as intake
sends it: priority 0, the supervision hours of a project; solved with ``matching.solver`` as
``benchmarks/run.py`` does), and the time to walk every match
(``GET /matches`` by ``after``) against walking a tenth of them. The figures must agree: every match published
is walked once, and the mails delivered equal the notices expected; otherwise the command exits with 1.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.generator import generate
from benchmarks.run import in_fresh_process, machine

PERIODS = [{"code": "2027-S1", "starts_on": "2027-02-01", "ends_on": "2027-06-30"},
           {"code": "2027-S2", "starts_on": "2027-09-01", "ends_on": "2028-01-31"}]
ORGANISATIONS_PER_FILE = 2000  # intake's organisations.MAX_BULK_ROWS
PROJECT_SUPERVISION_HOURS = 20  # intake's supervision_hours("project"): what every assignment's snapshot carries
PROGRAMME = "ICT"
CAPACITY_MAX_TEAMS = 500  # CapacityIn.teams allows 1 to 500
CAPACITY_MAX_HOURS = 10_000  # and supervision_hours 0 to 10,000


class HttpError(Exception):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {str(body)[:500]}")
        self.status, self.body = status, body


class Client:
    """HTTP/1.1 with one kept-alive connection per thread and service (waitress keeps them open)."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.local = threading.local()
        self.requests = 0
        self.opened: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()

    def _connection(self, service: str) -> http.client.HTTPConnection:
        conns: dict[str, http.client.HTTPConnection] = self.local.__dict__.setdefault("conns", {})
        if service not in conns:
            conns[service] = http.client.HTTPConnection("127.0.0.1", self.ports[service], timeout=600)
            with self.lock:
                self.opened.append(conns[service])
        return conns[service]

    def close(self) -> None:
        with self.lock:
            for conn in self.opened:
                conn.close()
            self.opened.clear()

    def call(self, service: str, method: str, path: str, key: str, body: Any = None, *, raw: bytes | None = None,
             content_type: str = "application/json", headers: dict[str, str] | None = None,
             expect: Iterable[int] = (200, 201)) -> tuple[Any, dict[str, str]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"Authorization": f"Bearer {key}", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = content_type
        for attempt in range(30):
            conn = self._connection(service)
            try:
                conn.request(method, path, body=data, headers=sent)
                resp = conn.getresponse()
                payload = resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conns.pop(service, None)
                if attempt == 29:
                    raise
                time.sleep(0.2)
                continue
            self.requests += 1
            if resp.status == 503 and resp.getheader("Retry-After"):  # e.g. every upload parser busy
                time.sleep(min(2.0, float(resp.getheader("Retry-After") or 1)))
                continue
            parsed = json.loads(payload) if payload and resp.getheader("Content-Type", "").startswith(
                "application/json") else payload
            if resp.status not in tuple(expect):
                raise HttpError(method, path, resp.status, parsed)
            return parsed, {k.lower(): v for k, v in resp.getheaders()}
        raise HttpError(method, path, 503, "still busy after 30 tries")


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = f"----werkplaats-benchmark-{os.urandom(8).hex()}"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
              "Content-Type: text/csv\r\n\r\n".encode())
    out.write(data)
    out.write(f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def csv_bytes(header: list[str], rows: Iterable[list[Any]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue().encode()


def free_port() -> int:
    from werkplaats_shared.devstack.ports import reserve_port

    return reserve_port()


def peak_mib(pid: int) -> float | None:
    """The process's peak resident memory so far (VmHWM), MiB; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """The process's CPU time so far (user and system, its threads'), seconds; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Stage:
    name: str
    seconds: float
    items: int
    unit: str
    requests: int
    peaks: dict[str, float | None]


@dataclass
class Bench:
    client: Client
    pids: dict[str, int]
    clients: int
    stages: list[Stage] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, items: int, unit: str) -> Iterator[None]:
        started, requests = time.perf_counter(), self.client.requests
        cpu_before = {who: cpu_seconds(pid) for who, pid in self.pids.items()}
        print(f"  {name} ({items:,} {unit}) ...", flush=True)
        yield
        seconds = time.perf_counter() - started
        self.stages.append(Stage(name, seconds, items, unit, self.client.requests - requests,
                                 {who: peak_mib(pid) for who, pid in self.pids.items()}))
        peaks = ", ".join(f"{who} {mib:.0f}" for who, mib in self.stages[-1].peaks.items() if mib is not None)
        cpu = ", ".join(f"{who} {after - before:.1f}" for who, pid in self.pids.items()
                        if (before := cpu_before[who]) is not None and (after := cpu_seconds(pid)) is not None)
        print(f"  {name}: {seconds:.1f} s, {items / seconds if seconds > 0 else 0:.1f} {unit}/s; load "
              f"{os.getloadavg()[0]:.2f}; peak MiB {peaks}; CPU s {cpu}", flush=True)

    def each(self, function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        with ThreadPoolExecutor(self.clients) as pool:
            return list(pool.map(function, items))


# ---- the round ---------------------------------------------------------------------------------------------


@dataclass
class Round:
    snapshot: dict[str, Any]
    operator: str = ""
    coordinator: str = ""
    keys: dict[str, str] = field(default_factory=dict)  # generator id (inst-..., firm-...) -> API key
    orgs: dict[str, str] = field(default_factory=dict)  # generator id -> organisation id
    workspace: str = ""
    assignments: dict[str, str] = field(default_factory=dict)  # generator assignment id -> intake id
    batches: list[str] = field(default_factory=list)

    @property
    def institutions(self) -> dict[str, str]:
        """Institution id -> its level (each institution offers one)."""
        return {t["institution_id"]: t["level"] for t in self.snapshot["teams"]}

    @property
    def firms(self) -> list[str]:
        return sorted({a["firm_id"] for a in self.snapshot["assignments"]})


def create_organisations(bench: Bench, rnd: Round, with_firms: bool) -> None:
    """The coordinator and the institutions (and, ``with_firms``, the firms without their profiles)."""
    wanted = [("coordinator", "Landelijke Werkplaats (benchmark)", "coordinator", "")]
    wanted += [(i, f"Instelling {i}", "institution", level) for i, level in sorted(rnd.institutions.items())]
    if with_firms:
        wanted += [(f, f"Bedrijf {f}", "entrepreneur", "") for f in rnd.firms]
    by_name = {name: who for who, name, _, _ in wanted}
    for start in range(0, len(wanted), ORGANISATIONS_PER_FILE):
        rows = [[name, role, level] for _, name, role, level in wanted[start:start + ORGANISATIONS_PER_FILE]]
        made, _ = bench.client.call("intake", "POST", "/organisations/bulk", rnd.operator,
                                    raw=csv_bytes(["name", "role", "levels"], rows), content_type="text/csv")
        for org in made["organisations"]:
            who = by_name[org["name"]]
            rnd.keys[who], rnd.orgs[who] = org["api_key"], org["id"]
    rnd.coordinator = rnd.keys["coordinator"]


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def keys_known(bench: Bench, rnd: Round) -> None:
    """The last key created is known to matching and scheduling (the outbox relays in order)."""
    last = rnd.keys[rnd.firms[-1]] if rnd.firms[-1] in rnd.keys else rnd.coordinator

    def known(service: str, path: str, key: str) -> bool:
        try:
            bench.client.call(service, "GET", path, key)
            return True
        except HttpError as exc:
            if exc.status != 401:
                raise
            return False

    wait_until("keys in matching", lambda: known("matching", "/runs?page_size=1", rnd.coordinator), 600)
    wait_until("keys in scheduling", lambda: known("scheduling", "/notices?page_size=1", last), 600)


def create_workspace(bench: Bench, rnd: Round) -> None:
    ws, _ = bench.client.call("intake", "POST", "/workspaces", rnd.coordinator, {
        "name": "Landelijke Werkplaats", "municipalities": sorted(rnd.snapshot["working_area"]), "periods": PERIODS})
    rnd.workspace = ws["id"]
    bench.client.call("scheduling", "PUT", "/contact", rnd.coordinator,
                      {"email": "werkplaats@benchmark.example.org", "language": "nl"})


def kvk_number(n: int) -> str:
    return f"{10_000_000 + n:08d}"


def onboard_firms(bench: Bench, rnd: Round) -> None:
    """The operator onboards the firms in bulk: ``POST /organisations/firms`` (organisation, profile and
    first key, 2,000 a request) and ``PUT /contacts`` at scheduling (2,000 a request)."""
    where = {a["firm_id"]: a["municipality"] for a in rnd.snapshot["assignments"]}
    firms = list(enumerate(rnd.firms, start=1))
    for start in range(0, len(firms), ORGANISATIONS_PER_FILE):
        chunk = firms[start:start + ORGANISATIONS_PER_FILE]
        made, _ = bench.client.call("intake", "POST", "/organisations/firms", rnd.operator, {"firms": [
            {"name": f"Bedrijf {firm}", "kvk_number": kvk_number(n), "sector": "mkb", "size_class": "micro",
             "municipality": where[firm], "language": "nl"} for n, firm in chunk]})
        for (_, firm), org in zip(chunk, made["firms"], strict=True):
            rnd.keys[firm], rnd.orgs[firm] = org["api_key"], org["id"]
    keys_known(bench, rnd)  # scheduling knows a firm once it has its key (apikey.issued)
    for start in range(0, len(firms), ORGANISATIONS_PER_FILE):
        bench.client.call("scheduling", "PUT", "/contacts", rnd.operator, {"contacts": [
            {"organisation_id": rnd.orgs[firm], "email": f"{firm}@benchmark.example.org", "language": "nl"}
            for _, firm in firms[start:start + ORGANISATIONS_PER_FILE]]})


def onboard_firms_one_by_one(bench: Bench, rnd: Round) -> None:
    """The baseline (``--firms-one-by-one``): the firms' organisations came with the others; each firm sends
    its profile to intake and its contact to scheduling itself, a request each."""
    where = {a["firm_id"]: a["municipality"] for a in rnd.snapshot["assignments"]}

    def onboard(args: tuple[int, str]) -> None:
        n, firm = args
        key = rnd.keys[firm]
        bench.client.call("intake", "POST", "/firm", key, {
            "kvk_number": kvk_number(n), "sector": "mkb", "size_class": "micro",
            "municipality": where[firm], "language": "nl"})
        bench.client.call("scheduling", "PUT", "/contact", key,
                          {"email": f"{firm}@benchmark.example.org", "language": "nl"})

    bench.each(onboard, list(enumerate(rnd.firms, start=1)))


def campuses(rnd: Round) -> dict[str, list[str]]:
    """Each institution's campuses: the municipalities of its teams (the campus is named by its code)."""
    found: dict[str, set[str]] = defaultdict(set)
    for t in rnd.snapshot["teams"]:
        found[t["institution_id"]].add(t["municipality"])
    return {i: sorted(codes) for i, codes in found.items()}


def set_up_institutions(bench: Bench, rnd: Round) -> None:
    places = campuses(rnd)

    def patch(institution: str) -> None:
        key = rnd.keys[institution]
        _, headers = bench.client.call("intake", "GET", "/institution", key)
        bench.client.call("intake", "PATCH", "/institution", key, {
            "programmes": [PROGRAMME],
            "campuses": [{"name": code, "municipality": code} for code in places[institution]]},
            headers={"If-Match": headers["etag"]})

    bench.each(patch, sorted(rnd.institutions))


def upload(bench: Bench, kind: str, key: str, workspace: str, header: list[str], rows: list[list[Any]]) -> int:
    body, content_type = multipart({"workspace_id": workspace}, f"{kind}.csv", csv_bytes(header, rows))
    out, _ = bench.client.call("intake", "POST", f"/imports/{kind}", key, raw=body, content_type=content_type)
    return int(out["count"])


def register_capacity(bench: Bench, rnd: Round) -> int:
    by_institution: dict[str, list[list[Any]]] = defaultdict(list)
    for c in rnd.snapshot["capacities"]:
        by_institution[c["institution_id"]].append([
            PROGRAMME, c["period"], c["level"], min(max(c["teams"], 1), CAPACITY_MAX_TEAMS), 3, 5,
            min(c["supervision_hours"], CAPACITY_MAX_HOURS)])
    header = ["programme", "period", "level", "teams", "team_size_min", "team_size_max", "supervision_hours"]
    return sum(bench.each(lambda item: upload(bench, "capacity", rnd.keys[item[0]], rnd.workspace, header, item[1]),
                          sorted(by_institution.items())))


def submit_assignments(bench: Bench, rnd: Round) -> None:
    by_firm: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in rnd.snapshot["assignments"]:
        by_firm[a["firm_id"]].append(a)

    def submit(item: tuple[str, list[dict[str, Any]]]) -> None:
        firm, wanted = item
        out, _ = bench.client.call("intake", "POST", "/assignments/bulk", rnd.keys[firm], {"assignments": [{
            "workspace_id": rnd.workspace, "title": f"Opdracht {a['assignment_id']}", "period": a["period"],
            "accepted_levels": a["accepted_levels"], "required_skills": a["required_skills"],
            "nice_to_have_skills": a["nice_to_have_skills"], "min_teams": a["min_teams"],
            "max_teams": a["max_teams"], "mode": a["mode"], "preferred_levels": a["preferred_levels"],
            "preferred_institutions": [rnd.orgs[i] for i in a["preferred_institutions"]],
        } for a in wanted]})
        for a, made in zip(wanted, out["assignments"], strict=True):
            rnd.assignments[a["assignment_id"]] = made["id"]

    bench.each(submit, sorted(by_firm.items()))


def register_teams(bench: Bench, rnd: Round) -> int:
    header = ["code", "level", "size", "skills", "period", "campus", "travel_limit_km", "remote_allowed",
              "preferences"]
    by_institution: dict[str, list[list[Any]]] = defaultdict(list)
    for t in rnd.snapshot["teams"]:
        by_institution[t["institution_id"]].append([
            t["team_id"], t["level"], 4, ";".join(t["skills"]), t["periods"][0], t["municipality"],
            t["travel_limit_km"], "ja" if t["remote_allowed"] else "nee",
            ";".join(rnd.assignments[p] for p in t["preferences"][:10])])
    return sum(bench.each(lambda item: upload(bench, "teams", rnd.keys[item[0]], rnd.workspace, header, item[1]),
                          sorted(by_institution.items())))


def submit_batches(bench: Bench, rnd: Round) -> None:
    """The round as one batch per period: a batch takes every open assignment of its workspaces
    (``"assignments": "all_open"``, issue 20 item 1), so the round is solved whole, as the in-process
    reference is, and a large snapshot travels to matching by reference."""
    periods = sorted({a["period"] for a in rnd.snapshot["assignments"]})
    for period in periods:
        batch, _ = bench.client.call("intake", "POST", "/batches", rnd.coordinator, {
            "workspace_ids": [rnd.workspace], "period": period, "policy": "max_fit", "auto_publish": True,
            "assignments": "all_open"})
        rnd.batches.append(batch["id"])


ENDED = ("matched", "infeasible", "failed", "closed")


def wait_for_runs(bench: Bench, rnd: Round, timeout: float) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}

    def statuses() -> dict[str, str]:
        """Every batch's status from the list (its summaries: no assignments, no matches), page by page."""
        found: dict[str, str] = {}
        page = 1
        while True:
            listed, headers = bench.client.call("intake", "GET", f"/batches?page_size=100&page={page}",
                                                rnd.coordinator)
            found.update((b["id"], b["status"]) for b in listed)
            if not json.loads(headers.get("x-pagination", "{}")).get("next_page"):
                return found
            page += 1

    def check() -> bool:
        """Polled through the batch list; a batch is read whole (its assignments and matches) once it ended, as a
        coordinator's page would: reading a national batch whole every second took intake's interpreter from its
        outbox relay (12,500 assignments a read)."""
        listed = statuses()
        for batch_id in rnd.batches:
            if batch_id not in done and listed.get(batch_id) in ENDED:
                batch, _ = bench.client.call("intake", "GET", f"/batches/{batch_id}", rnd.coordinator)
                if batch["status"] in ENDED:
                    done[batch_id] = batch
        return len(done) == len(rnd.batches)

    wait_until("every batch's run", check, timeout, interval=1.0)
    return done


def mails_delivered(maildir: str) -> int:
    return len(os.listdir(os.path.join(maildir, "new"))) if os.path.isdir(os.path.join(maildir, "new")) else 0


def walk(bench: Bench, key: str, limit: int | None = None) -> tuple[int, float, set[str]]:
    """GET /matches page by page (``after``), all of them or the first ``limit``: (rows, seconds, ids)."""
    started = time.perf_counter()
    ids: set[str] = set()
    rows, after = 0, None
    while True:
        path = "/matches?page_size=100" + (f"&after={urllib.parse.quote(after)}" if after else "")
        page, headers = bench.client.call("matching", "GET", path, key)
        rows += len(page)
        ids |= {m["id"] if "id" in m else m["match_id"] for m in page}
        after = json.loads(headers.get("x-pagination", "{}")).get("next_after")
        if not page or not after or (limit is not None and rows >= limit):
            break
    return rows, time.perf_counter() - started, ids


# ---- the in-process reference --------------------------------------------------------------------------------


def as_intake_sends(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The generator's instance with what intake's snapshot carries instead: priority 0, a project's
    supervision hours, capacity within what CapacityIn accepts."""
    return {**snapshot,
            "assignments": [{**a, "priority": 0, "supervision_hours": PROJECT_SUPERVISION_HOURS}
                            for a in snapshot["assignments"]],
            "capacities": [{**c, "teams": min(max(c["teams"], 1), CAPACITY_MAX_TEAMS),
                            "supervision_hours": min(c["supervision_hours"], CAPACITY_MAX_HOURS)}
                           for c in snapshot["capacities"]]}


def reference_solve(path: str, time_limit: float) -> dict[str, Any]:
    """The national instance solved in this process, as benchmarks/run.py does: served assignments."""
    from matching.domain.model import Problem
    from matching.solver.paths import solve

    with open(path) as fh:
        snapshot = json.load(fh)
    started = time.perf_counter()
    solution = solve(Problem.from_snapshot(snapshot), "highs", time_limit, policy="max_fit")
    served = {pair.assignment_id for pair in solution.matches}
    return {"seconds": time.perf_counter() - started, "matches": len(solution.matches), "served": len(served),
            "status": solution.status, "objective": solution.objective}


# ---- report ------------------------------------------------------------------------------------------------


def report(bench: Bench, teams: int, assignments: int, total: float) -> list[str]:
    who = list(bench.pids)
    lines = [f"{'stage':<14} {'seconds':>9} {'items':>8} {'per s':>9} {'requests':>8}  peak MiB "
             f"({', '.join(who)})"]
    for s in bench.stages:
        rate = s.items / s.seconds if s.seconds > 0 else float("inf")
        peaks = " ".join(f"{p:>7.0f}" if p is not None else "      -" for p in s.peaks.values())
        lines.append(f"{s.name:<14} {s.seconds:>9.1f} {s.items:>8,} {rate:>9.1f} {s.requests:>8,}  {peaks}")
    lines.append(f"{'total':<14} {total:>9.1f}   ({teams:,} teams, {assignments:,} assignments; from the first "
                 "organisation to the last mail)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=10_000, help="teams in the round (assignments: half)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8, help="requests in flight at once (threads)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="the in-process solve's time limit")
    parser.add_argument("--timeout", type=float, default=3600.0, help="longest wait for runs and mails")
    parser.add_argument("--data-dir", help="default: a new directory under /tmp, removed at the end")
    parser.add_argument("--keep-data", action="store_true", help="keep the data directory (logs, databases)")
    parser.add_argument("--skip-reference", action="store_true", help="leave out the in-process solve")
    parser.add_argument("--firms-one-by-one", action="store_true",
                        help="the baseline: firms come with the organisations' CSV and send their profile and "
                             "contact a request each, instead of the operator's bulk onboarding")
    args = parser.parse_args(argv)

    from werkplaats_shared.devstack.stack import LocalStack, StackConfig

    snapshot = generate(args.teams, flavour="network", seed=args.seed)
    rnd = Round(snapshot)
    n_teams, n_assignments = len(snapshot["teams"]), len(snapshot["assignments"])
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="werkplaats-pipeline-")
    ports = {service: free_port() for service in ("intake", "matching", "scheduling")}
    stack = LocalStack(StackConfig(data_dir=data_dir, ports=ports, smtp_port=free_port(),
                                   extra_env={"WERKPLAATS_LOG_LEVEL": "WARNING"}))
    print(f"pipeline benchmark: {n_teams:,} teams, {n_assignments:,} assignments, {len(rnd.institutions)} "
          f"institutions, {len(rnd.firms):,} firms; data in {data_dir}", flush=True)
    for line in machine():
        print(line)
    failures: list[str] = []
    started = time.perf_counter()
    client = Client(ports)
    try:
        stack.start(timeout=120)
        pids = {s: p.pid for s, p in stack.processes.items()}
        if stack.smtp is not None:
            pids["smtp"] = stack.smtp.pid
        if stack.broker is not None and stack.broker.process is not None:
            pids["broker"] = stack.broker.process.pid
        pids["client"] = os.getpid()
        bench = Bench(client, pids, args.clients)
        [operator] = stack.admin("create-organisations", stdin=json.dumps(
            [{"name": "Landelijk beheer (benchmark)", "role": "operator"}]))
        rnd.operator = operator["api_key"]
        started = time.perf_counter()  # from the first organisation
        one_by_one = args.firms_one_by_one
        organisations = 1 + len(rnd.institutions) + (len(rnd.firms) if one_by_one else 0)
        with bench.stage("organisations", organisations, "organisations"):
            create_organisations(bench, rnd, with_firms=one_by_one)
        with bench.stage("keys known", organisations, "keys"):
            keys_known(bench, rnd)
        with bench.stage("workspace", 1, "workspace"):
            create_workspace(bench, rnd)  # before the firms: each is placed with the workspace covering it
        with bench.stage("firms", len(rnd.firms), "firms"):
            (onboard_firms_one_by_one if one_by_one else onboard_firms)(bench, rnd)
        with bench.stage("institutions", len(rnd.institutions), "institutions"):
            set_up_institutions(bench, rnd)
        with bench.stage("capacity", len(snapshot["capacities"]), "rows"):
            register_capacity(bench, rnd)
        with bench.stage("assignments", n_assignments, "assignments"):
            submit_assignments(bench, rnd)
        with bench.stage("teams", n_teams, "teams"):
            register_teams(bench, rnd)
        with bench.stage("batches", n_assignments, "assignments"):
            submit_batches(bench, rnd)
        with bench.stage("runs", len(rnd.batches), "batches"):
            ended = wait_for_runs(bench, rnd, args.timeout)
        matched = {m["assignment_id"] for b in ended.values() for m in b["matches"]}
        published = sum(len(b["matches"]) for b in ended.values())
        expected_notices = sum(len({a["firm_id"] for a in b["assignments"]
                                    if a["id"] in {m["assignment_id"] for m in b["matches"]}})
                               for b in ended.values())
        with bench.stage("notices", expected_notices, "mails"):
            wait_until("every notice delivered", lambda: mails_delivered(stack.maildir) >= expected_notices,
                       args.timeout, interval=1.0)
        total = time.perf_counter() - started
        time.sleep(2)  # a notice sent twice would show now
        delivered = mails_delivered(stack.maildir)
        walked, walk_seconds, walked_ids = walk(bench, rnd.coordinator)
        tenth, tenth_seconds, _ = walk(bench, rnd.coordinator, limit=max(1, math.ceil(walked / 10)))
        reference = None
        if not args.skip_reference:
            path = os.path.join(data_dir, "national-instance.json")
            with open(path, "w") as fh:
                json.dump(as_intake_sends(snapshot), fh)
            reference = in_fresh_process(reference_solve, path, args.time_limit)

        print()
        for line in report(bench, n_teams, n_assignments, total):
            print(line)
        statuses: dict[str, int] = defaultdict(int)
        for b in ended.values():
            statuses[b["status"]] += 1
        print(f"batches: {len(rnd.batches)} ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}); "
              f"matches published {published:,}; notices expected {expected_notices:,}, mails delivered "
              f"{delivered:,}")
        served = len(matched) / n_assignments
        line = f"served share through the services: {served:.1%} ({len(matched):,} of {n_assignments:,} assignments)"
        if reference is not None:
            ref = reference["served"] / n_assignments
            line += (f"; in-process national solve of the same instance: {ref:.1%} ({reference['served']:,}, "
                     f"{reference['status']}, {reference['seconds']:.1f} s); difference {100 * (served - ref):+.1f} "
                     "points")
        print(line)
        ratio = walk_seconds / tenth_seconds if tenth_seconds > 0 else float("inf")
        print(f"walking GET /matches: all {walked:,} in {walk_seconds:.2f} s, a tenth ({tenth:,}) in "
              f"{tenth_seconds:.2f} s: {ratio:.1f}x (linear: about 10x)")
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if walked != published or len(walked_ids) != walked:
            failures.append(f"matches walked {walked} (distinct {len(walked_ids)}) != published {published}")
        if delivered != expected_notices:
            failures.append(f"mails delivered {delivered} != notices expected {expected_notices}")
        if statuses.get("matched", 0) != len(rnd.batches):
            failures.append(f"not every batch matched: {dict(statuses)}")
    finally:
        client.close()
        stack.stop()
        if not args.keep_data and not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    for failure in failures:
        print(f"INCONSISTENT: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
