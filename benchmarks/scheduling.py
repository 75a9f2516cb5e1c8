"""The scheduling benchmark (issue 17): the workshop planner and the kickoff planner at real size, each
against, in the same run on the same instance, the plain PuLP model solved by CBC and a greedy planner.

    python -m benchmarks.scheduling                    # 300, 1,000, 3,000 interests; 500, 5,000 kickoffs
    python -m benchmarks.scheduling --quick            # 60 and 150 interests; 100 kickoffs
    python -m benchmarks.scheduling --interests 1000 --kickoffs 5000 --time-limit 60 --seed 1
    python -m benchmarks.scheduling --interests 1000 --kickoffs 0 --gap 0.0001   # the optimiser to 0.01%

Instances come from ``benchmarks.scheduling_generator`` (seeded). Every method runs in a fresh process,
one after the other; each plan is checked by the independent validator
(``scheduling.domain.plan_checks``). Per method it prints: wall time (build + solve) and CPU time, the
status, the objective, its gap to the best bound known for the instance (the optimiser's dual bound, or
the objective itself when proven optimal), sessions run and seats placed (workshops) or kickoffs placed,
and the validator's verdict. The machine's load average (``os.getloadavg``) is printed before and after
each method: the machine is shared, so wall times are noisy.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from benchmarks.run import machine

WORKSHOP_METHODS = ("optimiser", "plain PuLP + CBC", "greedy")
KICKOFF_METHODS = ("optimiser", "plain PuLP + CBC", "greedy")


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure_workshops(interests: int, seed: int, method: str, time_limit: float, gap: float = 0.01
                      ) -> dict[str, Any]:
    from scheduling import workshop_solver
    from scheduling.domain import plan_checks
    from scheduling.domain import workshops as ws
    from scheduling.service_layer import workshops as service

    from benchmarks.baselines import cbc_solver
    from benchmarks.scheduling_generator import WorkshopSize, workshop_problem

    problem = workshop_problem(WorkshopSize(interests), seed)
    load = _load()
    cpu = _cpu()
    started = time.perf_counter()
    bound: float | None = None
    status = "heuristic"
    if method == "optimiser":
        outcome = service.optimise(problem, time_limit=time_limit, gap=gap)
        plan, status, bound = outcome.plan, outcome.status, outcome.bound
        if status == "optimal":
            bound = outcome.objective if bound is None else bound
    elif method == "plain PuLP + CBC":
        outcome = service.optimise_plain(problem, cbc_solver(time_limit))
        plan, status = outcome.plan, outcome.status
    else:
        plan = workshop_solver.greedy(problem)
    seconds = time.perf_counter() - started
    cpu = _cpu() - cpu
    c = ws.candidates(problem)
    return {"method": method, "seconds": seconds, "cpu": cpu, "status": status, "bound": bound,
            "objective": ws.objective_value(problem, plan), "sessions": len(plan.staffings),
            "seats": len(plan.seats), "interests": len(problem.interests),
            "pairs": len(c.staffings) + len(c.seats), "errors": plan_checks.workshop_plan_errors(problem, plan),
            "load_before": load, "load_after": _load()}


def measure_kickoffs(n: int, seed: int, method: str, time_limit: float) -> dict[str, Any]:
    from scheduling import kickoff_optimiser
    from scheduling.domain import plan_checks

    from benchmarks.baselines import cbc_solver
    from benchmarks.scheduling_generator import kickoff_problem

    inst = kickoff_problem(n, seed=seed)
    load = _load()
    cpu = _cpu()
    started = time.perf_counter()
    bound: float | None = None
    if method == "optimiser":
        plan = kickoff_optimiser.plan(inst.kickoffs, inst.fixed, inst.calendars, inst.rules, time_limit=time_limit)
    elif method == "plain PuLP + CBC":
        plan = kickoff_optimiser.plan(inst.kickoffs, inst.fixed, inst.calendars, inst.rules, solver=cbc_solver,
                                      time_limit=time_limit, decompose=False)
    else:
        plan = kickoff_optimiser.greedy(inst.kickoffs, inst.fixed, inst.calendars, inst.rules)
    seconds = time.perf_counter() - started
    cpu = _cpu() - cpu
    if method == "optimiser" and plan.status == "optimal":
        bound = float(len(plan.placed))
    errors = plan_checks.kickoff_plan_errors(inst.kickoffs, plan.placed, inst.fixed, inst.calendars, inst.rules)
    return {"method": method, "seconds": seconds, "cpu": cpu, "status": plan.status or plan.solver,
            "bound": bound, "objective": float(len(plan.placed)), "placed": len(plan.placed),
            "kickoffs": len(inst.kickoffs), "errors": errors, "load_before": load, "load_after": _load(),
            "early": kickoff_optimiser.earliness(inst.kickoffs, plan.placed, inst.rules)}


def fresh(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _gap(objective: float, bound: float | None) -> str:
    if bound is None:
        return "-"
    return f"{max(0.0, bound - objective) / max(abs(bound), 1e-9):.2%}"


def _verdict(errors: list[str]) -> str:
    return "valid" if not errors else f"{len(errors)} broken: {errors[0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scheduling", description=__doc__.split("\n")[0])
    parser.add_argument("--interests", default=None,
                        help="comma-separated workshop sizes (default 300,1000,3000; 0: none)")
    parser.add_argument("--kickoffs", default=None, help="comma-separated kickoff sizes (default 500,5000; 0: none)")
    parser.add_argument("--quick", action="store_true", help="small sizes: 60,150 interests and 100 kickoffs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds, for the optimiser and for CBC")
    parser.add_argument("--gap", type=float, default=0.01,
                        help="relative gap at which the workshop optimiser may stop (the goal: within 1%%)")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out the plain PuLP + CBC model")
    args = parser.parse_args(argv)
    interests = args.interests or ("60,150" if args.quick else "300,1000,3000")
    kickoffs = args.kickoffs or ("100" if args.quick else "500,5000")
    for line in machine():
        print(line)
    rows: list[str] = ["| instance | method | time (CPU) | status | objective | gap | placed | validator | load |",
                       "|---|---|---|---|---|---|---|---|---|"]
    for size in (int(x) for x in interests.split(",") if x and int(x) > 0):
        results = [fresh(measure_workshops, size, args.seed, m, args.time_limit, args.gap) for m in WORKSHOP_METHODS
                   if not (args.skip_baseline and m == "plain PuLP + CBC")]
        bound = next((r["bound"] for r in results if r["method"] == "optimiser"), None)
        first = results[0]
        print(f"\n== workshops: {first['interests']:,} interests, 20 rooms, 30 facilitators, 60 slots "
              f"({first['pairs']:,} feasible pairs); bound {bound if bound is None else f'{bound:.3f}'} ==")
        for r in results:
            line = (f"  {r['method']:18} {r['seconds']:8.2f} s (CPU {r['cpu']:7.2f} s)  {r['status']:10} "
                    f"objective {r['objective']:12.3f}  gap {_gap(r['objective'], bound):>7}  "
                    f"sessions {r['sessions']:4}  seats {r['seats']:5,}  {_verdict(r['errors'])}  "
                    f"load {r['load_before']} -> {r['load_after']}")
            print(line, flush=True)
            rows.append(f"| {size:,} interests | {r['method']} | {r['seconds']:.1f} s ({r['cpu']:.1f} s) "
                        f"| {r['status']} | {r['objective']:.1f} | {_gap(r['objective'], bound)} "
                        f"| {r['seats']:,} seats, "
                        f"{r['sessions']} sessions | {_verdict(r['errors'])} | {r['load_after']} |")
    for size in (int(x) for x in kickoffs.split(",") if x and int(x) > 0):
        results = [fresh(measure_kickoffs, size, args.seed, m, args.time_limit) for m in KICKOFF_METHODS
                   if not (args.skip_baseline and m == "plain PuLP + CBC")]
        bound = next((r["bound"] for r in results if r["method"] == "optimiser"), None)
        print(f"\n== kickoffs: {size:,} kickoffs, 50 coordinators, 8 weeks, daily cap 3; "
              f"most placeable {bound if bound is None else f'{bound:.0f}'} ==")
        for r in results:
            print(f"  {r['method']:18} {r['seconds']:8.2f} s (CPU {r['cpu']:7.2f} s)  {r['status']:10} "
                  f"placed {r['placed']:6,} of {r['kickoffs']:,}  gap {_gap(r['objective'], bound):>7}  "
                  f"earliness {r['early']:,}  {_verdict(r['errors'])}  load {r['load_before']} -> {r['load_after']}",
                  flush=True)
            rows.append(f"| {size:,} kickoffs | {r['method']} | {r['seconds']:.1f} s ({r['cpu']:.1f} s) "
                        f"| {r['status']} | {r['placed']:,} placed | {_gap(r['objective'], bound)} "
                        f"| {r['placed']:,} of "
                        f"{r['kickoffs']:,} | {_verdict(r['errors'])} | {r['load_after']} |")
    print()
    print("\n".join(rows))
    print(machine()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
