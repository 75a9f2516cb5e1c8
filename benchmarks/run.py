"""The matching benchmark (issue 7): the optimiser against a plain PuLP/CBC model and a min-cost flow.

    python -m benchmarks.run --sizes 1k,10k [--flavour network|side|hours] [--skip-baseline] [--seed 1] [--repeat 1]
    python -m benchmarks.run --sizes 10k --policy max_fit,rank_maximal   # the worker's whole path per policy

Per size it generates one instance (benchmarks.generator), then measures, each in a fresh process so
that peak memory and timings do not leak from one into the next, one after the other:

1. the optimiser (``matching.solver.paths.solve``), in a process set up as the matching worker's (its
   allocator keeps freed memory: ``matching.memory``), its time split as it reports it (``Solution.timings``)
   or, where it reports none (the plain PuLP path), from the outside by wrapping the functions it
   calls; the source of the split is named under the table; with ``--repeat N``, N times (the table
   shows the run of median end-to-end time, a line under it every run's time and overhead ratio);
2. the OR-Tools min-cost flow of the instance's network core (benchmarks.baselines);
3. unless ``--skip-baseline``: the straightforward PuLP model solved by CBC.

Baselines use the optimiser's own eligible pairs and fits; their times exclude that eligibility step
(it is printed with the optimiser). It prints one table per size, then the growth between sizes.

With ``--policy``, per size and policy one fresh process runs the matching worker's whole path instead
(``measure_worker``: batch received, run claimed and executed on a SQLite database, under one pause of the
cyclic collector as the worker's solver loop runs them), each step timed as
the worker calls it (wall clock and CPU time: on a loaded machine the CPU besides the solve is the figure
that does not wait) beside the optimiser's own split; a Markdown table of all of them closes the output.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.metadata
import itertools
import os
import pickle
import platform
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from typing import Any

from benchmarks.baselines import agree, optimiser_pairs, solve_min_cost_flow, solve_pulp_cbc
from benchmarks.generator import FLAVOURS, HOURS_PER_TEAM, generate, size_of

# (module, attribute path, stage): functions the optimiser calls, wrapped to time each stage.
HOOKS = (
    ("matching.solver.pulp_model", "eligible_pairs", "eligibility"),
    ("matching.solver.plain", "model_hash", "model hash"),
    ("pulp", "HiGHS.buildSolverModel", "solver hand-off"),
    ("pulp", "HiGHS.callSolver", "solve"),
    ("pulp", "HiGHS.findSolutionValues", "extraction"),
    ("matching.solver.pulp_model", "Model.matches", "extraction"),
    ("matching.solver.plain", "diagnose", "infeasibility diagnosis"),
    ("matching.solver.stages", "diagnose", "infeasibility diagnosis"),
)


# The optimiser's own split (Solution.timings), where it reports one, by stage of the table.
OWN_STAGES = {"eligibility": "eligibility", "build": "model build", "hash": "model hash",
              "handoff": "solver hand-off", "solve": "solve", "extract": "extraction"}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _cpu_seconds() -> float:
    """CPU time of this process and the solver processes it waited for (CBC runs as one)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    depth: int = 0  # nested wrapped calls count once, in the outermost stage


@contextlib.contextmanager
def instrumented(timings: Timings) -> Iterator[list[str]]:
    """Wrap every hook that exists; yields the hooks found, restores them afterwards."""
    restore: list[tuple[Any, str, Any]] = []
    found: list[str] = []
    for module_name, path, stage in HOOKS:
        try:
            owner: Any = importlib.import_module(module_name)
            *parents, name = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            original = getattr(owner, name)
        except (ImportError, AttributeError):
            continue

        def timed(*args: Any, _original: Any = original, _stage: str = stage, **kwargs: Any) -> Any:
            if timings.depth:
                return _original(*args, **kwargs)
            timings.depth += 1
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timings.seconds[_stage] += time.perf_counter() - started
                timings.calls[_stage] += 1
                timings.depth -= 1

        setattr(owner, name, functools.wraps(original)(timed))
        restore.append((owner, name, original))
        found.append(f"{module_name}.{path}")
    try:
        yield found
    finally:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)


