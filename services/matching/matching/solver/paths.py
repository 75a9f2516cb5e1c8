"""How a round is solved: ``solve`` picks the path, ``solve_arrays`` the array path's method for the policy.

- the plain path (``solver.plain``): the PuLP model through PuLP; rounds of at most ARRAYS_FROM_PAIRS
  eligible pairs, CBC, or a solver factory passed in;
- ``stable`` from ``stable.LAZY_STABLE_FROM_PAIRS`` pairs: cutting planes from deferred acceptance
  (``solver.stable``);
- ``max_served`` where ``served.applies``: each assignment split in two, a network again (``solver.served``);
- every other round: ``stages.solve_stages``, each stage by the network path (``solver.network``), the
  side path (``solver.side_path``) or the full MIP.
"""

from __future__ import annotations

import time

from ..domain.model import Problem
from ..domain.policies import POLICIES
from ..memory import cycles_paused
from . import served, stable
from .arrays import Eligibility, eligibility
from .common import Progress, Solution, SolverFactory, StageCallback
from .plain import solve_plain
from .stages import solve_stages

# Rounds with more eligible pairs than this go to HiGHS as arrays (with HiGHS and no solver factory).
ARRAYS_FROM_PAIRS = 5000


def solve(problem: Problem, solver_name: str = "highs", time_limit: float = 60.0, *, policy: str = "max_fit",
          seed: int = 0, make: SolverFactory | None = None, on_stage: StageCallback | None = None,
          progress: Progress | None = None, eligible: Eligibility | None = None, arrays: bool | None = None
          ) -> Solution:
    """Solve the policy's objectives in order, each earlier one held at its optimum in the next solve.

    When the time limit stops a solve, the best matching found so far is kept and marked. With
    ``progress``, HiGHS reports as it goes, and setting ``progress.stop`` interrupts it.

    With HiGHS and no solver factory, a model of more than ARRAYS_FROM_PAIRS pairs (or any, with
    ``arrays=True``) goes to HiGHS as arrays (``solve_arrays``); otherwise the PuLP model is solved
    through PuLP (``plain.solve_plain``: small models keep the plain path's choice among equal optima).
    ``eligible``: the run's eligibility, when already computed."""
    took = time.perf_counter()
    if make is None and solver_name == "highs" and arrays is not False:
        with cycles_paused():
            eligible = eligible or eligibility(problem)
            if arrays or len(eligible) > ARRAYS_FROM_PAIRS:
                return solve_arrays(problem, time_limit, policy=policy, seed=seed, on_stage=on_stage,
                                    progress=progress, eligible=eligible,
                                    eligibility_seconds=time.perf_counter() - took)
    return solve_plain(problem, solver_name, time_limit, policy=policy, seed=seed, make=make, on_stage=on_stage,
                       progress=progress)


def solve_arrays(problem: Problem, time_limit: float = 60.0, *, policy: str = "max_fit", seed: int = 0,
                 on_stage: StageCallback | None = None, progress: Progress | None = None,
                 eligible: Eligibility | None = None, eligibility_seconds: float = 0.0,
                 lazy: bool | None = None, split_served: bool | None = None) -> Solution:
    """``solve_stages`` with the cyclic garbage collector paused (see ``cycles_paused``). The stable
    policy from LAZY_STABLE_FROM_PAIRS pairs (or with ``lazy=True``) goes to ``stable.solve_lazily``:
    stability rows added only for pairs that block a matching found. ``max_served`` where
    ``served.applies`` (or with ``split_served=True``; never with False) goes to ``served.solve_served``:
    each assignment split into its first team and the rest, a network again. Every other round goes to
    ``stages.solve_stages``."""
    with cycles_paused():
        elig = eligible if eligible is not None else eligibility(problem)
        if POLICIES[policy].stable and (lazy if lazy is not None else len(elig) >= stable.LAZY_STABLE_FROM_PAIRS):
            return stable.solve_lazily(problem, time_limit, seed=seed, on_stage=on_stage, progress=progress,
                                       eligible=elig, eligibility_seconds=eligibility_seconds)
        if policy == "max_served" and split_served is not False:
            if split_served or served.applies(problem, elig):
                return served.solve_served(problem, time_limit, seed=seed, on_stage=on_stage, progress=progress,
                                           eligible=elig, eligibility_seconds=eligibility_seconds)
        return solve_stages(problem, time_limit, policy=policy, seed=seed, on_stage=on_stage, progress=progress,
                            eligible=elig, eligibility_seconds=eligibility_seconds)


