"""The hours flavour's max_fit solve three ways, in one process, one after the other (issue 20):

- ``old``: every supervision-hours row in the model from the start, the side path's LP over every pair;
- ``full``: the hours left out and the network path first (``stages.LAZY_GROUPS``), then, where its
  matching breaks a row, the side path with every hours row, its LP over every pair;
- ``priced``: as ``full``, the side path's LP by pricing (``side_path.PRICE_SIDE_LP``), as the solver runs.

    python -m benchmarks.hours --teams 10000 --hours-per-team 14 --variants priced,full,old

Prints per variant the status, fit, gap, the lazy rows' steps, the optimiser's own split, wall and CPU
seconds and the load average."""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.generator import HOURS_PER_TEAM, generate


def main(argv: list[str] | None = None) -> int:
    from matching.domain.model import Problem
    from matching.solver import side_path, stages
    from matching.solver.arrays import eligibility

    parser = argparse.ArgumentParser(prog="python -m benchmarks.hours", description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--hours-per-team", type=float, default=HOURS_PER_TEAM)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variants", default="priced,full,old")
    parser.add_argument("--time-limit", type=float, default=300.0)
    args = parser.parse_args(argv)
    problem = Problem.from_snapshot(generate(args.teams, flavour="hours", seed=args.seed,
                                             hours_per_team=args.hours_per_team))
    elig = eligibility(problem)
    print(f"{args.teams:,} teams, {len(elig):,} eligible pairs, {args.hours_per_team:g} hours per team of a capacity")
    lazy = stages.LAZY_GROUPS
    for variant in [v for v in args.variants.split(",") if v]:
        side_path.PRICE_SIDE_LP = variant == "priced"
        stages.LAZY_GROUPS = () if variant == "old" else lazy
        wall, cpu = time.perf_counter(), time.process_time()
        found = stages.solve_stages(problem, args.time_limit, policy="max_fit", eligible=elig)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        split = ", ".join(f"{k} {v:.2f} s" for k, v in found.timings.items())
        print(f"{variant:7s} {found.status} ({found.path}), fit {found.objective:,.3f}, gap {found.gap or 0.0:.2e}, "
              f"{found.steps or 'no lazy rows'}; {split}; wall {wall:.2f} s, CPU {cpu:.2f} s, "
              f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    stages.LAZY_GROUPS, side_path.PRICE_SIDE_LP = lazy, True
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