def _load(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        snapshot: dict[str, Any] = pickle.load(handle)  # noqa: S301 - a file this run wrote itself
    return snapshot


def measure_optimiser(path: str, solver: str, time_limit: float) -> dict[str, Any]:
    from matching.domain.model import Problem
    from matching.memory import cycles_paused, keep_freed_memory
    from matching.solver.paths import solve

    keep_freed_memory()  # as the matching worker's process is set up (matching.bootstrap.main)
    snapshot = _load(path)
    input_mib = _peak_mib()
    timings = Timings()
    with instrumented(timings) as hooks:
        cpu = _cpu_seconds()
        with cycles_paused():  # one pause from reading to the matching, as the worker runs a round (execute_run)
            started = time.perf_counter()
            problem = Problem.from_snapshot(snapshot)
            read = time.perf_counter()
            solution = solve(problem, solver, time_limit, policy="max_fit")
            finished = time.perf_counter()
        cpu = _cpu_seconds() - cpu
    own = dict(getattr(solution, "timings", None) or {})
    if own:
        stages = {OWN_STAGES[k]: v for k, v in own.items() if k in OWN_STAGES}
        source = "the optimiser's own Solution.timings"
    else:
        stages = dict(timings.seconds)
        source = "hooks wrapped from outside: " + (", ".join(hooks) or "none found")
    return {
        "status": solution.status, "path": getattr(solution, "path", None), "split_source": source,
        "objective": solution.objective, "matches": len(solution.matches),
        "gap": solution.gap, "time_limit_reached": solution.time_limit_reached,
        "snapshot_seconds": read - started, "build_seconds": solution.build_seconds,
        "solve_seconds": solution.solve_seconds, "total_seconds": finished - started, "cpu_seconds": cpu,
        "stages": stages,
        "peak_mib": _peak_mib(), "input_mib": input_mib, "solver": solution.solver_version,
    }


# The worker's steps (matching.service_layer.services), each timed where the worker calls it.
WORKER_STEPS = (("problem_of", "snapshot -> Problem"), ("eligibility", "eligibility"),
                ("precheck_supply", "pre-check"), ("precheck", "pre-check"), ("_record_precheck", "pre-check"),
                ("solve", "solve"),
                ("explain", "explanations"), ("record_solution", "recording"))
# Share of a decline re-run's pairs the firms accepted before (held like pins; min_change only).
ACCEPTED_SHARE = 0.3


@contextlib.contextmanager
def steps_timed(module: Any, seconds: dict[str, float], solutions: list[Any],
                cpu: dict[str, float] | None = None) -> Iterator[None]:
    """Time each worker step as the worker calls it (nested steps each count: recording holds the
    explanations, which the table takes out), in ``cpu`` also its CPU time (this process's, the solver's
    threads included); keep the solutions solve returns."""
    used = {} if cpu is None else cpu
    restore = []
    for name, step in WORKER_STEPS:
        original = getattr(module, name)

        def timed(*args: Any, _original: Any = original, _step: str = step, **kwargs: Any) -> Any:
            started, processed = time.perf_counter(), time.process_time()
            try:
                result = _original(*args, **kwargs)
            finally:
                seconds[_step] = seconds.get(_step, 0.0) + time.perf_counter() - started
                used[_step] = used.get(_step, 0.0) + time.process_time() - processed
            if _step == "solve":
                solutions.append(result)
            return result

        setattr(module, name, functools.wraps(original)(timed))
        restore.append((name, original))
    try:
        yield
    finally:
        for name, original in restore:
            setattr(module, name, original)


def measure_worker(path: str, policy: str, solver: str, time_limit: float) -> dict[str, Any]:
    """The matching worker's whole path for one run of the round under ``policy``, on a fresh SQLite
    database: the batch is received as batch.submitted, then the run is claimed (the round's lock, the
    held teams) and executed as the worker does (``services.execute_run``: the run read back, snapshot ->
    Problem, eligibility, pre-check recorded, solve, explanations, matches and run recorded, run.ended
    into the outbox). For min_change (a decline's re-run) the round is first run with max_fit and
    published (not timed), ACCEPTED_SHARE of its pairs accepted and one declined; the re-run it asks for
    is measured."""
    import random

    import sqlalchemy as sa
    from matching import bootstrap
    from matching.adapters import orm
    from matching.memory import cycles_paused, keep_freed_memory
    from matching.service_layer import services
    from werkplaats_shared.config import Settings
    from werkplaats_shared.contracts import make_envelope
    from werkplaats_shared.db import utcnow

    keep_freed_memory()  # as the matching worker's process is set up (matching.bootstrap.main)
    snapshot = _load(path)
    input_mib = _peak_mib()
    with tempfile.TemporaryDirectory() as tmp:
        infra = bootstrap.bootstrap(Settings.from_env("matching", {
            "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "WERKPLAATS_DATA_DIR": tmp,
            "WERKPLAATS_LOG_LEVEL": "WARNING"}))
        sf = infra.session_factory
        first = "max_fit" if policy == "min_change" else policy
        with sf.begin() as session:
            services.on_batch_submitted(session, make_envelope("batch.submitted", 2, {
                **snapshot, "policy": first, "auto_publish": policy == "min_change"}))
        if policy == "min_change":
            run_id = services.claim_next_run(sf)
            assert run_id is not None
            services.execute_run(sf, infra.emit, run_id, solver, time_limit)
            with sf() as session:
                matches = services.run_matches(session, run_id)
                run = session.get(orm.Run, run_id)
                assert run is not None and run.status == "published", "the max_fit run was not published"
                batch_id = run.batch_id
            rng = random.Random(1)
            declined, *accepted = rng.sample(matches, int(len(matches) * ACCEPTED_SHARE) + 1)
            with sf.begin() as session:  # the accepts as on_match_responded records them (each of those
                # messages reads the run's snapshot again: minutes for thousands, not what is measured)
                session.execute(sa.update(orm.Match).where(orm.Match.id.in_([m.id for m in accepted]))
                                .values(response="accepted", responded_at=utcnow()))
            with sf.begin() as session:
                services.on_match_responded(session, make_envelope("match.responded", 1, {
                    "match_id": declined.id, "run_id": run_id, "batch_id": batch_id,
                    "assignment_id": declined.assignment_id, "team_id": declined.team_id, "firm_id": declined.firm_id,
                    "response": "declined", "responded_at": utcnow().isoformat()}))
        seconds: dict[str, float] = {}
        steps_cpu: dict[str, float] = {}
        solutions: list[Any] = []
        with cycles_paused():  # one pause from the claim to the recorded result, as the worker's solver loop
            cpu = _cpu_seconds()
            started = time.perf_counter()
            run_id = services.claim_next_run(sf)
            claimed, claim_cpu = time.perf_counter(), _cpu_seconds() - cpu
            assert run_id is not None
            with steps_timed(services, seconds, solutions, steps_cpu):
                services.execute_run(sf, infra.emit, run_id, solver, time_limit)
            finished = time.perf_counter()
            cpu = _cpu_seconds() - cpu
        with sf() as session:
            run = session.get(orm.Run, run_id)
            assert run is not None
            status, run_policy, error = run.status, run.policy, run.error
            blocking = (run.objective_values or {}).get("blocking")
        infra.engine.dispose()
    solution = solutions[0] if solutions else None
    seconds["recording"] = seconds.get("recording", 0.0) - seconds.get("explanations", 0.0)
    steps_cpu["recording"] = steps_cpu.get("recording", 0.0) - steps_cpu.get("explanations", 0.0)
    seconds["claim"] = claimed - started
    steps_cpu["claim"] = claim_cpu
    return {
        "policy": run_policy, "run_status": status, "error": error,
        "status": solution.status if solution else None, "path": getattr(solution, "path", None),
        "matches": len(solution.matches) if solution else 0, "objective": solution.objective if solution else None,
        "gap": solution.gap if solution else None, "blocking": blocking,
        "time_limit_reached": solution.time_limit_reached if solution else None,
        "steps": seconds, "steps_cpu": steps_cpu, "own": dict(getattr(solution, "timings", None) or {}),
        "method": dict(getattr(solution, "steps", None) or {}),
        "total_seconds": finished - started, "cpu_seconds": cpu, "peak_mib": _peak_mib(), "input_mib": input_mib,
    }


def measure_baseline(path: str, which: str, time_limit: float) -> dict[str, Any]:
    snapshot = _load(path)
    input_mib = _peak_mib()
    started = time.perf_counter()
    pairs = optimiser_pairs(snapshot)
    eligibility = time.perf_counter() - started
    cpu = _cpu_seconds()
    result = solve_min_cost_flow(snapshot, pairs) if which == "mcf" else solve_pulp_cbc(snapshot, pairs, time_limit)
    cpu = _cpu_seconds() - cpu
    summary = asdict(result)
    summary.pop("matches")
    return {**summary, "matched": len(result.matches), "pairs": len(pairs), "eligibility_seconds": eligibility,
            "total_seconds": result.total_seconds, "cpu_seconds": cpu, "peak_mib": _peak_mib(),
            "input_mib": input_mib}


def in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


# ---- report -------------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for package in ("PuLP", "highspy", "cbcbox", "ortools", "numpy"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [f"machine: {cpu}; {os.cpu_count()} cores ({usable} usable); load average {load}",
            f"python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}",
            "; ".join(versions)]


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:9.2f} s"


