"""What every solve path shares: the ``Solution`` it returns, the ``Progress`` a watcher reads while it
runs, the relative gap wanted, and the solver factories (HiGHS or CBC through PuLP) with their versions."""

from __future__ import annotations

import functools
import importlib.metadata
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import pulp

from ..domain.model import Pair

SolverFactory = Callable[[float, int], pulp.LpSolver]
SOLVED = ("optimal", "feasible")  # statuses with a matching (its blocking pairs are counted)
StageCallback = Callable[[str], None]
LEVEL_TOLERANCE = 1e-4
# Distinct fits differ by 0.01 at least; on small models the solver closes the gap below that, so the
# optimum is exact. On large ones proving that costs far more than it is worth: HiGHS's default gap.
EXACT_GAP = 1e-7
DEFAULT_GAP = 1e-4
EXACT_UP_TO_PAIRS = 5000


def mip_gap(pairs: int) -> float:
    return EXACT_GAP if pairs <= EXACT_UP_TO_PAIRS else DEFAULT_GAP


@dataclass(frozen=True)
class Solution:
    status: str  # optimal, feasible (time limit reached), infeasible, not_solved, interrupted
    objective: float  # total fit of the matches
    matches: dict[Pair, float]
    solver: str
    solver_version: str
    model_hash: str
    build_seconds: float
    solve_seconds: float
    policy: str = "max_fit"
    objective_values: dict[str, float] = field(default_factory=dict)
    gap: float | None = None
    time_limit_reached: bool = False
    seed: int = 0
    diagnosis: dict[str, Any] | None = None
    # seconds per stage: eligibility, build, hash, handoff, solve, extract (and, when some stage's
    # network relaxation was not integral, the MIP that followed is part of solve)
    timings: dict[str, float] = field(default_factory=dict)
    peak_memory_mib: float | None = None
    path: str = "plain"  # plain (PuLP model, solver via PuLP), arrays (HiGHS in bulk), network (LP first)
    # or cutting-plane (the stable policy at scale, see solver.stable: its rounds counted in ``steps``)
    steps: dict[str, int] = field(default_factory=dict)
    # a proved upper bound on the last objective solved (maximised as solved), where the path knows one: the
    # network LP's optimum, the side path's LP bound, HiGHS's MIP dual bound; None where it does not
    bound: float | None = None


@dataclass
class Progress:
    """Shared by the solving thread and a watcher: the objective being solved, the best value found so
    far and its gap (HiGHS reports them while it solves), and a flag that asks the solver to stop."""

    objective: str | None = None
    step: int = 0
    steps: int = 0
    best: float | None = None
    gap: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    minimise: bool = False  # the objective is minimised: ``best`` holds minus its value, as solved

    def as_dict(self) -> dict[str, Any]:
        best = -self.best if self.minimise and self.best is not None else self.best
        return {"objective": self.objective, "step": self.step, "of": self.steps, "best": best, "gap": self.gap}


def finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def make_solver(name: str, time_limit: float, seed: int = 0, gap: float = DEFAULT_GAP) -> pulp.LpSolver:
    if name == "cbc":
        import cbcbox

        return pulp.COIN_CMD(path=cbcbox.cbc_bin_path(), msg=False, timeLimit=time_limit, gapRel=gap,
                             options=[f"randomCbcSeed {seed + 1}"])
    return pulp.HiGHS(msg=False, timeLimit=time_limit, random_seed=seed, gapRel=gap)


def solver_version(name: str) -> str:
    if name == "highs":
        import highspy

        h = highspy.Highs()
        return f"HiGHS {h.version()}"
    return f"CBC (cbcbox {importlib.metadata.version('cbcbox')})"


def library_versions() -> dict[str, str]:
    """The solver libraries' versions, as recorded on each run (a new dict each time)."""
    return dict(_library_versions())


@functools.cache
def _library_versions() -> tuple[tuple[str, str], ...]:
    """Read once per process: the installed packages' metadata is searched on the path (milliseconds a run),
    and a running process keeps the modules it imported whatever is installed later."""
    versions = {"pulp": pulp.__version__}
    for package in ("highspy", "cbcbox"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return tuple(versions.items())

