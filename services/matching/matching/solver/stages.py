"""The array path's driver: a policy's objectives solved in order on the array model (``solver.arrays``),
each earlier one held at its optimum, each stage by the network path (``solver.network``: an LP by
pricing, whose vertex is integral), the side path (``solver.side_path``) or, when neither applies or the
network vertex is not integral, the full MIP. ``solve_stages`` is the entry; ``_ArrayRun`` holds one
solve's state and names its steps."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ..domain.model import Pair, Problem, blocking_pairs
from ..domain.policies import POLICIES, Objective
from . import network
from .arrays import ArrayModel, Eligibility, build_arrays, eligibility
from .common import (
    LEVEL_TOLERANCE,
    SOLVED,
    Progress,
    Solution,
    StageCallback,
    finite,
    make_solver,
    mip_gap,
    solver_version,
)
from .diagnosis import diagnose
from .highs import Lp, full_model, pass_model, set_start, watch_highs
from .network import (
    START_PAIRS,
    Columns,
    LpDuals,
    PairRows,
    best_per,
    floored_pairs,
    is_network,
    network_pairs,
    network_relaxation,
)
from .redundant import SIDE_DROPPABLE, redundant_rows, without_rows
from .side_path import side_stage
from .tighter import Tighter, tighten

# Families left out of a round that is a network without them, and added back row by row where a matching
# found breaks them (``_ArrayRun.solve``): a round's supervision hours, which every real round carries.
LAZY_GROUPS: tuple[str, ...] = ("supervision_hours",)
# Rounds that add only the rows broken; after them every row left out is added back. Adding the broken rows
# only, round after round, took 3 side-path solves at 1,000 teams (22 hours rows, 9 added; 4.6 s of CPU against
# 2.2 s with all of them) and over 5 minutes at 10,000 teams against 67 s: where the best matching without the
# hours breaks one, every hours row is added at once (the side path as before, after one network solve).
LAZY_ROUNDS = 0


@dataclass
class Relaxation:
    """The stable policy's model with the stability rows of ``pairs`` only; ``start(model)`` gives the
    column values of a matching to start from (None: none fits); ``first_proven``: that matching has no
    blocking pair, so the first stage (fewest blocking pairs) is known to be 0 and is not solved."""

    pairs: frozenset[Pair]
    grouped: Any = None
    start: Callable[[ArrayModel], Any] | None = None
    first_proven: bool = False
    candidates: Any = None  # the eligible pairs that may block (ranked on both sides), when known


def array_objective_values(problem: Problem, elig: Eligibility, chosen: Any, matches: Mapping[Pair, float],
                           stable: bool = False, candidates: Iterable[Pair] | None = None) -> dict[str, float]:
    """``pulp_model.objective_values`` of the matching of the eligible pairs at positions ``chosen`` (``matches``);
    ``candidates``: the eligible pairs that may block (every eligible pair when None)."""
    import numpy as np

    ranks = np.bincount(elig.team_rank[chosen], minlength=problem.max_rank + 1)
    values = {"fit": float(sum(matches.values())),
              "served": float(len(np.unique(elig.assignment[chosen]))),
              "kept": float(len(problem.reference & set(matches))) if problem.reference else 0.0,
              **{f"rank_{r}": float(ranks[r]) for r in range(1, problem.max_rank + 1)}}
    if stable:
        values["blocking"] = float(len(blocking_pairs(problem, matches, elig.pairs if candidates is None
                                                      else candidates)))
    return values


def solve_stages(problem: Problem, time_limit: float = 60.0, *, policy: str = "max_fit", seed: int = 0,
                 on_stage: StageCallback | None = None, progress: Progress | None = None,
                 eligible: Eligibility | None = None, eligibility_seconds: float = 0.0,
                 relaxed: Relaxation | None = None, served_pairs: Any = None,
                 duals: list[LpDuals] | None = None) -> Solution:
    """``paths.solve`` with HiGHS, the model built as arrays from the same constraint families and passed
    in one call. Where ``network.is_network`` holds, each stage first solves the LP relaxation over the
    pairs; its (integral) vertex, completed with the open/closed decisions, is checked against every row
    of the full model and kept, else the stage is solved as the MIP, started from the previous stage's
    matching. Otherwise (side constraints) each stage is ``side_path.side_stage``. ``eligibility_seconds``:
    the time the caller spent computing ``eligible``, reported with the run's timings. ``relaxed``: the
    stable policy's stability rows for some pairs only, and a matching to start from (``solver.stable``).
    ``served_pairs``: "served" counted as the pairs marked (on an assignment's first copy, ``solver.served``).
    ``duals``: where the round's one stage was solved as the network LP of ``network.BOUND_GROUPS`` rows, its
    duals (``network.LpDuals``) are appended (the stable policy's bound uses them, ``solver.stable_bound``)."""
    run = _ArrayRun(problem, policy, seed, time_limit, progress, eligible, eligibility_seconds, relaxed,
                    served_pairs)
    if on_stage:
        on_stage("solving")
    run.solve()
    answer = run.answer()
    if duals is not None and run.row_dual is not None and answer.status == "optimal" and len(run.stages) == 1 \
            and run.path == "network":
        import numpy as np

        model = run.model
        groups = np.array(model.group, dtype=object)
        found = network.lp_duals_of(run.lp, groups[groups != "assignment_min_teams"], run.row_dual,
                                    model.objectives[run.stages[0].name][:model.n_pairs])
        if found is not None:
            duals.append(found)
    return answer


class _ArrayRun:
    """One solve on the array path: the model, the HiGHS instance holding the current stage, the
    stages' state (the matching so far as the full model's column values, the earlier objectives'
    levels, status, gap) and the time spent per step (``timings``, see ``Solution.timings``)."""

    def __init__(self, problem: Problem, policy: str, seed: int, time_limit: float, progress: Progress | None,
                 eligible: Eligibility | None, eligibility_seconds: float, relaxed: Relaxation | None,
                 served_pairs: Any) -> None:
        import numpy as np

        clock = time.perf_counter
        self.problem, self.policy, self.seed, self.progress, self.relaxed = problem, policy, seed, progress, relaxed
        self.timings: dict[str, float] = {}
        self.started = clock()
        self.elig = eligible if eligible is not None else eligibility(problem)
        self.timings["eligibility"] = clock() - self.started + eligibility_seconds
        self.mark = clock()  # where the time not yet booked began
        self.chosen = POLICIES[policy]
        self.model = model = build_arrays(
            problem, self.elig, stable=self.chosen.stable, objectives=[o.name for o in self.chosen.objectives],
            stability_pairs=None if relaxed is None else relaxed.pairs,
            grouped=None if relaxed is None else relaxed.grouped)
        for objective in self.chosen.objectives:
            model.objectives.setdefault(objective.name, np.zeros(model.n_cols))
        if served_pairs is not None:
            model.objectives["served"] = np.zeros(model.n_cols)
            model.objectives["served"][:model.n_pairs][served_pairs] = 1.0
        self.stages = ([o for o in self.chosen.objectives[:-1] if model.objectives[o.name].any()]
                       + [self.chosen.objectives[-1]])
        # the rows that cannot bind are left out of the model solved (``solver.redundant``) where a side
        # row is among them (network rows alone leave the path as it is, and the copy costs more than
        # they save); the hash and the check of every matching found keep the whole model (``full``)
        self.full = model
        drop = redundant_rows(model)
        if any(model.group[r] in SIDE_DROPPABLE for r in np.flatnonzero(drop).tolist()):
            self.model = model = without_rows(model, drop)
        # supervision hours that can bind, in a round that is a network without them: left out and added back
        # only where a matching found breaks them (``solve``, LAZY_GROUPS)
        self.base = model  # every row that can bind
        self.lazy: Any = None  # the base's rows left out until a matching breaks them
        self.lazy_rounds = 0
        lazy = np.array([g in LAZY_GROUPS for g in model.group], dtype=np.bool_)
        if lazy.any() and relaxed is None and served_pairs is None:
            light = without_rows(model, lazy)
            if is_network(problem, light, [o.name for o in self.stages]):
                self.lazy, self.model = lazy, light
        self.n_p = model.n_pairs
        self.use(self.model)
        self.timings["build"] = clock() - self.mark
        # the hash (numpy and hashlib release the GIL) is computed while HiGHS solves; "hash" is the wait.
        # When the round is split, it waits for the first part to finish: until then both cores solve.
        self.hashing = ThreadPoolExecutor(max_workers=1)
        self.digest_future: Future[str] | None = None
        self.built = clock()
        self.deadline = self.built + time_limit
        self.gap_wanted = mip_gap(self.n_p)

    def use(self, model: ArrayModel) -> None:
        """Solve ``model`` next (the round's, or it with some of the lazy rows left out), from nothing."""
        self.model = model
        self.network = is_network(self.problem, model, [o.name for o in self.stages])
        self.lp = (network_pairs(model) or network_relaxation(model)) if self.network else full_model(model)
        # every matching found is checked against the model solved: the whole one (``full``), or, with lazy rows
        # left out, the one solved (``solve`` checks the rows left out)
        self.checked = self.full if self.lazy is None else model
        self.columns: Columns | None = None  # the network LP's columns, while it is being priced
        self.highs: Any = None
        self.values: Any = None
        self.levels: list[tuple[Any, float]] = []
        self.status = "optimal"
        self.gap: float | None = None
        self.bound: float | None = None  # proved, on the objective of the stage last solved (Solution.bound)
        self.row_dual: Any = None  # the network LP's row duals at the optimum of the one stage, where solved so
        self.limited = False
        self.side = not self.network and self.n_p > 0  # side constraints: see side_path.side_stage
        self.path = "network" if self.network else "side" if self.side else "arrays"

    # ---- the steps each stage uses ----

    def start_digest(self) -> None:
        if self.digest_future is None:
            self.digest_future = self.hashing.submit(self.full.digest, self.policy)

    def new_highs(self) -> Any:
        import highspy

        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("random_seed", self.seed)
        highs.setOptionValue("mip_rel_gap", self.gap_wanted)
        return highs

    def fresh(self, candidate: Lp, costs: Any) -> Any:
        """A HiGHS holding ``candidate``: the MIP as it is, or the network LP with its starting columns."""
        import numpy as np

        clock = time.perf_counter
        mark = clock()
        highs = self.new_highs()
        if candidate.integer:
            pass_model(highs, candidate, costs)
            self.columns = None
            if self.progress is not None:
                watch_highs(highs, self.progress)
        else:
            highs.setOptionValue("presolve", "off")  # pricing re-solves from the last basis
            pass_model(highs, Lp(0, candidate.row[:0], candidate.col[:0], candidate.coef[:0], candidate.lower,
                                 candidate.upper, False), costs)
            self.columns = columns = Columns(highs, PairRows.of(candidate))
            n_p = self.n_p
            fits = self.model.objectives["fit"][:n_p]
            start = np.zeros(n_p, dtype=np.bool_)
            start[best_per(self.elig.team, fits, START_PAIRS)] = True
            start[best_per(self.elig.assignment, fits, START_PAIRS)] = True
            start |= floored_pairs(columns.pairs, candidate.lower)
            columns.add(np.flatnonzero(start), costs)
        self.handoff(clock() - mark)
        return highs

    def completed(self, x: Any) -> Any:
        """The full model's column values for a matching: its pairs, staffed assignments, placed teams."""
        import numpy as np

        n_p, assignments = self.n_p, len(self.problem.assignments)
        values = np.zeros(self.model.n_cols)
        values[:n_p] = x
        values[n_p:n_p + assignments] = np.bincount(self.elig.assignment, weights=x, minlength=assignments) > 0.5
        return values

    def held(self) -> Any:
        """The model's columns in the order the current HiGHS holds them."""
        import numpy as np

        return self.columns.order if self.columns is not None else np.arange(self.lp.n_cols)

    def add_level(self, highs: Any, c: Any, level: float) -> None:
        import highspy
        import numpy as np

        on = c[self.held()]
        nz = np.flatnonzero(on)
        highs.addRow(level - LEVEL_TOLERANCE, highspy.kHighsInf, len(nz), nz.astype(np.int32),
                     on[nz].astype(np.float64))

    def run(self, highs: Any, until: float | None = None) -> Any:
        """Run HiGHS until ``until`` (the deadline by default); the time it ran is "solve"."""
        clock = time.perf_counter
        # HiGHS's time limit counts all runs of the instance together
        left = max((self.deadline if until is None else until) - clock(), 0.05)
        highs.setOptionValue("time_limit", highs.getRunTime() + left)
        self.mark = clock()
        highs.run()
        self.timings["solve"] = self.timings.get("solve", 0.0) + clock() - self.mark
        self.mark = clock()
        return highs.getModelStatus()

    def handoff(self, seconds: float) -> None:
        self.timings["handoff"] = self.timings.get("handoff", 0.0) + seconds

    def book_extract(self) -> None:
        self.timings["extract"] = self.timings.get("extract", 0.0) + time.perf_counter() - self.mark

    def begin(self, i: int, objective: Objective) -> bool:
        """Tell the watcher which stage is being solved; False when it asked to stop."""
        progress = self.progress
        if progress is not None:
            if progress.stop.is_set():
                self.status = "interrupted"
                return False
            progress.objective, progress.step, progress.steps = objective.name, i + 1, len(self.stages)
            progress.minimise = objective.minimise
            progress.best = progress.gap = None
        return True

    def stopped(self) -> bool:
        """The watcher asked to stop (the run is then interrupted)."""
        if self.progress is not None and self.progress.stop.is_set():
            self.status = "interrupted"
            return True
        return False

    def report(self, costs: Any) -> None:
        if self.progress is not None:
            self.progress.best, self.progress.gap = float(costs @ self.values), self.gap

    def failed(self, i: int, result: Any) -> bool:
        """Whether ``result`` gave no matching: infeasible, or stopped without one (the first stage's
        status says so; a later stage keeps the earlier matching)."""
        import highspy

        if result in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            if i == 0:
                self.status = "infeasible"
            return True
        if self.highs.getInfo().primal_solution_status != 2:
            if i == 0:
                self.status = "not_solved"
            self.limited = True
            return True
        return False

    # ---- the stages ----

    def solve(self) -> None:
        """``solve_once``; with lazy rows (supervision hours left out of a round that is a network without
        them), then the rows the matching breaks are added and the round solved again (on the side path),
        until the matching breaks none of the rows left out. Each model solved is a relaxation of the
        round's (fewer rows, the same columns and objectives), so its optimum, when it keeps every row, is
        the round's optimum, and its bound bounds the round's. Where the time limit stops the rounds with
        a matching that breaks a row, there is none."""
        import numpy as np

        self.solve_once()
        if self.lazy is None:
            return
        base, kept = self.base, np.zeros(len(self.lazy), dtype=np.bool_)
        while self.values is not None and self.status in SOLVED:
            lhs = base.activity(self.values)
            broken = self.lazy & ~kept & (lhs > base.row_upper + 1e-6)
            if not broken.any():
                return
            if self.deadline - time.perf_counter() <= 0.05 or self.stopped():
                break
            kept |= broken if self.lazy_rounds < LAZY_ROUNDS else self.lazy
            self.lazy_rounds += 1
            self.use(without_rows(base, self.lazy & ~kept))
            self.solve_once()
        if self.status in SOLVED:  # stopped with a matching that breaks a row left out: no matching
            self.values, self.status, self.limited = None, "not_solved", True

    def solve_once(self) -> None:
        """Solve the stages in order, each earlier objective held at its level; the result in ``values``,
        ``status``, ``gap``, ``limited`` and ``path``."""
        clock = time.perf_counter
        model, stages, relaxed = self.model, self.stages, self.relaxed
        split = self.split_first() if self.network and len(stages) == 1 else None
        self.start_digest()
        self.highs = None if self.side or split is not None else self.fresh(self.lp, model.objectives[stages[0].name])
        tight = tighten(self.problem, model) if self.side else None
        self.values = None if relaxed is None or relaxed.start is None else relaxed.start(model)
        for i, objective in enumerate(stages):
            costs = model.objectives[objective.name]
            self.bound = None
            if i == 0 and len(stages) > 1 and relaxed is not None and relaxed.first_proven and self.values is not None:
                continue  # the start attains the first objective's optimum (no blocking pair): held as its level
            previous = None
            if i > 0:
                if self.deadline - clock() <= 0.05:
                    self.limited = True
                    break
                previous = model.objectives[stages[i - 1].name]
                self.levels.append((previous, float(previous @ self.values)))
            if split is not None:  # the one stage, solved per independent part
                self.values, self.gap, self.bound = split, 0.0, float(costs @ split)
                self.report(costs)
                continue
            if tight is not None:
                if not self.side_step(i, objective, costs, tight):
                    break
                continue
            if not self.highs_step(i, objective, costs, previous):
                break

    def split_first(self) -> Any:
        """The one network stage solved per independent part (``network.split_network``), completed and
        checked against the full model; None when it is not split or does not hold."""
        if self.n_p < network.SPLIT_FROM_PAIRS or (os.cpu_count() or 1) <= 1:
            return None
        duals: list[Any] = []
        split = network.split_network(self.problem, self.model, self.lp, self.model.objectives[self.stages[0].name],
                                      self.seed, self.deadline, self.timings, self.start_digest, duals)
        if split is None:
            return None
        split = self.completed(split)
        if not self.checked.holds(split):
            return None
        self.row_dual = duals[0] if duals else None
        return split

    def side_step(self, i: int, objective: Objective, costs: Any, tight: Tighter) -> bool:
        """One stage by ``side_path.side_stage``; False when the stages end here."""
        if not self.begin(i, objective):
            return False
        stage = side_stage(self.model, tight, costs, self.levels, self.values, self.deadline, self.gap_wanted,
                           self.new_highs, self.run, self.handoff, self.progress)
        if self.stopped():
            return False
        if stage.values is None or not (self.checked.holds(stage.values) and all(
                c @ stage.values >= level - LEVEL_TOLERANCE for c, level in self.levels)):
            if i == 0:
                self.status = "infeasible" if stage.result == "infeasible" else "not_solved"
            self.limited = self.limited or stage.result != "infeasible"
            return False
        self.values, self.gap, self.bound = stage.values, stage.gap, stage.bound
        self.limited = self.limited or stage.result != "optimal"
        self.report(costs)
        self.book_extract()
        return True

    def highs_step(self, i: int, objective: Objective, costs: Any, previous: Any) -> bool:
        """One stage in the HiGHS held: the network LP by pricing (its vertex kept when integral and
        within every row, else ``mip_instead``), or the MIP; False when the stages end here."""
        import highspy
        import numpy as np

        highs = self.highs
        assert highs is not None
        if previous is not None:
            if self.columns is not None:  # the network LP: the next stage optimises over the last one's optimal face
                self.columns.hold_face(previous)
            else:
                self.add_level(highs, previous, self.levels[-1][1])
            held = self.held()
            highs.changeColsCost(len(held), np.arange(len(held), dtype=np.int32),
                                 np.ascontiguousarray(costs[held], dtype=np.float64))
        if not self.begin(i, objective):
            return False
        optimal = highspy.HighsModelStatus.kOptimal
        result = self.run(highs)
        while self.columns is not None and result == optimal:
            entering = self.columns.entering(costs, np.asarray(highs.getSolution().row_dual), self.elig.team)
            if not len(entering):
                break
            self.columns.add(entering, costs)
            result = self.run(highs)
        if self.stopped():
            return False
        empty = result == highspy.HighsModelStatus.kModelEmpty  # no column: nothing to decide
        if empty:
            result = optimal
        elif self.failed(i, result):
            return False
        column_values = np.zeros(highs.getNumCol()) if empty else np.asarray(highs.getSolution().col_value)
        if self.columns is not None:
            x_relaxed = self.columns.values(column_values)
            x = np.round(x_relaxed)
            candidate = self.completed(x)
            if result == optimal and np.abs(x_relaxed - x).max(initial=0.0) <= 1e-6 \
                    and self.checked.holds(candidate) and all(c @ candidate >= level - LEVEL_TOLERANCE
                                                            for c, level in self.levels):
                self.values, self.gap, self.bound = candidate, 0.0, float(costs @ candidate)
                if len(self.stages) == 1:
                    self.row_dual = np.asarray(highs.getSolution().row_dual)
            elif not self.mip_instead(i, costs):
                return False
        else:
            self.values = column_values
            self.limited = self.limited or result != optimal
            self.gap, self.bound = finite(highs.getInfo().mip_gap), self.dual_bound(costs)
        self.report(costs)
        self.book_extract()
        return True

    def mip_instead(self, i: int, costs: Any) -> bool:
        """The network LP's vertex was not integral after all (or it stopped early): the stage as the full
        model's MIP, every earlier level held, started from the previous stage's matching; this and the
        later stages stay on the MIP. False when it found no matching."""
        import highspy
        import numpy as np

        self.lp, self.path = full_model(self.model), "arrays"
        self.highs = highs = self.fresh(self.lp, costs)
        for c, level in self.levels:
            self.add_level(highs, c, level)
        if self.values is not None:
            set_start(highs, self.values)
        result = self.run(highs)
        if self.failed(i, result):
            return False
        self.values = np.asarray(highs.getSolution().col_value)
        self.limited = self.limited or result != highspy.HighsModelStatus.kOptimal
        self.gap, self.bound = finite(highs.getInfo().mip_gap), self.dual_bound(costs)
        return True

    def dual_bound(self, costs: Any) -> float | None:
        """The MIP's dual bound on the stage's objective (at least the matching's value), where HiGHS has one."""
        bound = finite(self.highs.getInfo().mip_dual_bound)
        return None if bound is None else max(bound, float(costs @ self.values))

    # ---- the answer ----

    def answer(self) -> Solution:
        """The matching found (none when interrupted, infeasible or not solved), its objectives, the
        model's hash and the run's timings; an infeasible round's diagnosis."""
        import resource

        import numpy as np

        clock = time.perf_counter
        problem, elig, n_p = self.problem, self.elig, self.n_p
        self.mark = clock()
        matches: dict[Pair, float] = {}
        chosen_pairs = np.zeros(0, dtype=np.int64)
        if self.values is not None and self.status not in ("interrupted", "infeasible", "not_solved"):
            chosen_pairs = np.flatnonzero(self.values[:n_p] > 0.5)
            team_ids = [t.team_id for t in problem.teams]
            assignment_ids = [a.assignment_id for a in problem.assignments]
            matches = {Pair(team_ids[t], assignment_ids[a]): f for t, a, f in zip(
                elig.team[chosen_pairs].tolist(), elig.assignment[chosen_pairs].tolist(),
                elig.fit[chosen_pairs].tolist(), strict=True)}
        self.book_extract()
        mark = clock()
        assert self.digest_future is not None
        digest = self.digest_future.result()
        self.hashing.shutdown()
        self.timings["hash"] = clock() - mark
        solved = clock()
        diagnosis = None
        status = self.status
        if status == "infeasible":
            gap_wanted = self.gap_wanted
            diagnosis = diagnose(problem, lambda limit, s: make_solver("highs", limit, s, gap_wanted),
                                 policy=self.policy)
        if status == "optimal" and self.limited:
            status = "feasible"
        relaxed = self.relaxed
        return Solution(
            status=status, objective=float(sum(matches.values())), matches=matches, solver="highs",
            solver_version=solver_version("highs"), model_hash=digest, build_seconds=self.built - self.started,
            solve_seconds=solved - self.built, policy=self.policy,
            objective_values=array_objective_values(problem, elig, chosen_pairs, matches,
                                                    self.chosen.stable and status in SOLVED,
                                                    None if relaxed is None else relaxed.candidates),
            gap=self.gap, time_limit_reached=self.limited, seed=self.seed, diagnosis=diagnosis,
            bound=self.bound if status in SOLVED and self.bound is not None and len(self.levels) == len(self.stages) - 1
            else None,
            timings=self.timings, peak_memory_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            path=self.path,
            steps={} if self.lazy is None else {  # the rows left out at first, those added back, re-solves
                "hours rows": int(self.lazy.sum()), "hours rows added": sum(g in LAZY_GROUPS for g in self.model.group),
                "hours re-solves": self.lazy_rounds},
        )