def _cpu(seconds: float) -> str:
    return f"  (CPU {seconds:.2f} s)"


def _difference(a: float, b: float) -> str:
    return "same" if agree(a, b) else f"{abs(a - b) / max(abs(a), abs(b)):.1e} relative"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b <= 0 else f"{a / b:9.2f} x"


def table(name: str, teams: int, assignments: int, flavour: str, opt: dict[str, Any], mcf: dict[str, Any],
          cbc: dict[str, Any] | None) -> list[str]:
    stages = opt["stages"]
    eligibility = stages.get("eligibility")
    hashing = stages.get("model hash", 0.0)
    build = stages.get("model build", opt["build_seconds"] - (eligibility or 0.0) - hashing)
    handoff, run, extraction = stages.get("solver hand-off"), stages.get("solve"), stages.get("extraction")
    rest = opt["solve_seconds"] - sum(v or 0.0 for v in (handoff, run, extraction))
    overhead = None if run is None else opt["total_seconds"] - run
    lines = [
        f"== {name}: {teams:,} teams x {assignments:,} assignments, flavour {flavour} ==",
        f"{'eligible pairs':44} {mcf['pairs']:>11,}",
        "optimiser (matching.solver.paths.solve, policy max_fit"
        + (f", path {opt['path']})" if opt.get("path") else ")"),
        f"  {'snapshot -> Problem':42} {_s(opt['snapshot_seconds'])}",
        f"  {'eligibility':42} {_s(eligibility)}",
        f"  {'model build (without eligibility, hash)':42} {_s(build)}",
        f"  {'model hash (wait for it after the solve)':42} {_s(hashing if 'model hash' in stages else None)}",
        f"  {'solver hand-off (model -> HiGHS)':42} {_s(handoff)}",
        f"  {'solve (HiGHS run)':42} {_s(run)}",
        f"  {'extraction (values back, matches)':42} {_s(extraction)}",
        f"  {'other in the solve stage':42} {_s(rest)}",
        f"  {'end to end':42} {_s(opt['total_seconds'])}{_cpu(opt['cpu_seconds'])}",
        f"  {'Python overhead / solve':42} {_ratio(overhead, run)}",
        f"  {'peak memory (RSS; input loaded)':42} {opt['peak_mib']:9.0f} MiB ({opt['input_mib']:.0f} MiB)",
        f"  {'status':42} {opt['status']}" + (f", gap {opt['gap']:.2e}" if opt["gap"] is not None else ""),
        f"{'OR-Tools min-cost flow (build + solve)':44} {_s(mcf['total_seconds'])}"
        f"  ({mcf['build_seconds']:.2f} + {mcf['solve_seconds']:.2f}){_cpu(mcf['cpu_seconds'])}",
    ]
    if cbc is not None:
        lines.append(f"{'PuLP + CBC baseline (build + solve)':44} {_s(cbc['total_seconds'])}"
                     f"  ({cbc['build_seconds']:.2f} + {cbc['solve_seconds']:.2f}), {cbc['status']}"
                     f"{_cpu(cbc['cpu_seconds'])}")
    else:
        lines.append(f"{'PuLP + CBC baseline':44} skipped")
    lines += [f"{'optimiser / MCF':44} {_ratio(opt['total_seconds'], mcf['total_seconds'])}",
              f"{'baseline / MCF':44} {_ratio(cbc['total_seconds'], mcf['total_seconds']) if cbc else '-'}"]
    shown = [f"optimiser {opt['objective']:.6f}", f"MCF {mcf['objective']:.6f}"]
    if cbc is not None:
        shown.append(f"PuLP+CBC {cbc['objective']:.6f}")
    references = [("CBC", cbc)] if cbc is not None else []
    if mcf["exact"]:
        references.insert(0, ("MCF", mcf))
    solved = opt["status"] in ("optimal", "feasible")
    if not solved:
        verdict = f"the optimiser found no matching ({opt['status']})"
    elif not references:
        verdict = "nothing to compare with (MCF is a relaxation here, baseline skipped)"
    elif all(agree(opt["objective"], r["objective"]) for _, r in references):
        verdict = "agree (1e-6 relative)"
    else:
        verdict = "DIFFER: " + ", ".join(f"optimiser vs {n} {_difference(opt['objective'], r['objective'])}"
                                         for n, r in references)
    title = "objectives" if mcf["exact"] else "objectives (MCF: relaxation, upper bound)"
    lines += [f"{title:44} {verdict}", f"  {', '.join(shown)}"]
    lines.append(f"  time split from {opt['split_source']}")
    return lines


