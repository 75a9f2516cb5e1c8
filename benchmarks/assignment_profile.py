"""What one ``POST /assignments/bulk`` costs intake (issue 20 item 4: "about 6 ms of intake's CPU each"): N firms,
each with its own API key and profile, submit their assignments (one or two, as the national round's firms do) in
one request each, on a database of one national workspace and 100 institutions (the firms' wishes name them).

Two ways to send them:

- in process (default): Flask's test client, one request after another; CPU of this process per request (routing,
  authentication, rate limit, span, schema, queries, the write transaction and its outbox rows, the access log,
  JSON). ``--profile`` prints cProfile's top functions instead.
- ``--http``: intake served as the local default serves it (``python -m intake``, waitress, here
  ``WERKPLAATS_PROCESS=api`` so no worker loop shares its interpreter), ``--clients`` connections in flight; CPU of
  the server's processes per request (every HTTP process counted, ``--processes`` sets
  ``WERKPLAATS_HTTP_PROCESSES``) and the requests answered per second.

``--baseline DIR`` runs the same measurement with the code of another checkout (e.g. a worktree of main) in the same
run, alternating with this one ``--rounds`` times, and prints the ratio::

    python -m benchmarks.assignment_profile --baseline /work/wt-main --rounds 3           # in process, 2,000 firms
    python -m benchmarks.assignment_profile --http --baseline /work/wt-main --rounds 2
    python -m benchmarks.assignment_profile --http --processes 1 --processes 2
    python -m benchmarks.assignment_profile --firms 500 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.run import machine

SORT, LINES = ("tottime",), 45
SECRET_KEY = "benchmark-only-secret-key-for-signed-links-0123456789"  # noqa: S105 - signs nothing real
PERIOD = "2030-Q1"
INSTITUTIONS = 100
HERE = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "matching", "scheduling", "portal")


def _settings_env(data_dir: str, port: int = 0) -> dict[str, str]:
    return {"WERKPLAATS_DATABASE_URL": f"sqlite:///{data_dir}/intake.sqlite3", "WERKPLAATS_DATA_DIR": data_dir,
            "WERKPLAATS_SECRET_KEY": SECRET_KEY, "WERKPLAATS_HTTP_PORT": str(port or 8101),
            "WERKPLAATS_METRICS_PORT": "0", "WERKPLAATS_LOG_LEVEL": "WARNING"}


def _world(data_dir: str, firms: int) -> tuple[Any, list[tuple[str, list[dict[str, Any]]]]]:
    """Intake with one national workspace, 100 institutions and ``firms`` firms with their profile and key; each
    firm's (key, bulk body)."""
    from intake import bootstrap
    from intake.adapters import orm
    from werkplaats_shared.auth import generate_key
    from werkplaats_shared.config import Settings
    from werkplaats_shared.db import utcnow
    from werkplaats_shared.geo import municipalities

    infra = bootstrap.bootstrap(Settings.from_env("intake", _settings_env(data_dir)))
    codes = sorted(municipalities())
    coordinator, workspace = str(uuid.uuid4()), str(uuid.uuid4())
    institutions = [str(uuid.uuid4()) for _ in range(INSTITUTIONS)]
    out: list[tuple[str, list[dict[str, Any]]]] = []
    with infra.session_factory.begin() as session:
        session.add(orm.Organisation(id=coordinator, name="Landelijke Werkplaats", role="coordinator", levels=[],
                                     created_at=utcnow()))
        for n, institution in enumerate(institutions):
            session.add(orm.Organisation(id=institution, name=f"Hogeschool {n}", role="institution",
                                         levels=["HBO"], created_at=utcnow()))
        session.flush()
        session.add(orm.Workspace(id=workspace, organisation_id=coordinator, name="Nationaal", municipalities=codes,
                                  periods=[{"code": PERIOD, "starts_on": "2030-01-06", "ends_on": "2030-03-28"}],
                                  created_at=utcnow()))
        keys = []
        for n in range(firms):
            firm = str(uuid.uuid4())
            session.add(orm.Organisation(id=firm, name=f"Firma {n}", role="entrepreneur", levels=[],
                                         kvk_number=f"{10_000_000 + n:08d}", sector="mkb", size_class="micro",
                                         municipality=codes[(n * 7) % len(codes)], created_at=utcnow()))
            key = generate_key()
            keys.append(dict(key_id=key.key_id, organisation_id=firm, role="entrepreneur",
                             secret_hash=key.secret_hash, created_at=utcnow()))
            items = [{
                "workspace_id": workspace, "title": f"Opdracht {n}-{i}", "period": PERIOD,
                "accepted_levels": ["HBO", "WO"], "required_skills": ["webshop", "seo"],
                "nice_to_have_skills": ["python"], "min_teams": 1, "max_teams": 1, "mode": "hybrid",
                "preferred_levels": ["HBO"],
                "preferred_institutions": [institutions[(n + j) % INSTITUTIONS] for j in range(3)],
            } for i in range(1 + (n % 5 == 0))]  # 1.2 assignments a firm, as in the national round
            out.append((key.plaintext, items))
        session.flush()
        session.execute(infra.api_keys.insert(), keys)
    return infra, out