def worker_table(name: str, teams: int, assignments: int, flavour: str, w: dict[str, Any]) -> list[str]:
    steps, own, cpu = w["steps"], w["own"], w.get("steps_cpu", {})
    solve = steps.get("solve")
    other = w["total_seconds"] - sum(v for v in steps.values())
    lines = [f"== {name}: {teams:,} teams x {assignments:,} assignments, flavour {flavour}, policy {w['policy']} ==",
             "the matching worker's path (services.claim_next_run, services.execute_run; SQLite)"]
    for step in ("claim", "snapshot -> Problem", "eligibility", "pre-check", "solve", "explanations", "recording"):
        lines.append(f"  {step:42} {_s(steps.get(step))}" + (_cpu(cpu[step]) if step in cpu else ""))
    lines += [f"  {'other (run read, stages, heartbeat)':42} {_s(other)}",
              f"  {'whole path':42} {_s(w['total_seconds'])}{_cpu(w['cpu_seconds'])}",
              f"  {'whole path / solve':42} {_ratio(w['total_seconds'], solve)}"]
    if "solve" in cpu:  # on a loaded machine the wall clock waits for the processor; CPU time does not
        lines.append(f"  {'CPU besides the solve':42} {_s(w['cpu_seconds'] - cpu['solve'])}")
    if own:
        lines.append("  the optimiser's own split (Solution.timings): " + ", ".join(
            f"{k} {v:.2f} s" for k, v in own.items()))
    shown = f"  {'status':42} run {w['run_status']}, solve {w['status']}"
    if w["path"]:
        shown += f", path {w['path']}"
    if w.get("method"):  # the cutting-plane path's rounds (Solution.steps)
        shown += " (" + ", ".join(f"{k} {v}" for k, v in w["method"].items()) + ")"
    if w["gap"] is not None:
        shown += f", gap {w['gap']:.2e}"
    if w["time_limit_reached"]:
        shown += ", time limit reached"
    lines.append(shown)
    lines.append(f"  {'matches; objective (total fit)':42} {w['matches']:,}; "
                 + ("-" if w["objective"] is None else f"{w['objective']:.3f}")
                 + ("" if w["blocking"] is None else f"; blocking pairs {w['blocking']:.0f}"))
    if w["error"]:
        lines.append(f"  {'error':42} {w['error']}")
    lines.append(f"  {'peak memory (RSS; input loaded)':42} {w['peak_mib']:9.0f} MiB ({w['input_mib']:.0f} MiB)")
    return lines