def _check(status: int, body: str, items: int) -> None:
    if status != 201 or json.loads(body)["count"] != items:
        raise SystemExit(f"POST /assignments/bulk answered {status}: {body[:500]}")


def in_process(firms: int, profile: bool) -> dict[str, Any]:
    from intake.entrypoints.api import create_intake_app

    with tempfile.TemporaryDirectory(prefix="wp-asg-bench-") as data_dir:
        infra, bodies = _world(data_dir, firms)
        client = create_intake_app(infra).test_client()
        # the first requests warm caches (routing, schemas, SQLAlchemy's compiled statements): not counted
        warm = max(20, firms // 20)
        cpu: list[float] = []
        profiler = cProfile.Profile() if profile else None
        wall_start = 0.0
        for n, (key, items) in enumerate(bodies):
            if n == warm:
                wall_start = time.perf_counter()
            started = time.process_time()
            if profiler is not None and n >= warm:
                profiler.enable()
            resp = client.post("/assignments/bulk", headers={"Authorization": f"Bearer {key}"},
                               json={"assignments": items})
            if profiler is not None:
                profiler.disable()
            if n >= warm:
                cpu.append(time.process_time() - started)
            _check(resp.status_code, resp.get_data(as_text=True), len(items))
        wall = time.perf_counter() - wall_start
        infra.engine.dispose()
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(*SORT).print_stats(LINES)
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(LINES)
        print(text.getvalue())
    ms = sorted(c * 1000 for c in cpu)
    return {"requests": len(ms), "cpu_ms": statistics.fmean(ms), "median_ms": statistics.median(ms),
            "wall_ms": wall / len(ms) * 1000, "per_s": len(ms) / wall}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and of its children (the forked HTTP processes), while they run."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


@contextmanager
def _server(data_dir: str, port: int, processes: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **_settings_env(data_dir, port), "WERKPLAATS_PROCESS": "api",
           "WERKPLAATS_HTTP_PROCESSES": str(processes)}
    proc = subprocess.Popen([sys.executable, "-m", "intake"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("intake did not start")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def over_http(firms: int, clients: int, processes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wp-asg-bench-") as data_dir:
        infra, bodies = _world(data_dir, firms)
        infra.engine.dispose()
        port = _free_port()
        with _server(data_dir, port, processes) as proc:
            work: queue.Queue[tuple[str, list[dict[str, Any]]] | None] = queue.Queue()
            failures: list[BaseException] = []

            def send() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                while (item := work.get()) is not None:
                    key, items = item
                    try:
                        conn.request("POST", "/assignments/bulk", json.dumps({"assignments": items}),
                                     {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
                        resp = conn.getresponse()
                        _check(resp.status, resp.read().decode(), len(items))
                    except BaseException as exc:  # noqa: BLE001 - reported below
                        failures.append(exc)
                conn.close()

            warm = max(20, firms // 20)
            for item in bodies[:warm]:  # warm the server (one connection), not counted
                work.put(item)
            work.put(None)
            send()
            for item in bodies[warm:]:
                work.put(item)
            for _ in range(clients):
                work.put(None)
            cpu_start, wall_start = _cpu_seconds(proc.pid), time.perf_counter()
            threads = [threading.Thread(target=send) for _ in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall, cpu = time.perf_counter() - wall_start, _cpu_seconds(proc.pid) - cpu_start
            if failures:
                raise SystemExit(f"requests failed: {failures[0]!r}")
    n = firms - warm
    return {"requests": n, "cpu_ms": cpu / n * 1000, "wall_ms": wall / n * 1000, "per_s": n / wall}


def _pythonpath(tree: Path) -> str:
    """The tree's packages first, then this checkout's (for the benchmarks package)."""
    return os.pathsep.join([str(tree / "shared"), *(str(tree / "services" / s) for s in SERVICES), str(HERE)])


def _child(tree: Path, args: argparse.Namespace, processes: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.assignment_profile", "--child", "--firms", str(args.firms),
               "--clients", str(args.clients), "--processes", str(processes)]
    if args.http:
        command.append("--http")
    load = os.getloadavg()[0]
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": _pythonpath(tree)}, check=True,
                          capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = f"{load:.1f} -> {os.getloadavg()[0]:.1f}"
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=2000)
    parser.add_argument("--http", action="store_true", help="through a served intake (waitress) instead of in process")
    parser.add_argument("--clients", type=int, default=8, help="connections in flight (--http)")
    parser.add_argument("--processes", type=int, action="append",
                        help="WERKPLAATS_HTTP_PROCESSES of the served intake (--http; repeat to compare)")
    parser.add_argument("--baseline", type=Path, help="another checkout, measured in the same run")
    parser.add_argument("--rounds", type=int, default=1, help="alternations of baseline and this checkout")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions (in process)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    processes = args.processes or [1]
    if args.child:
        result = over_http(args.firms, args.clients, processes[0]) if args.http else in_process(args.firms, False)
        print(json.dumps(result))
        return
    for line in machine():
        print(line)
    if args.profile:
        result = in_process(args.firms, True)
        print(f"{result['cpu_ms']:.2f} ms CPU per request (profiled)")
        return
    trees = [("baseline", args.baseline.resolve())] if args.baseline else []
    trees.append(("this checkout", HERE))
    how = f"over HTTP, {args.clients} clients" if args.http else "in process"
    print(f"POST /assignments/bulk x {args.firms} firms (1.2 assignments each; {how}; SQLite); CPU of intake "
          "per request")
    print(f"{'code':<15} {'HTTP processes':>14} {'CPU ms/request':>15} {'wall ms/request':>16} "
          f"{'requests/s':>11}  load")
    cpu: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for p in processes:
            for name, tree in trees:
                r = _child(tree, args, p)
                cpu.setdefault((name, p), []).append(r["cpu_ms"])
                print(f"{name:<15} {p if args.http else '-':>14} {r['cpu_ms']:>15.2f} {r['wall_ms']:>16.2f} "
                      f"{r['per_s']:>11.0f}  {r['load']}", flush=True)
    if args.baseline:
        for p in processes:
            before, after = statistics.median(cpu[("baseline", p)]), statistics.median(cpu[("this checkout", p)])
            print(f"median CPU per request{f' ({p} HTTP processes)' if args.http else ''}: baseline {before:.2f} ms, "
                  f"this checkout {after:.2f} ms: {before / after:.2f}x less")


if __name__ == "__main__":
    main()