def worker_summary(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One line per size and policy, as a Markdown table."""
    lines = ["| size | policy | status | matches | solve | explanations | recording | whole path | path / solve "
             "| CPU besides the solve |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, w in rows:
        steps, cpu = w["steps"], w.get("steps_cpu", {})
        besides = f"{w['cpu_seconds'] - cpu['solve']:.1f} s" if "solve" in cpu else "-"
        status = w["status"] or w["run_status"]
        if w["gap"]:
            status += f" (gap {w['gap']:.1e})"
        if w["time_limit_reached"]:
            status += ", time limit"
        lines.append(f"| {name} | {w['policy']} | {status} | {w['matches']:,} | {steps.get('solve', 0):.1f} s "
                     f"| {steps.get('explanations', 0):.1f} s | {steps.get('recording', 0):.1f} s "
                     f"| {w['total_seconds']:.1f} s | {_ratio(w['total_seconds'], steps.get('solve')).strip()} "
                     f"| {besides} |")
    return lines


def spread(runs: list[dict[str, Any]]) -> str:
    """The optimiser's runs of one size: end to end and Python overhead / solve, each in order."""
    totals = sorted(r["total_seconds"] for r in runs)
    ratios = sorted((r["total_seconds"] - r["stages"]["solve"]) / r["stages"]["solve"] for r in runs
                    if r["stages"].get("solve"))
    shown = f"optimiser over {len(runs)} runs: end to end " + ", ".join(f"{t:.2f}" for t in totals) + " s"
    if ratios:
        shown += "; Python overhead / solve " + ", ".join(f"{x:.2f}" for x in ratios) + " x"
    return shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1k,10k", help="comma-separated: 1k, 10k, 50k or a number of teams")
    parser.add_argument("--flavour", choices=FLAVOURS, default="network")
    parser.add_argument("--hours-per-team", type=float, default=HOURS_PER_TEAM,
                        help="the hours flavour's supervision hours per team of an institution's capacity")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out the PuLP + CBC baseline")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--solver", choices=("highs", "cbc"), default="highs", help="the optimiser's solver")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds, for the optimiser and CBC")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure the optimiser this many times, each in a fresh process; the table shows the "
                             "run of median end-to-end time, a line under it the spread")
    parser.add_argument("--policy", default=None,
                        help="comma-separated policies (max_fit, max_served, rank_maximal, stable, min_change) or "
                             "'all': measure the matching worker's whole path per policy instead of the "
                             "optimiser against the references")
    args = parser.parse_args(argv)
    try:
        sizes = [(name, size_of(name)) for name in args.sizes.split(",") if name]
    except ValueError as exc:
        parser.error(str(exc))
    for line in machine():
        print(line)
    if args.policy is not None:
        from matching.domain.policies import POLICIES

        policies = list(POLICIES) if args.policy == "all" else [p for p in args.policy.split(",") if p]
        unknown = [p for p in policies if p not in POLICIES]
        if unknown or not policies:
            parser.error(f"--policy: one or more of {', '.join(POLICIES)} or 'all'")
        return worker_paths(sizes, policies, args)
    totals: dict[str, dict[str, Any]] = {}
    for name, teams in sizes:
        snapshot = generate(teams, flavour=args.flavour, seed=args.seed, hours_per_team=args.hours_per_team)
        with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as handle:
            pickle.dump(snapshot, handle)
        try:
            runs = [in_fresh_process(measure_optimiser, handle.name, args.solver, args.time_limit)
                    for _ in range(max(1, args.repeat))]
            opt = sorted(runs, key=lambda r: r["total_seconds"])[(len(runs) - 1) // 2]
            mcf = in_fresh_process(measure_baseline, handle.name, "mcf", args.time_limit)
            cbc = None if args.skip_baseline else in_fresh_process(measure_baseline, handle.name, "cbc",
                                                                     args.time_limit)
        finally:
            os.unlink(handle.name)
        print()
        print("\n".join(table(name, teams, len(snapshot["assignments"]), args.flavour, opt, mcf, cbc)), flush=True)
        if len(runs) > 1:
            print(spread(runs), flush=True)
        totals[name] = {"teams": teams, "pairs": mcf["pairs"], "optimiser": opt["total_seconds"],
                        "MCF": mcf["total_seconds"], "PuLP+CBC": cbc["total_seconds"] if cbc else None}
    names = list(totals)
    for smaller, larger in itertools.pairwise(names):
        a, b = totals[smaller], totals[larger]
        print(f"\ngrowth {larger}/{smaller}: teams {b['teams'] / a['teams']:.2f} x, "
              f"eligible pairs {b['pairs'] / a['pairs']:.2f} x")
        for key in ("optimiser", "MCF", "PuLP+CBC"):
            if a[key] is not None and b[key] is not None:
                print(f"  time({larger})/time({smaller}) {key:29} {_ratio(b[key], a[key])}")
    return 0


def worker_paths(sizes: list[tuple[str, int]], policies: list[str], args: argparse.Namespace) -> int:
    rows = []
    for name, teams in sizes:
        snapshot = generate(teams, flavour=args.flavour, seed=args.seed, hours_per_team=args.hours_per_team)
        with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as handle:
            pickle.dump(snapshot, handle)
        try:
            for policy in policies:
                w = in_fresh_process(measure_worker, handle.name, policy, args.solver, args.time_limit)
                print()
                print("\n".join(worker_table(name, teams, len(snapshot["assignments"]), args.flavour, w)), flush=True)
                rows.append((name, w))
        finally:
            os.unlink(handle.name)
    print()
    print("\n".join(worker_summary(rows)))
    print(machine()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
